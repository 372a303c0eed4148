"""Webhook payloads from Mango (reference §2) turned into typed, immutable values.

The boundary (:mod:`mango_office.event_validation`) has already refused anything
that is not a Mango event of its path; what is left of the wire format's quirks
is absorbed here, once, so the fold and the Odoo side never see it: numbers,
``seq``, ``result`` and timestamps arrive as strings or ints, ``to.extension`` is
absent until a call is distributed, the stats-ready path is spelled two ways,
``callback_initiator`` mixes Cyrillic and Latin letters, and ``ping`` may come
with any body or none.
"""

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field

from .event_validation import (
    CALL_STATES,
    DOCUMENTED_IGNORED_PATHS,
    RECORDING_STATES,
    STATS_READY_PATHS,
    EventParseError,
    normalize_path,
    validate_event,
)
from .signing import dumps

__all__ = [
    "CALL_STATES",
    "DOCUMENTED_IGNORED_PATHS",
    "RECORDING_STATES",
    "STATS_READY_PATHS",
    "EventParseError",
    "normalize_path",
    "parse_event",
]

_CALL_STATE_BY_FOLDED = {state.casefold(): state for state in CALL_STATES}
_RECORDING_STATE_BY_FOLDED = {state.casefold(): state for state in RECORDING_STATES}

CALLBACK_INITIATORS = (
    "CC",
    "API",
    "WEB",
    "ObDial",
    "CallbackWidget",
    "MissGroupCallCallback",
    "MissInIvrCallCallback",
)

# Cyrillic letters that look like Latin ones. Mango's own documentation writes
# "MissGroupСallCallback" and "СС" with a Cyrillic "С", and nothing says which
# spelling the PBX really sends, so both must compare equal.
_HOMOGLYPHS = str.maketrans(
    "АВЕКМНОРСТУХаеорсух",
    "ABEKMHOPCTYXaeopcyx",
)


def _fold_initiator(value):
    return re.sub(r"[\s_\-]", "", value.translate(_HOMOGLYPHS)).casefold()


_INITIATOR_BY_FOLDED = {_fold_initiator(v): v for v in CALLBACK_INITIATORS}


def normalize_callback_initiator(value):
    """The canonical Latin spelling of ``callback_initiator``; unknown as sent."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    return _INITIATOR_BY_FOLDED.get(_fold_initiator(text), text)


# --- readers of validated values -------------------------------------------


def _int(value):
    """A validated number (an int, a float or a numeric string) as a whole int."""
    if value is None:
        return None
    if isinstance(value, str):
        value = float(value) if "." in value else int(value)
    # "1558422128.75", a fractional timestamp: whole seconds are enough.
    return int(value)


def _str(value):
    """Identifiers and numbers as text: ints become their digits, blanks become None."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return None


def _party(payload, name):
    part = payload.get(name)
    return part if isinstance(part, dict) else {}


def _digest(data):
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()[:32]


# --- event types -------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    path: str
    raw: dict = field(repr=False, compare=False)

    kind = "event"
    entry_id = None

    @property
    def dedup_key(self):
        return f"{self.kind}:{_digest(self.raw)}"

    @functools.cached_property
    def canonical(self):
        """The raw payload as sorted compact JSON: a total order for tie-breaks."""
        return json.dumps(
            self.raw,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )


@dataclass(frozen=True)
class CallEvent(Event):
    entry_id: str = None
    call_id: str = None
    timestamp: int = None
    seq: int = 0
    call_state: str = None
    location: str = None
    from_extension: str = None
    from_number: str = None
    taken_from_call_id: str = None
    to_extension: str = None
    to_number: str = None
    line_number: str = None
    acd_group: str = None
    disconnect_reason: int = None
    command_id: str = None
    task_id: str = None
    callback_initiator: str = None
    sip_call_id: str = None
    transfer: str = None
    from_was_transferred: bool = None
    to_was_transferred: bool = None
    from_hold_initiator: bool = None
    to_hold_initiator: bool = None
    dct_number: str = None
    dct_type: int = None

    kind = "call"

    @property
    def dedup_key(self):
        return f"call:{self.entry_id}:{self.call_id}:{self.seq}:{self.call_state}"


