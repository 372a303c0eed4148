"""The call log: one ``mango.call`` per Mango call group (``entry_id``) with its legs,
and the post-fold pipeline: what runs after every fold, in which order.

Records are written only by the event worker from the core fold
(``mango_office.calls``); nothing here re-implements Mango's semantics. Every side
effect of a fold (caller identification, recordings, routing, chatter, missed
calls, the incoming-call card, statistics…) is a named step of
``_mango_post_fold_steps``, listed here in the order it runs and written in the
file of its concept: one list answers "what happens after a call changes".
"""

from datetime import datetime, timezone

from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from mango_office import codes, phones

from ..compat.constraints import table_constraints

DIRECTIONS = [
    ("incoming", "Incoming"),
    ("outgoing", "Outgoing"),
    ("internal", "Internal"),
]
STATUSES = [
    ("ringing", "Ringing"),
    ("in_progress", "In progress"),
    ("answered", "Answered"),
    ("missed", "Missed"),
    ("failed", "Failed"),
]
# Every documented result code as a selection: its labels are translated by
# Odoo like any selection, where the core only has English words.
DISCONNECT_REASONS = [
    (str(code), f"{code} · {text}") for code, text in sorted(codes.RESULT_CODES.items())
]
# What the call form lets people change. The rest is what Mango reported: a user
# rewriting it (RPC ignores ``readonly``) would hand calls to colleagues, hide
# them in another company or edit the statistics.
USER_EDITABLE_FIELDS = frozenset({"partner_id", "lead_id"})
LEG_STATES = [
    ("Appeared", "Ringing"),
    ("Connected", "Connected"),
    ("OnHold", "On hold"),
    ("Disconnected", "Disconnected"),
]


def _from_epoch(value):
    if value is None:
        return False
    return datetime.fromtimestamp(int(value), tz=timezone.utc).replace(tzinfo=None)


