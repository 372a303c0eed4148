"""The simulator's default PBX is one a directory sync can be tried on (groups away
from staff numbers, a tariff with room for the sample directory), and its help says
how to describe a PBX of your own."""

import json

import requests

from mango_office import signing
from mango_office.simulator import DEFAULT_SEED, run_simulator
from mango_office.simulator.__main__ import build_parser
from mango_office.simulator.state import PbxState

KEY, SALT = "seedkey", "seedsalt"
SAMPLE_DIRECTORY = 250  # scripts/ldap/sample_directory.py's default


def post(sim, method, payload):
    form = signing.build_form(KEY, SALT, payload)
    return requests.post(f"{sim.base_url}/{method}", data=form, timeout=10).json()


def test_default_groups_are_away_from_the_numbers_a_directory_hands_out():
    staff = {u["extension"] for u in DEFAULT_SEED["users"]}
    groups = {g["extension"] for g in DEFAULT_SEED["groups"]}
    assert groups == {"900", "901"}
    # a range 100-999 filled from the bottom for the sample directory
    ranged = [str(n) for n in range(100, 1000) if str(n) not in staff]
    assert not groups & set(ranged[:SAMPLE_DIRECTORY])
    # and the ipPhone plans of the tests and the drill (2xx-6xx)
    assert not groups & {str(n) for n in range(200, 700)}
    assert DEFAULT_SEED["employee_limit"] >= SAMPLE_DIRECTORY + len(staff)


def test_the_sample_directory_fits_on_the_default_pbx():
    with run_simulator(KEY, SALT, rate_limits=False) as sim:
        numbers = [str(n) for n in range(105, 105 + SAMPLE_DIRECTORY)]
        results = [
            post(
                sim,
                "member/create",
                {"name": f"Person {n}", "access_role_id": "3", "extension": n},
            )["result"]
            for n in numbers
        ]
        assert results == [1000] * SAMPLE_DIRECTORY
        # the tariff still ends somewhere: Mango's 5228
        sim.state.employee_limit = len(sim.state.users)
        refused = post(
            sim,
            "member/create",
            {"name": "One more", "access_role_id": "3", "extension": "777"},
        )
        assert refused["result"] == 5228


def test_a_dump_of_the_running_pbx_is_a_seed():
    with run_simulator(KEY, SALT) as sim:
        dump = json.loads(json.dumps(sim.state.to_dict()))
    dump["employee_limit"] = 20
    own = PbxState(dump)
    assert own.employee_limit == 20
    assert sorted(u["extension"] for u in own.users.values()) == [
        "101",
        "102",
        "103",
        "104",
    ]
    assert sorted(g["extension"] for g in own.groups.values()) == ["900", "901"]
    assert [g["operators"] for g in own.groups.values()] == [
        [400100101, 400100102, 400100103],
        [400100104],
    ]


def test_help_says_how_to_seed_a_pbx_of_your_own():
    text = build_parser().format_help()
    assert "--seed FILE" in text
    assert "_sim/state > my_pbx.json" in text
    assert "--seed my_pbx.json" in text
    assert "900" in text and "500 employees" in text
