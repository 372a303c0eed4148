"""Statistics rows → webhook payloads (mango_office.reconcile)."""

import json

from mango_office import reconcile

INCOMING_ANSWERED = {
    "entry_id": "RU50MjQ1Njc4OTA=",
    "context_type": 1,
    "context_status": 1,
    "caller_number": "79161234567",
    "called_number": "74951234567",
    "context_start_time": 1700000000,
    "duration": 95,
    "talk_duration": 80,
    "context_calls": [
        {
            "call_type": "group",
            "call_abonent_number": "500",
            "call_start_time": 1700000005,
            "call_answer_time": 0,
            "call_end_time": 1700000012,
            "call_end_reason": 1183,
            "external_call_id": "leg-group",
            "recording_id": [],
        },
        {
            "call_type": "user",
            "call_abonent_id": 4001,
            "call_abonent_number": "101",
            "call_start_time": "1700000012",
            "call_answer_time": "1700000015",
            "call_end_time": "1700000095",
            "call_end_reason": "1110",
            "external_call_id": "leg-user",
            "recording_id": ["rec-1"],
        },
    ],
}

INCOMING_MISSED = {
    "entry_id": "missed-1",
    "context_type": "1",
    "context_status": "0",
    "caller_number": "79161234567",
    "called_number": "74951234567",
    "context_start_time": "1700001000",
    "duration": "30",
    "talk_duration": "0",
    "context_calls": [
        {
            "call_type": "user",
            "call_abonent_number": "101",
            "call_start_time": 1700001002,
            "call_answer_time": 0,
            "call_end_time": 1700001030,
            "call_end_reason": 1111,
            "external_call_id": "leg-m",
        }
    ],
}


def test_iter_stats_items_unwraps_envelope():
    answer = {
        "result": 1000,
        "status": "complete",
        "data": [{"list": [INCOMING_ANSWERED]}],
    }
    assert [r["entry_id"] for r in reconcile.iter_stats_items(answer)] == [
        INCOMING_ANSWERED["entry_id"]
    ]
    assert list(reconcile.iter_stats_items([INCOMING_MISSED])) == [INCOMING_MISSED]
    assert list(reconcile.iter_stats_items(None)) == []
    assert list(reconcile.iter_stats_items({"data": [{"list": None}]})) == []
    assert reconcile.stats_status(answer) == "complete"
    assert reconcile.stats_status(None) == ""


def test_summary_of_answered_incoming_call():
    summary = reconcile.summary_payload(INCOMING_ANSWERED)
    assert summary["call_direction"] == 1
    assert summary["entry_result"] == 1
    assert summary["from"] == {"number": "79161234567"}
    assert summary["to"]["extension"] == "101"
    assert summary["line_number"] == "74951234567"
    assert summary["create_time"] == 1700000000
    assert summary["talk_time"] == 1700000015
    assert summary["end_time"] == 1700000095
    assert summary["disconnect_reason"] == 1110
    json.dumps(summary)  # must be serialisable as a stored raw event


def test_summary_of_missed_call_has_no_talk_time():
    summary = reconcile.summary_payload(INCOMING_MISSED)
    assert summary["entry_result"] == 0
    assert summary["talk_time"] == 0
    assert summary["end_time"] == 1700001030
    assert summary["disconnect_reason"] == 1111


def test_outgoing_row_puts_extension_on_the_caller():
    row = {
        "entry_id": "out-1",
        "context_type": 2,
        "context_status": 1,
        "caller_number": "101",
        "called_number": "79161234567",
        "context_start_time": 1700002000,
        "context_calls": [
            {
                "call_type": "number",
                "call_abonent_number": "79161234567",
                "call_start_time": 1700002001,
                "call_answer_time": 1700002010,
                "call_end_time": 1700002070,
                "external_call_id": "leg-o",
            }
        ],
    }
    summary = reconcile.summary_payload(row)
    assert summary["call_direction"] == 2
    assert summary["from"] == {"extension": "101"}
    assert summary["to"] == {"number": "79161234567"}
    assert summary["entry_result"] == 1
    legs = reconcile.leg_payloads(row)
    assert [p["call_state"] for p in legs] == ["Appeared", "Connected", "Disconnected"]
    assert legs[0]["from"] == {"extension": "101"}
    assert legs[0]["to"]["number"] == "79161234567"


