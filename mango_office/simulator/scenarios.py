"""Call scenarios: what Mango posts to the webhook while a call happens.

A :class:`Call` is a small state machine over legs (``call_id``) inside one call group
(``entry_id``). Each step appends the events Mango would send, in the order they happen;
the delivery layer may then shuffle or duplicate them. The same machine serves the
scripted scenarios and the API commands (callback, hangup, route, transfer,
recording/start) acting on a live call, so both produce the same event shapes.

Event sequences follow reference §2.4–2.9. Where the documentation is silent the
choices are listed under "Protocol choices" in ``--help``:
the IVR/queue leg keeps its ``call_id`` while its ``location`` moves ivr → queue; a leg
handed over to an operator ends with ``disconnect_reason`` 1000 (as in DOC2017's
callback example); each operator ring is a new leg with ``from.taken_from_call_id``.
"""

import random

from .state import opaque_id

SCENARIOS = (
    "incoming_answered",
    "incoming_missed_queue",
    "incoming_missed_no_operator",
    "click_to_call",
    "callback_group",
    "transfer",
)

DEFAULT_CALLER = "79031234567"


class ScenarioError(ValueError):
    """A scenario or live-call action that cannot run with the given options."""


class Call:
    def __init__(
        self,
        sim,
        *,
        direction,
        line_number,
        t0=None,
        rng=None,
        quirks=True,
        command_id=None,
        initiator=None,
    ):
        self.sim = sim
        self.state = sim.state
        self.rng = rng or random.Random()
        self.quirks = quirks
        serial = self.state.next_serial()
        self.serial = serial
        self.product_id = self.state.product_id
        self.entry_id = opaque_id(self.product_id * 7 + serial, serial)
        self.direction = direction
        self.line_number = line_number
        self.command_id = command_id
        self.callback_initiator = initiator
        self.t = int(t0 if t0 is not None else sim.clock.now())
        self.create_time = self.t
        self.forward_time = 0
        self.talk_time = 0
        self.end_time = 0
        self.legs = {}
        self.leg_order = []
        self.recordings = {}
        self.events = []
        self.finished = False
        self.summary_from = {}
        self.summary_to = {}
        self.disconnect_reason = None
        self.caller_leg = None
        self.operator_leg = None
        self.queue_group = None
        self.record = True
        # Set by Simulator.play(pace="realtime"): called at every wait so the call
        # really lasts as long as its timestamps say.
        self.pacer = None

    # ---- primitives ------------------------------------------------------------------
    def wait(self, seconds):
        seconds = int(seconds)
        self.t += seconds
        if self.pacer and seconds > 0:
            self.pacer(self, seconds)

    def _maybe_str(self, value):
        if self.quirks and self.rng.random() < 0.3:
            return str(value)
        return value

    def _typed_extension(self, party):
        """DOC2026 types ``extension`` as an integer, examples send strings: vary."""
        party = dict(party)
        extension = party.get("extension")
        digits = str(extension).isdigit() and not str(extension).startswith("0")
        if self.quirks and digits and self.rng.random() < 0.2:
            party["extension"] = int(extension)
        return party

    def new_leg(self, location, from_, to, *, taken_from=None, command_id=None):
        index = len(self.leg_order) + 1
        call_id = opaque_id(
            1, self.product_id + self.serial * 100 + index, self.serial, index
        )
        from_ = {k: v for k, v in from_.items() if v not in (None, "")}
        if taken_from:
            from_["taken_from_call_id"] = taken_from["call_id"]
        leg = {
            "call_id": call_id,
            "seq": 0,
            "state": None,
            "location": location,
            "from": from_,
            "to": {k: v for k, v in to.items() if v not in (None, "")},
            "command_id": command_id,
            "appeared_at": self.t,
            "connected_at": 0,
            "disconnected_at": 0,
            "disconnect_reason": None,
            "recording": None,
        }
        self.legs[call_id] = leg
        self.leg_order.append(call_id)
        self.sim.register_leg(call_id, self)
        self.emit(leg, "Appeared")
        return leg

    def emit(self, leg, call_state, location=None, disconnect_reason=None):
        if location:
            leg["location"] = location
        leg["seq"] += 1
        leg["state"] = call_state
        payload = {
            "entry_id": self.entry_id,
            "call_id": leg["call_id"],
            "timestamp": self.t,
            "seq": self._maybe_str(leg["seq"]),
            "call_state": call_state,
            "location": leg["location"],
            "from": dict(leg["from"]),
            "to": self._typed_extension(leg["to"]),
            "dct": {"number": "", "type": 0},
        }
        if call_state == "Connected" and not leg["connected_at"]:
            leg["connected_at"] = self.t
        if call_state == "Disconnected":
            leg["disconnected_at"] = self.t
            leg["disconnect_reason"] = disconnect_reason
            payload["disconnect_reason"] = disconnect_reason
        if leg["command_id"]:
            payload["command_id"] = leg["command_id"]
        if self.callback_initiator:
            payload["callback_initiator"] = self.callback_initiator
        self.events.append(("events/call", payload))

    def disconnect(self, leg, reason):
        if leg["state"] != "Disconnected":
            if leg.get("recording"):
                self.complete_recording(leg)
            self.emit(leg, "Disconnected", disconnect_reason=reason)

    def start_recording(self, leg, user, command_id=None):
        recording_id = opaque_id(
            1, self.product_id, 5000000000 + self.serial * 100 + len(self.recordings), 1
        )
        rec = {
            "recording_id": recording_id,
            "entry_id": self.entry_id,
            "call_id": leg["call_id"],
            "extension": user["extension"],
            "user_id": user["user_id"],
            "started_at": self.t,
            "completed_at": 0,
            "completion_code": None,
            "recipient": "Cloud",
            "seq": 0,
            "command_id": command_id,
        }
        self.recordings[recording_id] = rec
        leg["recording"] = recording_id
        self._recording_event(rec, "Started")
        return rec

    def complete_recording(self, leg, code=None):
        rec = self.recordings[leg["recording"]]
        leg["recording"] = None
        rec["completed_at"] = self.t
        duration = self.t - rec["started_at"]
        rec["completion_code"] = code or (1000 if duration >= 2 else 4002)
        self._recording_event(rec, "Completed")

    def _recording_event(self, rec, state):
        rec["seq"] += 1
        payload = {
            "recording_id": rec["recording_id"],
            "recording_state": state,
            "seq": self._maybe_str(rec["seq"]),
            "entry_id": self.entry_id,
            "call_id": rec["call_id"],
            "extension": rec["extension"],
            # DOC2017's example carries the timestamp as a string: keep that quirk.
            "timestamp": str(self.t) if self.quirks else self.t,
        }
        if rec["command_id"]:
            payload["command_id"] = rec["command_id"]
        if state == "Completed":
            payload["completion_code"] = rec["completion_code"]
            payload["recipient"] = rec["recipient"]
        self.events.append(("events/recording", payload))

    def command_result(self, command, command_id, result):
        if command_id is None:
            return
        value = str(result) if self.quirks and self.rng.random() < 0.3 else result
        self.events.append(
            (f"result/{command}", {"command_id": command_id, "result": value})
        )

    # ---- helpers ---------------------------------------------------------------------
    def user_to(self, user, group=None):
        return {
            "extension": user["extension"],
            "number": self.state.sip_uri(user),
            "line_number": self.line_number,
            "acd_group": group["extension"] if group else None,
        }

    def active_legs(self):
        return [
            self.legs[c]
            for c in self.leg_order
            if self.legs[c]["state"] != "Disconnected"
        ]

    def connected_leg(self):
        for leg in self.active_legs():
            if leg["state"] == "Connected" and leg["location"] == "abonent":
                return leg
        return None

    def ringing_legs(self):
        return [
            leg
            for leg in self.active_legs()
            if leg["state"] == "Appeared" and leg["location"] == "abonent"
        ]

    # ---- incoming building blocks ----------------------------------------------------
    def incoming(self, caller, ivr_seconds=4):
        self.summary_from = {"number": caller}
        self.caller_leg = self.new_leg(
            "ivr",
            {"number": caller},
            {"number": self.line_number, "line_number": self.line_number},
        )
        self.emit(self.caller_leg, "Connected")
        self.wait(ivr_seconds)
        return self.caller_leg

    def to_queue(self, group):
        self.queue_group = group
        self.caller_leg["to"]["acd_group"] = group["extension"]
        self.forward_time = self.t
        self.emit(self.caller_leg, "Connected", location="queue")

    def ring(self, user, from_leg=None):
        source = from_leg or self.caller_leg
        leg = self.new_leg(
            "abonent",
            {"number": source["from"].get("number")},
            self.user_to(user, self.queue_group),
            taken_from=source,
        )
        leg["user_id"] = user["user_id"]
        if not self.forward_time:
            self.forward_time = self.t
        return leg

    def answer(self, leg=None):
        leg = leg or (self.ringing_legs() or [None])[0]
        if leg is None:
            raise ScenarioError("No ringing leg to answer")
        self.emit(leg, "Connected")
        self.talk_time = self.talk_time or self.t
        self.operator_leg = leg
        for other in self.ringing_legs():
            if other is not leg:
                self.disconnect(other, 1182)
        if (
            self.caller_leg
            and self.caller_leg["state"] != "Disconnected"
            and self.caller_leg is not leg
        ):
            self.disconnect(self.caller_leg, 1000)
        user = self.state.users.get(leg.get("user_id"))
        self.summary_to = {
            "extension": leg["to"].get("extension"),
            "number": leg["to"].get("number"),
        }
        if self.record and user:
            self.start_recording(leg, user)
        return leg

    def hangup(self, reason=1110):
        for leg in reversed(self.active_legs()):
            self.disconnect(leg, reason)
        self.disconnect_reason = reason
        self.finish()

    def blind_transfer(self, target_user, command_id=None):
        leg = self.connected_leg()
        if leg is None:
            raise ScenarioError("No connected leg to transfer")
        self.disconnect(leg, 1000)
        new = self.new_leg(
            "abonent",
            {"number": leg["from"].get("number")}
            if self.direction == 1
            else dict(leg["to"]),
            self.user_to(target_user),
            taken_from=leg,
            command_id=command_id,
        )
        new["user_id"] = target_user["user_id"]
        self.wait(3)
        self.answer(new)
        return new

    # ---- end of call -----------------------------------------------------------------
    def finish(self):
        if self.finished:
            return
        self.finished = True
        self.end_time = self.t
        answered = bool(self.talk_time)
        to = dict(self.summary_to)
        if not answered:
            # Missed: the first link of the forwarding chain; no device for a group.
            if self.queue_group:
                to = {"extension": self.queue_group["extension"]}
            elif not to:
                to = {"number": self.line_number}
        summary = {
            "entry_id": self.entry_id,
            "call_direction": self.direction,
            "from": {k: v for k, v in self.summary_from.items() if v not in (None, "")},
            "to": {k: v for k, v in to.items() if v not in (None, "")},
            "line_number": self.line_number,
            "create_time": self.create_time,
            "forward_time": self.forward_time if answered else 0,
            "talk_time": self.talk_time,
            "end_time": self.end_time,
            "entry_result": 1 if answered else 0,
            "disconnect_reason": self.disconnect_reason,
        }
        if self.direction == 0:
            summary.pop("line_number")
        self.events.append(("events/summary", summary))
        stored = []
        for rec in self.recordings.values():
            if rec["completion_code"] == 1000:
                stored.append(rec["recording_id"])
                self.events.append(
                    (
                        "events/record/added",
                        {
                            "entry_id": self.entry_id,
                            "product_id": self.product_id,
                            "user_id": rec["user_id"],
                            "timestamp": self.t + 5,
                            "recording_id": rec["recording_id"],
                        },
                    )
                )
        self.sim.store_finished_call(self, summary, stored)


