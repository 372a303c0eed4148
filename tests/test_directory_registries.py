"""The planner's cross-page registries: the interface's contract on the in-memory
implementation, and what the planner decides across pages through it (the Odoo suite
runs the same contract and scenario on the database-backed one)."""

import pytest

from mango_office.directory import MemoryRegistries, Registries
from mango_office.testing.registries_contract import (
    check_registries,
    guid,
    paged_outcome,
)


def test_memory_registries_keep_the_contract():
    check_registries(MemoryRegistries())


def test_the_interface_alone_implements_nothing():
    with pytest.raises(NotImplementedError):
        Registries().login_owner("alice")
    with pytest.raises(NotImplementedError):
        Registries().seen_count()


def test_a_registry_that_forgets_between_pages_breaks_the_contract():
    class Forgetful(MemoryRegistries):
        def page_done(self):
            self.__init__()

    with pytest.raises(AssertionError):
        check_registries(Forgetful())


def test_across_pages_the_planner_decides_through_the_registries():
    first, second, third, final = paged_outcome(MemoryRegistries())
    # page 1 claims "shared"; page 3's "Shared" is held, the repeat of person 1 skipped
    assert (guid(1), "shared", "500") in first["creates"]
    assert (guid(9), "create", "login_conflict", None) in third["held"]
    assert guid(9) not in {c[0] for c in third["creates"]}
    assert guid(1) not in {c[0] for c in third["creates"]}
    # 301 was settled before page 1 for the earlier entry, on page 3; the loser is
    # told at the end, with the number the range gave them on page 1
    assert (guid(2), "user2", "501") in first["creates"]
    assert (guid(8), "user8", "301") in third["creates"]
    assert (guid(2), "extension", "extension_conflict", "301") in final["held"]
    # the range never hands out a number someone holds, whatever their page
    numbers = [c[2] for page in (first, second, third) for c in page["creates"]]
    assert len(numbers) == len(set(numbers))
    assert "520" not in numbers and "521" not in numbers and "522" not in numbers
    # an Odoo user outside the directory keeps 401
    assert (guid(5), "user5", "503") in second["creates"]
    assert (guid(5), "extension", "extension_conflict", "401") in final["held"]
    # PBX: p11 is linked by e-mail; user12's SIP login is p99's
    assert ("link", guid(11), "p11", None, "") in third["pbx"]
    sips = {op[1]: op[3] for page in (first, second, third) for op in page["pbx"]}
    assert sips[guid(11)] == "user11"
    assert sips[guid(12)] == "user12506"
    # person 7 left: looked up by GUID at the end, not before
    assert final["held"][-1] == (guid(7), "archive", "awaiting_lookup", None)


def test_the_planner_with_a_forgetful_registry_decides_otherwise():
    """The scenario depends on what crosses pages: without it, page 3 would take
    page 1's login again."""

    class Forgetful(MemoryRegistries):
        def page_done(self):
            self.__init__()

    assert paged_outcome(Forgetful()) != paged_outcome(MemoryRegistries())
