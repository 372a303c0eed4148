"""DirectoryReader against real servers: OpenLDAP (slapd) and a Samba AD DC, both
started by scripts/ldap/*.sh through the session fixtures of
mango_office.testing.ldap_servers."""

import datetime as dt
import time
import uuid
from pathlib import Path

import ldap3
import pytest

from mango_office.directory import (
    PRESETS,
    DirectoryConfig,
    DirectoryReader,
    DirectoryServer,
    ExtensionPolicy,
    FieldMapping,
    LinkedRecord,
    PbxPolicy,
    PbxUser,
    RoleMapping,
    SyncSettings,
    Watermark,
    build_plan,
    is_valid_sip_login,
    normalize_dn,
    plan_from_scan,
    read_and_plan,
)
from mango_office.testing import ldap_servers

# session fixtures: the real servers, started once
slapd = ldap_servers.slapd
samba_ad = ldap_servers.samba_ad


def ldap_config(server, **kw):
    base = {
        "servers": [server.ldaps_uri],
        "bind_dn": server.bind_dn,
        "bind_password": server.password,
        "kind": server.kind,
        "bases": [server.people_dn],
        "ca_file": server.ca_file,
        "page_size": 100,
    }
    base.update(kw)
    return DirectoryConfig(**base)


def scan(server, **kw):
    with DirectoryReader(ldap_config(server, **kw)) as reader:
        return reader.full_scan()


def login_of(entry):
    return entry.get("uid") or entry.get("sAMAccountName")


# --------------------------------------------------------------------------------------
# OpenLDAP
# --------------------------------------------------------------------------------------