# ---- scripted scenarios --------------------------------------------------------------
def _line(sim, options):
    number = options.get("line_number")
    if number:
        return str(number)
    if not sim.state.lines:
        raise ScenarioError("The PBX has no lines; seed one or pass line_number")
    return sim.state.lines[0]["number"]


def _user(sim, extension, default_index=0):
    state = sim.state
    if extension:
        user = state.user_by_extension(extension)
        if user is None:
            raise ScenarioError(f"No employee with extension {extension}")
        return user
    users = sorted(state.users.values(), key=lambda u: u["extension"])
    if not users:
        raise ScenarioError("The PBX has no employees")
    return users[min(default_index, len(users) - 1)]


def _group(sim, options, user=None):
    state = sim.state
    extension = options.get("group")
    if extension:
        group = state.group_by_extension(extension)
        if group is None:
            raise ScenarioError(f"No group with extension {extension}")
        return group
    for group in sorted(state.groups.values(), key=lambda g: g["extension"]):
        if user is None or user["user_id"] in group["operators"]:
            return group
    return None


def _new_call(sim, options, direction, **kwargs):
    call = Call(
        sim,
        direction=direction,
        line_number=_line(sim, options),
        t0=options.get("start_time"),
        rng=options["_rng"],
        quirks=options.get("quirks", sim.settings["quirks"]),
        **kwargs,
    )
    call.record = bool(options.get("record", True))
    call.pacer = options.get("_pacer")
    return call