@dataclass(frozen=True)
class SummaryEvent(Event):
    entry_id: str = None
    call_direction: int = None
    from_extension: str = None
    from_number: str = None
    to_extension: str = None
    to_number: str = None
    line_number: str = None
    create_time: int = None
    forward_time: int = None
    talk_time: int = None
    end_time: int = None
    entry_result: int = None
    disconnect_reason: int = None
    sip_call_id: str = None
    dct_number: str = None
    dct_type: int = None

    kind = "summary"

    @property
    def dedup_key(self):
        return f"summary:{self.entry_id}"


@dataclass(frozen=True)
class RecordingEvent(Event):
    entry_id: str = None
    recording_id: str = None
    recording_state: str = None
    seq: int = 0
    call_id: str = None
    extension: str = None
    timestamp: int = None
    completion_code: int = None
    recipient: str = None
    command_id: str = None

    kind = "recording"

    @property
    def dedup_key(self):
        return f"recording:{self.recording_id}:{self.recording_state}:{self.seq}"


@dataclass(frozen=True)
class RecordAddedEvent(Event):
    entry_id: str = None
    recording_id: str = None
    product_id: str = None
    user_id: str = None
    timestamp: int = None

    kind = "record_added"

    @property
    def dedup_key(self):
        return f"record_added:{self.recording_id}"


@dataclass(frozen=True)
class CommandResultEvent(Event):
    command: str = None
    command_id: str = None
    result: int = None

    kind = "command_result"

    @property
    def dedup_key(self):
        return f"result:{self.path}:{self.command_id}"

    @property
    def success(self):
        return self.result is not None and self.result // 1000 == 1


@dataclass(frozen=True)
class StatsReadyEvent(Event):
    key: str = None
    request_id: str = None

    kind = "stats_ready"

    @property
    def dedup_key(self):
        return f"stats_ready:{self.key}"


@dataclass(frozen=True)
class PingEvent(Event):
    kind = "ping"


@dataclass(frozen=True)
class IgnoredEvent(Event):
    entry_id: str = None
    # False for a path Mango may add later (an unknown events/…). Lenient reading:
    # Mango lists more event kinds every year; refusing one would gain nothing.
    documented: bool = True

    kind = "ignored"

    @property
    def dedup_key(self):
        return f"ignored:{self.path}:{_digest(self.raw)}"


# --- parsers -----------------------------------------------------------------


def _required_str(data, name):
    # Present and non-blank: the boundary refuses an event without it.
    return _str(data[name])


def _call_event(path, data):
    frm = _party(data, "from")
    to = _party(data, "to")
    dct = data.get("dct") if isinstance(data.get("dct"), dict) else {}
    state_text = _required_str(data, "call_state")
    call_state = _CALL_STATE_BY_FOLDED.get(state_text.casefold(), state_text)
    location = _str(data.get("location"))
    return CallEvent(
        path=path,
        raw=data,
        entry_id=_required_str(data, "entry_id"),
        call_id=_required_str(data, "call_id"),
        timestamp=_int(data.get("timestamp")),
        # Required by the boundary: every documented event carries it.
        seq=_int(data["seq"]),
        call_state=call_state,
        location=location.lower() if location else None,
        from_extension=_str(frm.get("extension")),
        from_number=_str(frm.get("number")),
        taken_from_call_id=_str(frm.get("taken_from_call_id")),
        to_extension=_str(to.get("extension")),
        to_number=_str(to.get("number")),
        line_number=_str(to.get("line_number")) or _str(data.get("line_number")),
        acd_group=_str(to.get("acd_group")),
        disconnect_reason=_int(data.get("disconnect_reason")),
        command_id=_str(data.get("command_id")),
        task_id=_str(data.get("task_id")),
        callback_initiator=normalize_callback_initiator(data.get("callback_initiator")),
        sip_call_id=_str(data.get("sip_call_id")),
        transfer=_str(data.get("transfer")),
        from_was_transferred=_bool(frm.get("was_transferred")),
        to_was_transferred=_bool(to.get("was_transferred")),
        from_hold_initiator=_bool(frm.get("hold_initiator")),
        to_hold_initiator=_bool(to.get("hold_initiator")),
        dct_number=_str(dct.get("number")),
        dct_type=_int(dct.get("type")),
    )


