"""Webhook payloads into typed events, with Mango's quirks absorbed once."""

import json

import pytest

from mango_office import events
from mango_office.events import (
    CallEvent,
    CommandResultEvent,
    EventParseError,
    IgnoredEvent,
    PingEvent,
    RecordAddedEvent,
    RecordingEvent,
    StatsReadyEvent,
    SummaryEvent,
    parse_event,
)

# DOC2026 §3.1.2, verbatim.
CALL_DOC = (
    '{"entry_id":"1MN0Q1MDOQ==","call_id":"MIxEyNTzTo6NDxkzNMMOzNQ==","timestamp":1558422128,"seq":2,'
    '"call_state":"Disconnected","location":"abonent",'
    '"from":{"number":"79001234567","taken_from_call_id":"oMNTMyzTzNTo6NxNkDIxOxM3EMNTj"},'
    '"to":{"extension":"29","number":"sip:user00000@tech.mangosip.ru","line_number":"sip:line00000@tech.mangosip.ru",'
    '"acd_group":"303"},"disconnect_reason":1131,"dct":{"number":"74001234567","type":1}}'
)
# Captured in the wild: string-free ints, no to.extension.
CALL_WILD = (
    '{"entry_id":"MzQ1Mzc1MzUxMzoxNjE=","call_id":"MToxMDA3MTYxNToxNjE6Nzc2MTY1NjA4OjE=","timestamp":1513707786,'
    '"seq":1,"call_state":"Appeared","location":"ivr","from":{"number":"79997356761"},'
    '"to":{"number":"74994509495","line_number":"74994509495"}}'
)
SUMMARY_DOC = (
    '{"entry_id":"232wc3e3w3s222","call_direction":1,"from":{"number":"7800123635242"},'
    '"to":{"extension":"123","number":"7800123456789"},"line_number":"7800123456789",'
    '"create_time":1399906976,"forward_time":1399906978,"talk_time":1399906980,"end_time":1399906990,'
    '"entry_result":1,"disconnect_reason":1100}'
)
RECORDING_DOC = (
    '{"recording_id":"r100:777:500:256","recording_state":"Started","seq":1,"call_id":"100:500:256",'
    '"entry_id":"232wc3e3w3s222","extension":"1234","timestamp":"1399906976","command_id":"cmd.12"}'
)
RECORD_ADDED_DOC = (
    '{"entry_id":"NTAwOTQxMTAyMg==","product_id":300022532,"user_id":300049012,"timestamp":1578664187,'
    '"recording_id":"MToxMDAwNjA4NTo1MDA5NDExMDIyOjE="}'
)


def test_call_event_from_the_documentation():
    event = parse_event("events/call", CALL_DOC)
    assert isinstance(event, CallEvent)
    assert event.kind == "call"
    assert event.entry_id == "1MN0Q1MDOQ=="
    assert event.call_id == "MIxEyNTzTo6NDxkzNMMOzNQ=="
    assert (event.seq, event.timestamp, event.call_state, event.location) == (
        2,
        1558422128,
        "Disconnected",
        "abonent",
    )
    assert event.from_number == "79001234567" and event.from_extension is None
    assert event.taken_from_call_id == "oMNTMyzTzNTo6NxNkDIxOxM3EMNTj"
    assert event.to_extension == "29" and event.acd_group == "303"
    assert event.line_number == "sip:line00000@tech.mangosip.ru"
    assert event.disconnect_reason == 1131
    assert (event.dct_number, event.dct_type) == ("74001234567", 1)
    assert event.raw == json.loads(CALL_DOC)
    assert (
        event.dedup_key == "call:1MN0Q1MDOQ==:MIxEyNTzTo6NDxkzNMMOzNQ==:2:Disconnected"
    )


def test_call_event_without_to_extension():
    event = parse_event("events/call", CALL_WILD)
    assert event.to_extension is None and event.acd_group is None
    assert event.to_number == "74994509495" and event.line_number == "74994509495"
    assert event.disconnect_reason is None


