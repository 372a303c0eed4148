"""The webhook boundary: documented shapes and quirks pass, garbage is refused
with a reason, and nothing accepted can break the fold or a database column.

Property-based (hypothesis) where the input space is open: arbitrary JSON values,
arbitrary text and documented events with arbitrary fields swapped in.
"""

import json
import math
import string
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mango_office import event_validation as validation
from mango_office import safe_text
from mango_office.calls import fold
from mango_office.event_validation import (
    CODE_MAX,
    INT32_MAX,
    MAX_DEPTH,
    REASONS,
    TIMESTAMP_MAX,
    EventParseError,
)
from mango_office.events import (
    CallEvent,
    CommandResultEvent,
    PingEvent,
    RecordAddedEvent,
    RecordingEvent,
    SummaryEvent,
    parse_event,
)
from mango_office.testing.webhook_fuzz import (
    CALL_ROUTES,
    ROUTES,
    HostileWebhooks,
    Raw,
    dumps,
)

PATHS = [route for route in ROUTES if route != "ping"]

CALL = {
    "entry_id": "MzQ1Mzc1MzUxMzoxNjE=",
    "call_id": "MToxMDA3MTYxNToxNjE6Nzc2MTY1NjA4OjE=",
    "timestamp": 1513707786,
    "seq": 1,
    "call_state": "Appeared",
    "location": "ivr",
    "from": {"number": "79997356761"},
    "to": {"number": "74994509495", "line_number": "74994509495"},
}
SUMMARY = {
    "entry_id": "232wc3e3w3s222",
    "call_direction": 1,
    "from": {"number": "7800123635242"},
    "to": {"extension": "123", "number": "7800123456789"},
    "line_number": "7800123456789",
    "create_time": 1399906976,
    "forward_time": 1399906978,
    "talk_time": 1399906980,
    "end_time": 1399906990,
    "entry_result": 1,
    "disconnect_reason": 1100,
}


def refused(path, body):
    with pytest.raises(EventParseError) as caught:
        parse_event(path, body)
    error = caught.value
    assert error.reason in REASONS
    return error.reason, error.field


# ---------------------------------------------------------------- the quirks


@pytest.mark.parametrize(
    "change",
    [
        {"seq": "1"},
        {"timestamp": "1513707786"},
        {"timestamp": "1513707786.75"},
        {"timestamp": 1513707786.2},
        {"seq": 1.0},
        {"to": {"extension": 101, "acd_group": 300}},
        {"to": {"extension": "101", "acd_group": ""}},
        {"dct": {"number": "", "type": 0}},
        {"disconnect_reason": "1131", "call_state": "Disconnected"},
        {"callback_initiator": "MissGroupСallCallback", "task_id": "77"},
        {"location": None, "command_id": ""},
        {"from": {"number": "79997356761", "was_transferred": "true"}},
        {"sip_call_id": "a84b4c76e66710@pc33.atlanta.com"},
        {"x_future_field": {"nested": [1, "two", None, {"three": 3.5}]}},
        {"call_state": "CONNECTED"},
    ],
)
def test_documented_quirks_pass(change):
    event = parse_event("events/call", {**CALL, **change})
    assert isinstance(event, CallEvent)
    assert fold([event])[CALL["entry_id"]].entry_id == CALL["entry_id"]


def test_text_quirks_pass():
    body = json.dumps({**CALL, "callback_initiator": "СС"}, ensure_ascii=True)
    assert "\\u0421" in body and ", " in body  # escaped and spaced
    assert parse_event("events/call", "\ufeff" + body).callback_initiator == "CC"
    assert parse_event("events/call", body.encode()).seq == 1


