"""Turn extended call statistics into the webhook payloads they stand for.

Mango does not document any redelivery of webhooks (reference §2.2), so a call
whose events were lost only exists in ``stats/calls/result`` (reference §4.2).
Rather than a second way of building calls, each statistics row is rewritten as
the ``events/call``, ``events/summary`` and ``events/recording`` payloads Mango
would have posted; they then go through the same parser and fold as live events,
so a reconciled call cannot disagree with a live one.

Statistics rows are parsed leniently: numbers may arrive as strings, lists may
be missing, and the nested ``data: [{"list": [...]}]`` envelope is unwrapped by
:func:`iter_stats_items`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# stats ``context_type`` → summary ``call_direction`` (reference §2.5 / §4.2)
CONTEXT_TYPE_TO_DIRECTION = {1: 1, 2: 2, 3: 0}

# The longest numeric string still treated as an extension rather than a phone
# number; Mango extensions are short (2–6 digits in every example).
MAX_EXTENSION_DIGITS = 7

RECONCILED_FLAG = "mango_reconciled"


def _int(value, default=0):
    if value in (None, "", False):
        return default
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _str(value):
    if value in (None, False):
        return ""
    return str(value).strip()


def _looks_like_extension(value):
    text = _str(value)
    return text.isdigit() and len(text) <= MAX_EXTENSION_DIGITS


def iter_stats_items(result: dict | list | None) -> Iterator[dict]:
    """Yield every call row of a ``stats/calls/result`` answer.

    Accepts the whole answer (``{"data": [{"list": [...]}]}``), the ``data``
    list, or an already flat list of rows.
    """
    if not result:
        return
    if isinstance(result, dict):
        if "entry_id" in result:
            yield result
            return
        result = result.get("data") or result.get("list") or []
    for chunk in result:
        if not isinstance(chunk, dict):
            continue
        if "entry_id" in chunk:
            yield chunk
        else:
            yield from (row for row in chunk.get("list") or [] if isinstance(row, dict))


def stats_status(result: dict | None) -> str:
    """The ``status`` of a ``stats/calls/result`` answer ('' when absent)."""
    return _str((result or {}).get("status")).lower()


def _party(number="", extension=""):
    party = {}
    if _str(number):
        party["number"] = _str(number)
    if _str(extension):
        party["extension"] = _str(extension)
    return party


def _leg_extension(leg):
    for key in ("call_abonent_extension", "extension", "abonent_extension"):
        if _str(leg.get(key)):
            return _str(leg.get(key))
    if _str(leg.get("call_type")).lower() in (
        "user",
        "group",
    ) and _looks_like_extension(leg.get("call_abonent_number")):
        return _str(leg.get("call_abonent_number"))
    return ""


def _leg_times(leg, fallback_start):
    start = _int(leg.get("call_start_time")) or fallback_start
    answer = _int(leg.get("call_answer_time"))
    end = _int(leg.get("call_end_time"))
    if not end:
        end = start + _int(leg.get("call_duration"))
    if answer and end < answer:
        end = answer + _int(leg.get("talk_duration"))
    return start, answer, end


def _leg_recordings(leg):
    recordings = leg.get("recording_id") or leg.get("recording_ids") or []
    if isinstance(recordings, str):
        recordings = [r for r in recordings.strip("[]").split(",") if r.strip()]
    return [_str(r) for r in recordings if _str(r)]


def summary_payload(item: dict) -> dict:
    """The ``events/summary`` payload equivalent to one statistics row."""
    entry_id = _str(item.get("entry_id"))
    direction = CONTEXT_TYPE_TO_DIRECTION.get(_int(item.get("context_type"), -1), 1)
    create_time = _int(item.get("context_start_time"))
    legs = [leg for leg in item.get("context_calls") or [] if isinstance(leg, dict)]
    answers = []
    ends = []
    answered_leg = None
    for leg in legs:
        _start, answer, end = _leg_times(leg, create_time)
        if answer:
            answers.append(answer)
            if answered_leg is None and _str(leg.get("call_type")).lower() != "number":
                answered_leg = leg
        if end:
            ends.append(end)
    talk_time = min(answers) if answers else 0
    end_time = max(ends) if ends else create_time + _int(item.get("duration"))
    talk_duration = _int(item.get("talk_duration"))
    if not talk_time and talk_duration and create_time:
        # A row can report a conversation without per-leg answer times.
        talk_time = max(create_time, end_time - talk_duration)
    answered = bool(talk_time) and _int(item.get("context_status"), 1) != 0
    caller = _str(item.get("caller_number"))
    called = _str(item.get("called_number"))
    from_party = _party(caller)
    to_party = _party(called)
    line_number = _str(item.get("line_number"))
    if direction == 1:
        line_number = line_number or called
        target = answered_leg or next(
            (
                leg
                for leg in legs
                if _str(leg.get("call_type")).lower() in ("user", "group")
            ),
            None,
        )
        if target is not None:
            to_party = _party(
                target.get("call_abonent_number")
                if not _looks_like_extension(target.get("call_abonent_number"))
                else called,
                _leg_extension(target),
            )
    elif direction in (0, 2):
        caller_ext = _str(item.get("caller_extension"))
        if not caller_ext and _looks_like_extension(caller):
            caller_ext = caller
        from_party = _party("" if caller_ext == caller else caller, caller_ext)
        if direction == 0 and _looks_like_extension(called):
            to_party = _party("", called)
    last_reason = 0
    if legs:
        last_leg = max(legs, key=lambda leg: _leg_times(leg, create_time)[2])
        last_reason = _int(last_leg.get("call_end_reason"))
    payload = {
        "entry_id": entry_id,
        "call_direction": direction,
        "from": from_party,
        "to": to_party,
        "create_time": create_time,
        "forward_time": talk_time or 0,
        "talk_time": talk_time if answered else 0,
        "end_time": end_time,
        "entry_result": 1 if answered else 0,
        "disconnect_reason": last_reason or (1100 if answered else 1110),
        RECONCILED_FLAG: True,
    }
    if line_number:
        payload["line_number"] = line_number
    return payload


def leg_payloads(item: dict, skip_call_ids: Iterable[str] = ()) -> list[dict]:
    """The ``events/call`` payloads for each leg of one statistics row.

    Legs whose ``external_call_id`` is in ``skip_call_ids`` (already known from
    live events) are left out so that live data is never overwritten.
    """
    skip = {_str(c) for c in skip_call_ids}
    entry_id = _str(item.get("entry_id"))
    direction = CONTEXT_TYPE_TO_DIRECTION.get(_int(item.get("context_type"), -1), 1)
    create_time = _int(item.get("context_start_time"))
    caller = _str(item.get("caller_number"))
    called = _str(item.get("called_number"))
    line_number = _str(item.get("line_number")) or (called if direction == 1 else "")
    payloads = []
    for index, leg in enumerate(item.get("context_calls") or []):
        if not isinstance(leg, dict):
            continue
        call_id = _str(leg.get("external_call_id"))
        if not call_id or call_id in skip:
            continue
        start, answer, end = _leg_times(leg, create_time)
        leg_type = _str(leg.get("call_type")).lower()
        extension = _leg_extension(leg)
        abonent_number = _str(leg.get("call_abonent_number"))
        if direction == 1:
            from_party = _party(caller)
            to_party = _party(
                "" if abonent_number == extension else abonent_number, extension
            )
            if line_number:
                to_party["line_number"] = line_number
        else:
            caller_ext = _str(item.get("caller_extension")) or (
                caller if _looks_like_extension(caller) else ""
            )
            from_party = _party("" if caller_ext == caller else caller, caller_ext)
            to_party = _party(abonent_number or called, extension)
            if line_number:
                to_party["line_number"] = line_number
        location = "queue" if leg_type == "group" else "abonent"
        base = {
            "entry_id": entry_id,
            "call_id": call_id,
            "from": from_party,
            "to": to_party,
            "location": location,
            RECONCILED_FLAG: True,
        }
        seq = index * 3
        payloads.append(
            {**base, "timestamp": start, "seq": seq + 1, "call_state": "Appeared"}
        )
        if answer:
            payloads.append(
                {**base, "timestamp": answer, "seq": seq + 2, "call_state": "Connected"}
            )
        payloads.append(
            {
                **base,
                "timestamp": end,
                "seq": seq + 3,
                "call_state": "Disconnected",
                "disconnect_reason": _int(leg.get("call_end_reason"))
                or (1100 if answer else 1110),
            }
        )
    return payloads


def recording_payloads(
    item: dict, skip_recording_ids: Iterable[str] = ()
) -> list[dict]:
    """``events/recording`` (Completed, stored in the cloud) for each recording
    of the row not in ``skip_recording_ids``."""
    skip = {_str(r) for r in skip_recording_ids}
    entry_id = _str(item.get("entry_id"))
    create_time = _int(item.get("context_start_time"))
    payloads = []
    seen = set()
    for leg in item.get("context_calls") or []:
        if not isinstance(leg, dict):
            continue
        _start, _answer, end = _leg_times(leg, create_time)
        for recording_id in _leg_recordings(leg):
            if recording_id in skip or recording_id in seen:
                continue
            seen.add(recording_id)
            payload = {
                "entry_id": entry_id,
                "call_id": _str(leg.get("external_call_id")),
                "recording_id": recording_id,
                "recording_state": "Completed",
                "timestamp": end,
                "seq": 1,
                "completion_code": 1000,
                "recipient": "Cloud",
                RECONCILED_FLAG: True,
            }
            extension = _leg_extension(leg)
            if extension:
                payload["extension"] = extension
            payloads.append(payload)
    return payloads


def stats_item_events(
    item: dict,
    *,
    known_call_ids: Iterable[str] = (),
    known_recording_ids: Iterable[str] = (),
    include_legs: bool = True,
    include_summary: bool = True,
) -> list[tuple[str, dict]]:
    """All ``(path, payload)`` pairs one statistics row stands for, in the order
    Mango would send them: legs, then recordings, then the summary."""
    events: list[tuple[str, dict]] = []
    if not _str(item.get("entry_id")):
        return events
    if include_legs:
        events += [("events/call", p) for p in leg_payloads(item, known_call_ids)]
    events += [
        ("events/recording", p) for p in recording_payloads(item, known_recording_ids)
    ]
    if include_summary:
        events.append(("events/summary", summary_payload(item)))
    return events
