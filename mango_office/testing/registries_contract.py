"""What every implementation of the planner's registries must do, for both test suites.

The pure suite runs it on :class:`~mango_office.directory.MemoryRegistries`, the Odoo
suite on the database-backed registries of ``mango_ldap``: the planner must not be
able to tell them apart. :func:`check_registries` is the interface's contract, page
boundaries included; :func:`paged_outcome` plans a small directory over three pages
with people whose logins and extensions collide across pages, and returns what was
decided, so that two implementations can be compared decision by decision.
"""

import datetime as dt
import uuid

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
    SyncSettings,
    collect_claims,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)


def check_registries(registries):
    """Exercise every operation of ``registries`` (a fresh, empty one) across page
    boundaries; raises AssertionError on the first difference from the contract."""
    reg = registries
    # extensions: a set of owners per number
    assert reg.extension_owners("201") == set()
    reg.add_extension_owner("201", "anchor:a")
    reg.add_extension_owner(201, "anchor:a")  # the same owner, the number as int
    assert reg.extension_owners("201") == {"anchor:a"}
    reg.page_done()
    reg.add_extension_owner("201", "pbx:7")
    assert reg.extension_owners("201") == {"anchor:a", "pbx:7"}
    owners = reg.extension_owners("201")
    owners.add("somebody")  # a copy: the registry does not change
    reg.page_done()
    assert reg.extension_owners(201) == {"anchor:a", "pbx:7"}
    # logins: one owner; a default does not replace it, a set does
    reg.default_login_owner("alice", "odoo:1")
    reg.default_login_owner("alice", "odoo:2")
    reg.page_done()
    assert reg.login_owner("alice") == "odoo:1"
    reg.set_login_owner("alice", "anchor:a")
    reg.default_login_owner("alice", "odoo:3")
    assert reg.login_owner("alice") == "anchor:a"
    reg.page_done()
    assert reg.login_owner("alice") == "anchor:a"
    reg.forget_login("alice")
    assert reg.login_owner("alice") is None
    reg.default_login_owner("alice", "anchor:b")
    reg.page_done()
    assert reg.login_owner("alice") == "anchor:b"
    assert reg.login_owner("nobody") is None
    # a default given before the key is read, then read in a prefetch
    reg.default_login_owner("bob", "odoo:4")
    reg.prefetch("l", ["bob", "carol"])
    assert reg.login_owner("bob") == "odoo:4"
    assert reg.login_owner("carol") is None
    # PBX users linked to people
    assert reg.pbx_anchor("15") is None
    reg.link_pbx(15, "a")
    reg.page_done()
    assert reg.pbx_anchor("15") == "a"
    # SIP logins, through the view sip_login_for asks
    view = reg.sip_view()
    assert "alice" not in view
    reg.take_sip("alice")
    reg.page_done()
    assert "alice" in reg.sip_view() and reg.sip_taken("alice")
    # settled claims
    reg.settle("202", "b")
    reg.page_done()
    assert reg.settled_anchor(202) == "b" and reg.settled_anchor("203") is None
    # anchors seen: once each
    assert reg.see("a") is True
    assert reg.see("a") is False
    reg.page_done()
    assert reg.see("a") is False
    assert reg.was_seen("a") and not reg.was_seen("z")
    reg.see("b")
    assert reg.seen_count() == 2
    # many keys at once, past any batch size an implementation keeps
    for n in range(12000):
        reg.add_extension_owner(str(10000 + n), f"anchor:{n}")
        reg.default_login_owner(f"user{n}", f"odoo:{n}")
    reg.page_done()
    reg.prefetch("e", [str(n) for n in range(10000, 22001)])
    assert reg.extension_owners("21999") == {"anchor:11999"}
    assert reg.extension_owners("22000") == set()
    assert reg.login_owner("user11999") == "odoo:11999"
    assert reg.login_owner("bob") == "odoo:4"


# ------------------------------------------------------------------------------------
# a directory over three pages
# ------------------------------------------------------------------------------------

MAPPINGS = (
    FieldMapping("uid", "user.login", ("first", "trim", "lower")),
    FieldMapping("cn", "user.name"),
    FieldMapping("mail", "user.email", ("first", "trim", "lower")),
    FieldMapping("ipPhone", "extension", ("first", "digits")),
)


def guid(n):
    return str(uuid.UUID(int=n))