def test_every_documented_kind_passes():
    assert isinstance(parse_event("events/summary", SUMMARY), SummaryEvent)
    recording = parse_event(
        "events/recording",
        '{"recording_id":"r100:777:500:256","recording_state":"Started","seq":1,'
        '"call_id":"100:500:256","entry_id":"232wc3e3w3s222","extension":"1234",'
        '"timestamp":"1399906976","command_id":"cmd.12..."}',
    )
    assert isinstance(recording, RecordingEvent)
    added = parse_event(
        "events/record/added",
        {
            "entry_id": "NTAwOTQxMTAyMg==",
            "product_id": 300022532,
            "user_id": -1,
            "timestamp": 1578664187,
            "recording_id": "MToxMDAwNjA4NTo1MDA5NDExMDIyOjE=",
        },
    )
    assert isinstance(added, RecordAddedEvent) and added.user_id == "-1"
    result = parse_event("result/call/hold/on", '{"command_id":"c1","result":"4101"}')
    assert isinstance(result, CommandResultEvent) and result.result == 4101
    assert parse_event("result/stats", {"key": "k", "request_id": 7}).key == "k"
    dtmf = {
        "seq": 1,
        "dtmf": "12#",
        "timestamp": 1,
        "call_id": "c",
        "entry_id": "e",
        "location": "ivr.2",
        "initiator": "79031234567",
        "from_number": "79031234567",
        "to_number": "74951234567",
        "line_number": "74951234567",
    }
    assert parse_event("events/dtmf", dtmf).kind == "ignored"
    sms = {"command_id": "s1", "timestamp": 1578664187, "reason": "4391"}
    assert parse_event("events/sms", sms).kind == "ignored"
    assert parse_event("events/ab", {"contact_id": 5, "fields": []}).kind == "ignored"
    assert parse_event("events/some/new/kind", {}).documented is False


@pytest.mark.parametrize(
    "body", [None, "", b"", "{}", "not json", "[1,2]", '{"x":"\\u00e9"}', {"a": 1}]
)
def test_ping_takes_any_sane_body(body):
    assert isinstance(parse_event("ping", body), PingEvent)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"entry_id": "ab\x00cd"}, "bad_characters", "entry_id"),
        ({"entry_id": "x\ud800y"}, "bad_characters", "entry_id"),
        ({"call_id": "a\x07b"}, "bad_characters", "call_id"),
        ({"entry_id": "i" * 3000}, "too_long", "entry_id"),
        ({"entry_id": "я" * 65}, "too_long", "entry_id"),  # 130 bytes
        ({"entry_id": 12345}, "wrong_type", "entry_id"),
        ({"entry_id": 1.5}, "wrong_type", "entry_id"),
        ({"entry_id": "   "}, "missing_field", "entry_id"),
        ({"entry_id": None}, "missing_field", "entry_id"),
        ({"seq": None}, "missing_field", "seq"),
        ({"seq": []}, "wrong_type", "seq"),
        ({"seq": {}}, "wrong_type", "seq"),
        ({"seq": True}, "wrong_type", "seq"),
        ({"seq": -1}, "out_of_range", "seq"),
        ({"seq": 2**31}, "out_of_range", "seq"),
        ({"seq": 2**64}, "out_of_range", "seq"),
        ({"seq": 1.5}, "wrong_type", "seq"),
        ({"seq": "two"}, "wrong_type", "seq"),
        ({"timestamp": -1}, "out_of_range", "timestamp"),
        ({"timestamp": 1513707786000}, "out_of_range", "timestamp"),
        ({"timestamp": "-5"}, "out_of_range", "timestamp"),
        ({"timestamp": {}}, "wrong_type", "timestamp"),
        ({"from": None}, "missing_field", "from"),
        ({"from": []}, "wrong_type", "from"),
        ({"from": "79031234567"}, "wrong_type", "from"),
        ({"from": {"number": 79031234567}}, "wrong_type", "from.number"),
        ({"from": {"number": "7" * 300}}, "too_long", "from.number"),
        ({"to": {"extension": "12a"}}, "wrong_type", "to.extension"),
        ({"to": {"extension": -1}}, "out_of_range", "to.extension"),
        ({"to": {"extension": "9" * 40}}, "too_long", "to.extension"),
        ({"call_state": "Ringing"}, "unknown_value", "call_state"),
        ({"disconnect_reason": 10**5}, "out_of_range", "disconnect_reason"),
        ({"dct": {"type": 3}}, "out_of_range", "dct.type"),
        ({"task_id": "abc"}, "wrong_type", "task_id"),
        ({"x_note": "a\x00b"}, "bad_characters", "x_note"),
        ({"x_value": 2**64}, "out_of_range", "x_value"),
        ({"x_value": float("inf")}, "out_of_range", "x_value"),
        ({"x_value": float("nan")}, "out_of_range", "x_value"),
        ({"k\ud800": 1}, "bad_characters", "k\\ud800"),
        ({"k\x00": 1}, "bad_characters", "k\\u0000"),
    ],
)
def test_garbage_is_refused_with_its_reason_and_field(change, reason, field):
    assert refused("events/call", {**CALL, **change}) == (reason, field)
    # The same through the wire: the JSON text of the same object (where
    # Python writes NaN and Infinity, which are no JSON at all).
    non_finite = any(
        isinstance(v, float) and not math.isfinite(v) for v in change.values()
    )
    expected = ("not_json", None) if non_finite else (reason, field)
    assert refused("events/call", dumps({**CALL, **change}, ensure_ascii=True)) == (
        expected
    )


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("events/summary", '{"entry_id":"e"}', "missing_field"),
        ("events/call", '{"entry_id":"e"}', "missing_field"),
        ("events/recording", '{"entry_id":"e"}', "missing_field"),
        ("events/record/added", '{"entry_id":"e"}', "missing_field"),
        ("result/callback", '{"command_id":"c"}', "missing_field"),
        ("result/callback", '{"command_id":"c","result":1e999}', "out_of_range"),
        ("result/callback", '{"command_id":"c","result":NaN}', "not_json"),
        ("result/callback", '{"command_id":"c","result":-Infinity}', "not_json"),
        (
            "result/callback",
            '{"command_id":"c","result":1000,"result":3100}',
            "duplicate_key",
        ),
        ("result/stat", '{"key":"k","key":"k"}', "duplicate_key"),
        ("events/dtmf", '{"seq":1}' + " " * validation.MAX_JSON_CHARS, "too_large"),
        ("events/dtmf", "[" * 2000 + "]" * 2000, "too_deep"),
        ("events/dtmf", '{"a":' + "[" * 2000 + "]" * 2000 + "}", "too_deep"),
        ("events/ab", '{"a":' + "9" * 5000 + "}", "not_json"),
        ("events/ab", '{"a":' + "9" * 400 + "}", "out_of_range"),
        ("events/ab", "[]", "not_object"),
        ("events/ab", "null", "not_object"),
        ("events/ab", "{\x00}", "not_json"),
        ("events/ab", b"\xff\xfe", "not_json"),
        ("events/ab", '{"entry_id":["e"]}', "wrong_type"),
        ("events/ab", '{"command_id":"' + "c" * 200 + '"}', "too_long"),
        ("events/" + "a" * 3000, "{}", "unknown_path"),
        ("events/a\x00", "{}", "unknown_path"),
        ("events/..", "{}", "unknown_path"),
        ("events//call", "{}", "unknown_path"),
        ("result/звонок", "{}", "unknown_path"),
        ("something/else", "{}", "unknown_path"),
        ("ping", "a\x00b", "bad_characters"),
        ("ping", '{"a":1,"a":2}', "duplicate_key"),
        ("ping", '{"a":"\\ud800"}', "bad_characters"),
        ("ping", "[" * 5000, "too_deep"),
    ],
)
def test_bodies_and_paths_refused(path, body, reason):
    assert refused(path, body)[0] == reason