def test_leg_payloads_states_and_skip():
    legs = reconcile.leg_payloads(INCOMING_ANSWERED)
    by_leg = {}
    for payload in legs:
        by_leg.setdefault(payload["call_id"], []).append(payload)
    assert [p["call_state"] for p in by_leg["leg-group"]] == [
        "Appeared",
        "Disconnected",
    ]
    assert [p["call_state"] for p in by_leg["leg-user"]] == [
        "Appeared",
        "Connected",
        "Disconnected",
    ]
    assert by_leg["leg-group"][0]["location"] == "queue"
    assert by_leg["leg-user"][0]["to"] == {
        "extension": "101",
        "line_number": "74951234567",
    }
    seqs = [p["seq"] for p in legs]
    assert len(set(seqs)) == len(seqs)
    assert all(p["entry_id"] == INCOMING_ANSWERED["entry_id"] for p in legs)
    skipped = reconcile.leg_payloads(INCOMING_ANSWERED, skip_call_ids=["leg-user"])
    assert {p["call_id"] for p in skipped} == {"leg-group"}


def test_recording_payloads_and_skip():
    recs = reconcile.recording_payloads(INCOMING_ANSWERED)
    assert len(recs) == 1
    assert recs[0]["recording_id"] == "rec-1"
    assert recs[0]["recording_state"] == "Completed"
    assert recs[0]["recipient"] == "Cloud"
    assert recs[0]["extension"] == "101"
    assert reconcile.recording_payloads(INCOMING_ANSWERED, ["rec-1"]) == []
    row = dict(
        INCOMING_MISSED, context_calls=[dict(INCOMING_MISSED["context_calls"][0])]
    )
    row["context_calls"][0]["recording_id"] = "[r1,r2]"
    assert [p["recording_id"] for p in reconcile.recording_payloads(row)] == [
        "r1",
        "r2",
    ]


def test_stats_item_events_order_and_options():
    events = reconcile.stats_item_events(INCOMING_ANSWERED)
    paths = [path for path, _payload in events]
    assert paths[-1] == "events/summary"
    assert "events/recording" in paths
    assert paths.count("events/call") == 5
    only_summary = reconcile.stats_item_events(
        INCOMING_ANSWERED, include_legs=False, known_recording_ids=["rec-1"]
    )
    assert [p for p, _ in only_summary] == ["events/summary"]
    assert reconcile.stats_item_events({"context_type": 1}) == []


def test_garbage_is_tolerated():
    row = {
        "entry_id": "x",
        "context_type": "weird",
        "context_calls": [None, "junk", {}],
    }
    events = reconcile.stats_item_events(row)
    assert [p for p, _ in events] == ["events/summary"]
    assert events[-1][1]["entry_result"] == 0


def _fold_row(row, **kw):
    from mango_office.calls import fold
    from mango_office.events import parse_event

    events = [
        parse_event(path, payload)
        for path, payload in reconcile.stats_item_events(row, **kw)
    ]
    return fold(events)[row["entry_id"]]


def test_reconciled_events_fold_like_live_ones():
    call = _fold_row(INCOMING_ANSWERED)
    assert call.direction == "incoming"
    assert call.status == "answered"
    assert call.caller_number == "79161234567"
    assert call.answered_extension == "101"
    assert call.start_time == 1700000000
    assert call.answer_time == 1700000015
    assert call.end_time == 1700000095
    assert set(call.legs) == {"leg-group", "leg-user"}
    assert call.recordings["rec-1"].saved

    missed = _fold_row(INCOMING_MISSED)
    assert missed.status == "missed"
    assert missed.talk_seconds == 0


def test_reconciled_summary_completes_a_call_with_live_legs():
    from mango_office.calls import fold
    from mango_office.events import parse_event

    live = [
        parse_event(
            "events/call",
            {
                "entry_id": "missed-1",
                "call_id": "leg-m",
                "timestamp": 1700001002,
                "seq": 1,
                "call_state": "Appeared",
                "location": "abonent",
                "from": {"number": "79161234567"},
                "to": {"extension": "101", "line_number": "74951234567"},
            },
        )
    ]
    calls = fold(live)
    assert calls["missed-1"].status == "ringing"
    extra = [
        parse_event(path, payload)
        for path, payload in reconcile.stats_item_events(
            INCOMING_MISSED, known_call_ids=["leg-m"]
        )
    ]
    assert all(e.kind != "call" for e in extra)
    calls = fold(extra, calls)
    assert calls["missed-1"].status == "missed"
    assert calls["missed-1"].legs["leg-m"].to_extension == "101"
