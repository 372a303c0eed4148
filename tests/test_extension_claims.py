"""Two people the directory gives the same extension (AD ipPhone): who keeps it, how
it is reported, and that neither the read order nor the paging decides it."""

import random
import time

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_directory_ldap import ldap_config
from test_directory_plan import NOW, PBX, guid, linked, person, plan, settings

from mango_office import directory as core
from mango_office.directory import (
    DirectoryReader,
    ExtensionPolicy,
    FieldMapping,
    OdooUser,
    PagedPlanner,
    PbxUser,
    generalized_time_key,
)
from mango_office.testing import ldap_servers

CFG = settings(pbx=PBX)  # ipPhone → extension, else the range 500-599


def created(second):
    return f"202401011200{second:02d}.0Z"


def conflicts(p):
    """{loser anchor: (extension, winner anchor, why)} of the plan's reports."""
    return {
        h.anchor: (
            h.details["extension"],
            (h.details.get("kept_by") or {}).get("anchor"),
            h.details["why"],
        )
        for h in p.held
        if h.reason == "extension_conflict"
    }


def extensions(p, records=()):
    """Everybody's extension once the plan is applied."""
    out = {r.anchor: r.values.get("extension") for r in records}
    out.update({c.anchor: c.extension for c in p.creates})
    for update in p.updates:
        for change in update.changes:
            if change.target == "extension":
                out[update.anchor] = change.new
    return out


def test_the_holder_keeps_it_and_the_newcomer_is_named_on_every_run():
    # Anna holds 201 (Odoo and PBX); Zoe's new entry says 201 too
    anna = linked(1, pbx_user_id="61", values={"pbx.extension": "201"})
    pbx = [PbxUser("61", extension="201", name="User 1")]
    zoe = person(9, ipPhone="201", displayName="Zoe Dupont")
    first = plan([person(1), zoe], [anna], cfg=CFG, pbx_users=pbx)
    assert extensions(first, [anna]) == {guid(1): "201", guid(9): "500"}
    assert conflicts(first) == {guid(9): ("201", guid(1), "holder")}
    (held,) = first.held
    assert held.action == "extension"
    assert held.details["person"]["name"] == "Zoe Dupont"
    assert held.details["kept_by"]["login"] == "user1"
    assert held.details["kept_by"]["dn"] == "CN=user1,OU=Staff,DC=example,DC=test"
    assert held.details["got"] == "500"
    assert "User 1 (user1)" in held.message and "Zoe Dupont" in held.message
    # no PBX operation touches Anna's number; Zoe gets her own PBX user
    assert [
        (op.op, op.anchor, op.payload["extension"])
        for op in first.pbx
        if "extension" in op.payload
    ] == [("member_create", guid(9), "500")]

    # the next run: Zoe is linked with 500; the same report, nothing to change
    zoe_linked = linked(9, pbx_user_id="69", values={"extension": "500"})
    pbx.append(PbxUser("69", extension="500", name="Zoe Dupont", sip_logins=("z",)))
    again = plan([person(1), zoe], [anna, zoe_linked], cfg=CFG, pbx_users=pbx, now=NOW)
    assert conflicts(again) == {guid(9): ("201", guid(1), "holder")}
    assert {h.reason for h in again.held} == {"extension_conflict"}
    assert not [op for op in again.pbx if "extension" in op.payload]
    assert "extension" not in {c.target for u in again.updates for c in u.changes}

    # corrected in the directory: no report, Zoe takes her number
    fixed = plan(
        [person(1), person(9, ipPhone="209", displayName="Zoe Dupont")],
        [anna, zoe_linked],
        cfg=CFG,
        pbx_users=pbx,
    )
    assert not fixed.held
    assert extensions(fixed, [anna, zoe_linked])[guid(9)] == "209"


def test_an_unlinked_pbx_user_goes_to_the_person_with_its_e_mail():
    pbx = [PbxUser("77", extension="201", name="Someone", email="user2@example.test")]
    entries = [person(1, ipPhone="201"), person(2, ipPhone="201")]
    p = plan(entries, [], cfg=CFG, pbx_users=pbx)
    links = [(op.anchor, op.pbx_user_id) for op in p.pbx if op.op == "link"]
    assert links == [(guid(2), "77")]  # not guid(1), first by GUID and by read order
    assert extensions(p) == {guid(1): "500", guid(2): "201"}
    assert conflicts(p) == {guid(1): ("201", guid(2), "pbx_user")}