def incoming_answered(sim, options):
    user = _user(sim, options.get("extension"))
    group = _group(sim, options, user)
    call = _new_call(sim, options, 1)
    call.incoming(
        str(options.get("from_number") or DEFAULT_CALLER), options.get("ivr_seconds", 4)
    )
    if group:
        call.to_queue(group)
        call.wait(options.get("queue_seconds", 3))
    call.ring(user)
    if options.get("live"):
        return call
    call.wait(options.get("ring_seconds", 5))
    call.answer()
    call.wait(options.get("talk_seconds", 42))
    call.hangup(int(options.get("disconnect_reason", 1110)))
    return call


def incoming_missed_queue(sim, options):
    group = _group(sim, options)
    if group is None:
        raise ScenarioError("incoming_missed_queue needs a group with operators")
    call = _new_call(sim, options, 1)
    call.incoming(
        str(options.get("from_number") or DEFAULT_CALLER), options.get("ivr_seconds", 4)
    )
    call.to_queue(group)
    call.wait(1)
    operators = [
        sim.state.users[uid] for uid in group["operators"] if uid in sim.state.users
    ]
    legs = [call.ring(user) for user in operators]
    call.wait(options.get("ring_seconds", 20))
    for leg in legs:
        call.disconnect(leg, 1111)
    call.wait(options.get("queue_seconds", 15))
    call.hangup(int(options.get("disconnect_reason", 1164)))
    return call