def person(n, login=None, phone=None, created=None):
    login = login or f"user{n}"
    values = {"uid": login, "cn": f"User {n}", "mail": f"{login}@example.test"}
    if phone:
        values["ipPhone"] = phone
    if created:
        values["createTimestamp"] = created
    return DirectoryEntry(guid(n), f"uid={login},ou=people,dc=example,dc=test", values)


def linked(n, login=None, extension=None, pbx_user_id=None, sip=None):
    login = login or f"user{n}"
    return LinkedRecord(
        guid(n),
        user_id=1000 + n,
        employee_id=2000 + n,
        values={
            "user.login": login,
            "user.name": f"User {n}",
            "user.email": f"{login}@example.test",
            "extension": extension,
        },
        pbx_user_id=pbx_user_id,
        sip_logins=(sip,) if sip else (),
    )


def scenario_settings():
    return SyncSettings(
        field_mappings=MAPPINGS,
        role_mappings=(),
        extension=ExtensionPolicy("attribute_or_range", 500, 599),
        deletion=DeletionPolicy(max_count=10, max_percent=50),
        pbx=PbxPolicy(
            enabled=True, sip_domain="example.mangosip.ru", default_access_role="3"
        ),
    )


def scenario_pages():
    """Three pages; what collides across them:

    * ``shared`` is the login of person 1 (page 1, new) and of person 9 (page 3,
      new): the first to claim it gets it, the other is held (login_conflict);
    * number 301 is asked for by person 2 (page 1, created later) and person 8
      (page 3, created earlier): the claim, settled before page 1, gives it to 8;
    * person 4 (page 2) is linked and holds 520; person 10 (page 3) has no number:
      the range hands out 500, 501… but never 520, nor a number of page 3's claims;
    * person 5 (page 2) asks for 401, which an Odoo user outside the directory has;
    * person 6 (page 2) is linked; person 7 is linked but gone (a departure);
    * person 11 (page 3) matches PBX user p11 by e-mail; person 12 (page 3) would
      take the SIP login ``user12``, which PBX user p99 already uses.
    """
    return [
        [
            person(1, login="shared"),
            person(2, phone="301", created="20250102000000Z"),
            person(3),
        ],
        [person(4), person(5, phone="401"), person(6)],
        [
            person(8, phone="301", created="20250101000000Z"),
            person(9, login="Shared"),
            person(10),
            person(11),
            person(12),
            person(1, login="shared"),  # overlapping bases: read twice
        ],
    ]


def scenario_records():
    return [
        linked(4, extension="520", pbx_user_id="p4", sip="user4"),
        linked(6, extension="521"),
        linked(7, extension="522"),
    ]


def paged_outcome(registries):
    """What a :class:`PagedPlanner` over :func:`scenario_pages` decides, page by page
    and at the end, in plain values (comparable between implementations)."""
    cfg = scenario_settings()
    pages = scenario_pages()
    records = scenario_records()
    by_anchor = {r.anchor: r for r in records}
    planner = PagedPlanner(
        cfg,
        linked=iter(records),
        pbx_users=[
            PbxUser("p4", extension="520", email="user4@example.test"),
            PbxUser("p11", extension=None, email="user11@example.test"),
            PbxUser("p99", extension="598", sip_logins=("user12@example.mangosip.ru",)),
        ],
        odoo_users=[OdooUser(77, "outsider", extension="401")],
        now=NOW,
        password_factory=lambda: "Secret123Pass",
        claims=collect_claims(cfg, pages),
        registries=registries,
    )
    outcome = []
    for page in pages:
        plan = planner.plan_page(
            page, [by_anchor[e.anchor] for e in page if e.anchor in by_anchor]
        )
        outcome.append(_plain(plan))
    final = planner.finish(records, complete=True, active_linked=3, confirmations={})
    outcome.append(_plain(final))
    return outcome


def _plain(plan):
    return {
        "creates": sorted((c.anchor, c.login, c.extension) for c in plan.creates),
        "updates": sorted(
            (u.anchor, tuple((c.target, c.new) for c in u.changes))
            for u in plan.updates
        ),
        "held": sorted(
            (h.anchor, h.action, h.reason, h.details.get("extension"))
            for h in plan.held
        ),
        "pbx": sorted(
            (
                op.op,
                op.anchor,
                op.pbx_user_id,
                (op.payload or {}).get("login"),
                (op.payload or {}).get("extension"),
            )
            for op in plan.pbx
        ),
        "archives": sorted((a.anchor, a.reason) for a in plan.archives),
        "unchanged": plan.unchanged,
    }