def test_nobody_holds_it_the_entry_created_first_keeps_it_then_the_lower_guid():
    late, early = created(30), created(10)
    entries = [person(1, ipPhone="201", whenCreated=late), person(2, ipPhone="201")]
    entries[1] = person(2, ipPhone="201", whenCreated=early)
    p = plan(entries, [], cfg=CFG)
    assert extensions(p)[guid(2)] == "201"
    assert conflicts(p) == {guid(1): ("201", guid(2), "created_first")}
    # OpenLDAP's createTimestamp, and the same second: the lower GUID
    same = [person(n, ipPhone="201", createTimestamp=created(10)) for n in (3, 1, 2)]
    p = plan(same, [], cfg=CFG)
    assert extensions(p)[guid(1)] == "201"
    assert conflicts(p) == {
        guid(2): ("201", guid(1), "guid_order"),
        guid(3): ("201", guid(1), "guid_order"),
    }
    assert generalized_time_key("20240101150000+0300") == generalized_time_key(
        "20240101120000Z"
    )


def test_a_number_held_outside_the_directory_goes_to_none_of_them():
    odoo = [OdooUser(50, "local.person", extension="201")]
    p = plan([person(1, ipPhone="201"), person(2, ipPhone="201")], [], odoo_users=odoo)
    assert extensions(p) == {guid(1): "500", guid(2): "501"}
    assert conflicts(p) == {
        guid(1): ("201", None, "held_elsewhere"),
        guid(2): ("201", None, "held_elsewhere"),
    }
    held = next(h for h in p.held if h.anchor == guid(1))
    assert held.details["holders"] == [
        {"kind": "odoo_user", "id": 50, "login": "local.person"}
    ]
    assert [o["anchor"] for o in held.details["others"]] == [guid(2)]
    # a PBX group's number: named as the group
    p = plan([person(1, ipPhone="900")], [], reserved_extensions={"900": "Sales (9)"})
    (held,) = p.held
    assert held.details["holders"] == [{"kind": "pbx_group", "label": "Sales (9)"}]
    assert "PBX group Sales (9)" in held.message


def test_the_attribute_only_policy_leaves_the_loser_without_a_number():
    cfg = settings(extension=ExtensionPolicy("attribute", 500, 599), pbx=PBX)
    entries = [person(1, ipPhone="201"), person(2, ipPhone="201")]
    p = plan(entries, [], cfg=cfg)
    assert extensions(p) == {guid(1): "201", guid(2): None}
    assert conflicts(p) == {guid(2): ("201", guid(1), "guid_order")}
    # reported once, as the conflict: no "no extension" hold on top
    assert [(h.anchor, h.reason) for h in p.held] == [(guid(2), "extension_conflict")]
    assert [op.anchor for op in p.pbx if op.op == "member_create"] == [guid(1)]


def test_a_range_never_hands_out_a_number_a_later_page_asks_for():
    cfg = settings(extension=ExtensionPolicy("attribute_or_range", 200, 299), pbx=PBX)
    first_page = [person(1, ipPhone=None)]
    later_page = [person(2, ipPhone="200")]
    claims = core.collect_claims(cfg, [first_page, later_page])
    planner = PagedPlanner(cfg, now=NOW, claims=claims)
    one = planner.plan_page(first_page)
    two = planner.plan_page(later_page)
    assert [c.extension for c in one.creates] == ["201"]
    assert [c.extension for c in two.creates] == ["200"]
    assert not one.held and not two.held


def test_under_create_only_a_linked_persons_attribute_is_no_claim():
    cfg = settings(
        extension=ExtensionPolicy("attribute_or_range", 500, 599, rule="create_only"),
        pbx=PBX,
    )
    # user1 keeps 300 whatever the directory says; user2 may have 201
    records = [linked(1, values={"extension": "300"})]
    p = plan([person(1, ipPhone="201"), person(2, ipPhone="201")], records, cfg=cfg)
    assert extensions(p, records) == {guid(1): "300", guid(2): "201"}
    assert not p.held


