"""The directory planner, pure: entries + linked records + settings → Plan. No LDAP, no
Odoo."""

import base64
import datetime as dt
import json
import random
import uuid

import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mango_office.directory import (
    DeletionPolicy,
    DirectoryEntry,
    ExtensionPolicy,
    FieldMapping,
    LinkedRecord,
    OdooUser,
    PagedPlanner,
    PbxPolicy,
    PbxUser,
    RoleMapping,
    SyncSettings,
    ad_account_disabled,
    apply_transforms,
    build_plan,
    filetime_to_datetime,
    generate_sip_password,
    is_valid_mango_password,
    is_valid_sip_login,
    normalize_dn,
    normalize_guid,
    sip_login_for,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
OPS = "CN=PBX Operators,OU=Groups,DC=example,DC=test"
SUP = "CN=PBX Supervisors,OU=Groups,DC=example,DC=test"
MAPPINGS = (
    FieldMapping("sAMAccountName", "user.login", ("first", "trim", "lower")),
    FieldMapping("displayName", "user.name"),
    FieldMapping("mail", "user.email", ("first", "trim", "lower")),
    FieldMapping("telephoneNumber", "employee.work_phone", ("first", "phone")),
    FieldMapping("title", "employee.job_title", rule="create_only"),
    FieldMapping("department", "pbx.department", rule="when_empty"),
    FieldMapping("description", "user.signature", rule="ignore"),
    FieldMapping("ipPhone", "extension", ("first", "digits")),
)
ROLES = (
    RoleMapping(OPS, ("mango_telephony.group_mango_user",), mango_role="10451"),
    RoleMapping(
        SUP,
        ("mango_telephony.group_mango_supervisor", "base.group_user"),
        mango_role="10453",
    ),
)


def guid(n):
    return str(uuid.UUID(int=n))


def person(n, login=None, groups=(), uac=512, **attrs):
    login = login or f"user{n}"
    values = {
        "sAMAccountName": login,
        "displayName": f"User {n}",
        "mail": f"{login}@example.test",
        "telephoneNumber": f"+7 495 100-00-{n:02d}",
        "title": "Engineer",
        "department": "R&D",
        "description": "ignored",
        "ipPhone": str(200 + n),
        "userAccountControl": str(uac),
    }
    values.update(attrs)
    values = {k: v for k, v in values.items() if v is not None}
    return DirectoryEntry(
        guid(n), f"CN={login},OU=Staff,DC=example,DC=test", values, frozenset(groups)
    )


def linked(n, login=None, roles=(), sync_roles=(), pbx_user_id=None, **kw):
    login = login or f"user{n}"
    values = {
        "user.login": login,
        "user.name": f"User {n}",
        "user.email": f"{login}@example.test",
        "employee.work_phone": f"+749510000{n:02d}",
        "employee.job_title": "Engineer",
        "employee.name": f"User {n}",
        "extension": str(200 + n),
    }
    values.update(kw.pop("values", {}))
    return LinkedRecord(
        guid(n),
        user_id=1000 + n,
        employee_id=2000 + n,
        values=values,
        roles=frozenset(roles),
        sync_roles=frozenset(sync_roles),
        pbx_user_id=pbx_user_id,
        **kw,
    )


def settings(**kw):
    base = {
        "field_mappings": MAPPINGS,
        "role_mappings": ROLES,
        "extension": ExtensionPolicy("attribute_or_range", 500, 599),
        "deletion": DeletionPolicy(max_count=10, max_percent=50),
    }
    base.update(kw)
    return SyncSettings(**base)


PBX = PbxPolicy(enabled=True, sip_domain="example.mangosip.ru", default_access_role="3")


def plan(entries, records=(), cfg=None, **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("password_factory", lambda: "Secret123Pass")
    return build_plan(entries, records, cfg or settings(), **kw)


def changes_of(p, anchor):
    return {
        c.target: (c.old, c.new)
        for u in p.updates
        if u.anchor == anchor
        for c in u.changes
    }


def reasons(p, action=None):
    return sorted(
        (h.anchor, h.action, h.reason)
        for h in p.held
        if action is None or h.action == action
    )


# --------------------------------------------------------------------------------------
# first import
# --------------------------------------------------------------------------------------


def test_first_import_creates_users_employees_roles_and_pbx_accounts():
    entries = [
        person(1, groups=[normalize_dn(OPS)]),
        person(2, groups=[normalize_dn(SUP)]),
        person(3),
    ]
    p = plan(entries, cfg=settings(pbx=PBX))
    assert [c.anchor for c in p.creates] == [guid(1), guid(2), guid(3)]
    first = p.creates[0]
    assert first.login == "user1"
    assert first.values["user.name"] == "User 1"
    assert first.values["user.email"] == "user1@example.test"
    assert first.values["employee.work_phone"] == "+74951000001"
    assert first.values["employee.job_title"] == "Engineer"
    assert first.values["employee.name"] == "User 1"  # derived from user.name
    assert (
        "user.signature" not in first.values
    )  # rule ignore: never written, not even on create
    assert first.extension == "201"
    assert first.roles == ("mango_telephony.group_mango_user",)
    assert first.mango_role == "10451"
    assert p.creates[1].roles == (
        "base.group_user",
        "mango_telephony.group_mango_supervisor",
    )
    assert (
        p.creates[2].mango_role == "3"
    )  # default access role without a matching group
    ops = [(op.op, op.anchor) for op in p.pbx]
    assert ops == [
        ("member_create", guid(1)),
        ("sip_create", guid(1)),
        ("member_create", guid(2)),
        ("sip_create", guid(2)),
        ("member_create", guid(3)),
        ("sip_create", guid(3)),
    ]
    create = p.pbx[0]
    assert create.payload == {
        "name": "User 1",
        "email": "user1@example.test",
        "department": "R&D",
        "extension": "201",
        "access_role_id": "10451",
    }
    sip = p.pbx[1]
    assert sip.after == create.key and sip.pbx_user_id is None
    assert sip.payload["login"] == "user1" and is_valid_sip_login(sip.payload["login"])
    assert sip.payload["domain"] == "example.mangosip.ru"
    assert not p.archives and not p.held and p.complete


def test_plan_is_deterministic_and_serialisable_without_secrets():
    entries = [
        person(n, groups=[normalize_dn(OPS)] if n % 2 else []) for n in range(1, 8)
    ]
    records = [linked(n) for n in range(1, 4)]
    shuffled = entries[:]
    random.Random(4).shuffle(shuffled)
    one = plan(entries, records, cfg=settings(pbx=PBX))
    two = plan(shuffled, list(reversed(records)), cfg=settings(pbx=PBX))
    assert one.to_json() == two.to_json()
    data = json.loads(one.to_json())
    sips = [op for op in data["pbx"] if op["op"] == "sip_create"]
    assert sips and all(op["payload"]["password"] == "********" for op in sips)
    assert "Secret123Pass" not in one.to_json()
    assert "Secret123Pass" in one.to_json(include_secrets=True)
    assert data["summary"]["creates"] == 4


def test_generated_sip_password_follows_mango_3120_rule():
    for _ in range(200):
        assert is_valid_mango_password(generate_sip_password())
    assert not is_valid_mango_password("alllower1")
    assert not is_valid_mango_password("Short1")
    assert not is_valid_mango_password("NoDigitsHere")
    p = build_plan([person(1)], [], settings(pbx=PBX), now=NOW)
    assert is_valid_mango_password(p.pbx[1].payload["password"])


@pytest.mark.parametrize(
    ("login", "valid"),
    [
        ("ivan", True),
        ("abc", False),
        ("1abc", True),
        ("0001", True),
        ("1234", False),
        ("a-b.c", True),
        ("иван", False),
    ],
)
def test_sip_login_rule_3121(login, valid):
    assert is_valid_sip_login(login) is valid


def test_sip_login_is_valid_and_unique():
    assert sip_login_for("ivanov", "201") == "ivanov"
    assert sip_login_for("ivanov", "201", taken={"ivanov@x.mangosip.ru"}) == "ivanov201"
    assert sip_login_for("Иванов", "201") == "ivanov"
    assert sip_login_for("42", "201") == "sip201"  # "42" and "42201" break rule 3121
    assert is_valid_sip_login(sip_login_for("42", "201"))
    assert sip_login_for("EXAMPLE\\jdoe", "7") == "jdoe"
    assert sip_login_for("ab", "201", taken={"sip201"}) not in {"sip201", "ab"}


# --------------------------------------------------------------------------------------
# sync rules
# --------------------------------------------------------------------------------------


def test_sync_rules_always_create_only_when_empty_ignore():
    entry = person(
        1, displayName="Renamed User", title="Boss", department="Sales", description="x"
    )
    pbx_now = {
        "pbx.name": "User 1",
        "pbx.email": "user1@example.test",
        "pbx.extension": "201",
    }
    rec = linked(1, values={**pbx_now, "pbx.department": ""}, pbx_user_id="77")
    p = plan([entry], [rec], cfg=settings(pbx=PBX))
    changes = changes_of(p, guid(1))
    assert changes["user.name"] == ("User 1", "Renamed User")  # always
    assert "employee.job_title" not in changes  # create_only
    assert changes["pbx.department"] == ("", "Sales")  # when_empty, PBX value empty
    assert "user.signature" not in changes  # ignore
    member_update = [op for op in p.pbx if op.op == "member_update"]
    assert member_update[0].payload == {
        "name": "Renamed User",
        "department": "Sales",
        "access_role_id": "3",
    }

    rec_full = linked(
        1,
        values={
            "pbx.department": "R&D",
            "pbx.name": "Renamed User",
            "pbx.access_role_id": "3",
        },
        pbx_user_id="77",
    )
    p = plan([entry], [rec_full], cfg=settings(pbx=PBX))
    assert "pbx.department" not in changes_of(
        p, guid(1)
    )  # when_empty: not empty → kept


def test_unchanged_entry_plans_nothing():
    p = plan([person(1)], [linked(1)])
    assert p.is_empty and p.unchanged == 1 and not p.held


def test_always_rule_does_not_blank_required_fields():
    p = plan([person(1, displayName=None)], [linked(1)])
    assert "user.name" not in changes_of(p, guid(1))
    assert any("user.name" in w for w in p.warnings)


def test_fallback_mapping_lines_and_transforms():
    lines = (
        FieldMapping("displayName", "user.name"),
        FieldMapping("cn", "user.name"),
        FieldMapping("sAMAccountName", "user.login"),
        FieldMapping("otherTelephone", "user.x_numbers", ("joined",), separator=", "),
    )
    entry = DirectoryEntry(
        guid(5),
        "CN=x",
        {
            "cn": ["  Anna   Smith "],
            "sAMAccountName": "anna",
            "otherTelephone": ["1", "2"],
        },
    )
    p = build_plan(
        [entry],
        [],
        SyncSettings(field_mappings=lines, extension=ExtensionPolicy("none")),
        now=NOW,
    )
    assert p.creates[0].values == {
        "user.login": "anna",
        "user.name": "Anna Smith",
        "user.x_numbers": "1, 2",
        "employee.name": "Anna Smith",  # employees get the user's name unless mapped
    }
    assert (
        apply_transforms(
            ["8 (916) 200-00-01"], FieldMapping("m", "user.mobile", ("first", "phone"))
        )
        == "+79162000001"
    )
    with pytest.raises(ValueError):
        FieldMapping("m", "user.x", rule="sometimes")
    with pytest.raises(ValueError):
        FieldMapping("m", "res_partner.x")


def test_unparseable_phone_is_a_warning_not_a_crash():
    p = plan([person(1, telephoneNumber="call reception")], [])
    assert "employee.work_phone" not in p.creates[0].values
    assert any("call reception" in w for w in p.warnings)
    # ... and never blanks the number Odoo already has
    p = plan([person(1, telephoneNumber="call reception")], [linked(1)])
    assert "employee.work_phone" not in changes_of(p, guid(1))
    # while a removed attribute does clear an "always" field
    p = plan([person(1, telephoneNumber=None)], [linked(1)])
    assert changes_of(p, guid(1))["employee.work_phone"] == ("+74951000001", None)


# --------------------------------------------------------------------------------------
# identity: rename / move keep the anchor
# --------------------------------------------------------------------------------------


def test_rename_and_move_keep_the_same_record():
    moved = DirectoryEntry(
        guid(1),
        "CN=jsmith,OU=Sales,OU=Staff,DC=example,DC=test",
        {
            **person(1).attributes,
            "samaccountname": ["jsmith"],
            "mail": ["jsmith@example.test"],
        },
    )
    p = plan([moved], [linked(1, dn="CN=user1,OU=Staff,DC=example,DC=test")])
    assert not p.creates and not p.archives and not p.needs_lookup
    changes = changes_of(p, guid(1))
    assert changes["user.login"] == ("user1", "jsmith")
    assert changes["user.email"] == ("user1@example.test", "jsmith@example.test")


def test_recreated_account_with_same_login_is_not_silently_merged():
    # the old account (guid 1) is still linked and active; a new GUID shows up with the
    # same login
    p = plan([person(1), person(9, login="user1")], [linked(1)])
    assert not p.creates
    assert reasons(p) == [(guid(9), "create", "login_conflict")]


def test_guid_normalisation():
    raw = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef").bytes_le
    assert normalize_guid(raw) == "01234567-89ab-cdef-0123-456789abcdef"
    assert (
        normalize_guid("{01234567-89AB-CDEF-0123-456789ABCDEF}")
        == "01234567-89ab-cdef-0123-456789abcdef"
    )
    # a raw dump of the 16 bytes keeps their order
    assert normalize_guid(raw.hex()) == normalize_guid(raw)
    assert (
        normalize_guid(base64.b64encode(raw).decode())
        == "01234567-89ab-cdef-0123-456789abcdef"
    )
    assert (
        normalize_dn("CN=PBX Operators, OU=Groups,DC=Example,DC=test")
        == "cn=pbx operators,ou=groups,dc=example,dc=test"
    )


# --------------------------------------------------------------------------------------
# roles
# --------------------------------------------------------------------------------------


def test_group_change_grants_and_revokes_only_sync_granted_roles():
    # was an operator (granted by sync) and has base.group_user by hand; now only a
    # supervisor
    rec = linked(
        1,
        roles={"mango_telephony.group_mango_user", "base.group_user"},
        sync_roles={"mango_telephony.group_mango_user"},
    )
    p = plan([person(1, groups=[normalize_dn(SUP)])], [rec])
    (change,) = p.role_changes
    assert change.grant == ("mango_telephony.group_mango_supervisor",)
    assert change.revoke == ("mango_telephony.group_mango_user",)
    # base.group_user was hand-given: not granted (already there), not recorded as
    # sync-granted
    assert change.sync_roles == ("mango_telephony.group_mango_supervisor",)

    # membership ends entirely: only what the sync granted goes
    rec2 = linked(
        1,
        roles={"mango_telephony.group_mango_supervisor", "base.group_user"},
        sync_roles={"mango_telephony.group_mango_supervisor"},
    )
    (change,) = plan([person(1)], [rec2]).role_changes
    assert (
        change.revoke == ("mango_telephony.group_mango_supervisor",)
        and change.grant == ()
    )


def test_nested_membership_is_what_the_reader_resolved():
    entry = person(
        1, groups=[normalize_dn(OPS)]
    )  # reader put the nested group in entry.groups
    assert plan([entry], []).creates[0].roles == ("mango_telephony.group_mango_user",)


def test_missing_mapped_group_holds_its_revocations():
    rec = linked(
        1,
        roles={"mango_telephony.group_mango_user"},
        sync_roles={"mango_telephony.group_mango_user"},
    )
    p = plan([person(1)], [rec], missing_groups=[OPS])
    assert not any(c.revoke for c in p.role_changes)
    assert reasons(p, "revoke") == [(guid(1), "revoke", "missing_group")]


def test_incomplete_scan_holds_revocations_but_applies_grants():
    rec = linked(
        1,
        roles={"mango_telephony.group_mango_user"},
        sync_roles={"mango_telephony.group_mango_user"},
    )
    p = plan([person(1, groups=[normalize_dn(SUP)])], [rec], scan_complete=False)
    (change,) = p.role_changes
    assert change.revoke == ()
    assert (
        "mango_telephony.group_mango_user" in change.sync_roles
    )  # still ours, revisited next run
    assert "mango_telephony.group_mango_supervisor" in change.grant


# --------------------------------------------------------------------------------------
# departures and deletion safety
# --------------------------------------------------------------------------------------


def test_disabled_in_ad_is_a_departure():
    expired = int(
        (
            dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
            - dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
        ).total_seconds()
        * 10**7
    )
    entries = [
        person(1, uac=514),
        person(2, accountExpires=str(expired)),
        person(3),
        person(4, uac=514),
    ]
    records = [linked(1, pbx_user_id="71"), linked(2), linked(3)]
    p = plan(entries, records, cfg=settings(pbx=PBX, deletion=DeletionPolicy()))
    assert [(a.anchor, a.reason) for a in p.archives] == [
        (guid(1), "disabled"),
        (guid(2), "expired"),
    ]
    assert [(op.op, op.pbx_user_id) for op in p.pbx if op.op == "member_delete"] == [
        ("member_delete", "71")
    ]
    assert (
        guid(4),
        "account_disabled",
    ) in p.skipped  # disabled and never imported: not created
    assert not p.needs_lookup  # seen in the scan: no lookup needed


def test_ad_account_state_helpers():
    assert ad_account_disabled({"userAccountControl": ["514"]}) == "disabled"
    assert (
        ad_account_disabled({"userAccountControl": ["512"], "accountExpires": ["0"]})
        is None
    )
    assert ad_account_disabled({"accountExpires": ["9223372036854775807"]}) is None
    assert filetime_to_datetime("116444736000000000") == dt.datetime(
        1970, 1, 1, tzinfo=dt.timezone.utc
    )


def test_disabled_seen_in_a_delta_waits_for_the_full_scan():
    p = plan([person(1, uac=514)], [linked(1), linked(2)], mode="delta")
    assert not p.archives and not p.needs_lookup
    assert reasons(p, "archive") == [(guid(1), "archive", "full_scan_required")]


def test_absent_entry_needs_a_guid_lookup_before_archiving():
    records = [linked(1), linked(2, pbx_user_id="72"), linked(3), linked(4), linked(5)]
    entries = [person(1), person(3), person(4), person(5)]
    first = plan(entries, records, cfg=settings(pbx=PBX))
    assert not first.archives
    assert first.needs_lookup == [guid(2)]
    assert reasons(first, "archive") == [(guid(2), "archive", "awaiting_lookup")]

    second = plan(
        entries, records, cfg=settings(pbx=PBX), confirmations={guid(2): "absent"}
    )
    assert [(a.anchor, a.reason) for a in second.archives] == [(guid(2), "absent")]
    assert [
        (op.op, op.pbx_user_id) for op in second.pbx if op.op == "member_delete"
    ] == [("member_delete", "72")]

    for status, reason in (("present", "still_present"), ("error", "lookup_failed")):
        held = plan(entries, records, confirmations={guid(2): status})
        assert not held.archives and reasons(held, "archive") == [
            (guid(2), "archive", reason)
        ]
    moved_out = plan(entries, records, confirmations={guid(2): "out_of_scope"})
    assert [(a.anchor, a.reason) for a in moved_out.archives] == [
        (guid(2), "out_of_scope")
    ]


def test_delta_read_never_infers_absence():
    p = plan([person(1)], [linked(1), linked(2)], mode="delta")
    assert not p.archives and not p.needs_lookup and not p.held


def test_empty_result_archives_nobody():
    p = plan(
        [], [linked(1), linked(2)], confirmations={guid(1): "absent", guid(2): "absent"}
    )
    assert not p.archives
    assert {h.reason for h in p.held} == {"empty_result"}


def test_incomplete_scan_archives_nobody_but_still_creates():
    p = plan(
        [person(1), person(7)],
        [linked(1), linked(2)],
        scan_complete=False,
        confirmations={guid(2): "absent"},
    )
    assert not p.archives and not p.needs_lookup
    assert reasons(p, "archive") == [(guid(2), "archive", "incomplete_scan")]
    assert [c.anchor for c in p.creates] == [guid(7)]
    assert not p.complete


def test_threshold_holds_departures_for_admin_confirmation():
    records = [linked(n) for n in range(1, 11)]
    entries = [person(n) for n in range(1, 8)]  # 3 of 10 gone
    absent = {guid(n): "absent" for n in (8, 9, 10)}
    cfg = settings(deletion=DeletionPolicy(max_count=2))
    p = plan(entries, records, cfg=cfg, confirmations=absent)
    assert not p.archives and p.requires_confirmation
    assert {h.reason for h in p.held} == {"threshold"}
    approved = plan(
        entries,
        records,
        cfg=cfg,
        confirmations=absent,
        approved_departures=absent.keys(),
    )
    assert len(approved.archives) == 3 and not approved.requires_confirmation

    by_percent = plan(
        entries,
        records,
        cfg=settings(deletion=DeletionPolicy(max_percent=20)),
        confirmations=absent,
    )
    assert by_percent.requires_confirmation and not by_percent.archives  # 30 % > 20 %
    within = plan(
        entries,
        records,
        cfg=settings(deletion=DeletionPolicy(max_percent=30)),
        confirmations=absent,
    )
    assert len(within.archives) == 3


def test_filter_change_suspends_removals_for_one_run():
    p = plan(
        [person(1)],
        [linked(1), linked(2)],
        filter_changed=True,
        confirmations={guid(2): "absent"},
    )
    assert not p.archives and reasons(p, "archive") == [
        (guid(2), "archive", "filter_changed")
    ]
    p = plan(
        [person(1)],
        [linked(1), linked(2)],
        filter_changed=False,
        confirmations={guid(2): "absent"},
    )
    assert [a.anchor for a in p.archives] == [guid(2)]


def test_protected_users_are_never_archived_or_stripped():
    cfg = settings(protected_user_ids={1002, 1003}, pbx=PBX)
    rec3 = linked(
        3,
        roles={"mango_telephony.group_mango_user"},
        sync_roles={"mango_telephony.group_mango_user"},
    )
    p = plan(
        [person(1), person(3, login="renamed")],
        [linked(1), linked(2, pbx_user_id="72"), rec3],
        cfg=cfg,
        confirmations={guid(2): "absent"},
    )
    assert not p.archives and not any(op.op == "member_delete" for op in p.pbx)
    assert (guid(2), "archive", "protected") in reasons(p)
    assert (guid(3), "revoke", "protected") in reasons(p)
    assert (guid(3), "update", "protected") in reasons(p)  # login kept
    assert "user.login" not in changes_of(p, guid(3))


def test_reactivation_only_for_records_the_sync_archived():
    by_sync = linked(1, active=False, archived_by_sync=True)
    by_hand = linked(2, active=False, archived_by_sync=False)
    p = plan([person(1), person(2)], [by_sync, by_hand])
    assert [r.anchor for r in p.reactivations] == [guid(1)]
    assert reasons(p) == [(guid(2), "reactivate", "archived_manually")]


def test_only_linked_records_are_candidates_for_departure():
    # Odoo users the sync never linked (admin, portal, local accounts) are not in
    # `linked`:
    p = plan(
        [person(1)],
        [linked(1)],
        odoo_users=[OdooUser(2, "admin"), OdooUser(3, "portal@example.test")],
    )
    assert not p.archives and not p.needs_lookup and not p.held


# --------------------------------------------------------------------------------------
# extensions and PBX matching
# --------------------------------------------------------------------------------------


def test_extension_collision_with_pbx_and_odoo_users():
    pbx_users = [
        PbxUser("900", extension="201", name="Someone Else", email="else@example.test")
    ]
    records = [linked(5, values={"extension": "202"})]
    odoo = [OdooUser(50, "local", extension="203")]
    cfg = settings(extension=ExtensionPolicy("attribute", 500, 599), pbx=PBX)
    # user1 wants 201: a PBX user with that extension and no link → matched as the same
    # person (by extension)
    # user2 wants 202: linked directory record 5 owns it; user3 wants 203: an Odoo user
    # owns it
    entries = [person(1), person(2), person(3), person(5)]
    p = plan(entries, records, cfg=cfg, pbx_users=pbx_users, odoo_users=odoo)
    assert [(op.op, op.anchor, op.pbx_user_id) for op in p.pbx if op.op == "link"] == [
        ("link", guid(1), "900")
    ]
    # one report per person, naming who holds the number
    assert (guid(2), "extension", "extension_conflict") in reasons(p)
    assert (guid(3), "extension", "extension_conflict") in reasons(p)

    # attribute_or_range: the colliding ones get the lowest free numbers of the range
    # instead
    cfg = settings(extension=ExtensionPolicy("attribute_or_range", 500, 599), pbx=PBX)
    taken = [PbxUser("901", extension="500", name="Taken")]
    p = plan(entries, records, cfg=cfg, pbx_users=pbx_users + taken, odoo_users=odoo)
    created = {c.anchor: c.extension for c in p.creates}
    assert created == {guid(1): "201", guid(2): "501", guid(3): "502"}


def test_generated_extensions_skip_every_taken_number_and_report_exhaustion():
    cfg = settings(
        field_mappings=MAPPINGS[:-1],  # no ipPhone mapping
        extension=ExtensionPolicy("range", 100, 103),
        pbx=PBX,
    )
    pbx_users = [PbxUser("1", extension="100")]
    odoo = [OdooUser(9, "x", extension="102")]
    entries = [person(n) for n in range(1, 5)]
    p = plan(entries, [], cfg=cfg, pbx_users=pbx_users, odoo_users=odoo)
    assert [c.extension for c in p.creates] == ["101", "103", None, None]
    assert reasons(p, "pbx") == [
        (guid(3), "pbx", "extension_exhausted"),
        (guid(4), "pbx", "extension_exhausted"),
    ]
    assert sum(op.op == "member_create" for op in p.pbx) == 2


def test_extensions_of_pbx_groups_are_never_handed_out():
    cfg = settings(
        field_mappings=MAPPINGS[:-1],  # no ipPhone mapping
        extension=ExtensionPolicy("range", 200, 205),
        pbx=PBX,
    )
    groups = {"200": "group 400200001", "202": "group 400200002"}
    entries = [person(n) for n in range(1, 4)]
    p = plan(entries, [], cfg=cfg, reserved_extensions=groups)
    assert [c.extension for c in p.creates] == ["201", "203", "204"]
    paged = PagedPlanner(cfg, reserved_extensions=groups, now=NOW)
    page = paged.plan_page(entries)
    assert [c.extension for c in page.creates] == ["201", "203", "204"]

    # a directory attribute asking for a group's number is held, naming the group
    cfg = settings(extension=ExtensionPolicy("attribute", 500, 599), pbx=PBX)
    p = plan([person(1, ipPhone="200")], [], cfg=cfg, reserved_extensions=groups)
    held = [h for h in p.held if h.anchor == guid(1)]
    assert [h.reason for h in held] == ["extension_conflict"]
    assert "group 400200001" in held[0].message

    # a number given before the PBX gave it to a group is replaced, not sent again
    cfg = settings(extension=ExtensionPolicy("range", 200, 205), pbx=PBX)
    record = linked(1, values={"extension": "200"})
    p = plan([person(1)], [record], cfg=cfg, reserved_extensions=groups)
    assert changes_of(p, guid(1))["extension"] == ("200", "201")


def test_existing_extension_is_kept_under_create_only():
    cfg = settings(
        extension=ExtensionPolicy("attribute_or_range", 500, 599, rule="create_only")
    )
    p = plan([person(1, ipPhone="299")], [linked(1)], cfg=cfg)
    assert "extension" not in changes_of(p, guid(1))
    p = plan(
        [person(1, ipPhone="299")], [linked(1)]
    )  # rule always (from the mapping line)
    assert changes_of(p, guid(1))["extension"] == ("201", "299")


def test_pbx_user_matched_by_email_is_linked_not_duplicated():
    pbx_users = [
        PbxUser(
            "555",
            extension="310",
            name="User 1",
            email="USER1@example.test",
            sip_logins=("user1@d",),
        )
    ]
    cfg = settings(field_mappings=MAPPINGS[:-1], pbx=PBX)
    p = plan([person(1)], [], cfg=cfg, pbx_users=pbx_users)
    assert [op.op for op in p.pbx] == ["link", "member_update"]
    assert p.pbx[1].payload == {
        "department": "R&D",
        "email": "user1@example.test",
        "access_role_id": "3",
    }
    assert p.creates[0].extension == "310"  # adopts the number the PBX user already has


@pytest.mark.parametrize(
    "pbx_mobile", ["79161234567", "+79161234567", "8 (916) 123-45-67"]
)
def test_pbx_mobile_in_any_notation_is_the_same_number(pbx_mobile):
    """Mango answers 7XXXXXXXXXX, mappings produce +E.164: the same number in
    either notation is no change, whether the PBX user is matched or linked."""
    mappings = MAPPINGS + (FieldMapping("mobile", "pbx.mobile", ("first", "phone")),)
    cfg = settings(field_mappings=mappings, pbx=PBX)
    entry = person(1, mobile="+7 916 123-45-67")
    live = PbxUser(
        "71",
        extension="201",
        name="User 1",
        email="user1@example.test",
        sip_logins=("user1@d",),
        mobile=pbx_mobile,
        department="R&D",
        access_role_id="3",
    )
    matched = plan([entry], [], cfg=cfg, pbx_users=[live])
    assert [(op.op, op.pbx_user_id) for op in matched.pbx] == [("link", "71")]

    rec = linked(1, pbx_user_id="71", sip_logins=("user1@d",))
    again = plan([entry], [rec], cfg=cfg, pbx_users=[live])
    assert again.pbx == [] and again.updates == []

    moved = plan(
        [person(1, mobile="+7 916 765-43-21")], [rec], cfg=cfg, pbx_users=[live]
    )
    assert [(op.op, op.payload) for op in moved.pbx] == [
        ("member_update", {"mobile": "79167654321"})
    ]


def test_pbx_policy_required_group_and_leaving_it():
    cfg = settings(
        pbx=PbxPolicy(
            enabled=True, sip=False, default_access_role="3", require_groups=(OPS,)
        )
    )
    p = plan([person(1, groups=[normalize_dn(OPS)]), person(2)], [], cfg=cfg)
    assert [(op.op, op.anchor) for op in p.pbx] == [("member_create", guid(1))]
    left = plan(
        [person(1)],
        [linked(1, pbx_user_id="61", values={"pbx.extension": "201"})],
        cfg=cfg,
    )
    assert [(op.op, op.pbx_user_id) for op in left.pbx] == [("member_delete", "61")]
    # the required group is gone from the directory (renamed, mistyped): nobody
    # loses a PBX user (it is kept up to date), nobody gets one
    unknown = plan(
        [person(1), person(3)],
        [linked(1, pbx_user_id="61", values={"pbx.extension": "201"})],
        cfg=cfg,
        missing_groups=(OPS,),
    )
    assert [(op.op, op.anchor) for op in unknown.pbx] == [("member_update", guid(1))]


def test_link_existing_odoo_user_by_login():
    odoo = [
        OdooUser(
            42,
            "user1",
            email="user1@example.test",
            roles=frozenset({"base.group_user"}),
        )
    ]
    held = plan([person(1, groups=[normalize_dn(SUP)])], [], odoo_users=odoo)
    assert reasons(held) == [(guid(1), "create", "login_conflict")]
    p = plan(
        [person(1, groups=[normalize_dn(SUP)])],
        [],
        cfg=settings(link_existing="login"),
        odoo_users=odoo,
    )
    assert not p.creates
    (link,) = p.links
    assert link.user_id == 42 and link.matched_by == "login"
    (roles,) = p.role_changes
    assert roles.grant == (
        "mango_telephony.group_mango_supervisor",
    )  # base.group_user was already there


# ------------------------------------------------------------------------------------------------
# properties over random directories
# ------------------------------------------------------------------------------------------------

population = st.lists(
    st.tuples(
        st.integers(1, 40),  # identity
        st.sampled_from(["present", "disabled", "absent"]),
        st.booleans(),  # linked already
        st.booleans(),  # operator
        st.sampled_from([None, "201", "202", "500", "777"]),  # ipPhone
    ),
    max_size=25,
    unique_by=lambda t: t[0],
)


@hsettings(max_examples=40, deadline=None)
@given(
    people=population,
    complete=st.booleans(),
    mode=st.sampled_from(["full", "delta"]),
    taken=st.sets(st.sampled_from(["201", "500", "501", "502", "777"])),
    protected=st.sets(st.integers(1, 40)),
    seed=st.integers(0, 10),
)
# Found by this test: a linked person holding 201 in Odoo, whose entry asks for no
# number, while another entry asks for 201 and an unlinked PBX user holds it.
@example(
    people=[(1, "present", True, False, None), (2, "present", False, False, "201")],
    complete=True,
    mode="full",
    taken={"201"},
    protected=set(),
    seed=0,
)
def test_plan_invariants(people, complete, mode, taken, protected, seed):
    entries, records = [], []
    for n, state, is_linked, operator, ext in people:
        groups = [normalize_dn(OPS)] if operator else []
        if state != "absent":
            entries.append(
                person(
                    n,
                    groups=groups,
                    uac=514 if state == "disabled" else 512,
                    ipPhone=ext,
                )
            )
        if is_linked or state == "absent":
            sync = {"mango_telephony.group_mango_user"}
            records.append(linked(n, roles=sync, sync_roles=sync))
    pbx_users = [PbxUser(f"p{t}", extension=t) for t in sorted(taken)]
    cfg = settings(pbx=PBX, protected_user_ids={1000 + n for n in protected})
    kw = {
        "mode": mode,
        "scan_complete": complete,
        "pbx_users": pbx_users,
        "confirmations": {r.anchor: "absent" for r in records},
    }
    p = plan(entries, records, cfg=cfg, **kw)
    linked_anchors = {r.anchor for r in records}
    archived = {a.anchor for a in p.archives}
    assert archived <= linked_anchors
    assert not archived & {guid(n) for n in protected}
    if not complete or mode == "delta":
        assert not p.archives and not p.needs_lookup
        assert not any(op.op == "member_delete" for op in p.pbx)
    if not complete:
        assert not any(c.revoke for c in p.role_changes)
    assert not {c.anchor for c in p.creates} & linked_anchors
    # every extension handed out is unique and never one somebody else holds
    given_out = [c.extension for c in p.creates if c.extension]
    given_out += [
        ch.new for u in p.updates for ch in u.changes if ch.target == "extension"
    ]
    assert len(given_out) == len(set(given_out))
    for op in p.pbx:
        if op.op == "member_create":
            others = {r.values["extension"] for r in records if r.anchor != op.anchor}
            assert op.payload["extension"] not in taken | others
    # same input in another order: the same plan
    shuffled_entries, shuffled_records = entries[:], records[:]
    random.Random(seed).shuffle(shuffled_entries)
    random.Random(seed + 1).shuffle(shuffled_records)
    again = plan(shuffled_entries, shuffled_records, cfg=cfg, **kw)
    assert again.to_json() == p.to_json()
