"""The fold: Mango's events, in any order and duplicated, become one call per entry.

Mango sends webhooks in parallel, so they arrive out of order, and nothing
promises a single delivery (reference §2.2). A :class:`Call` therefore keeps the
set of distinct events it has seen (keyed by ``dedup_key``) and derives every
field from that set with total orders and tie-breaks that never depend on
arrival order. Applying an event twice, or the same events in another order,
gives the same call; ``Call.to_dict()`` is the value to compare and store.
"""

from dataclasses import dataclass, field

from . import codes
from .events import (
    CallEvent,
    CommandResultEvent,
    RecordAddedEvent,
    RecordingEvent,
    SummaryEvent,
)
from .rules import FINISHED_STATUSES

DIRECTIONS = {0: "internal", 1: "incoming", 2: "outgoing"}
_STATE_RANK = {"Appeared": 0, "Connected": 1, "OnHold": 2, "Disconnected": 3}
_RECORDING_RANK = {"Started": 0, "Continued": 1, "Completed": 2}


def _canonical(event):
    return event.canonical


def _first(values):
    for value in values:
        if value is not None:
            return value
    return None


def _root(legs):
    """The leg the call started with: the earliest one not taken from another."""
    return _first(leg for leg in legs if leg.taken_from_call_id is None) or (
        legs[0] if legs else None
    )


def _is_sip(number):
    return isinstance(number, str) and number.lower().startswith("sip:")


@dataclass
class Leg:
    call_id: str
    seq: int = 0
    state: str = None
    location: str = None
    from_number: str = None
    from_extension: str = None
    to_number: str = None
    to_extension: str = None
    line_number: str = None
    acd_group: str = None
    taken_from_call_id: str = None
    # api v2 only: "consultative", "blind" or "return_blind" on a transfer's leg.
    transfer: str = None
    command_id: str = None
    appeared_at: int = None
    connected_at: int = None
    disconnected_at: int = None
    disconnect_reason: int = None

    @property
    def connected(self):
        return self.connected_at is not None or self.state in ("Connected", "OnHold")

    @property
    def finished(self):
        return self.state == "Disconnected"

    @property
    def to_external(self):
        """The leg rings someone outside the PBX: no extension on the called side."""
        return (
            self.to_extension is None
            and self.to_number is not None
            and not _is_sip(self.to_number)
        )

    def to_dict(self):
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class Recording:
    recording_id: str
    state: str = None
    completion_code: int = None
    recipient: str = None
    extension: str = None
    added: bool = False
    call_id: str = None
    started_at: int = None
    completed_at: int = None
    user_id: str = None

    @property
    def saved(self):
        """Worth downloading: stored in the cloud, or announced by record/added."""
        if self.added:
            return True
        return (
            self.state == "Completed"
            and codes.is_success(
                self.completion_code if self.completion_code is not None else 1000
            )
            and (self.recipient or "Cloud") != "Mail"
        )

    def to_dict(self):
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["saved"] = self.saved
        return data


def _leg_from_events(call_id, events):
    # Highest (seq, state rank) first: later facts win, and equal seqs still order
    # deterministically; the canonical JSON is the last tie-break.
    ordered = sorted(
        events,
        key=lambda e: (
            e.seq,
            _STATE_RANK.get(e.call_state, -1),
            e.timestamp or 0,
            _canonical(e),
        ),
        reverse=True,
    )
    disconnected = [e for e in ordered if e.call_state == "Disconnected"]
    # Disconnected is final (reference §2.4): it outranks a stray higher seq.
    # Mango documents no event after it; should one come, the leg stays ended.
    state_event = disconnected[0] if disconnected else ordered[0]

    def pick(attr):
        return _first(getattr(e, attr) for e in ordered)

    timestamps = [e.timestamp for e in events if e.timestamp is not None]
    appeared = [
        e.timestamp
        for e in events
        if e.call_state == "Appeared" and e.timestamp is not None
    ]
    connected = [
        e.timestamp
        for e in events
        if e.call_state == "Connected" and e.timestamp is not None
    ]
    ended = [e.timestamp for e in disconnected if e.timestamp is not None]
    return Leg(
        call_id=call_id,
        seq=max(e.seq for e in events),
        state=state_event.call_state,
        location=pick("location"),
        from_number=pick("from_number"),
        from_extension=pick("from_extension"),
        to_number=pick("to_number"),
        to_extension=pick("to_extension"),
        line_number=pick("line_number"),
        acd_group=pick("acd_group"),
        taken_from_call_id=pick("taken_from_call_id"),
        transfer=pick("transfer"),
        command_id=pick("command_id"),
        # The first state is "usually but not always" Appeared: else the earliest event.
        appeared_at=min(appeared)
        if appeared
        else (min(timestamps) if timestamps else None),
        connected_at=min(connected) if connected else None,
        disconnected_at=max(ended) if ended else None,
        disconnect_reason=_first(e.disconnect_reason for e in disconnected),
    )


