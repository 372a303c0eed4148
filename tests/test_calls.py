"""The fold: any order, any duplicates, one call (property-based with hypothesis)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mango_office.calls import Call, fold
from mango_office.events import parse_event

CUSTOMER = "79001234567"
DID = "74951234567"
LINE = "74950000000"


def call(
    entry, call_id, seq, state, ts, location="abonent", frm=None, to=None, **extra
):
    payload = {
        "entry_id": entry,
        "call_id": call_id,
        "timestamp": ts,
        "seq": seq,
        "call_state": state,
        "location": location,
        "from": frm or {},
        "to": to or {},
    }
    payload.update(extra)
    return ("events/call", payload)


def summary(
    entry, direction, frm, to, create, talk, end, result, reason, line=DID, forward=None
):
    return (
        "events/summary",
        {
            "entry_id": entry,
            "call_direction": direction,
            "from": frm,
            "to": to,
            "line_number": line,
            "create_time": create,
            "forward_time": create + 1 if forward is None else forward,
            "talk_time": talk,
            "end_time": end,
            "entry_result": result,
            "disconnect_reason": reason,
        },
    )


def recording(entry, rid, state, seq, call_id, ts, ext, **extra):
    payload = {
        "recording_id": rid,
        "recording_state": state,
        "seq": seq,
        "call_id": call_id,
        "entry_id": entry,
        "extension": ext,
        "timestamp": ts,
    }
    payload.update(extra)
    return ("events/recording", payload)


def incoming_answered():
    e = "E-answered"
    cust = {"number": CUSTOMER}
    line = {"number": DID, "line_number": DID}
    op = {
        "extension": "101",
        "number": "sip:op101@acme.mangosip.ru",
        "line_number": DID,
        "acd_group": "300",
    }
    return [
        call(e, "c1", 1, "Appeared", 1000, "ivr", cust, line),
        call(e, "c1", 2, "Connected", 1001, "ivr", cust, line),
        call(e, "c1", 3, "Connected", 1010, "queue", cust, dict(line, acd_group="300")),
        call(e, "c2", 4, "Appeared", 1015, "abonent", cust, op),
        call(e, "c2", 5, "Connected", 1020, "abonent", cust, op),
        recording(e, "r1", "Started", 1, "c2", 1020, "101"),
        call(
            e,
            "c2",
            6,
            "Disconnected",
            1080,
            "abonent",
            cust,
            op,
            disconnect_reason=1110,
        ),
        call(
            e,
            "c1",
            7,
            "Disconnected",
            1080,
            "queue",
            cust,
            line,
            disconnect_reason=1110,
        ),
        recording(
            e,
            "r1",
            "Completed",
            2,
            "c2",
            1080,
            "101",
            completion_code=1000,
            recipient="Cloud",
        ),
        (
            "events/record/added",
            {"entry_id": e, "recording_id": "r1", "user_id": 5001, "timestamp": 1090},
        ),
        summary(
            e,
            1,
            cust,
            {"extension": "101", "number": op["number"]},
            1000,
            1020,
            1080,
            1,
            1110,
        ),
    ]


def incoming_missed_queue():
    e = "E-queue"
    cust = {"number": CUSTOMER}
    line = {"number": DID, "line_number": DID}
    return [
        call(e, "c1", 1, "Appeared", 2000, "ivr", cust, line),
        call(e, "c1", 2, "Connected", 2001, "ivr", cust, line),
        call(e, "c1", 3, "Connected", 2005, "queue", cust, dict(line, acd_group="300")),
        call(
            e,
            "c1",
            4,
            "Disconnected",
            2065,
            "queue",
            cust,
            dict(line, acd_group="300"),
            disconnect_reason=1164,
        ),
        summary(e, 1, cust, {"extension": "300"}, 2000, 0, 2065, 0, 1164),
    ]


def incoming_missed_no_operator():
    e = "E-noanswer"
    cust = {"number": CUSTOMER}
    line = {"number": DID, "line_number": DID}
    op = {
        "extension": "102",
        "number": "sip:op102@acme.mangosip.ru",
        "line_number": DID,
    }
    return [
        call(e, "c1", 1, "Appeared", 3000, "ivr", cust, line),
        call(e, "c1", 2, "Connected", 3001, "ivr", cust, line),
        call(e, "c2", 3, "Appeared", 3004, "abonent", cust, op),
        call(
            e,
            "c2",
            4,
            "Disconnected",
            3034,
            "abonent",
            cust,
            op,
            disconnect_reason=1111,
        ),
        call(
            e, "c1", 5, "Disconnected", 3035, "ivr", cust, line, disconnect_reason=1111
        ),
        summary(
            e,
            1,
            cust,
            {"extension": "102", "number": op["number"]},
            3000,
            0,
            3035,
            0,
            1111,
        ),
    ]


def click_to_call():
    e = "E-click"
    emp_from = {"extension": "101"}
    emp = {"extension": "101", "number": "sip:op101@acme.mangosip.ru"}
    cust = {"number": DID, "line_number": LINE}
    return [
        call(
            e,
            "c1",
            1,
            "Appeared",
            4000,
            "abonent",
            emp_from,
            emp,
            command_id="cmd-1",
            callback_initiator="API",
        ),
        call(
            e,
            "c1",
            2,
            "Connected",
            4003,
            "abonent",
            emp_from,
            emp,
            command_id="cmd-1",
            callback_initiator="API",
        ),
        call(
            e,
            "c1",
            3,
            "Disconnected",
            4004,
            "abonent",
            emp_from,
            emp,
            command_id="cmd-1",
            disconnect_reason=1000,
        ),
        call(
            e,
            "c2",
            4,
            "Appeared",
            4004,
            "abonent",
            dict(emp, taken_from_call_id="c1"),
            cust,
        ),
        call(
            e,
            "c2",
            5,
            "Connected",
            4015,
            "abonent",
            dict(emp, taken_from_call_id="c1"),
            cust,
        ),
        call(
            e,
            "c2",
            6,
            "Disconnected",
            4075,
            "abonent",
            dict(emp, taken_from_call_id="c1"),
            cust,
            disconnect_reason=1120,
        ),
        ("result/callback", {"command_id": "cmd-1", "result": 1000}),
        summary(
            e,
            2,
            emp,
            {"number": DID},
            4000,
            4015,
            4075,
            1,
            1120,
            line=LINE,
            forward=4000,
        ),
    ]


def callback_group():
    e = "E-group"
    cust = {"number": CUSTOMER, "line_number": LINE}
    op = {
        "extension": "102",
        "number": "sip:op102@acme.mangosip.ru",
        "acd_group": "300",
    }
    return [
        call(
            e,
            "c1",
            1,
            "Appeared",
            5000,
            "abonent",
            {"number": LINE},
            cust,
            command_id="cmd-2",
        ),
        call(
            e,
            "c1",
            2,
            "Connected",
            5010,
            "abonent",
            {"number": LINE},
            cust,
            command_id="cmd-2",
        ),
        call(
            e,
            "c2",
            3,
            "Appeared",
            5011,
            "abonent",
            {"number": CUSTOMER, "taken_from_call_id": "c1"},
            op,
        ),
        call(
            e,
            "c2",
            4,
            "Connected",
            5020,
            "abonent",
            {"number": CUSTOMER, "taken_from_call_id": "c1"},
            op,
        ),
        call(
            e,
            "c2",
            5,
            "Disconnected",
            5100,
            "abonent",
            {"number": CUSTOMER},
            op,
            disconnect_reason=1120,
        ),
        call(
            e,
            "c1",
            6,
            "Disconnected",
            5100,
            "abonent",
            {"number": LINE},
            cust,
            command_id="cmd-2",
            disconnect_reason=1120,
        ),
        ("result/callback_group", {"command_id": "cmd-2", "result": "1000"}),
        summary(
            e,
            2,
            {"number": LINE},
            {"extension": "102", "number": CUSTOMER},
            5000,
            5010,
            5100,
            1,
            1120,
            line=LINE,
        ),
    ]


def transfer():
    e = "E-transfer"
    cust = {"number": CUSTOMER}
    line = {"number": DID, "line_number": DID}
    op1 = {
        "extension": "101",
        "number": "sip:op101@acme.mangosip.ru",
        "line_number": DID,
    }
    op2 = {
        "extension": "102",
        "number": "sip:op102@acme.mangosip.ru",
        "line_number": DID,
    }
    frm2 = {
        "extension": "101",
        "number": "sip:op101@acme.mangosip.ru",
        "taken_from_call_id": "c2",
    }
    return [
        call(e, "c1", 1, "Appeared", 6000, "ivr", cust, line),
        call(e, "c1", 2, "Connected", 6001, "ivr", cust, line),
        call(e, "c2", 3, "Appeared", 6005, "abonent", cust, op1),
        call(e, "c2", 4, "Connected", 6010, "abonent", cust, op1),
        call(e, "c2", 5, "OnHold", 6040, "abonent", cust, op1),
        call(e, "c3", 6, "Appeared", 6041, "abonent", frm2, op2, transfer="blind"),
        call(
            e,
            "c2",
            7,
            "Disconnected",
            6042,
            "abonent",
            cust,
            op1,
            disconnect_reason=1000,
        ),
        call(e, "c3", 8, "Connected", 6050, "abonent", frm2, op2),
        call(
            e,
            "c3",
            9,
            "Disconnected",
            6200,
            "abonent",
            frm2,
            op2,
            disconnect_reason=1110,
        ),
        call(
            e, "c1", 10, "Disconnected", 6200, "ivr", cust, line, disconnect_reason=1110
        ),
        summary(
            e,
            1,
            cust,
            {"extension": "101", "number": op1["number"]},
            6000,
            6010,
            6200,
            1,
            1110,
        ),
    ]


def ivr_only():
    """Official example 2: entry_result 1 yet talk_time 0 — nobody was reached."""
    e = "E-ivr"
    cust = {"number": CUSTOMER}
    line = {"number": DID, "line_number": DID}
    return [
        call(e, "c1", 1, "Appeared", 7000, "ivr", cust, line),
        call(e, "c1", 2, "Connected", 7001, "ivr", cust, line),
        call(
            e, "c1", 3, "Disconnected", 7030, "ivr", cust, line, disconnect_reason=1110
        ),
        summary(e, 1, cust, {}, 7000, 0, 7030, 1, 1110, forward=0),
    ]


SCENARIOS = {
    "incoming_answered": incoming_answered,
    "incoming_missed_queue": incoming_missed_queue,
    "incoming_missed_no_operator": incoming_missed_no_operator,
    "click_to_call": click_to_call,
    "callback_group": callback_group,
    "transfer": transfer,
    "ivr_only": ivr_only,
}

EXPECTED = {
    "incoming_answered": {
        "direction": "incoming",
        "status": "answered",
        "answered_extension": "101",
        "employee_extension": "101",
        "group_extension": "300",
        "caller_number": CUSTOMER,
        "called_number": DID,
        "customer_number": CUSTOMER,
        "line_number": DID,
        "start_time": 1000,
        "answer_time": 1020,
        "end_time": 1080,
        "wait_seconds": 20,
        "talk_seconds": 60,
        "disconnect_reason": 1110,
        "disconnect_reason_text": "The caller hung up",
    },
    "incoming_missed_queue": {
        "direction": "incoming",
        "status": "missed",
        "answered_extension": None,
        "employee_extension": None,
        "group_extension": "300",
        "customer_number": CUSTOMER,
        "start_time": 2000,
        "answer_time": None,
        "end_time": 2065,
        "wait_seconds": 65,
        "talk_seconds": 0,
        "disconnect_reason": 1164,
        "disconnect_reason_text": "All operators are unavailable",
    },
    "incoming_missed_no_operator": {
        "direction": "incoming",
        "status": "missed",
        "answered_extension": None,
        "employee_extension": "102",
        "customer_number": CUSTOMER,
        "wait_seconds": 35,
        "talk_seconds": 0,
        "disconnect_reason": 1111,
        "disconnect_reason_text": "No answer within the timeout",
    },
    "click_to_call": {
        "direction": "outgoing",
        "status": "answered",
        "answered_extension": None,
        "employee_extension": "101",
        "called_number": DID,
        "customer_number": DID,
        "line_number": LINE,
        "start_time": 4000,
        "answer_time": 4015,
        "end_time": 4075,
        "wait_seconds": 15,
        "talk_seconds": 60,
        "disconnect_reason": 1120,
        "command_ids": ["cmd-1"],
        "command_results": {"cmd-1": 1000},
        "callback_initiator": "API",
    },
    "callback_group": {
        "direction": "outgoing",
        "status": "answered",
        "employee_extension": "102",
        "customer_number": CUSTOMER,
        "group_extension": "300",
        "command_ids": ["cmd-2"],
        "command_results": {"cmd-2": 1000},
        "talk_seconds": 90,
    },
    "transfer": {
        "direction": "incoming",
        "status": "answered",
        "answered_extension": "101",
        "answered_extensions": ["101", "102"],
        "employee_extension": "101",
        "customer_number": CUSTOMER,
        "wait_seconds": 10,
        "talk_seconds": 190,
    },
    "ivr_only": {
        "direction": "incoming",
        "status": "missed",
        "answered_extension": None,
        "talk_seconds": 0,
    },
}

# Without the summary the legs alone must tell the same story.
EXPECTED_WITHOUT_SUMMARY = {
    "incoming_answered": {
        "direction": "incoming",
        "status": "answered",
        "answered_extension": "101",
        "wait_seconds": 20,
        "talk_seconds": 60,
        "disconnect_reason": 1110,
    },
    "incoming_missed_queue": {
        "direction": "incoming",
        "status": "missed",
        "wait_seconds": 65,
        "disconnect_reason": 1164,
    },
    "incoming_missed_no_operator": {
        "direction": "incoming",
        "status": "missed",
        "employee_extension": "102",
    },
    "click_to_call": {
        "direction": "outgoing",
        "status": "answered",
        "employee_extension": "101",
        "called_number": DID,
        "answer_time": 4015,
        "talk_seconds": 60,
    },
    "callback_group": {
        "direction": "outgoing",
        "status": "answered",
        "employee_extension": "102",
        "customer_number": CUSTOMER,
    },
    "transfer": {
        "direction": "incoming",
        "status": "answered",
        "answered_extension": "101",
        "talk_seconds": 190,
    },
    "ivr_only": {"direction": "incoming", "status": "missed"},
}


def parse_all(raw_events):
    return [parse_event(path, json.dumps(payload)) for path, payload in raw_events]


def folded(raw_events):
    calls = fold(parse_all(raw_events))
    assert len(calls) == 1
    return next(iter(calls.values())).to_dict()


def retyped(payload):
    """The same event as Mango also sends it: numbers as strings."""
    out = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            out[key] = retyped(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = str(value)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_outcome(name):
    result = folded(SCENARIOS[name]())
    for key, value in EXPECTED[name].items():
        assert result[key] == value, key
    assert result["has_summary"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_outcome_without_summary(name):
    raw = [e for e in SCENARIOS[name]() if e[0] != "events/summary"]
    result = folded(raw)
    for key, value in EXPECTED_WITHOUT_SUMMARY[name].items():
        assert result[key] == value, key
    assert not result["has_summary"]


@pytest.mark.parametrize("with_summary", [True, False])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_order_with_duplicates_gives_the_same_call(name, with_summary, data):
    raw = [e for e in SCENARIOS[name]() if with_summary or e[0] != "events/summary"]
    reference = folded(raw)
    duplicates = data.draw(
        st.lists(st.sampled_from(range(len(raw))), max_size=len(raw)),
        label="duplicates",
    )
    stringly = data.draw(
        st.lists(st.booleans(), min_size=len(duplicates), max_size=len(duplicates))
    )
    extra = [
        (raw[i][0], retyped(raw[i][1]) if as_strings else raw[i][1])
        for i, as_strings in zip(duplicates, stringly, strict=True)
    ]
    shuffled = data.draw(st.permutations(raw + extra), label="order")
    assert folded(shuffled) == reference

    # Applying one by one to a single Call, and re-applying everything, changes nothing.
    events = parse_all(shuffled)
    entry_id = next(e.entry_id for e in events if getattr(e, "entry_id", None))
    one_by_one = Call(entry_id=entry_id)
    for event in events:
        one_by_one.apply(event)
    assert one_by_one.to_dict() == reference
    one_by_one.extend(events)
    assert one_by_one.to_dict() == reference


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_interleaved_calls_fold_separately(data):
    raw = [e for name in SCENARIOS for e in SCENARIOS[name]()]
    expected = {c.entry_id: c.to_dict() for c in fold(parse_all(raw)).values()}
    assert len(expected) == len(SCENARIOS)
    shuffled = data.draw(st.permutations(raw))
    split = data.draw(st.integers(0, len(shuffled)))
    # Two batches, as two webhook-processing runs would see them.
    calls = fold(parse_all(shuffled[:split]))
    calls = fold(parse_all(shuffled[split:]), calls)
    assert {c.entry_id: c.to_dict() for c in calls.values()} == expected


def test_live_states_before_the_end():
    raw = incoming_answered()
    ringing = folded(raw[:4])
    assert (
        ringing["status"] == "ringing"
        and ringing["end_time"] is None
        and ringing["talk_seconds"] is None
    )
    talking = folded(raw[:6])
    assert talking["status"] == "in_progress" and talking["answered_extension"] == "101"
    assert talking["answer_time"] == 1020 and talking["wait_seconds"] == 20


def test_leg_state_follows_highest_seq_and_disconnected_is_final():
    raw = incoming_answered()
    result = folded(raw)
    c2 = result["legs"]["c2"]
    assert c2["state"] == "Disconnected" and c2["seq"] == 6
    assert (c2["appeared_at"], c2["connected_at"], c2["disconnected_at"]) == (
        1015,
        1020,
        1080,
    )
    assert c2["to_extension"] == "101" and c2["disconnect_reason"] == 1110
    c1 = result["legs"]["c1"]
    # to.extension never came for the customer leg; the queue added the group.
    assert (
        c1["to_extension"] is None
        and c1["acd_group"] == "300"
        and c1["location"] == "queue"
    )
    # A stray event with a higher seq after Disconnected does not revive the leg.
    late = call(
        "E-answered", "c2", 99, "Connected", 1081, "abonent", {}, {"extension": "101"}
    )
    assert folded(raw + [late])["legs"]["c2"]["state"] == "Disconnected"


def test_recordings_are_folded():
    result = folded(incoming_answered())
    rec = result["recordings"]["r1"]
    assert (
        rec["state"] == "Completed"
        and rec["completion_code"] == 1000
        and rec["recipient"] == "Cloud"
    )
    assert (
        rec["extension"] == "101"
        and rec["added"]
        and rec["saved"]
        and rec["user_id"] == "5001"
    )
    only_started = [e for e in incoming_answered() if e[0] != "events/record/added"][:6]
    rec = folded(only_started)["recordings"]["r1"]
    assert rec["state"] == "Started" and not rec["added"] and not rec["saved"]


def test_too_short_recording_is_not_saved():
    raw = [
        recording("E", "r9", "Started", 1, "c1", 10, "101"),
        recording(
            "E",
            "r9",
            "Completed",
            2,
            "c1",
            11,
            "101",
            completion_code=4002,
            recipient="Cloud",
        ),
    ]
    rec = folded(raw)["recordings"]["r9"]
    assert rec["completion_code"] == 4002 and not rec["saved"]


def test_events_without_entry_or_for_another_call():
    events = parse_all(incoming_answered())
    assert (
        fold([parse_event("ping", None), parse_event("result/stat", {"key": "k"})])
        == {}
    )
    # A command result nobody's legs carry stays out.
    assert (
        fold(parse_all([("result/callback", {"command_id": "zzz", "result": 1000})]))
        == {}
    )
    with pytest.raises(ValueError):
        Call(entry_id="other").apply(events[0])


def test_missed_outgoing_is_failed():
    raw = [
        e for e in click_to_call() if e[0] == "events/call" and e[1]["call_id"] == "c1"
    ]
    raw.append(
        call(
            "E-click",
            "c2",
            4,
            "Appeared",
            4004,
            "abonent",
            {"extension": "101"},
            {"number": DID},
        )
    )
    raw.append(
        call(
            "E-click",
            "c2",
            5,
            "Disconnected",
            4034,
            "abonent",
            {"extension": "101"},
            {"number": DID},
            disconnect_reason=1121,
        )
    )
    result = folded(raw)
    assert result["direction"] == "outgoing" and result["status"] == "failed"
    assert (
        result["disconnect_reason"] == 1121
        and result["disconnect_reason_text"] == "The called party is busy"
    )
    raw.append(
        summary(
            "E-click",
            2,
            {"extension": "101"},
            {"number": DID},
            4000,
            0,
            4034,
            0,
            1121,
            line=LINE,
        )
    )
    assert folded(raw)["status"] == "failed"


def test_internal_call():
    e = "E-int"
    raw = [
        call(
            e,
            "c1",
            1,
            "Appeared",
            10,
            "abonent",
            {"extension": "101"},
            {"extension": "102"},
        ),
        call(
            e,
            "c1",
            2,
            "Connected",
            12,
            "abonent",
            {"extension": "101"},
            {"extension": "102"},
        ),
        call(
            e,
            "c1",
            3,
            "Disconnected",
            40,
            "abonent",
            {"extension": "101"},
            {"extension": "102"},
            disconnect_reason=1100,
        ),
    ]
    result = folded(raw)
    assert result["direction"] == "internal" and result["status"] == "answered"
    assert result["answered_extension"] == "102" and result["customer_number"] is None


def test_group_extension_is_never_the_employee():
    # The simulator's reading of callback_group: the summary names the group as
    # the caller; the employee is the operator who picked up.
    raw = [e for e in callback_group() if e[0] != "events/summary"]
    raw.append(
        summary(
            "E-group",
            2,
            {"extension": "300"},
            {"extension": "102", "number": CUSTOMER},
            5000,
            5010,
            5100,
            1,
            1120,
            line=LINE,
        )
    )
    result = folded(raw)
    assert result["employee_extension"] == "102"
    assert result["group_extension"] == "300"


def test_commands_on_later_legs_keep_an_incoming_call_incoming():
    # commands/route (or transfer) puts its command_id on the leg it creates.
    raw = [e for e in incoming_answered() if e[0] == "events/call"]
    for _, payload in raw:
        if payload["call_id"] == "c2":
            payload["command_id"] = "route-1"
    result = folded(raw)
    assert result["direction"] == "incoming" and result["command_ids"] == ["route-1"]
    assert result["status"] == "answered" and result["answered_extension"] == "101"


def test_group_callback_nobody_picked_up_after_the_customer():
    raw = [
        e for e in callback_group() if e[0] == "events/call" and e[1]["call_id"] == "c1"
    ]
    op = {"extension": "102", "acd_group": "300"}
    raw.append(call("E-group", "c2", 3, "Appeared", 5011, "abonent", {}, op))
    raw.append(
        call(
            "E-group",
            "c2",
            5,
            "Disconnected",
            5041,
            "abonent",
            {},
            op,
            disconnect_reason=1111,
        )
    )
    result = folded(raw)
    assert result["direction"] == "outgoing" and result["status"] == "failed"


def test_click_to_call_to_an_internal_extension():
    raw = [e for e in click_to_call() if e[0] == "events/call"]
    for _, payload in raw:
        if payload["call_id"] == "c2":
            payload["to"] = {"extension": "205", "number": "sip:op205@acme.mangosip.ru"}
    result = folded(raw)
    assert result["direction"] == "outgoing" and result["status"] == "answered"


def arbitrary_event():
    """Any event of one entry, including contradictory ones Mango should never send."""
    number = st.sampled_from([None, CUSTOMER, DID, "sip:op@acme.mangosip.ru", "101"])
    extension = st.sampled_from([None, "101", "102", "300"])
    party = st.fixed_dictionaries(
        {},
        optional={
            "number": number,
            "extension": extension,
            "taken_from_call_id": st.sampled_from(["c1", "c2"]),
            "acd_group": st.sampled_from(["300", ""]),
            "line_number": st.just(DID),
        },
    )
    call_event = st.fixed_dictionaries(
        {
            "entry_id": st.just("E-any"),
            "call_id": st.sampled_from(["c1", "c2", "c3"]),
            "seq": st.integers(0, 8),
            "timestamp": st.integers(1000, 1010),
            "call_state": st.sampled_from(
                ["Appeared", "Connected", "OnHold", "Disconnected"]
            ),
            "from": party,
            "to": party,
        },
        optional={
            "location": st.sampled_from(["ivr", "queue", "abonent"]),
            "disconnect_reason": st.sampled_from([1000, 1110, 1164]),
            "command_id": st.sampled_from(["k1", "k2"]),
            "callback_initiator": st.sampled_from(["API", "MissGroupСallCallback"]),
        },
    ).map(lambda p: ("events/call", p))
    summary_event = st.fixed_dictionaries(
        {
            "entry_id": st.just("E-any"),
            "call_direction": st.integers(0, 2),
            "entry_result": st.integers(0, 1),
            "create_time": st.integers(1000, 1005),
            "talk_time": st.sampled_from([0, 1006]),
            "end_time": st.integers(1006, 1010),
            "from": party,
            "to": party,
        }
    ).map(lambda p: ("events/summary", p))
    recording_event = st.fixed_dictionaries(
        {
            "entry_id": st.just("E-any"),
            "recording_id": st.sampled_from(["r1", "r2"]),
            "recording_state": st.sampled_from(["Started", "Continued", "Completed"]),
            "seq": st.integers(0, 3),
            "timestamp": st.integers(1000, 1010),
        },
        optional={
            "extension": extension,
            "completion_code": st.sampled_from([1000, 4002]),
            "recipient": st.sampled_from(["Cloud", "Mail"]),
        },
    ).map(lambda p: ("events/recording", p))
    result_event = st.fixed_dictionaries(
        {
            "command_id": st.sampled_from(["k1", "k2"]),
            "result": st.sampled_from([1000, 4101]),
        }
    ).map(lambda p: ("result/callback", p))
    return st.one_of(
        call_event, call_event, summary_event, recording_event, result_event
    )


@settings(max_examples=150, deadline=None)
@given(raw=st.lists(arbitrary_event(), min_size=1, max_size=14), data=st.data())
def test_arbitrary_events_fold_order_independently(raw, data):
    # Whatever Mango sends, even contradictions, the result may not depend on
    # the order of arrival or on duplicates.
    reference = {c.entry_id: c.to_dict() for c in fold(parse_all(raw)).values()}
    extra = data.draw(st.lists(st.sampled_from(raw), max_size=5))
    shuffled = data.draw(st.permutations(raw + extra))
    assert {
        c.entry_id: c.to_dict() for c in fold(parse_all(shuffled)).values()
    } == reference


def test_summary_without_entry_result_uses_talk_time():
    raw = incoming_answered()
    for _, payload in raw:
        payload.pop("entry_result", None)
    assert folded(raw)["status"] == "answered"
    for _, payload in raw:
        if "talk_time" in payload:
            payload["talk_time"] = 0
    assert folded(raw)["status"] == "missed"
    for _, payload in raw:
        payload.pop("talk_time", None)
    assert folded(raw)["status"] == "answered"  # the legs say so


def _transfer_legs(raw_events):
    calls = fold(parse_all(raw_events))
    (result,) = calls.values()
    return {call_id for call_id in result.legs if result.is_transfer(call_id)}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("incoming_answered", set()),
        ("incoming_missed_queue", set()),
        ("click_to_call", set()),
        ("callback_group", set()),
        ("transfer", {"c3"}),
    ],
)
def test_transfer_legs(name, expected):
    assert _transfer_legs(SCENARIOS[name]()) == expected


def test_queue_distribution_is_not_a_transfer():
    """Mango's own example: an operator leg a group distributed carries
    from.taken_from_call_id (reference §2.4); the employee did not get it from
    a colleague."""
    raw = incoming_answered()
    for _path, payload in raw:
        if payload.get("location") == "abonent":
            payload["from"] = dict(payload["from"], taken_from_call_id="c1")
    assert _transfer_legs(raw) == set()


def test_transfer_without_the_api_v2_field():
    """Without api v2 the hand-over shows only in the source leg: a connected
    leg at an employee."""
    raw = transfer()
    for _path, payload in raw:
        payload.pop("transfer", None)
    assert _transfer_legs(raw) == {"c3"}


def test_click_to_call_to_a_colleague_is_not_a_transfer():
    raw = [e for e in click_to_call() if e[0] == "events/call"]
    for _, payload in raw:
        if payload["call_id"] == "c2":
            payload["to"] = {"extension": "205", "number": "sip:op205@acme.mangosip.ru"}
    assert _transfer_legs(raw) == set()


@pytest.mark.parametrize(
    "scenario, options, transferred_to",
    [
        ("incoming_answered", {"extension": "101"}, set()),
        ("callback_group", {}, set()),
        ("click_to_call", {"extension": "101", "to_number": "102"}, set()),
        ("transfer", {"extension": "101", "to_extension": "102"}, {"102"}),
    ],
)
def test_simulated_calls_transfer_legs(scenario, options, transferred_to):
    """The simulator plays Mango's leg chains (queue → operator with
    taken_from_call_id, callback halves, blind transfer) as documented."""
    from mango_office.simulator import run_simulator

    with run_simulator() as sim:
        result = sim.play(scenario, **options)
    raw = [(item["path"], item["payload"]) for item in result["planned"]]
    calls = fold(parse_all(raw))
    (call_,) = calls.values()
    extensions = {
        str(call_.legs[call_id].to_extension)
        for call_id in call_.legs
        if call_.is_transfer(call_id)
    }
    assert extensions == transferred_to