def test_nesting_limit_is_exact_and_never_recurses():
    inside = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert parse_event("events/ab", '{"a":' + inside + "}").kind == "ignored"
    deeper = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert refused("events/ab", '{"a":' + deeper + "}")[0] == "too_deep"
    # Brackets inside strings are text, escaped quotes included.
    quoted = json.dumps('\\"[[[[[[[[[[[[[[[[[[[[[[')
    assert parse_event("events/ab", '{"a":' + quoted + "}").kind == "ignored"
    # A dict built in Python (no text to scan) is bounded by the walker itself.
    value = []
    for _ in range(5000):
        value = [value]
    assert refused("events/ab", {"a": value})[0] == "too_deep"


def test_refusal_field_is_safe_to_store_and_show():
    reason, field = refused("events/ab", {"k\x00\ud800" + "x" * 100: 1})
    assert reason == "bad_characters"
    assert safe_text.problem(field) is None and len(field) <= 40


# ------------------------------------------------- the fuzz fixture agrees


@pytest.mark.parametrize("path", ROUTES)
def test_fuzz_fixture_labels_match_the_boundary(path):
    """The Odoo fuzz test's generator and this boundary agree on what is valid."""
    generator = HostileWebhooks("key", "salt", seed=hash(path) % 1000)
    for case in generator.cases(path, 300):
        if case.note.startswith(("dup_form", "not_a_form")):
            continue  # refused at the form, before the body is read
        if path == "ping":
            continue  # any body is a ping; the fixture's labels do not apply
        if case.valid:
            parse_event(case.path, case.json)
        else:
            with pytest.raises(EventParseError):
                parse_event(case.path, case.json)