def _recording_from_events(recording_id, events, added_events):
    ordered = sorted(
        events,
        key=lambda e: (
            e.seq,
            _RECORDING_RANK.get(e.recording_state, -1),
            e.timestamp or 0,
            _canonical(e),
        ),
        reverse=True,
    )
    completed = [e for e in ordered if e.recording_state == "Completed"]
    started = [e.timestamp for e in events if e.timestamp is not None]
    added_sorted = sorted(added_events, key=_canonical)
    return Recording(
        recording_id=recording_id,
        state=(completed[0] if completed else ordered[0]).recording_state
        if ordered
        else None,
        completion_code=_first(e.completion_code for e in completed),
        recipient=_first(e.recipient for e in completed),
        extension=_first(e.extension for e in ordered),
        added=bool(added_events),
        call_id=_first(e.call_id for e in ordered),
        started_at=min(started) if started else None,
        completed_at=_first(e.timestamp for e in completed),
        user_id=_first(e.user_id for e in added_sorted),
    )


@dataclass
class Call:
    """One call group (``entry_id``): everything Mango told us about it, folded."""

    entry_id: str
    direction: str = None
    status: str = "ringing"
    caller_number: str = None
    called_number: str = None
    line_number: str = None
    answered_extension: str = None
    # Everyone who talked on the call, in order (a transfer has several).
    answered_extensions: list = field(default_factory=list)
    employee_extension: str = None
    group_extension: str = None
    start_time: int = None
    answer_time: int = None
    end_time: int = None
    wait_seconds: int = None
    talk_seconds: int = None
    disconnect_reason: int = None
    disconnect_reason_text: str = None
    command_ids: set = field(default_factory=set)
    command_results: dict = field(default_factory=dict)
    callback_initiator: str = None
    task_id: str = None
    sip_call_id: str = None
    has_summary: bool = False
    recordings: dict = field(default_factory=dict)
    legs: dict = field(default_factory=dict)
    _events: dict = field(default_factory=dict, repr=False, compare=False)

    # -- applying events -----------------------------------------------------

    def accepts(self, event):
        if isinstance(event, CommandResultEvent):
            return True
        return getattr(event, "entry_id", None) == self.entry_id

    def apply(self, event):
        """Take one event in; duplicates and unrelated kinds change nothing."""
        self._add(event)
        self._recompute()
        return self

    def extend(self, events):
        for event in events:
            self._add(event)
        self._recompute()
        return self

    def _add(self, event):
        if not isinstance(
            event,
            (
                CallEvent,
                SummaryEvent,
                RecordingEvent,
                RecordAddedEvent,
                CommandResultEvent,
            ),
        ):
            return
        if not self.accepts(event):
            raise ValueError(
                f"Event for entry {event.entry_id!r} applied to call {self.entry_id!r}"
            )
        key = event.dedup_key
        known = self._events.get(key)
        # Two deliveries under one key should be identical; if not, keep the same
        # one whatever the arrival order.
        if known is None or _canonical(event) < _canonical(known):
            self._events[key] = event

    @property
    def events(self):
        return [self._events[k] for k in sorted(self._events)]

    # -- derivation ------------------------------------------------------------

    def _recompute(self):
        events = self.events
        call_events = [e for e in events if isinstance(e, CallEvent)]
        summaries = [e for e in events if isinstance(e, SummaryEvent)]
        summary = summaries[0] if summaries else None

        by_leg = {}
        for event in call_events:
            by_leg.setdefault(event.call_id, []).append(event)
        self.legs = {
            call_id: _leg_from_events(call_id, evs)
            for call_id, evs in sorted(by_leg.items())
        }
        legs = sorted(
            self.legs.values(),
            key=lambda leg: (
                leg.appeared_at if leg.appeared_at is not None else float("inf"),
                leg.call_id,
            ),
        )

        self.command_ids = {e.command_id for e in call_events if e.command_id}
        self.command_results = {
            e.command_id: e.result
            for e in sorted(
                (e for e in events if isinstance(e, CommandResultEvent)),
                key=_canonical,
                reverse=True,
            )
            if e.command_id in self.command_ids
        }
        by_priority = sorted(
            call_events, key=lambda e: (e.seq, e.timestamp or 0, _canonical(e))
        )
        self.callback_initiator = _first(e.callback_initiator for e in by_priority)
        self.task_id = _first(e.task_id for e in by_priority)
        self.sip_call_id = (summary.sip_call_id if summary else None) or _first(
            e.sip_call_id for e in by_priority
        )
        self.has_summary = summary is not None

        self.direction = self._direction(summary, legs)
        self._numbers(summary, legs)
        self._outcome(summary, legs)
        self._recordings(events)

    def _direction(self, summary, legs):
        if summary is not None and summary.call_direction in DIRECTIONS:
            return DIRECTIONS[summary.call_direction]
        if not legs:
            return None
        # A command of ours (click-to-call, website callback) or a PBX-initiated
        # callback always starts by dialling out.
        root = _root(legs)
        if self._callback_started(root):
            return "outgoing"
        if root.from_extension is None:
            return "incoming"
        if root.to_extension is not None and not any(leg.to_external for leg in legs):
            return "internal"
        if any(leg.to_external for leg in legs) or root.to_extension is None:
            return "outgoing"
        return "internal"

    def is_transfer(self, call_id):
        """Whether leg ``call_id`` brings a party an employee was talking with to
        someone else (blind or consultative transfer).

        ``from.taken_from_call_id`` alone does not say so: Mango sets it on every
        operator leg a queue or the IVR distributes, and on the second half of a
        callback (reference §2.4, §3.1). Only a leg taken from a connected leg at
        an employee is a hand-over, unless that leg is the first ring of a
        callback. api v2's ``transfer`` field, when sent, settles it.
        """
        leg = self.legs.get(call_id)
        if leg is None:
            return False
        if leg.transfer:
            return True
        source = self.legs.get(leg.taken_from_call_id)
        if source is None or not source.connected:
            return False
        if (source.location or "").split(".")[0] != "abonent":
            return False
        if source.to_extension is None and source.from_extension is None:
            return False
        legs = sorted(
            self.legs.values(),
            key=lambda item: (
                item.appeared_at if item.appeared_at is not None else float("inf"),
                item.call_id,
            ),
        )
        root = _root(legs)
        return not (source is root and self._callback_started(root))

    def _callback_started(self, root):
        """Started by a callback (our command, Mango's widget, a missed-call
        callback): the PBX dials one party, then the other. A command on a later
        leg (route, transfer) does not make an incoming call outgoing."""
        return root is not None and bool(root.command_id or self.callback_initiator)

    def _answering_legs(self, legs):
        """Legs whose connection means the call was answered."""
        root = _root(legs)
        if self.direction == "outgoing" and self._callback_started(root):
            # The first party (the employee of a click-to-call, the customer of
            # a group callback) picks up before the other is even dialled: the
            # call is answered when the second party does.
            return [leg for leg in legs if leg.connected and leg is not root]
        if self.direction == "outgoing":
            return [leg for leg in legs if leg.connected and leg.to_external]
        return [
            leg
            for leg in legs
            if leg.connected
            and (
                leg.location == "abonent" or (leg.location is None and leg.to_extension)
            )
        ]

    def _numbers(self, summary, legs):
        root = _root(legs)
        external = _first(leg for leg in legs if leg.to_external)
        s = summary
        if self.direction == "outgoing":
            self.caller_number = (s and s.from_number) or (root and root.from_number)
            self.called_number = (
                (s and s.to_number)
                or (external and external.to_number)
                or _first(leg.to_number for leg in legs if leg.to_extension is None)
            )
        else:
            self.caller_number = (s and s.from_number) or (root and root.from_number)
            self.called_number = (
                (s and s.line_number)
                or (root and (root.line_number or root.to_number))
                or (s and s.to_number)
            )
        self.line_number = (s and s.line_number) or _first(
            leg.line_number for leg in legs
        )
        self.group_extension = _first(leg.acd_group for leg in legs)

    def _outcome(self, summary, legs):
        answering = self._answering_legs(legs)
        first_answer = min(
            answering,
            key=lambda leg: (leg.connected_at or 0, leg.call_id),
            default=None,
        )
        finished = bool(legs) and all(leg.finished for leg in legs)
        last_leg = max(
            (leg for leg in legs if leg.finished),
            key=lambda leg: (leg.disconnected_at or 0, leg.seq, leg.call_id),
            default=None,
        )
        leg_start = min(
            (leg.appeared_at for leg in legs if leg.appeared_at is not None),
            default=None,
        )
        leg_end = max(
            (leg.disconnected_at for leg in legs if leg.disconnected_at is not None),
            default=None,
        )

        if summary is not None:
            if summary.entry_result is not None:
                # IVR-only calls come with entry_result 1 and talk_time 0 (the
                # official example 2): nobody answered them.
                answered = summary.entry_result == 1 and summary.talk_time != 0
            elif summary.talk_time is not None:
                answered = summary.talk_time != 0
            else:
                answered = first_answer is not None
            ended = True
            self.start_time = summary.create_time or leg_start
            self.answer_time = (summary.talk_time or None) if answered else None
            if answered and self.answer_time is None and first_answer:
                self.answer_time = first_answer.connected_at
            self.end_time = summary.end_time or leg_end
            self.disconnect_reason = summary.disconnect_reason
            if self.disconnect_reason is None and last_leg:
                self.disconnect_reason = last_leg.disconnect_reason
        else:
            answered = first_answer is not None
            ended = finished
            self.start_time = leg_start
            self.answer_time = first_answer.connected_at if first_answer else None
            self.end_time = leg_end if finished else None
            self.disconnect_reason = (
                last_leg.disconnect_reason if finished and last_leg else None
            )

        if ended:
            if answered:
                self.status = "answered"
            else:
                self.status = "failed" if self.direction == "outgoing" else "missed"
        else:
            self.status = "in_progress" if answered else "ringing"

        self.disconnect_reason_text = (
            codes.describe(self.disconnect_reason)
            if self.disconnect_reason is not None
            else None
        )
        self.answered_extension = None
        if answered and self.direction != "outgoing":
            if (
                summary is not None
                and summary.entry_result == 1
                and summary.to_extension
            ):
                self.answered_extension = summary.to_extension
            elif first_answer:
                self.answered_extension = first_answer.to_extension
        self.answered_extensions = list(
            dict.fromkeys(
                leg.to_extension
                for leg in sorted(
                    answering, key=lambda leg: (leg.connected_at or 0, leg.call_id)
                )
                if leg.to_extension
            )
        )
        self.employee_extension = self._employee(summary, legs)

        # Waiting is how long the caller waited: until the answer, or, when nobody
        # answered, until they gave up.
        if self.start_time is not None and self.answer_time is not None:
            self.wait_seconds = max(0, self.answer_time - self.start_time)
        elif (
            ended
            and not answered
            and self.start_time is not None
            and self.end_time is not None
        ):
            self.wait_seconds = max(0, self.end_time - self.start_time)
        else:
            self.wait_seconds = None
        if (
            answered
            and ended
            and self.answer_time is not None
            and self.end_time is not None
        ):
            self.talk_seconds = max(0, self.end_time - self.answer_time)
        elif ended and not answered:
            self.talk_seconds = 0
        else:
            self.talk_seconds = None

    def _employee(self, summary, legs):
        """The employee the call belongs to: who made, answered or first missed it.

        A group's extension is never taken for an employee's: a call missed in a
        queue belongs to the group (``group_extension``), not to a person.
        """
        groups = {leg.acd_group for leg in legs if leg.acd_group}
        if self.direction == "outgoing":
            command_leg = _first(
                leg for leg in legs if leg.command_id and leg.to_extension
            )
            candidates = [
                summary and summary.from_extension,
                *(leg.from_extension for leg in legs),
                command_leg and command_leg.to_extension,
                # callback_group dials the customer first; the operator picks up.
                *(leg.to_extension for leg in legs if leg.connected),
                summary and summary.to_extension,
            ]
        else:
            candidates = [
                self.answered_extension,
                summary and summary.to_extension,
                *(leg.to_extension for leg in legs if leg.location == "abonent"),
                *(leg.to_extension for leg in legs),
            ]
        return _first(c for c in candidates if c and c not in groups)

    def _recordings(self, events):
        by_id = {}
        added = {}
        for event in events:
            if isinstance(event, RecordingEvent):
                by_id.setdefault(event.recording_id, []).append(event)
            elif isinstance(event, RecordAddedEvent):
                added.setdefault(event.recording_id, []).append(event)
        self.recordings = {
            rid: _recording_from_events(rid, by_id.get(rid, []), added.get(rid, []))
            for rid in sorted(set(by_id) | set(added))
        }

    # -- output -----------------------------------------------------------------

    @property
    def customer_number(self):
        """The outside party: caller of an incoming call, callee of an outgoing one."""
        if self.direction == "incoming":
            return self.caller_number
        if self.direction == "outgoing":
            return self.called_number
        return None

    @property
    def finished(self):
        return self.status in FINISHED_STATUSES

    def to_dict(self):
        return {
            "entry_id": self.entry_id,
            "direction": self.direction,
            "status": self.status,
            "caller_number": self.caller_number,
            "called_number": self.called_number,
            "customer_number": self.customer_number,
            "line_number": self.line_number,
            "answered_extension": self.answered_extension,
            "answered_extensions": list(self.answered_extensions),
            "employee_extension": self.employee_extension,
            "group_extension": self.group_extension,
            "start_time": self.start_time,
            "answer_time": self.answer_time,
            "end_time": self.end_time,
            "wait_seconds": self.wait_seconds,
            "talk_seconds": self.talk_seconds,
            "disconnect_reason": self.disconnect_reason,
            "disconnect_reason_text": self.disconnect_reason_text,
            "command_ids": sorted(self.command_ids),
            "command_results": dict(sorted(self.command_results.items())),
            "callback_initiator": self.callback_initiator,
            "task_id": self.task_id,
            "sip_call_id": self.sip_call_id,
            "has_summary": self.has_summary,
            "recordings": {
                rid: rec.to_dict() for rid, rec in sorted(self.recordings.items())
            },
            "legs": {cid: leg.to_dict() for cid, leg in sorted(self.legs.items())},
        }