def test_service_account_is_size_limited_and_paging_reads_everything(slapd):
    # the fixture's promise: an unpaged search by the service account is truncated by
    # the server
    host, port = slapd.uri.rsplit("//", 1)[1].split(":")
    conn = ldap3.Connection(
        ldap3.Server(host, int(port)), slapd.bind_dn, slapd.password, auto_bind=True
    )
    conn.search(slapd.people_dn, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert conn.result["description"] == "sizeLimitExceeded"
    assert len(conn.entries) == slapd.size_limit < slapd.sample_users
    conn.unbind()

    pages = []
    with DirectoryReader(ldap_config(slapd, page_size=40)) as reader:
        result = reader.full_scan(progress=lambda n, total: pages.append((n, total)))
    assert result.complete and not result.errors
    assert len(result.entries) == slapd.sample_users
    assert result.pages == len(pages) >= 7
    assert pages[-1] == (result.pages, slapd.sample_users)
    one = next(e for e in result.entries.values() if login_of(e) == "user0007")
    assert uuid.UUID(one.anchor) and one.anchor == slapd.anchor_of(one.dn)
    assert one.get("mail") == "user0007@example.test"


def test_server_truncating_a_paged_search_makes_the_scan_incomplete(slapd):
    slapd.set_limits("* size.soft=100 size.hard=100 size.pr=1000 size.prtotal=120")
    try:
        result = scan(slapd, page_size=50)
    finally:
        slapd.set_limits(slapd.default_limits())
    assert not result.complete
    assert "sizeLimitExceeded" in result.errors[0]
    assert 0 < len(result.entries) < slapd.sample_users
    # ... and the planner archives nobody from it
    linked = [
        LinkedRecord(slapd.anchor_of(f"uid=user{n:04d},ou=people,{slapd.base_dn}"))
        for n in (1, 2, 3, 4, 6)
    ]
    plan = plan_from_scan(
        result,
        linked,
        SyncSettings(field_mappings=(FieldMapping("uid", "user.login"),)),
    )
    assert not plan.archives and not plan.needs_lookup


def test_page_size_above_the_server_maximum_is_an_error_not_a_short_read(slapd):
    result = scan(
        slapd, page_size=2000
    )  # fixture allows 1000 per page, like AD's MaxPageSize
    assert not result.complete and not result.entries
    assert "adminLimitExceeded" in result.errors[0]


def test_ldaps_and_starttls_verify_against_the_given_ca(slapd):
    pem = Path(slapd.ca_file).read_text()
    for servers, security in (
        ([slapd.ldaps_uri], "ldaps"),
        ([slapd.starttls_uri], "starttls"),
    ):
        with DirectoryReader(
            ldap_config(slapd, servers=servers, ca_file=None, ca_pem=pem)
        ) as reader:
            report = reader.test_connection()
        assert report.ok, report.error
        assert report.security == security and report.tls_version in (
            "TLSv1.2",
            "TLSv1.3",
        )
        assert report.bound_as == slapd.bind_dn
        assert report.match_count == slapd.sample_users
        assert report.warnings == []


def test_wrong_ca_or_wrong_host_name_is_refused(slapd):
    for servers, ca in (
        ([slapd.ldaps_uri], slapd.wrong_ca_file),
        ([slapd.starttls_uri], slapd.wrong_ca_file),
        (
            [slapd.ldaps_wrong_host_uri],
            slapd.ca_file,
        ),  # right CA, address not in the certificate
    ):
        with DirectoryReader(ldap_config(slapd, servers=servers, ca_file=ca)) as reader:
            report = reader.test_connection()
            result = reader.full_scan()
        assert not report.ok and "certificate" in report.error, report.error
        assert "verify failed" in report.error
        assert not result.complete and not result.entries
    # the system trust store does not know our private CA either
    with DirectoryReader(ldap_config(slapd, ca_file=None)) as reader:
        assert not reader.test_connection().ok
    # only an explicit opt-out accepts the mismatching name, and it says so
    cfg = ldap_config(slapd, servers=[slapd.ldaps_wrong_host_uri], check_hostname=False)
    with DirectoryReader(cfg) as reader:
        report = reader.test_connection()
    assert report.ok and any("Host name checking is off" in w for w in report.warnings)
    cfg = ldap_config(slapd, ca_file=slapd.wrong_ca_file, verify_certificate=False)
    with DirectoryReader(cfg) as reader:
        report = reader.test_connection()
    assert report.ok and any("verification is off" in w for w in report.warnings)


def test_configuration_is_checked_before_any_connection():
    good = {"servers": ["ldaps://dc.example.test"], "bases": ["dc=example,dc=test"]}
    cfg = DirectoryConfig(**good, bind_password="s3cret", ca_pem="-----BEGIN…")
    assert cfg.servers[0] == DirectoryServer("dc.example.test", 636, "ldaps")
    assert "s3cret" not in repr(cfg) and "BEGIN" not in repr(cfg)
    assert DirectoryServer.from_uri("ldap+starttls://h").port == 389
    assert DirectoryServer.from_uri("ldap://h:10389").security == "plain"
    for bad in (
        {"user_filter": "(&(uid=*)"},
        {"bases": [("dc=x", "everything")]},
        {"kind": "novell"},
        {"servers": ["http://h"]},
        {"bases": []},
    ):
        with pytest.raises(ValueError):
            DirectoryConfig(**{**good, **bad})
    narrowed = DirectoryConfig(**good, user_filter="(memberOf=cn=x)")
    assert narrowed.scope_fingerprint() != DirectoryConfig(**good).scope_fingerprint()
    assert narrowed.search_filter == "(&(objectClass=inetOrgPerson)(memberOf=cn=x))"


def test_plain_ldap_works_with_a_warning_and_bad_password_is_a_bind_error(slapd):
    with DirectoryReader(ldap_config(slapd, servers=[slapd.uri])) as reader:
        report = reader.test_connection()
    assert report.ok and report.security == "plain" and report.tls_version is None
    assert any("unencrypted" in w for w in report.warnings)
    with DirectoryReader(ldap_config(slapd, bind_password="wrong")) as reader:
        report = reader.test_connection()
    assert not report.ok and "invalidCredentials" in report.error
    assert "wrong" not in report.error


def test_connection_report_gives_the_parts_of_each_failure(slapd):
    """A caller words the failure in its reader's language: the report carries
    the kind, the server, the reason, the base and the LDAP result, besides the
    English message."""
    dead = DirectoryServer("127.0.0.1", 1, "ldaps")
    with DirectoryReader(ldap_config(slapd, servers=[dead])) as reader:
        report = reader.test_connection()
    assert report.failure["kind"] == "connection"
    assert report.failure["server"] == "ldaps://127.0.0.1:1"
    assert "refused" in report.failure["reason"].lower()
    with DirectoryReader(ldap_config(slapd, servers=[dead, slapd.ldaps_uri])) as r:
        assert r.test_connection().ok
    with DirectoryReader(ldap_config(slapd, bind_password="wrong")) as reader:
        report = reader.test_connection()
    assert report.failure["kind"] == "bind"
    assert report.failure["result"] == "invalidCredentials"
    assert "wrong" not in str(report.failures)
    with DirectoryReader(ldap_config(slapd, ca_file=slapd.wrong_ca_file)) as reader:
        report = reader.test_connection()
    assert report.failure["kind"] == "certificate"
    assert report.failure["server"] == slapd.ldaps_uri
    # every server a failover tried, each with its own cause
    cfg = ldap_config(slapd, servers=[dead, slapd.ldaps_uri], bind_password="wrong")
    with DirectoryReader(cfg) as reader:
        report = reader.test_connection()
    assert [f["kind"] for f in report.failures] == ["connection", "bind"]
    assert report.failure["kind"] == "bind"
    missing = f"ou=nowhere,{slapd.base_dn}"
    with DirectoryReader(ldap_config(slapd, bases=[missing])) as reader:
        report = reader.test_connection()
    assert report.failure == {
        "kind": "search",
        "server": slapd.ldaps_uri,
        "reason": report.failure["reason"],
        "base": missing,
        "result": "noSuchObject",
    }
    cfg = ldap_config(slapd, servers=[slapd.uri], bind_dn="", bind_password="")
    assert cfg.warning_codes() == [("plain", slapd.uri), ("anonymous", None)]
    assert cfg.warnings()[0].startswith(f"{slapd.uri}: plain LDAP")


def test_failover_to_the_next_server(slapd):
    dead = DirectoryServer("127.0.0.1", 1, "ldaps")
    cfg = ldap_config(slapd, servers=[dead, slapd.ldaps_uri])
    with DirectoryReader(cfg) as reader:
        result = reader.full_scan()
    assert result.complete and result.server == slapd.ldaps_uri
    with DirectoryReader(ldap_config(slapd, servers=[dead])) as reader:
        report = reader.test_connection()
    assert not report.ok and "127.0.0.1:1" in report.error


def test_outage_between_pages_gives_an_incomplete_scan_not_an_empty_one(slapd):
    full = scan(slapd)
    linked = [
        LinkedRecord(anchor, values={"user.login": login_of(e)})
        for anchor, e in full.entries.items()
    ]

    def cut_after_first_page(pages, _entries):
        if pages == 1:
            slapd.pause()

    try:
        with DirectoryReader(ldap_config(slapd, page_size=50)) as reader:
            result = reader.full_scan(progress=cut_after_first_page)
    finally:
        slapd.resume()
    assert not result.complete
    assert len(result.entries) == 50
    assert result.errors and "connection lost" in result.errors[0]
    plan = plan_from_scan(
        result,
        linked,
        SyncSettings(field_mappings=(FieldMapping("uid", "user.login"),)),
    )
    assert not plan.archives and not plan.needs_lookup
    assert len(plan.held) == len(linked) - 50
    assert {h.reason for h in plan.held} == {"incomplete_scan"}
    assert scan(slapd).complete  # back after the outage


def test_nested_groups_are_resolved_iteratively(slapd):
    operators = f"cn=pbx-operators,{slapd.groups_dn}"
    deep = slapd.add_group("deep-nested", [f"uid=user0003,{slapd.people_dn}"])
    slapd.add_member(f"cn=sales-team,{slapd.groups_dn}", deep)
    try:
        result = scan(
            slapd, group_dns=[operators, f"cn=no-such-group,{slapd.groups_dn}"]
        )
    finally:
        slapd.remove_member(f"cn=sales-team,{slapd.groups_dn}", deep)
        slapd.delete(deep)
    key = normalize_dn(operators)
    members = sorted(login_of(e) for e in result.entries.values() if key in e.groups)
    sales = [f"user{i:04d}" for i in range(5, slapd.sample_users + 1, 5)]
    assert members == sorted(["user0001", "user0002", "user0003", *sales])
    assert result.missing_groups == (f"cn=no-such-group,{slapd.groups_dn}",)


def test_kept_attributes_only_but_groups_and_anchor_still_resolved(slapd):
    operators = f"cn=pbx-operators,{slapd.groups_dn}"
    full = scan(slapd, group_dns=[operators])
    lean = scan(slapd, group_dns=[operators], keep_attributes=("uid", "Mail;binary"))
    assert full.complete and lean.complete
    assert set(lean.entries) == set(full.entries)
    for anchor, entry in lean.entries.items():
        assert set(entry.attributes) == {"uid", "mail", "entryuuid"} & set(
            full.entries[anchor].attributes
        )
        assert entry.groups == full.entries[anchor].groups
        assert entry.get("mail") == full.entries[anchor].get("mail")
    assert any(normalize_dn(operators) in e.groups for e in lean.entries.values())
    # what was dropped: read for the groups, not held
    assert any("memberof" in e.attributes for e in full.entries.values())


def test_delta_read_with_watermark(slapd):
    cfg = ldap_config(
        slapd, clock_skew=0, group_dns=[f"cn=pbx-supervisors,{slapd.groups_dn}"]
    )
    time.sleep(1.1)  # the sample groups may have been written in this very second
    with DirectoryReader(cfg) as reader:
        full = reader.full_scan()
        assert full.complete and full.watermark.kind == "openldap"
        saved = full.watermark.to_json()
        time.sleep(1.1)  # modifyTimestamp has one-second resolution
        dn = f"uid=user0042,{slapd.people_dn}"
        slapd.modify(dn, telephoneNumber="+7 495 999-00-42")
        delta = reader.delta_scan(Watermark.from_json(saved))
        assert delta.mode == "delta" and delta.complete and delta.escalated is None
        assert [login_of(e) for e in delta.entries.values()] == ["user0042"]
        assert (
            delta.entries[slapd.anchor_of(dn)].get("telephoneNumber")
            == "+7 495 999-00-42"
        )
        assert delta.watermark.time >= full.watermark.time

        # a membership change inside a resolved group is invisible on the users: full
        # scan instead
        time.sleep(1.1)
        slapd.add_member(
            f"cn=pbx-supervisors,{slapd.groups_dn}", f"uid=user0010,{slapd.sales_dn}"
        )
        escalated = reader.delta_scan(delta.watermark)
        assert escalated.mode == "full" and "pbx-supervisors" in escalated.escalated
        assert escalated.escalation == "group_changed"
        assert normalize_dn(escalated.escalated_group) == normalize_dn(
            f"cn=pbx-supervisors,{slapd.groups_dn}"
        )
        assert len(escalated.entries) == slapd.sample_users

        # changed settings → the old watermark is not trusted
    other = ldap_config(slapd, user_filter="(mail=*)")
    with DirectoryReader(other) as reader:
        moved = reader.delta_scan(saved)
        assert moved.escalated == "the directory settings changed since the watermark"
        assert moved.escalation == "settings_changed"

    slapd.pause()
    try:
        with DirectoryReader(cfg) as reader:
            failed = reader.delta_scan(delta.watermark)
    finally:
        slapd.resume()
    assert (
        not failed.complete and failed.watermark is None
    )  # nothing to save after a failure


def test_move_rename_and_departure_confirmation(slapd):
    dn = slapd.add_user("mover", cn="Mo Ver", mail="mover@example.test")
    anchor = slapd.anchor_of(dn)
    gone_dn = slapd.add_user("leaver", cn="Lea Ver")
    gone = slapd.anchor_of(gone_dn)
    outside_dn = slapd.add_user("outsider", cn="Out Sider")
    outside = slapd.anchor_of(outside_dn)
    settings = SyncSettings(
        field_mappings=(
            FieldMapping("uid", "user.login"),
            FieldMapping("cn", "user.name"),
        ),
        extension=ExtensionPolicy("none"),
        create_employees=False,
    )
    first = scan(slapd)
    records = [
        LinkedRecord(
            a, user_id=n, values={"user.login": login_of(e), "user.name": e.get("cn")}
        )
        for n, (a, e) in enumerate(sorted(first.entries.items()), start=1)
    ]

    moved_dn = slapd.move(dn, slapd.sales_dn, new_rdn="uid=mover2")
    slapd.modify(moved_dn, uid="mover2", cn="Mo Ver Jr")
    slapd.delete(gone_dn)
    slapd.move(outside_dn, f"ou=services,{slapd.base_dn}")  # out of the configured base
    cfg = ldap_config(slapd)
    with DirectoryReader(cfg) as reader:
        result = reader.full_scan()
        plan = plan_from_scan(result, records, settings)
        assert result.entries[anchor].dn == moved_dn
        assert not plan.creates
        (update,) = [u for u in plan.updates if u.anchor == anchor]
        assert {c.target: c.new for c in update.changes} == {
            "user.login": "mover2",
            "user.name": "Mo Ver Jr",
        }
        assert sorted(plan.needs_lookup) == sorted([gone, outside])
        confirmations = reader.confirm_departures(plan.needs_lookup)
    assert confirmations == {gone: "absent", outside: "out_of_scope"}
    final = plan_from_scan(result, records, settings, confirmations=confirmations)
    assert sorted((a.anchor, a.reason) for a in final.archives) == sorted(
        [(gone, "absent"), (outside, "out_of_scope")]
    )
    slapd.delete(moved_dn)
    slapd.delete(f"uid=outsider,ou=services,{slapd.base_dn}")


# --------------------------------------------------------------------------------------
def test_first_import_then_steady_state_then_departure(slapd):
    """The whole loop against the real directory: preset mappings, nested roles, PBX."""
    operators = f"cn=pbx-operators,{slapd.groups_dn}"
    settings = SyncSettings(
        field_mappings=PRESETS["openldap"].field_mappings,
        role_mappings=(
            RoleMapping(operators, ("mango_telephony.group_mango_user",), "10451"),
        ),
        extension=ExtensionPolicy("range", 100, 999),
        pbx=PbxPolicy(
            enabled=True, sip_domain="x.mangosip.ru", default_access_role="3"
        ),
    )
    cfg = ldap_config(
        slapd, attributes=settings.attributes(), group_dns=settings.group_dns()
    )
    leaver = slapd.add_user("leaver2", cn="Lea Ver", mail="leaver2@example.test")
    try:
        with DirectoryReader(cfg) as reader:
            scan1, first = read_and_plan(reader, [], settings)
        assert scan1.complete and len(first.creates) == slapd.sample_users + 1
        assert not first.held and not first.archives
        operators_created = [c for c in first.creates if c.roles]
        assert len(operators_created) == 52  # 2 direct + 50 through sales-team
        assert {c.mango_role for c in operators_created} == {"10451"}
        extensions = [c.extension for c in first.creates]
        assert len(set(extensions)) == len(extensions)
        sips = [op.payload["login"] for op in first.pbx if op.op == "sip_create"]
        assert len(sips) == len(set(sips)) == len(first.creates)
        assert all(is_valid_sip_login(s) for s in sips)

        # what an apply would have stored, and what Mango would now answer
        creates = {
            op.anchor: op.payload for op in first.pbx if op.op == "member_create"
        }
        linked, pbx_users = [], []
        for n, c in enumerate(first.creates):
            values = {**c.values, "extension": c.extension}
            sip = f"{sips[n]}@x.mangosip.ru"
            roles = frozenset(c.roles)
            linked.append(
                LinkedRecord(
                    c.anchor,
                    user_id=n + 1,
                    values=values,
                    roles=roles,
                    sync_roles=roles,
                    pbx_user_id=str(9000 + n),
                    sip_logins=(sip,),
                )
            )
            pbx_users.append(
                PbxUser(str(9000 + n), sip_logins=(sip,), **creates[c.anchor])
            )
        with DirectoryReader(cfg) as reader:
            _scan, steady = read_and_plan(reader, linked, settings, pbx_users=pbx_users)
        assert steady.is_empty and not steady.held, steady.to_dict()
        assert steady.unchanged == len(linked)

        gone = slapd.anchor_of(leaver)
        slapd.delete(leaver)
        leaver = None
        with DirectoryReader(cfg) as reader:
            _scan, final = read_and_plan(reader, linked, settings, pbx_users=pbx_users)
        assert [(a.anchor, a.reason) for a in final.archives] == [(gone, "absent")]
        assert [op.op for op in final.pbx] == ["member_delete"]
    finally:
        if leaver:
            slapd.delete(leaver)


# ----------
# Samba AD
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ad_people(samba_ad):
    """A small AD population: plain users, a sales OU, nested groups, a disabled and an
    expired account."""
    dns = {}
    for n in range(1, 9):
        dns[f"ad{n}"] = samba_ad.add_user(
            f"ad{n}",
            displayName=f"Ad User {n}",
            mail=f"ad{n}@example.test",
            ipPhone=str(300 + n),
            telephoneNumber=f"+7 495 300-00-{n:02d}",
        )
    dns["sales1"] = samba_ad.add_user(
        "sales1", parent=samba_ad.sales_dn, displayName="Sales One"
    )
    inner = samba_ad.add_group("pbx-inner", [dns["ad1"], dns["sales1"]])
    outer = samba_ad.add_group("pbx-outer", [inner, dns["ad2"]])
    samba_ad.disable_user(dns["ad3"])
    past = int(
        (
            dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
            - dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
        ).total_seconds()
        * 10**7
    )
    samba_ad.set_account_expires(dns["ad4"], past)
    return {"dns": dns, "inner": inner, "outer": outer}


def test_ad_scan_guid_account_state_and_nested_groups(samba_ad, ad_people):
    dns = ad_people["dns"]
    result = scan(
        samba_ad, group_dns=[ad_people["outer"], f"CN=Nope,{samba_ad.groups_dn}"]
    )
    assert result.complete, result.errors
    by_login = {login_of(e): e for e in result.entries.values()}
    assert set(by_login) >= {f"ad{n}" for n in range(1, 9)} | {"sales1"}
    # objectGUID bytes → the same canonical text the admin side computes with
    # uuid.UUID(bytes_le=…)
    assert by_login["ad1"].anchor == samba_ad.anchor_of(dns["ad1"])
    assert by_login["ad3"].disabled and by_login["ad3"].disabled_reason == "disabled"
    assert by_login["ad4"].disabled and by_login["ad4"].disabled_reason == "expired"
    assert not by_login["ad5"].disabled
    outer = normalize_dn(ad_people["outer"])
    assert sorted(login for login, e in by_login.items() if outer in e.groups) == [
        "ad1",
        "ad2",
        "sales1",
    ]
    assert result.missing_groups == (f"CN=Nope,{samba_ad.groups_dn}",)
    assert result.watermark.kind == "ad" and result.watermark.usn > 0
    assert result.watermark.server.startswith("CN=NTDS Settings")

    records = [
        LinkedRecord(by_login[x].anchor, user_id=i, values={"user.login": x})
        for i, x in enumerate(["ad3", "ad4", "ad5"])
    ]
    plan = build_plan(
        result.entries,
        records,
        SyncSettings(field_mappings=(FieldMapping("sAMAccountName", "user.login"),)),
    )
    assert sorted((a.anchor, a.reason) for a in plan.archives) == sorted(
        [(by_login["ad3"].anchor, "disabled"), (by_login["ad4"].anchor, "expired")]
    )


def test_ad_transport_security(samba_ad, ad_people):
    with DirectoryReader(
        ldap_config(samba_ad, servers=[samba_ad.starttls_uri])
    ) as reader:
        report = reader.test_connection()
    assert report.ok and report.security == "starttls" and report.match_count >= 9
    with DirectoryReader(ldap_config(samba_ad, servers=[samba_ad.uri])) as reader:
        report = reader.test_connection()  # AD refuses simple binds without TLS
    assert not report.ok and "strongerAuthRequired" in report.error
    with DirectoryReader(
        ldap_config(samba_ad, ca_file=samba_ad.wrong_ca_file)
    ) as reader:
        report = reader.test_connection()
    assert not report.ok and "certificate" in report.error


def test_ad_delta_by_usn_and_escalation_on_group_change(samba_ad, ad_people):
    dns = ad_people["dns"]
    cfg = ldap_config(samba_ad, group_dns=[ad_people["outer"]])
    with DirectoryReader(cfg) as reader:
        full = reader.full_scan()
        samba_ad.modify(dns["ad5"], ipPhone="3999")
        delta = reader.delta_scan(full.watermark.to_json())
        assert delta.mode == "delta" and delta.complete
        assert [login_of(e) for e in delta.entries.values()] == ["ad5"]
        assert delta.entries[samba_ad.anchor_of(dns["ad5"])].get("ipPhone") == "3999"
        assert delta.watermark.usn > full.watermark.usn
        # nested: adding ad6 to the inner group changes no user attribute, only the
        # group
        samba_ad.add_member(ad_people["inner"], dns["ad6"])
        escalated = reader.delta_scan(delta.watermark)
        assert escalated.mode == "full" and "pbx-inner" in escalated.escalated
        ad6 = escalated.entries[samba_ad.anchor_of(dns["ad6"])]
        assert normalize_dn(ad_people["outer"]) in ad6.groups
    # a watermark from another DC: whenChanged (replicated) instead of the DC-local
    # uSNChanged
    exact = ldap_config(samba_ad, group_dns=[ad_people["outer"]], clock_skew=0)
    time.sleep(1.1)  # whenChanged has one-second resolution
    mark = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%SZ")
    samba_ad.modify(dns["ad6"], ipPhone="3666")
    foreign = Watermark(
        "ad", mark, 1, "CN=NTDS Settings,CN=OTHER-DC", exact.scope_fingerprint()
    )
    with DirectoryReader(exact) as reader:
        by_time = reader.delta_scan(foreign)
    assert by_time.mode == "delta" and by_time.complete, by_time.escalated
    assert [login_of(e) for e in by_time.entries.values()] == ["ad6"]


def test_ad_departure_confirmation(samba_ad, ad_people):
    dns = ad_people["dns"]
    gone = samba_ad.anchor_of(dns["ad7"])
    samba_ad.delete(dns["ad7"])
    moved = samba_ad.anchor_of(dns["ad8"])
    samba_ad.move(
        dns["ad8"], samba_ad.base_dn.replace("DC=example", "CN=Users,DC=example")
    )
    present = samba_ad.anchor_of(dns["ad1"])
    disabled = samba_ad.anchor_of(dns["ad3"])
    with DirectoryReader(ldap_config(samba_ad)) as reader:
        answer = reader.confirm_departures([gone, moved, present, disabled])
        assert reader.lookup(gone) is None
        assert reader.lookup(moved).dn.startswith("CN=ad8,CN=Users")
    assert answer == {
        gone: "absent",
        moved: "out_of_scope",
        present: "present",
        disabled: "disabled",
    }