# ------------------------------------------------------------------ hypothesis

ANY_CHAR = st.characters(exclude_categories=())  # surrogates, NUL, controls too
HOSTILE_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=30),
    st.sampled_from(["\x00", "\ud800", "x" * 3000, "1e999", "NaN", "-1", "", " "]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(ANY_CHAR, max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KNOWN_FIELDS = sorted(
    {
        "entry_id",
        "call_id",
        "seq",
        "timestamp",
        "call_state",
        "location",
        "from",
        "to",
        "dct",
        "disconnect_reason",
        "command_id",
        "task_id",
        "callback_initiator",
        "call_direction",
        "create_time",
        "talk_time",
        "end_time",
        "entry_result",
        "recording_id",
        "recording_state",
        "completion_code",
        "extension",
        "user_id",
        "product_id",
        "result",
        "key",
        "request_id",
        "reason",
        "dtmf",
    }
)

IDS = st.text(string.ascii_letters + string.digits + "=:+/._-", min_size=1, max_size=60)
NUMBERS = st.one_of(
    st.from_regex(r"7[0-9]{10}", fullmatch=True),
    st.builds(lambda n: f"sip:user{n}@vpbx.mangosip.ru", st.integers(1, 999)),
)
EXTENSIONS = st.one_of(
    st.from_regex(r"[0-9]{2,6}", fullmatch=True), st.integers(10, 999_999)
)
TIMES = st.integers(1_000_000_000, 2_000_000_000)
TIMESTAMPS = st.one_of(TIMES, TIMES.map(str), TIMES.map(lambda t: f"{t}.5"))
COUNTERS = st.one_of(st.integers(0, 10_000), st.integers(0, 10_000).map(str))
CODES = st.one_of(
    st.sampled_from([1000, 1100, 1110, 1131, 4101]), st.just("4101"), st.just(1000.0)
)


def _party(with_extension=True):
    optional = {"number": NUMBERS, "line_number": NUMBERS}
    if with_extension:
        optional["extension"] = EXTENSIONS
        optional["acd_group"] = st.one_of(EXTENSIONS, st.just(""))
    return st.fixed_dictionaries({}, optional=optional)


DOCUMENTED = {
    "events/call": st.fixed_dictionaries(
        {
            "entry_id": IDS,
            "call_id": IDS,
            "timestamp": TIMESTAMPS,
            "seq": COUNTERS,
            "call_state": st.sampled_from(
                ["Appeared", "Connected", "OnHold", "Disconnected", "connected"]
            ),
            "from": _party(),
            "to": _party(),
        },
        optional={
            "location": st.sampled_from(["ivr", "queue", "abonent", "ivr.2"]),
            "disconnect_reason": CODES,
            "command_id": IDS,
            "callback_initiator": st.sampled_from(["API", "MissGroupСallCallback"]),
            "dct": st.fixed_dictionaries(
                {"number": st.just(""), "type": st.integers(0, 2)}
            ),
        },
    ),
    "events/summary": st.fixed_dictionaries(
        {
            "entry_id": IDS,
            "call_direction": st.sampled_from([0, 1, 2, "1"]),
            "from": _party(),
            "to": _party(),
            "create_time": TIMESTAMPS,
            "end_time": TIMESTAMPS,
        },
        optional={
            "talk_time": st.one_of(st.just(0), TIMESTAMPS),
            "forward_time": st.one_of(st.just(0), TIMESTAMPS),
            "entry_result": st.sampled_from([0, 1, "1"]),
            "disconnect_reason": CODES,
            "line_number": NUMBERS,
        },
    ),
    "events/recording": st.fixed_dictionaries(
        {
            "entry_id": IDS,
            "recording_id": IDS,
            "recording_state": st.sampled_from(["Started", "Continued", "Completed"]),
            "timestamp": TIMESTAMPS,
        },
        optional={
            "seq": COUNTERS,
            "call_id": IDS,
            "extension": EXTENSIONS,
            "completion_code": CODES,
            "recipient": st.sampled_from(["Cloud", "Mail", "CloudAndMail"]),
        },
    ),
    "events/record/added": st.fixed_dictionaries(
        {"entry_id": IDS, "recording_id": IDS, "timestamp": TIMESTAMPS},
        optional={
            "product_id": st.integers(1, 10**12),
            "user_id": st.one_of(st.just(-1), st.integers(1, 10**12)),
        },
    ),
    "result/callback": st.fixed_dictionaries({"command_id": IDS, "result": CODES}),
}


def assert_safe_for_storage(event):
    """What the worker writes from an accepted event fits its columns."""
    text = json.dumps(event.raw, ensure_ascii=False, allow_nan=False)
    assert "\x00" not in text and "\\u0000" not in text
    text.encode("utf-8")  # no lone surrogate
    for name, value in vars(event).items():
        if isinstance(value, str):
            assert safe_text.problem(value, multiline=(name == "path")) is None
    for name in ("seq", "disconnect_reason", "completion_code", "result", "dct_type"):
        value = getattr(event, name, None)
        assert value is None or 0 <= value <= INT32_MAX, name
    for name in ("timestamp", "create_time", "forward_time", "talk_time", "end_time"):
        value = getattr(event, name, None)
        if value is not None:
            assert 0 <= value <= TIMESTAMP_MAX, name
            datetime.fromtimestamp(value, tz=timezone.utc)
    for call in fold([event]).values():
        state = json.dumps(call.to_dict(), ensure_ascii=False, allow_nan=False)
        assert "\\u0000" not in state
        state.encode("utf-8")
        for leg in call.legs.values():
            assert 0 <= leg.seq <= INT32_MAX
        if call.disconnect_reason is not None:
            assert 0 <= call.disconnect_reason <= CODE_MAX


def parse_or_refuse(path, body):
    """The event, or None when the boundary refused it. Any other exception
    fails the test."""
    try:
        event = parse_event(path, body)
    except EventParseError as error:
        assert error.reason in REASONS
        assert error.field is None or safe_text.problem(error.field) is None
        return None
    assert_safe_for_storage(event)
    return event


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(PATHS), value=JSON_VALUES)
def test_any_json_value(path, value):
    text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    parse_or_refuse(path, text)
    if isinstance(value, dict):
        parse_or_refuse(path, value)


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from([*PATHS, "ping"]), text=st.text(ANY_CHAR, max_size=200))
def test_any_text(path, text):
    parse_or_refuse(path, text.encode("utf-8", "surrogatepass"))
    parse_or_refuse(path, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(sorted(DOCUMENTED)),
    data=st.data(),
    changes=st.dictionaries(st.sampled_from(KNOWN_FIELDS), JSON_VALUES, max_size=3),
)
def test_documented_events_with_arbitrary_fields(path, data, changes):
    """Swap arbitrary values into a documented event: refused, or accepted and
    then fit for the fold and the database."""
    payload = {**data.draw(DOCUMENTED[path]), **changes}
    for body in (payload, json.dumps(payload, ensure_ascii=True, allow_nan=True)):
        event = parse_or_refuse(path, body)
        if event is None or not hasattr(event, "entry_id") or not event.entry_id:
            continue
        calls = fold([event])
        assert list(calls) == [event.entry_id]


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(sorted(DOCUMENTED)), data=st.data())
def test_documented_events_pass_and_fold(path, data):
    payload = data.draw(DOCUMENTED[path])
    for body in (payload, json.dumps(payload), "\ufeff" + json.dumps(payload)):
        event = parse_event(path, body)
        assert_safe_for_storage(event)
        calls = fold([event])
        if path in CALL_ROUTES:
            (call,) = calls.values()
            assert call.entry_id == payload["entry_id"].strip()
            assert call.status in (
                "ringing",
                "in_progress",
                "answered",
                "missed",
                "failed",
            )
        else:
            assert not calls


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(ROUTES), seed=st.integers(0, 10**9))
def test_hostile_requests_never_pass(path, seed):
    """Whatever the fuzz fixture calls hostile the boundary refuses, and never
    with an exception of its own (RecursionError, UnicodeEncodeError…)."""
    case = HostileWebhooks("key", "salt", seed=seed, valid_share=0).case(path)
    assume(not case.note.startswith(("dup_form", "not_a_form")))
    event = parse_or_refuse(case.path, case.json)
    if path != "ping":
        assert event is None, case.note


def test_raw_fragments_of_the_fixture():
    assert dumps({"a": Raw("1e999")}) == '{"a":1e999}'
    assert math.isinf(json.loads(dumps([Raw("1e999")]))[0])