# ------------------------------------------------------------------------------------
# properties: any order of reading, any paging, the same outcome
# ------------------------------------------------------------------------------------

NUMBERS = ("201", "202", "203")
people = st.lists(
    st.tuples(
        st.integers(1, 30),  # identity
        st.sampled_from((None, *NUMBERS)),  # ipPhone
        st.sampled_from((None, 10, 10, 20, 30)),  # whenCreated second (ties)
        st.sampled_from((None, "none", *NUMBERS, "555")),  # linked: number held
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda t: t[0],
)
pbx_strangers = st.lists(
    st.tuples(st.sampled_from(NUMBERS), st.integers(1, 30)), max_size=3
)


def directory_of(drawn, strangers):
    entries, records, pbx = [], [], []
    for n, phone, second, held in drawn:
        attrs = {"ipPhone": phone}
        if second is not None:
            attrs["whenCreated"] = created(second)
        entries.append(person(n, **attrs))
        if held is not None:
            records.append(
                linked(n, values={"extension": None if held == "none" else held})
            )
    taken = {r.values.get("extension") for r in records}
    for number, email_of in strangers:
        if number not in taken:  # an unlinked PBX user, someone's or nobody's
            pbx.append(
                PbxUser(
                    f"p{number}", extension=number, email=f"user{email_of}@example.test"
                )
            )
            taken.add(number)
    return entries, records, pbx


def outcome(p, records):
    numbers = extensions(p, records)
    return (
        sorted((a, e) for a, e in numbers.items() if e in NUMBERS),
        sorted(conflicts(p).items()),
        sorted((op.anchor, op.pbx_user_id) for op in p.pbx if op.op == "link"),
    )


def paged(entries, records, pbx, cuts):
    by_anchor = {r.anchor: r for r in records}
    planner = PagedPlanner(
        CFG,
        linked=iter(records),
        pbx_users=pbx,
        now=NOW,
        password_factory=lambda: "Secret123Pass",
        claims=core.collect_claims(CFG, entries),
    )
    bounds = sorted({c % (len(entries) + 1) for c in cuts} | {0, len(entries)})
    merged = core.Plan()
    for start, end in zip(bounds, bounds[1:], strict=False):
        page = entries[start:end]
        part = planner.plan_page(
            page, [by_anchor[e.anchor] for e in page if e.anchor in by_anchor]
        )
        merged.creates += part.creates
        merged.updates += part.updates
        merged.pbx += part.pbx
        merged.held += part.held
    final = planner.finish(
        records, complete=True, active_linked=len(records), confirmations={}
    )
    merged.held += final.held
    return merged


@hsettings(max_examples=300, deadline=None)
@given(
    drawn=people,
    strangers=pbx_strangers,
    seed=st.integers(0, 1000),
    cuts=st.lists(st.integers(0, 12), max_size=4),
)
def test_who_keeps_a_number_never_depends_on_the_read_order(
    drawn, strangers, seed, cuts
):
    entries, records, pbx = directory_of(drawn, strangers)
    reference = plan(entries, records, cfg=CFG, pbx_users=pbx)
    expected = outcome(reference, records)
    shuffled = entries[:]
    random.Random(seed).shuffle(shuffled)
    again = plan(shuffled, records[::-1], cfg=CFG, pbx_users=pbx)
    assert outcome(again, records) == expected
    # page by page, in another order and with other page breaks
    assert outcome(paged(shuffled, records, pbx, cuts), records) == expected

    # nobody shares a number the directory asks for, and the rule chose each
    # winner
    def order(entry):
        stamp = entry.get("whenCreated")
        return (stamp is None, generalized_time_key(stamp) or "", entry.anchor)

    got_by_number = {}
    for anchor, number in expected[0]:
        got_by_number.setdefault(number, set()).add(anchor)
    claimants = {}
    for entry in entries:
        if entry.get("ipPhone"):
            claimants.setdefault(entry.get("ipPhone"), []).append(entry)
    pbx_by = {u.extension: u for u in pbx}
    for number, group in claimants.items():
        got = got_by_number.get(number, set())
        anchors = {e.anchor for e in group}
        holders = {r.anchor for r in records if r.values.get("extension") == number}
        if holders - anchors:
            # someone the directory gives another number (or none) holds it:
            # none of those it asks it for gets it this run, all are told
            assert not got & anchors
            assert set(conflicts(reference)) >= anchors
            continue
        candidates = [e for e in group if e.anchor in holders]
        if not candidates and number in pbx_by:
            email = pbx_by[number].email
            owners = [e for e in group if e.get("mail") == email]
            candidates = owners if len(owners) == 1 else []
        winner = min(candidates or group, key=order)
        assert got == {winner.anchor}
        assert set(conflicts(reference)) >= anchors - {winner.anchor}


# ------------------------------------------------------------------------------------
# reading the claims from real servers
# ------------------------------------------------------------------------------------

slapd = ldap_servers.slapd
samba_ad = ldap_servers.samba_ad


def _own_ou(server, name):
    """An OU of this test's own people (the servers are shared by the session)."""
    rdn = "OU" if server.kind == "ad" else "ou"
    dn = f"{rdn}={name},{server.base_dn}"
    server._with_admin(lambda c: c.add(dn, ["top", "organizationalUnit"], {"ou": name}))
    return dn


def _claims_of(server, ou, cfg):
    extension_attrs, others = cfg.claim_attributes()
    config = ldap_config(server, bases=[ou])
    with DirectoryReader(config) as reader:
        pages = list(reader.claim_pages(extension_attrs, others))
    return pages, core.collect_claims(cfg, pages)


def test_claims_read_from_active_directory(samba_ad):
    ou = _own_ou(samba_ad, "Claims")
    first = samba_ad.add_user("clm1", parent=ou, ipPhone="701", mail="clm1@x.test")
    time.sleep(1.1)  # whenCreated counts seconds
    second = samba_ad.add_user("clm2", parent=ou, ipPhone="701", displayName="Two")
    samba_ad.add_user("clm3", parent=ou, displayName="No phone")
    off = samba_ad.add_user("clm4", parent=ou, ipPhone="701")
    samba_ad.disable_user(off)
    cfg = settings(
        field_mappings=(
            FieldMapping("sAMAccountName", "user.login", ("first", "trim", "lower")),
            FieldMapping("displayName", "user.name"),
            FieldMapping("mail", "user.email", ("first", "lower")),
            FieldMapping("ipPhone", "extension", ("first", "digits")),
        ),
        pbx=PBX,
    )
    pages, claims = _claims_of(samba_ad, ou, cfg)
    entries = [e for page in pages for e in page]
    # only people with an ipPhone, with what names them and when they came
    assert sorted(e.get("sAMAccountName") for e in entries) == ["clm1", "clm2", "clm4"]
    assert all(e.get("whenCreated") for e in entries)
    assert "telephonenumber" not in entries[0].attributes
    by_login = {c.login: c for c in claims}
    assert sorted(by_login) == ["clm1", "clm2"]  # the disabled account asks nothing
    assert by_login["clm1"].anchor == samba_ad.anchor_of(first)
    assert by_login["clm1"].email == "clm1@x.test"
    assert by_login["clm2"].name == "Two" and by_login["clm2"].dn == second
    assert by_login["clm1"].created < by_login["clm2"].created
    p = plan(
        [], [], cfg=cfg, claims=claims, mode="delta"
    )  # a delta read: the claims of the whole scope still decide
    assert conflicts(p) == {
        by_login["clm2"].anchor: ("701", by_login["clm1"].anchor, "created_first")
    }


def test_claims_read_from_openldap(slapd):
    ou = _own_ou(slapd, "claims")
    slapd.add_user("clmx", parent=ou, employeeNumber="7001", mail="clmx@x.test")
    time.sleep(1.1)  # createTimestamp counts seconds
    slapd.add_user("clmy", parent=ou, employeeNumber="7001")
    slapd.add_user("clmz", parent=ou)
    cfg = settings(
        field_mappings=(
            FieldMapping("uid", "user.login"),
            FieldMapping("cn", "user.name"),
            FieldMapping("employeeNumber", "extension", ("first", "digits")),
        ),
        pbx=PBX,
    )
    pages, claims = _claims_of(slapd, ou, cfg)
    assert all(e.get("createTimestamp") for page in pages for e in page)
    assert [c.login for c in sorted(claims, key=lambda c: c.order)] == ["clmx", "clmy"]