def incoming_missed_no_operator(sim, options):
    group = _group(sim, options)
    call = _new_call(sim, options, 1)
    call.incoming(
        str(options.get("from_number") or DEFAULT_CALLER), options.get("ivr_seconds", 4)
    )
    if group:
        call.to_queue(group)
    call.wait(options.get("queue_seconds", 25))
    call.hangup(int(options.get("disconnect_reason", 1110)))
    return call


def click_to_call(sim, options):
    """commands/callback: the employee's device rings first, then the customer."""
    user = _user(sim, options.get("extension"))
    to_number = str(
        options.get("to_number") or options.get("from_number") or DEFAULT_CALLER
    )
    command_id = options.get("command_id") or f"sim-{sim.state.next_serial()}"
    call = _new_call(
        sim,
        options,
        2,
        command_id=command_id,
        initiator=options.get("callback_initiator", "API"),
    )
    device = options.get("device_number") or sim.state.sip_uri(user)
    call.summary_from = {"extension": user["extension"], "number": device}
    call.forward_time = call.t
    employee_leg = call.new_leg(
        "abonent",
        {"number": call.line_number},
        {
            "extension": user["extension"],
            "number": device,
            "line_number": call.line_number,
        },
        command_id=command_id,
    )
    employee_leg["user_id"] = user["user_id"]
    call.wait(options.get("ring_seconds", 3))
    if not options.get("employee_answers", True):
        call.command_result("callback", command_id, 1000)
        call.hangup(1111)
        return call
    call.emit(employee_leg, "Connected")
    call.disconnect(employee_leg, 1000)
    # to_number may be a colleague's extension: then it is an internal call.
    colleague = sim.state.user_by_extension(to_number)
    if colleague:
        call.direction = 0
        target = call.user_to(colleague)
        summary_to = {"extension": colleague["extension"], "number": target["number"]}
    else:
        target = {"number": to_number, "line_number": call.line_number}
        summary_to = {"number": to_number}
    customer_leg = call.new_leg(
        "abonent",
        {"extension": user["extension"], "number": device},
        target,
        taken_from=employee_leg,
        command_id=command_id,
    )
    call.command_result("callback", command_id, 1000)
    call.wait(options.get("dial_seconds", 6))
    call.summary_to = summary_to
    if not options.get("answered", True):
        call.hangup(int(options.get("disconnect_reason", 1111)))
        return call
    call.emit(customer_leg, "Connected")
    call.talk_time = call.t
    call.operator_leg = customer_leg
    if call.record:
        call.start_recording(customer_leg, user)
    call.wait(options.get("talk_seconds", 35))
    call.hangup(int(options.get("disconnect_reason", 1120)))
    return call