def _summary_event(path, data):
    frm = _party(data, "from")
    to = _party(data, "to")
    dct = data.get("dct") if isinstance(data.get("dct"), dict) else {}
    return SummaryEvent(
        path=path,
        raw=data,
        entry_id=_required_str(data, "entry_id"),
        call_direction=_int(data.get("call_direction")),
        from_extension=_str(frm.get("extension")),
        from_number=_str(frm.get("number")),
        to_extension=_str(to.get("extension")),
        to_number=_str(to.get("number")),
        line_number=_str(data.get("line_number")) or _str(to.get("line_number")),
        create_time=_int(data.get("create_time")),
        forward_time=_int(data.get("forward_time")),
        talk_time=_int(data.get("talk_time")),
        end_time=_int(data.get("end_time")),
        entry_result=_int(data.get("entry_result")),
        disconnect_reason=_int(data.get("disconnect_reason")),
        sip_call_id=_str(data.get("sip_call_id")),
        dct_number=_str(dct.get("number")),
        dct_type=_int(dct.get("type")),
    )


def _recording_event(path, data):
    state_text = _required_str(data, "recording_state")
    return RecordingEvent(
        path=path,
        raw=data,
        entry_id=_str(data.get("entry_id")),
        recording_id=_required_str(data, "recording_id"),
        recording_state=_RECORDING_STATE_BY_FOLDED.get(
            state_text.casefold(), state_text
        ),
        seq=_int(data.get("seq")) or 0,
        call_id=_str(data.get("call_id")),
        extension=_str(data.get("extension")),
        timestamp=_int(data.get("timestamp")),
        completion_code=_int(data.get("completion_code")),
        recipient=_str(data.get("recipient")),
        command_id=_str(data.get("command_id")),
    )


def _record_added_event(path, data):
    return RecordAddedEvent(
        path=path,
        raw=data,
        entry_id=_str(data.get("entry_id")),
        recording_id=_required_str(data, "recording_id"),
        product_id=_str(data.get("product_id")),
        user_id=_str(data.get("user_id")),
        timestamp=_int(data.get("timestamp")),
    )


def _command_result_event(path, data):
    return CommandResultEvent(
        path=path,
        raw=data,
        command=path[len("result/") :],
        command_id=_required_str(data, "command_id"),
        result=_int(data.get("result")),
    )


def _stats_ready_event(path, data):
    return StatsReadyEvent(
        path=path,
        raw=data,
        key=_required_str(data, "key"),
        request_id=_str(data.get("request_id")),
    )


_PARSERS = {
    "events/call": _call_event,
    "events/summary": _summary_event,
    "events/recording": _recording_event,
    "events/record/added": _record_added_event,
}


def parse_event(path, body):
    """The typed event of a webhook ``path`` and its ``json`` (text, bytes, dict).

    The body is validated first (:func:`mango_office.event_validation.validate_event`).

    :raise EventParseError: the body is not a Mango event of that path (its
        ``reason`` and ``field`` say why), or the path is not Mango's
    """
    path, data = validate_event(path, body)
    if path == "ping":
        return PingEvent(path=path, raw=data)
    if path in _PARSERS:
        return _PARSERS[path](path, data)
    if path in STATS_READY_PATHS:
        return _stats_ready_event(path, data)
    if path.startswith("result/"):
        return _command_result_event(path, data)
    return IgnoredEvent(
        path=path,
        raw=data,
        entry_id=_str(data.get("entry_id")),
        documented=path in DOCUMENTED_IGNORED_PATHS,
    )


def event_json(event):
    """The compact JSON of an event's raw payload, as it would be signed."""
    return dumps(event.raw)
