"""Planning and reading a directory page by page (what a sync does to keep its memory
flat): the plans of the pages together say what one plan over the whole read says,
and departures still wait for the complete read."""

import pytest
from test_directory_ldap import ldap_config, login_of
from test_directory_plan import NOW, OPS, SUP, guid, linked, person, settings

from mango_office.directory import (
    DeletionPolicy,
    DirectoryReader,
    ExtensionPolicy,
    PagedPlanner,
    PbxPolicy,
    build_plan,
    normalize_dn,
)
from mango_office.testing import ldap_servers

slapd = ldap_servers.slapd

PBX = PbxPolicy(enabled=True, sip_domain="example.mangosip.ru", default_access_role="3")


def paged_plans(pages, records=(), cfg=None, *, complete=True, confirmations=None):
    """(page plans, departures plan) of a PagedPlanner fed ``pages`` in order."""
    records = list(records)
    planner = PagedPlanner(
        cfg or settings(),
        linked=iter(records),
        now=NOW,
        password_factory=lambda: "Secret123Pass",
    )
    by_anchor = {r.anchor: r for r in records}
    plans = [
        planner.plan_page(
            page, [by_anchor[e.anchor] for e in page if e.anchor in by_anchor]
        )
        for page in pages
    ]
    final = planner.finish(
        records,
        complete=complete,
        active_linked=sum(1 for r in records if r.active),
        confirmations=confirmations,
    )
    return plans, final


def merged(plans):
    """Everything the plans say, per anchor, order aside."""
    out = {}
    for p in plans:
        for name in ("creates", "updates", "reactivations", "archives", "role_changes"):
            for item in getattr(p, name):
                out.setdefault(name, {})[item.anchor] = item
        for op in p.pbx:
            out.setdefault("pbx", {})[op.key] = op
        for held in p.held:
            out.setdefault("held", set()).add((held.anchor, held.action, held.reason))
        out.setdefault("skipped", set()).update(p.skipped)
        out["unchanged"] = out.get("unchanged", 0) + p.unchanged
        out.setdefault("needs_lookup", set()).update(p.needs_lookup)
    return out


def directory_and_records():
    """A directory of 12 people (some linked and changed, one disabled, one new in a
    mapped group) and 14 linked records (two of them gone from the directory)."""
    entries = [person(n) for n in range(1, 9)]
    entries.append(person(9, groups=[normalize_dn(OPS)]))
    entries.append(person(10, groups=[normalize_dn(SUP)], displayName="New Name"))
    entries.append(person(11, uac=514))  # disabled in AD
    entries.append(person(12, telephoneNumber="+7 495 100-00-99"))
    records = [linked(n) for n in range(5, 15) if n != 9]
    records.append(linked(3, active=False, archived_by_sync=True))
    return entries, records


def test_pages_plan_what_one_plan_says():
    entries, records = directory_and_records()
    cfg = settings(pbx=PBX, deletion=DeletionPolicy(max_count=None, max_percent=None))
    whole = build_plan(
        entries,
        records,
        cfg,
        now=NOW,
        password_factory=lambda: "Secret123Pass",
        confirmations={guid(13): "absent", guid(14): "out_of_scope"},
    )
    pages = [entries[i : i + 5] for i in range(0, len(entries), 5)]
    plans, final = paged_plans(
        pages,
        records,
        cfg,
        confirmations={guid(13): "absent", guid(14): "out_of_scope"},
    )
    assert len(plans) == 3
    assert merged([*plans, final]) == merged([whole])
    # departures are only in the last plan, after the read
    assert not any(p.archives for p in plans)
    assert sorted((a.anchor, a.reason) for a in final.archives) == [
        (guid(11), "disabled"),
        (guid(13), "absent"),
        (guid(14), "out_of_scope"),
    ]


def test_departures_wait_for_the_complete_read():
    entries, records = directory_and_records()
    # Person 12 is only on the last page: not a departure after the first pages.
    pages = [entries[:4], entries[4:8], entries[8:]]
    cfg = settings(deletion=DeletionPolicy(max_count=None, max_percent=None))
    plans, incomplete = paged_plans(pages, records, cfg, complete=False)
    assert not incomplete.archives
    assert {h.anchor for h in incomplete.held if h.reason == "incomplete_scan"} == {
        guid(11),
        guid(13),
        guid(14),
    }
    assert not incomplete.needs_lookup

    plans, unconfirmed = paged_plans(pages, records, cfg)
    # the directory itself says 11 is disabled; absence needs the GUID lookups
    assert [(a.anchor, a.reason) for a in unconfirmed.archives] == [
        (guid(11), "disabled")
    ]
    assert sorted(unconfirmed.needs_lookup) == [guid(13), guid(14)]  # never 12

    # a read that stopped after two pages is incomplete: whoever was on the third
    # page is not taken for gone
    _plans, cut = paged_plans(pages[:2], records, cfg, complete=False)
    assert not cut.archives and not cut.needs_lookup