def known_reason_code(code):
    """The documented code explaining ``code`` (its nearest ancestor, reference §5)."""
    if code is None:
        return False
    for candidate in (code, code // 10 * 10, code // 100 * 100, code // 1000 * 1000):
        if candidate in codes.RESULT_CODES:
            return str(candidate)
    return False


@table_constraints
class MangoCall(models.Model):
    _name = "mango.call"
    _description = "Phone call"
    _inherit = ["mail.thread"]
    _order = "start_time desc, id desc"

    account_id = fields.Many2one(
        "mango.account", required=True, ondelete="restrict", index=True, readonly=True
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, readonly=True
    )
    entry_id = fields.Char(string="Entry ID", required=True, readonly=True)
    direction = fields.Selection(DIRECTIONS, readonly=True, index=True)
    status = fields.Selection(
        STATUSES, required=True, default="ringing", readonly=True, index=True
    )
    caller_number = fields.Char(readonly=True)
    caller_number_e164 = fields.Char(
        string="Caller (E.164)", readonly=True, index="btree_not_null"
    )
    called_number = fields.Char(readonly=True)
    called_number_e164 = fields.Char(
        string="Called (E.164)", readonly=True, index="btree_not_null"
    )
    customer_number_e164 = fields.Char(
        string="Customer number",
        readonly=True,
        index="btree_not_null",
        help="The outside party: the caller of an incoming call, "
        "the callee of an outgoing one.",
    )
    line_number = fields.Char(string="Line", readonly=True, index="btree_not_null")
    user_id = fields.Many2one(
        "res.users",
        string="Answered by",
        readonly=True,
        index="btree_not_null",
        help="The user whose extension answered the call.",
    )
    employee_user_id = fields.Many2one(
        "res.users",
        string="Employee",
        readonly=True,
        index="btree_not_null",
        help="Who made the call, answered it, or was rung first when nobody did.",
    )
    answered_extension = fields.Char(readonly=True)
    employee_extension = fields.Char(readonly=True)
    group_extension = fields.Char(string="Group", readonly=True)
    start_time = fields.Datetime(readonly=True, index=True)
    answer_time = fields.Datetime(readonly=True)
    end_time = fields.Datetime(readonly=True)
    # Seconds; the views show them as h:mm:ss (widget mango_duration).
    wait_duration = fields.Float(
        string="Waiting time",
        readonly=True,
        aggregator="avg",
        help="Seconds the caller waited before an answer, or before giving up.",
    )
    talk_duration = fields.Float(
        string="Talk time", readonly=True, aggregator="sum", help="Seconds of talk."
    )
    disconnect_reason = fields.Integer(readonly=True, aggregator=None)
    disconnect_reason_code = fields.Selection(
        DISCONNECT_REASONS,
        string="Disconnect reason",
        readonly=True,
        help="The documented Mango result code explaining how the call ended.",
    )
    disconnect_reason_text = fields.Char(readonly=True)
    callback_initiator = fields.Char(readonly=True)
    partner_id = fields.Many2one(
        "res.partner", string="Contact", index="btree_not_null", tracking=True
    )
    lead_id = fields.Many2one(
        "crm.lead", string="Lead/Opportunity", index="btree_not_null", tracking=True
    )
    leg_ids = fields.One2many("mango.call.leg", "call_id", string="Legs", readonly=True)
    command_id = fields.Char(
        readonly=True,
        index="btree_not_null",
        help="The id of our command (click-to-call, callback) that started the call.",
    )
    origin_model = fields.Char(readonly=True)
    origin_res_id = fields.Many2oneReference(model_field="origin_model", readonly=True)
    fold_state = fields.Json(
        readonly=True,
        copy=False,
        help="The core fold of every stored event of this call.",
    )
    # Raw events are the telephony administrators' (mango.event's access): the
    # field is theirs too, so that no list, export or form offers it to others.
    event_ids = fields.One2many(
        "mango.event",
        "call_id",
        readonly=True,
        groups="mango_telephony.group_mango_admin",
    )
    event_count = fields.Integer(compute="_compute_event_count")

    _sql_constraints = [
        (
            "entry_account_uniq",
            "unique(account_id, entry_id)",
            "A call is recorded once per account.",
        ),
    ]

    @api.depends("direction", "customer_number_e164", "caller_number", "start_time")
    def _compute_display_name(self):
        directions = dict(self._fields["direction"]._description_selection(self.env))
        for call in self:
            number = (
                call.partner_id.display_name
                or call.customer_number_e164
                or call.caller_number
                or call.entry_id
            )
            label = directions.get(call.direction) or _("Call")
            call.display_name = f"{label}: {number}"

    def _compute_event_count(self):
        if not self.ids:
            self.event_count = 0
            return
        counts = dict(
            self.env["mango.event"]
            .sudo()
            ._read_group([("call_id", "in", self.ids)], ["call_id"], ["__count"])
        )
        for call in self:
            call.event_count = counts.get(call, 0)

    def write(self, vals):
        if not self._mango_may_rewrite():
            refused = [
                name
                for name in vals
                if name not in USER_EDITABLE_FIELDS and not name.startswith("message_")
            ]
            if refused:
                raise AccessError(
                    _(
                        "Only telephony administrators change what Mango reported "
                        "about a call (%(fields)s); you may set its contact and "
                        "lead.",
                        fields=", ".join(
                            self._fields[name]._description_string(self.env)
                            if name in self._fields
                            else name
                            for name in refused
                        ),
                    )
                )
        return super().write(vals)

    def _mango_may_rewrite(self):
        env = self.env
        return (
            env.su
            or env.user._is_superuser()
            or env.user.has_group("mango_telephony.group_mango_admin")
        )

    # ------------------------------------------------------------------ fold

    @api.model
    def _mango_write_fold(self, account, folded):
        """Create or update the call of ``folded`` (a core ``Call``) and its legs,
        then run the post-fold pipeline.

        :param account: the ``mango.account`` the events came from
        :param folded: ``mango_office.calls.Call`` folded from every stored event
        :return: the ``mango.call`` record
        """
        call = self.with_context(active_test=False).search(
            [("account_id", "=", account.id), ("entry_id", "=", folded.entry_id)],
            limit=1,
        )
        state = folded.to_dict()
        if call and call.fold_state == state:
            return call
        extensions = {folded.answered_extension, folded.employee_extension}
        for leg in folded.legs.values():
            extensions.add(leg.to_extension or leg.from_extension)
        users = account._mango_users_for_extensions(extensions)
        vals = self._mango_values_from_fold(account, folded, users)
        vals["fold_state"] = state
        previous = {}
        if call:
            previous[call.id] = {"status": call.status, "is_new": False}
            call.write(vals)
        else:
            call = self.create(
                {**vals, "account_id": account.id, "entry_id": folded.entry_id}
            )
            previous[call.id] = {"status": False, "is_new": True}
        call._mango_sync_legs(folded, users)
        call._mango_on_call_updated(previous)
        return call

    @api.model
    def _mango_values_from_fold(self, account, folded, users):
        company = account.company_id
        region = company.country_id.code or "RU"

        def e164(number):
            return phones.normalize(number, region) or False

        def find_user(extension):
            return users.get(str(extension).strip()) if extension else None

        reason = folded.disconnect_reason
        return {
            "company_id": company.id,
            "direction": folded.direction or False,
            "status": folded.status,
            "caller_number": folded.caller_number or False,
            "caller_number_e164": e164(folded.caller_number),
            "called_number": folded.called_number or False,
            "called_number_e164": e164(folded.called_number),
            "customer_number_e164": e164(folded.customer_number),
            "line_number": folded.line_number or False,
            "answered_extension": folded.answered_extension or False,
            "employee_extension": folded.employee_extension or False,
            "group_extension": folded.group_extension or False,
            "user_id": (
                find_user(folded.answered_extension) or self.env["res.users"]
            ).id,
            "employee_user_id": (
                find_user(folded.employee_extension) or self.env["res.users"]
            ).id,
            "start_time": _from_epoch(folded.start_time),
            "answer_time": _from_epoch(folded.answer_time),
            "end_time": _from_epoch(folded.end_time),
            "wait_duration": folded.wait_seconds or 0.0,
            "talk_duration": folded.talk_seconds or 0.0,
            "disconnect_reason": reason or 0,
            "disconnect_reason_code": known_reason_code(reason),
            "disconnect_reason_text": folded.disconnect_reason_text or False,
            "callback_initiator": folded.callback_initiator or False,
            "command_id": min(folded.command_ids) if folded.command_ids else False,
        }

    def _mango_sync_legs(self, folded, users):
        self.ensure_one()
        existing = {leg.mango_call_id: leg for leg in self.leg_ids}
        commands = []
        for leg_id, leg in folded.legs.items():
            vals = {
                "mango_call_id": leg_id,
                "seq": leg.seq,
                "state": leg.state if leg.state in dict(LEG_STATES) else False,
                "location": leg.location or False,
                "from_number": leg.from_number or False,
                "from_extension": leg.from_extension or False,
                "to_number": leg.to_number or False,
                "to_extension": leg.to_extension or False,
                "line_number": leg.line_number or False,
                "acd_group": leg.acd_group or False,
                "taken_from_call_id": leg.taken_from_call_id or False,
                "is_transfer": folded.is_transfer(leg_id),
                "command_id": leg.command_id or False,
                "appeared_at": _from_epoch(leg.appeared_at),
                "connected_at": _from_epoch(leg.connected_at),
                "disconnected_at": _from_epoch(leg.disconnected_at),
                "disconnect_reason": leg.disconnect_reason or 0,
                "user_id": (
                    users.get(str(leg.to_extension or leg.from_extension or "").strip())
                    or self.env["res.users"]
                ).id,
            }
            record = existing.pop(leg_id, None)
            if record is None:
                commands.append(fields.Command.create(vals))
            elif (
                any(record[k] != v for k, v in vals.items() if k != "user_id")
                or (record.user_id.id or False) != vals["user_id"]
            ):
                commands.append(fields.Command.update(record.id, vals))
        commands.extend(fields.Command.delete(leg.id) for leg in existing.values())
        if commands:
            self.write({"leg_ids": commands})

    # ------------------------------------------------------------------ post-fold

    def _mango_post_fold_steps(self):
        """The post-fold pipeline: the names of the methods run after every fold
        write, in this order.

        Each step is a method of ``mango.call`` taking ``previous`` (see
        ``_mango_on_call_updated``), called on the folded calls. It runs in the
        event worker, never in the webhook request, and may run again for the
        same call (a re-fold, a retried event, a replay): it must then change
        nothing. Another addon adds a step by extending this list, e.g.
        ``[*super()._mango_post_fold_steps(), "_mango_step_mine"]``, or by
        inserting its name before the step it must precede; it never wraps
        ``_mango_on_call_updated``.

        :rtype: list[str]
        """
        return [
            # First: the commands that started the calls, and what their owners
            # know (the record a user clicked on), so that identification and
            # the chatter post use it rather than a namesake sharing the number.
            "_mango_step_link_commands",  # mango_command.py
            "_mango_step_identify_caller",  # caller_identification.py
            "_mango_step_schedule_recordings",  # mango_call_recording.py
            "_mango_step_smart_route",  # smart_routing.py
            "_mango_step_post_on_chatter",  # call_chatter.py
            # After the chatter: the activity links the call the chatter shows.
            "_mango_step_follow_missed_call",  # missed_calls.py
            "_mango_step_push_cards",  # incoming_card.py
            "_mango_step_push_live",  # incoming_card.py
            "_mango_step_refresh_statistics",  # mango_call_stat.py
        ]

    def _mango_on_call_updated(self, previous):
        """Run the post-fold pipeline (``_mango_post_fold_steps``) on these calls.

        Not to be overridden: a new side effect is a new step.

        :param dict previous: ``{call.id: {"status": str|False, "is_new": bool}}``,
            the calls' state before this write
        """
        for step in self._mango_post_fold_steps():
            getattr(self, step)(previous)
        return True

    def _mango_external_number(self):
        """The outside party's number (E.164) or False."""
        self.ensure_one()
        if self.customer_number_e164 and self.customer_number_e164.startswith("+"):
            return self.customer_number_e164
        return False

    # ------------------------------------------------------------------ actions

    def action_view_events(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Raw events"),
            "res_model": "mango.event",
            "view_mode": "list,form",
            "domain": [("call_id", "=", self.id)],
        }


@table_constraints
class MangoCallLeg(models.Model):
    _name = "mango.call.leg"
    _description = "Phone call leg"
    _order = "appeared_at, id"
    _rec_name = "mango_call_id"

    call_id = fields.Many2one(
        "mango.call", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="call_id.company_id", store=True)
    mango_call_id = fields.Char(
        string="Leg ID",
        required=True,
        readonly=True,
        help="Mango's call_id of the leg.",
    )
    seq = fields.Integer(readonly=True)
    state = fields.Selection(LEG_STATES, readonly=True)
    location = fields.Char(readonly=True)
    from_number = fields.Char(readonly=True)
    from_extension = fields.Char(readonly=True)
    to_number = fields.Char(readonly=True)
    to_extension = fields.Char(readonly=True)
    line_number = fields.Char(string="Line", readonly=True)
    acd_group = fields.Char(string="Group", readonly=True)
    # Mango sets it on queue and callback legs too: not a sign of a transfer.
    taken_from_call_id = fields.Char(string="Taken from leg", readonly=True)
    is_transfer = fields.Boolean(
        string="Transfer",
        readonly=True,
        help="An employee handed this party over to the leg's employee.",
    )
    command_id = fields.Char(readonly=True)
    appeared_at = fields.Datetime(readonly=True)
    connected_at = fields.Datetime(readonly=True)
    disconnected_at = fields.Datetime(readonly=True)
    disconnect_reason = fields.Integer(readonly=True, aggregator=None)
    user_id = fields.Many2one(
        "res.users", string="Employee", readonly=True, index="btree_not_null"
    )

    _sql_constraints = [
        (
            "call_leg_uniq",
            "unique(call_id, mango_call_id)",
            "A leg is recorded once per call.",
        ),
    ]