def test_strings_and_ints_are_the_same_event():
    data = json.loads(CALL_DOC)
    as_strings = dict(data, seq="2", timestamp="1558422128", disconnect_reason="1131")
    as_strings["to"] = dict(data["to"], extension=29, acd_group=303)
    a = parse_event("events/call", data)
    b = parse_event("events/call", json.dumps(as_strings))
    assert a.dedup_key == b.dedup_key
    for name in ("seq", "timestamp", "disconnect_reason", "to_extension", "acd_group"):
        assert getattr(a, name) == getattr(b, name)


def test_call_state_is_case_insensitive_and_path_may_carry_a_prefix():
    data = dict(json.loads(CALL_WILD), call_state="CONNECTED", location="IVR")
    event = parse_event("/mango/s3cr3t-token/events/call/", data)
    assert (
        event.call_state == "Connected"
        and event.location == "ivr"
        and event.path == "events/call"
    )


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("MissGroupСallCallback", "MissGroupCallCallback"),  # Cyrillic С as in the docs
        ("MissGroupCallCallback", "MissGroupCallCallback"),
        ("missgroupcallcallback", "MissGroupCallCallback"),
        ("СС", "CC"),  # Cyrillic
        ("cc", "CC"),
        ("CallbackWidget", "CallbackWidget"),
        ("callbackwidget", "CallbackWidget"),
        ("MissInIvrCallCallback", "MissInIvrCallCallback"),
        ("ObDial", "ObDial"),
        ("web", "WEB"),
        ("Api", "API"),
        ("SomethingNew", "SomethingNew"),
        ("", None),
    ],
)
def test_callback_initiator_compared_case_and_script_insensitively(sent, canonical):
    data = dict(json.loads(CALL_WILD), callback_initiator=sent)
    assert parse_event("events/call", data).callback_initiator == canonical


def test_summary_event():
    event = parse_event("events/summary", SUMMARY_DOC)
    assert isinstance(event, SummaryEvent)
    assert event.call_direction == 1 and event.entry_result == 1
    assert (event.create_time, event.forward_time, event.talk_time, event.end_time) == (
        1399906976,
        1399906978,
        1399906980,
        1399906990,
    )
    assert event.to_extension == "123" and event.from_extension is None
    assert event.line_number == "7800123456789"
    assert event.dedup_key == "summary:232wc3e3w3s222"
    retyped = dict(
        json.loads(SUMMARY_DOC),
        call_direction="1",
        entry_result="1",
        talk_time="1399906980",
    )
    assert parse_event("events/summary", retyped).dedup_key == event.dedup_key
    assert parse_event("events/summary", retyped).talk_time == 1399906980


def test_recording_events():
    event = parse_event("events/recording", RECORDING_DOC)
    assert isinstance(event, RecordingEvent)
    assert (
        event.timestamp == 1399906976
        and event.seq == 1
        and event.recording_state == "Started"
    )
    assert event.command_id == "cmd.12" and event.extension == "1234"
    assert event.dedup_key == "recording:r100:777:500:256:Started:1"
    completed = dict(
        json.loads(RECORDING_DOC),
        recording_state="Completed",
        seq="2",
        completion_code="1000",
    )
    completed["recipient"] = "Cloud"
    done = parse_event("events/recording", completed)
    assert (done.completion_code, done.recipient, done.seq) == (1000, "Cloud", 2)

    added = parse_event("events/record/added", RECORD_ADDED_DOC)
    assert isinstance(added, RecordAddedEvent)
    assert added.user_id == "300049012" and added.product_id == "300022532"
    assert added.dedup_key == "record_added:MToxMDAwNjA4NTo1MDA5NDExMDIyOjE="


@pytest.mark.parametrize(
    ("path", "command"),
    [
        ("result/callback", "callback"),
        ("result/callback_group", "callback_group"),
        ("result/call/hangup", "call/hangup"),
        ("result/route", "route"),
        ("result/transfer", "transfer"),
        ("result/recording/start", "recording/start"),
        ("result/sms", "sms"),
    ],
)
def test_command_results(path, command):
    event = parse_event(path, '{"command_id":"cbk1","result":"4101"}')
    assert isinstance(event, CommandResultEvent)
    assert (event.command, event.command_id, event.result) == (command, "cbk1", 4101)
    assert not event.success
    assert event.dedup_key == f"result:{path}:cbk1"
    assert parse_event(path, {"command_id": "cbk1", "result": 1000}).success


