"""Mango's rules, written once in mango_office.rules, and their one deliberate copy.

The simulator keeps its own copy of the SIP login (3121) and password (3120)
rules so that it judges the client as Mango would; these tests make sure the two
copies never drift apart, and that the client and the planner apply the one
shared rule."""

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mango_office import calls, client, rules
from mango_office.directory import (
    generate_sip_password,
    is_valid_mango_password,
    is_valid_sip_login,
    sip_login_for,
)
from mango_office.simulator import api as sim_api

# Logins and passwords near the rules' edges: short, Latin, digits, Cyrillic,
# punctuation Mango accepts and refuses.
TEXT = st.text(
    alphabet=st.sampled_from("aZz09_.-@ яЯ٣²"),
    max_size=10,
)


@given(TEXT)
def test_sip_login_rule_is_the_simulators(login):
    assert rules.is_valid_sip_login(login) == sim_api.sip_login_ok(login)


@given(TEXT)
def test_password_rule_is_the_simulators(password):
    try:
        sim_api.check_password(password)
        simulator_accepts = True
    except sim_api.ApiError as error:
        assert error.code == 3120
        simulator_accepts = False
    assert rules.is_valid_mango_password(password) == simulator_accepts


@given(TEXT)
def test_client_refuses_exactly_the_logins_mango_refuses(login):
    problem = rules.sip_login_problem(login)
    if problem is None:
        client._check_sip_login(login)
    else:
        with pytest.raises(ValueError, match="SIP login"):
            client._check_sip_login(login)


@given(TEXT.filter(bool))
def test_client_refuses_exactly_the_passwords_mango_refuses(password):
    if rules.is_valid_mango_password(password):
        client._check_password(password)
    else:
        with pytest.raises(ValueError, match="at least 8 characters"):
            client._check_password(password)


def test_the_directory_applies_the_shared_rules():
    assert is_valid_sip_login is rules.is_valid_sip_login
    assert is_valid_mango_password is rules.is_valid_mango_password
    for _i in range(50):
        assert rules.is_valid_mango_password(generate_sip_password())
    for login in ("Иванов", "42", "ab", "EXAMPLE\\jdoe", "пётр.щукин"):
        assert rules.is_valid_sip_login(sip_login_for(login, "201"))


@pytest.mark.parametrize(
    ("login", "problem"),
    [
        ("abcd", None),
        ("1abc", None),
        ("0001", None),
        ("1234", "must start with a letter"),
        ("abc", "4+ Latin letters"),
        ("ab c", "4+ Latin letters"),
        ("_abc", "must start with a letter"),
        ("фыва", "4+ Latin letters"),
    ],
)
def test_sip_login_problem_says_why(login, problem):
    said = rules.sip_login_problem(login)
    if problem is None:
        assert said is None
    else:
        assert problem in said


def test_moscow_and_finished_statuses_have_one_definition():
    assert client.MOSCOW is rules.MOSCOW
    assert rules.MOSCOW.utcoffset(None) == datetime.timedelta(hours=3)
    call = calls.Call(entry_id="E")
    for status in ("ringing", "in_progress", *rules.FINISHED_STATUSES):
        call.status = status
        assert call.finished == (status in rules.FINISHED_STATUSES)