def callback_group(sim, options):
    """commands/callback_group, from=customer and to=group: the customer rings first."""
    group = _group(sim, options)
    if group is None:
        raise ScenarioError("callback_group needs a group")
    customer = str(options.get("from_number") or DEFAULT_CALLER)
    command_id = options.get("command_id") or f"sim-{sim.state.next_serial()}"
    call = _new_call(
        sim,
        options,
        2,
        command_id=command_id,
        initiator=options.get("callback_initiator", "API"),
    )
    call.queue_group = group
    call.summary_from = {"extension": group["extension"]}
    customer_leg = call.new_leg(
        "abonent",
        {"extension": group["extension"], "number": call.line_number},
        {"number": customer, "line_number": call.line_number},
        command_id=command_id,
    )
    call.caller_leg = customer_leg
    call.command_result("callback_group", command_id, 1000)
    call.wait(options.get("dial_seconds", 6))
    if not options.get("answered", True):
        call.summary_to = {"number": customer}
        call.queue_group = None
        call.hangup(int(options.get("disconnect_reason", 1111)))
        return call
    call.emit(customer_leg, "Connected")
    operators = [
        sim.state.users[uid] for uid in group["operators"] if uid in sim.state.users
    ]
    if options.get("extension"):
        operators = [_user(sim, options["extension"])]
    if not operators:
        call.wait(10)
        call.hangup(1164)
        return call
    leg = call.new_leg(
        "abonent",
        {"number": customer},
        call.user_to(operators[0], group),
        taken_from=customer_leg,
        command_id=command_id,
    )
    leg["user_id"] = operators[0]["user_id"]
    call.wait(options.get("ring_seconds", 4))
    call.emit(leg, "Connected")
    call.talk_time = call.t
    call.summary_to = {"extension": operators[0]["extension"], "number": customer}
    call.disconnect(customer_leg, 1000)
    if call.record:
        call.start_recording(leg, operators[0])
    call.wait(options.get("talk_seconds", 30))
    call.hangup(int(options.get("disconnect_reason", 1110)))
    return call


def transfer(sim, options):
    """An incoming call answered by one employee and blind-transferred to another."""
    user = _user(sim, options.get("extension"))
    target_ext = options.get("to_extension")
    if target_ext:
        target = _user(sim, target_ext)
    else:
        others = sorted(
            (u for u in sim.state.users.values() if u is not user),
            key=lambda u: u["extension"],
        )
        if not others:
            raise ScenarioError("transfer needs a second employee")
        target = others[0]
    call = _new_call(sim, options, 1)
    call.incoming(
        str(options.get("from_number") or DEFAULT_CALLER), options.get("ivr_seconds", 4)
    )
    group = _group(sim, options, user)
    if group:
        call.to_queue(group)
        call.wait(2)
    call.ring(user)
    call.wait(options.get("ring_seconds", 4))
    call.answer()
    call.wait(options.get("talk_seconds", 20))
    call.blind_transfer(target)
    call.wait(options.get("second_talk_seconds", 30))
    call.hangup(int(options.get("disconnect_reason", 1110)))
    return call


RUNNERS = {
    "incoming_answered": incoming_answered,
    "incoming_missed_queue": incoming_missed_queue,
    "incoming_missed_no_operator": incoming_missed_no_operator,
    "click_to_call": click_to_call,
    "callback_group": callback_group,
    "transfer": transfer,
}