@pytest.mark.parametrize("path", ["result/stat", "result/stats"])
def test_stats_ready_both_spellings(path):
    event = parse_event(path, {"key": "K1", "request_id": 7})
    assert isinstance(event, StatsReadyEvent)
    assert (event.key, event.request_id) == ("K1", "7")
    assert event.dedup_key == "stats_ready:K1"


@pytest.mark.parametrize(
    "body", [None, "", b"", "{}", b'{"x":1}', "not json", {"anything": True}]
)
def test_ping_with_any_body(body):
    event = parse_event("ping", body)
    assert isinstance(event, PingEvent)
    assert event.kind == "ping" and event.entry_id is None
    assert event.dedup_key.startswith("ping:")


@pytest.mark.parametrize("path", sorted(events.DOCUMENTED_IGNORED_PATHS))
def test_documented_paths_we_do_not_use_are_ignored(path):
    event = parse_event(path, {"entry_id": "E1", "dtmf": "123"})
    assert isinstance(event, IgnoredEvent)
    assert event.documented and event.entry_id == "E1" and event.kind == "ignored"
    assert (
        event.dedup_key == parse_event(path, '{"dtmf":"123","entry_id":"E1"}').dedup_key
    )


def test_an_undocumented_event_path_is_ignored_but_flagged():
    event = parse_event("events/something/new", "{}")
    assert isinstance(event, IgnoredEvent) and not event.documented


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("events/call", "not json"),
        ("events/call", "[1,2]"),
        ("events/call", b"\xff\xfe"),
        ("events/call", 42),
        ("events/call", '{"call_id":"c","call_state":"Appeared"}'),  # no entry_id
        ("events/call", '{"entry_id":"e","call_state":"Appeared"}'),  # no call_id
        ("events/call", '{"entry_id":"e","call_id":"c"}'),  # no state
        (
            "events/call",
            '{"entry_id":"e","call_id":"c","call_state":"Appeared","seq":"two"}',
        ),
        ("events/summary", "{}"),
        ("events/recording", '{"entry_id":"e"}'),
        ("events/record/added", '{"entry_id":"e"}'),
        ("result/callback", '{"result":1000}'),
        ("result/callback", '{"command_id":"x"}'),
        ("result/stat", "{}"),
        ("something/else", "{}"),
        ("", "{}"),
    ],
)
def test_malformed_payloads(path, body):
    with pytest.raises(EventParseError):
        parse_event(path, body)
    assert issubclass(EventParseError, ValueError)


def test_missing_seq_is_refused_and_booleans_are_read():
    data = {
        "entry_id": "e",
        "call_id": "c",
        "call_state": "OnHold",
        "timestamp": 1513707786,
        "from": {"hold_initiator": "true"},
        "to": {"was_transferred": 1},
    }
    # Every documented call event carries seq, and ordering depends on it.
    with pytest.raises(EventParseError) as refused:
        parse_event("events/call", data)
    assert (refused.value.reason, refused.value.field) == ("missing_field", "seq")
    event = parse_event("events/call", dict(data, seq="3"))
    assert (
        event.seq == 3
        and event.from_hold_initiator is True
        and event.to_was_transferred is True
    )


def test_events_are_immutable_and_hashable():
    event = parse_event("events/call", CALL_DOC)
    with pytest.raises(AttributeError):
        event.seq = 3
    assert hash(event) == hash(parse_event("events/call", CALL_DOC))


def test_fractional_timestamps_and_byte_order_mark():
    data = dict(json.loads(CALL_WILD), timestamp="1513707786.75", seq=1.0)
    event = parse_event("events/call", "\ufeff" + json.dumps(data))
    assert event.timestamp == 1513707786 and event.seq == 1
    assert (
        parse_event("events/call", dict(data, timestamp=1513707786.2)).timestamp
        == 1513707786
    )