def test_finish_can_be_asked_again_with_the_confirmations():
    entries, records = directory_and_records()
    cfg = settings(deletion=DeletionPolicy(max_count=None, max_percent=None))
    planner = PagedPlanner(cfg, linked=records, now=NOW)
    by_anchor = {r.anchor: r for r in records}
    planner.plan_page(entries, [by_anchor[a] for a in by_anchor])
    first = planner.finish(records, complete=True, active_linked=11)
    assert sorted(first.needs_lookup) == [guid(13), guid(14)]
    second = planner.finish(
        records,
        complete=True,
        active_linked=11,
        confirmations={guid(13): "present", guid(14): "absent"},
    )
    assert sorted(a.anchor for a in second.archives) == [guid(11), guid(14)]
    assert ("still_present" in {h.reason for h in second.held}) and not (
        second.needs_lookup
    )


def test_threshold_counts_the_whole_run_not_a_page():
    entries = [person(n) for n in range(1, 11)]
    records = [linked(n) for n in range(1, 11)]
    cfg = settings(deletion=DeletionPolicy(max_count=2))
    remaining = entries[3:]  # three people left
    pages = [remaining[i : i + 2] for i in range(0, len(remaining), 2)]
    _plans, final = paged_plans(
        pages,
        records,
        cfg,
        confirmations={guid(n): "absent" for n in (1, 2, 3)},
    )
    assert not final.archives and final.requires_confirmation
    assert {h.anchor for h in final.held if h.reason == "threshold"} == {
        guid(1),
        guid(2),
        guid(3),
    }


def test_registries_span_pages():
    # The login and extension of a linked person on a later page are taken already.
    later = linked(40, login="taken", values={"extension": "500"})
    newcomer = person(41, login="taken", ipPhone=None)
    fresh = [person(n, ipPhone=None) for n in (42, 43)]
    cfg = settings(extension=ExtensionPolicy("range", 500, 599))
    plans, _final = paged_plans([[newcomer], fresh[:1], fresh[1:]], [later], cfg)
    assert ("login_conflict" in {h.reason for h in plans[0].held}) and not plans[
        0
    ].creates
    numbers = [c.extension for p in plans for c in p.creates]
    assert numbers == ["501", "502"]  # 500 is the linked person's, numbers not reused


def test_a_person_read_twice_is_planned_once():
    entries = [person(1), person(2)]
    plans, _final = paged_plans([entries, [person(2)]])
    assert [c.anchor for c in plans[0].creates] == [guid(1), guid(2)]
    assert not plans[1].creates and not plans[1].held


def test_missing_groups_arrive_with_a_page():
    role = "mango_telephony.group_mango_user"
    record = linked(1, roles={role}, sync_roles={role})
    planner = PagedPlanner(settings(), linked=[record], now=NOW)
    plan = planner.plan_page([person(1)], [record], missing_groups=(OPS,))
    assert not plan.role_changes
    assert [h.reason for h in plan.held] == ["missing_group"]


# --------------------------------------------------------------------------------------
# the reader, page by page
# --------------------------------------------------------------------------------------


def test_paged_scan_hands_out_complete_pages(slapd):
    operators = f"cn=pbx-operators,{slapd.groups_dn}"
    cfg = ldap_config(slapd, page_size=40, group_dns=[operators])
    with DirectoryReader(cfg) as reader:
        whole = reader.full_scan()
        scan = reader.paged_scan("full")
        assert scan.result.count == 0  # nothing read before the iteration
        sizes, entries = [], {}
        for page in scan:
            # membership is known before the first page, not after the last
            assert scan.result.missing_groups == ()
            sizes.append(len(page))
            entries.update((e.anchor, e) for e in page)
    result = scan.result
    assert result.complete and result.mode == "full" and result.watermark
    assert not result.entries  # handed out, not kept
    assert result.count == slapd.sample_users == sum(sizes)
    assert max(sizes) == 40 and len(sizes) == result.pages
    assert set(entries) == set(whole.entries)
    for anchor, entry in entries.items():
        assert entry.groups == whole.entries[anchor].groups
    key = normalize_dn(operators)
    assert "user0001" in {login_of(e) for e in entries.values() if key in e.groups}


def test_paged_scan_outage_ends_incomplete(slapd):
    with DirectoryReader(ldap_config(slapd, page_size=50)) as reader:
        scan = reader.paged_scan("full")
        pages = 0
        try:
            for _page in scan:
                pages += 1
                if pages == 1:
                    slapd.pause()
        finally:
            slapd.resume()
    assert pages == 1
    assert not scan.result.complete and scan.result.errors
    assert scan.result.watermark is None


def test_paged_delta_without_watermark_escalates_before_the_first_page(slapd):
    with DirectoryReader(ldap_config(slapd)) as reader:
        scan = reader.paged_scan("delta", None)
        first = next(iter(scan))
        assert first and scan.result.mode == "full"
        assert scan.result.escalated == "no watermark yet"
        assert scan.result.escalation == "no_watermark"
        rest = sum(len(page) for page in scan)
    assert len(first) + rest == slapd.sample_users and scan.result.complete


@pytest.mark.parametrize("mode", ["sideways"])
def test_paged_scan_mode_is_checked(slapd, mode):
    with DirectoryReader(ldap_config(slapd)) as reader, pytest.raises(ValueError):
        reader.paged_scan(mode)