class CallMap(dict):
    """``{entry_id: Call}`` keeping command results whose call is not known yet."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending_results = {}


def fold(events, calls=None):
    """``{entry_id: Call}`` from events in any order; entry-less events skipped.

    Command results carry no ``entry_id``; they join the call whose legs carry
    their ``command_id``. Pass the returned map back as ``calls`` to continue a
    fold with the next batch: a result that came before its call is kept
    aside until the call appears.
    """
    if calls is None:
        calls = CallMap()
    elif not isinstance(calls, CallMap):
        calls = CallMap(calls)
    grouped = {}
    for event in events:
        if isinstance(event, CommandResultEvent):
            known = calls.pending_results.get(event.dedup_key)
            if known is None or event.canonical < known.canonical:
                calls.pending_results[event.dedup_key] = event
            continue
        if not isinstance(
            event, (CallEvent, SummaryEvent, RecordingEvent, RecordAddedEvent)
        ):
            continue
        if not event.entry_id:
            continue
        grouped.setdefault(event.entry_id, []).append(event)
    touched = set(grouped)
    for entry_id, entry_events in grouped.items():
        call = calls.get(entry_id) or Call(entry_id=entry_id)
        for event in entry_events:
            call._add(event)
        calls[entry_id] = call
    by_command = {}
    for call in calls.values():
        for event in call._events.values():
            if isinstance(event, CallEvent) and event.command_id:
                by_command.setdefault(event.command_id, call)
    for key, event in list(calls.pending_results.items()):
        call = by_command.get(event.command_id)
        if call is not None:
            call._add(event)
            touched.add(call.entry_id)
            del calls.pending_results[key]
    for entry_id in touched:
        calls[entry_id]._recompute()
    return calls
