"""What happens around a call once Mango has told us about it.

Everything here runs from the fold hook ``_mango_on_call_updated``, i.e. in the
event worker, never in the webhook request; every step may run again for the
same call (a re-fold, a retried event) and must then change nothing.
"""

import logging

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError

from mango_office import errors as mango_errors
from mango_office import phones
from mango_office.rules import FINISHED_STATUSES

_logger = logging.getLogger(__name__)

# Where a call waits for Mango's own distribution (reference §2.4): voice menu
# (also "ivr.2" …) or an operator group's queue.
WAITING_LOCATIONS = ("ivr", "queue")
CALLBACK_ACTIVITY_XMLID = "mango_telephony.mail_activity_type_mango_call_back"


def _format_duration(env, seconds):
    seconds = int(seconds or 0)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return env._("%(h)s h %(m)02d min", h=hours, m=minutes)
    if minutes:
        return env._("%(m)s min %(s)02d s", m=minutes, s=seconds)
    return env._("%(s)s s", s=seconds)


class MangoCall(models.Model):
    _name = "mango.call"
    _inherit = ["mango.call", "mail.activity.mixin"]

    recording_ids = fields.One2many(
        "mango.call.recording", "call_id", string="Recordings"
    )
    recording_count = fields.Integer(compute="_compute_recording_count")
    recording_player_html = fields.Html(
        string="Recording", compute="_compute_recording_player_html", sanitize=False
    )
    callback_activity_id = fields.Many2one(
        "mail.activity",
        string="Call-back activity",
        readonly=True,
        ondelete="set null",
        copy=False,
    )
    callback_call_id = fields.Many2one(
        "mango.call",
        string="Called back by",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        copy=False,
        help="The first answered call with this number after this missed call.",
    )
    time_to_callback = fields.Integer(
        string="Time to call back",
        readonly=True,
        aggregator="avg",
        help="Seconds from the end of this missed call to the start of the call "
        "that reached the customer.",
    )
    callback_pending = fields.Boolean(
        string="Not called back",
        compute="_compute_callback_pending",
        search="_search_callback_pending",
        help="An incoming call nobody answered and nobody has called back yet.",
    )
    chatter_partner_id = fields.Many2one(
        "res.partner",
        readonly=True,
        copy=False,
        help="Contact whose chatter shows this call.",
    )
    chatter_lead_id = fields.Many2one(
        "crm.lead",
        readonly=True,
        copy=False,
        help="Lead whose chatter shows this call.",
    )
    caller_identified = fields.Boolean(
        readonly=True,
        copy=False,
        help="The caller has been looked up once; a later edit of the contact by "
        "hand is not overridden.",
    )
    route_state = fields.Selection(
        [
            ("sent", "Sent to the salesperson"),
            ("throttled", "Skipped (Mango's rate limit)"),
            ("failed", "Refused by Mango"),
        ],
        string="Smart routing",
        readonly=True,
        copy=False,
    )
    route_user_id = fields.Many2one(
        "res.users", string="Routed to", readonly=True, copy=False
    )
    route_command_id = fields.Char(readonly=True, copy=False)

    @api.depends("recording_ids")
    def _compute_recording_count(self):
        for call in self:
            call.recording_count = len(call.recording_ids)

    @api.depends("recording_ids.state")
    @api.depends_context("uid")
    def _compute_recording_player_html(self):
        may_listen = self.env.user.has_group(
            "mango_telephony.group_mango_recording_listener"
        )
        for call in self:
            recordings = call.sudo().recording_ids.sorted("id")
            call.recording_player_html = (
                Markup("").join(
                    Markup('<div class="mb-1">%s</div>')
                    % rec._mango_player_markup(may_listen)
                    for rec in recordings
                )
                if recordings
                else False
            )

    @api.depends("status", "direction", "callback_call_id")
    def _compute_callback_pending(self):
        for call in self:
            call.callback_pending = (
                call.status == "missed"
                and call.direction == "incoming"
                and not call.callback_call_id
            )

    def _search_callback_pending(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise NotImplementedError(
                self.env._("Unsupported search on 'Not called back'.")
            )
        pending = [
            ("status", "=", "missed"),
            ("direction", "=", "incoming"),
            ("callback_call_id", "=", False),
        ]
        if (operator == "=") == value:
            return pending
        return ["!", "&", "&", *pending]

    # ------------------------------------------------------------------
    # The hook
    # ------------------------------------------------------------------

    def _mango_on_call_updated(self, previous):
        result = super()._mango_on_call_updated(previous)
        for call in self:
            before = previous.get(call.id) or {}
            call._mango_identify_caller()
            call._mango_schedule_recordings()
            call._mango_smart_route()
            if call.status in FINISHED_STATUSES:
                call._mango_post_on_chatter()
                if call.status == "missed" and call.direction == "incoming":
                    call._mango_missed_call_activity()
                elif call.status == "answered" and before.get("status") != "answered":
                    call._mango_close_callbacks()
        return result

    # ------------------------------------------------------------------
    # Caller identification
    # ------------------------------------------------------------------

    def _mango_external_number(self):
        """The outside party's number (E.164) or False."""
        self.ensure_one()
        if self.customer_number_e164 and self.customer_number_e164.startswith("+"):
            return self.customer_number_e164
        return False

    def _mango_identify_caller(self):
        self.ensure_one()
        if self.caller_identified:
            return
        number = self._mango_external_number()
        if not number:
            # Internal calls have no customer; leaving the flag unset lets a later
            # event that reveals the direction try again.
            if self.direction == "internal":
                self.caller_identified = True
            return
        company = self.company_id
        vals = {"caller_identified": True}
        partner = self.partner_id or self.env[
            "res.partner"
        ].sudo()._mango_find_by_phone(number, company)
        lead = (
            self.lead_id
            or self.env["crm.lead"]
            .sudo()
            ._mango_find_open_by_phone(number, company)[:1]
        )
        if not partner and lead.partner_id:
            partner = lead.partner_id
        if not partner:
            partner = self._mango_find_employee_contact(number)
        if partner and not self.partner_id:
            vals["partner_id"] = partner.id
        if lead and not self.lead_id:
            vals["lead_id"] = lead.id
        self.write(vals)

    def _mango_find_employee_contact(self, number):
        """The work contact of an employee using ``number``, when HR is installed.

        Employees are few and their phones are free text without an index of
        ours, so they are compared after normalisation rather than searched.
        """
        if "hr.employee" not in self.env:
            return self.env["res.partner"]
        region = (self.company_id.country_id.code or "RU").upper()
        employees = (
            self.env["hr.employee"]
            .sudo()
            .search(
                [
                    ("company_id", "in", (False, self.company_id.id)),
                    "|",
                    ("work_phone", "!=", False),
                    ("mobile_phone", "!=", False),
                ]
            )
        )
        for employee in employees:
            for candidate in (employee.mobile_phone, employee.work_phone):
                if candidate and phones.normalize(candidate, region) == number:
                    return employee.work_contact_id or employee.user_id.partner_id
        return self.env["res.partner"]

    @api.model
    def _mango_call_to_link(self, call_id):
        """The call whose "new contact" or "new lead" button was pressed, when the
        current user may change it: the id comes from the client's context, and
        linking a colleague's call to a contact of one's own would show it to
        whoever is that contact's salesperson.

        :rtype: mango.call (empty when unknown or not the user's to change)
        """
        if not isinstance(call_id, int) or isinstance(call_id, bool) or call_id <= 0:
            return self.browse()
        call = self.browse(call_id).exists()
        if call and not self.env.su:
            try:
                call.check_access("write")
            except AccessError:
                _logger.info(
                    "User %s may not change call %s: not linking it",
                    self.env.uid,
                    call_id,
                )
                return self.browse()
        return call

    def _mango_link_partner(self, partner):
        """Attach ``partner`` to this call and to the other unmatched calls of
        the same number, then show the finished ones on its chatter."""
        if not partner:
            return
        calls = self.sudo().filtered(lambda c: not c.partner_id)
        numbers = [n for n in calls.mapped("customer_number_e164") if n]
        if numbers:
            calls |= self.sudo().search(
                [
                    ("customer_number_e164", "in", numbers),
                    ("company_id", "in", calls.company_id.ids),
                    ("partner_id", "=", False),
                ]
            )
        if not calls:
            return
        calls.write({"partner_id": partner.id, "caller_identified": True})
        calls.filtered(lambda c: c.status in FINISHED_STATUSES)._mango_post_on_chatter()

    def _mango_link_lead(self, lead):
        if not lead:
            return
        calls = self.sudo().filtered(lambda c: not c.lead_id)
        if not calls:
            return
        calls.write({"lead_id": lead.id, "caller_identified": True})
        if lead.partner_id:
            calls.filtered(lambda c: not c.partner_id).write(
                {"partner_id": lead.partner_id.id}
            )
        calls.filtered(lambda c: c.status in FINISHED_STATUSES)._mango_post_on_chatter()

    def action_mango_create_partner(self):
        """Open a new contact prefilled with the caller's number; saving it links
        the contact to this call (and other calls from the number)."""
        self.ensure_one()
        number = self.customer_number_e164 or self.caller_number or ""
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("New contact"),
            "res_model": "res.partner",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
            "context": {
                "default_phone": number,
                "default_name": False,
                "mango_link_call_id": self.id,
            },
        }

    def action_mango_create_lead(self):
        """Open a new lead prefilled with the caller's number (and contact);
        saving it links the lead to this call."""
        self.ensure_one()
        number = self.customer_number_e164 or self.caller_number or ""
        context = {
            "default_phone": number,
            "default_name": self.env._("Call from %(number)s", number=number),
            "default_type": "lead"
            if self.env.user.has_group("crm.group_use_lead")
            else "opportunity",
            "mango_link_call_id": self.id,
        }
        if self.partner_id:
            context["default_partner_id"] = self.partner_id.id
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("New lead"),
            "res_model": "crm.lead",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
            "context": context,
        }

    def action_mango_open_recordings(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Recordings"),
            "res_model": "mango.call.recording",
            "view_mode": "list,form",
            "domain": [("call_id", "=", self.id)],
            "context": {"create": False},
        }

    # ------------------------------------------------------------------
    # Recordings
    # ------------------------------------------------------------------

    def _mango_schedule_recordings(self):
        self.ensure_one()
        recordings = (self.fold_state or {}).get("recordings") or {}
        Recording = self.env["mango.call.recording"].sudo()
        for recording_id, info in recordings.items():
            # "saved": announced by record/added, or Completed into the cloud
            # (Cloud / CloudAndMail, completion 1000); Mail-only copies and failed
            # recordings (4002 too short …) cannot be fetched.
            if info.get("saved"):
                Recording._mango_schedule(
                    self,
                    recording_id,
                    info.get("extension"),
                    announced=bool(info.get("added")),
                )

    # ------------------------------------------------------------------
    # Chatter
    # ------------------------------------------------------------------

    def _mango_post_on_chatter(self):
        """Post each finished call once on its contact's and its lead's chatter."""
        for call in self.sudo():
            if call.status not in FINISHED_STATUSES:
                continue
            targets = []
            partner = call.partner_id
            if partner and partner != call.chatter_partner_id:
                targets.append(("chatter_partner_id", partner))
            if call.lead_id and call.lead_id != call.chatter_lead_id:
                targets.append(("chatter_lead_id", call.lead_id))
            if not targets:
                continue
            body = call._mango_chatter_body()
            author = (call.user_id or call.employee_user_id).partner_id
            for field_name, record in targets:
                record.with_context(mail_create_nosubscribe=True).message_post(
                    body=body,
                    message_type="comment",
                    subtype_xmlid="mail.mt_note",
                    author_id=author.id or None,
                )
                call[field_name] = record

    def _mango_chatter_body(self):
        self.ensure_one()
        env = self.env
        direction = dict(self._fields["direction"]._description_selection(env)).get(
            self.direction
        ) or env._("Call")
        status = dict(self._fields["status"]._description_selection(env)).get(
            self.status, ""
        )
        who = (
            (self.user_id or self.employee_user_id).name
            or self.answered_extension
            or (self.employee_extension or env._("nobody"))
        )
        return env._(
            "%(direction)s call, %(status)s — %(number)s — talk %(duration)s, "
            "employee: %(who)s — %(link)s",
            direction=direction,
            status=status.lower(),
            # As people write it (the party, or both colleagues of an internal call).
            number=self._mango_other_party_display() or "",
            duration=_format_duration(env, self.talk_duration),
            who=who,
            link=Markup(self._get_html_link(title=env._("open the call"))),
        )

    # ------------------------------------------------------------------
    # Missed calls
    # ------------------------------------------------------------------

    def _mango_missed_call_responsible(self):
        self.ensure_one()
        partner = self.partner_id.commercial_partner_id or self.partner_id
        for user in (partner.user_id, self.partner_id.user_id):
            if user and user.active and not user.share:
                return user
        if self.line_number:
            line = (
                self.env["mango.line"]
                .sudo()
                .with_context(active_test=False)
                .search(
                    [
                        ("account_id", "=", self.account_id.id),
                        "|",
                        ("number", "=", self.line_number),
                        ("name", "=", self.line_number),
                    ],
                    limit=1,
                )
            )
            if line.default_user_id.active:
                return line.default_user_id
        if self.account_id.missed_call_user_id.active:
            return self.account_id.missed_call_user_id
        if self.employee_user_id.active and not self.employee_user_id.share:
            return self.employee_user_id
        return self.env["res.users"]

    def _mango_open_callback_activity(self):
        """The open call-back activity of an earlier missed call from the same
        number, if any."""
        self.ensure_one()
        number = self._mango_external_number()
        if not number:
            return self.env["mail.activity"]
        earlier = self.sudo().search(
            [
                ("id", "!=", self.id),
                ("account_id", "=", self.account_id.id),
                ("customer_number_e164", "=", number),
                ("callback_activity_id", "!=", False),
                ("callback_call_id", "=", False),
            ],
            order="id desc",
            limit=5,
        )
        for call in earlier:
            activity = call.callback_activity_id
            if activity.exists() and activity.active and not activity.date_done:
                return activity
        return self.env["mail.activity"]

    def _mango_missed_call_activity(self):
        """One "Call back" activity per open missed-call streak of a number."""
        self.ensure_one()
        if self.callback_activity_id or self.callback_call_id:
            return
        activity = self._mango_open_callback_activity()
        user = activity.user_id or self._mango_missed_call_responsible()
        # Written for the person who calls back: their language.
        env = self.with_context(lang=user.lang).env if user.lang else self.env
        # The note is read by the person calling back: their time zone.
        when = fields.Datetime.context_timestamp(
            self.with_context(tz=user.tz or self.env.user.tz),
            self.start_time or fields.Datetime.now(),
        )
        line = Markup("<p>%s</p>") % env._(
            "Missed again on %(when)s: %(link)s",
            when=when.strftime("%Y-%m-%d %H:%M"),
            link=Markup(self._get_html_link()),
        )
        if activity:
            activity.sudo().note = (activity.note or Markup()) + line
            self.callback_activity_id = activity
            return
        if not user:
            _logger.info("Missed call %s: nobody to call back, no activity", self.id)
            return
        target = self.partner_id.sudo() or self.sudo()
        number = self.customer_number_e164 or self.caller_number or ""
        note = Markup("<p>%s</p>") % env._(
            "%(number)s called on %(when)s and nobody answered: %(link)s",
            number=number,
            when=when.strftime("%Y-%m-%d %H:%M"),
            link=Markup(self._get_html_link()),
        )
        # No "assigned to you" e-mail per missed call: the activity shows in the
        # person's activity menu at once, and a busy line would flood the inbox.
        activity = target.with_context(
            mail_activity_quick_update=True
        ).activity_schedule(
            CALLBACK_ACTIVITY_XMLID,
            summary=env._("Call back %(number)s", number=number),
            note=note,
            user_id=user.id,
        )
        self.callback_activity_id = activity[:1]

    def _mango_close_callbacks(self):
        """This answered call reached a customer who had been missed: close the
        call-back activities and measure how long the call-back took."""
        self.ensure_one()
        number = self._mango_external_number()
        if not number or not self.start_time:
            return
        missed = self.sudo().search(
            [
                ("id", "!=", self.id),
                ("account_id", "=", self.account_id.id),
                ("customer_number_e164", "=", number),
                ("status", "=", "missed"),
                ("direction", "=", "incoming"),
                ("callback_call_id", "=", False),
                ("start_time", "<=", self.start_time),
            ]
        )
        if not missed:
            return
        activities = self.env["mail.activity"]
        for call in missed:
            since = call.end_time or call.start_time
            call.write(
                {
                    "callback_call_id": self.id,
                    "time_to_callback": max(
                        0, int((self.start_time - since).total_seconds())
                    ),
                }
            )
            activity = call.callback_activity_id
            if activity.exists() and activity.active and not activity.date_done:
                activities |= activity
        if activities:
            feedback = self.env._(
                "Reached by %(link)s",
                link=Markup(self._get_html_link()),
            )
            activities.sudo().action_feedback(feedback=feedback)

    # ------------------------------------------------------------------
    # Smart routing
    # ------------------------------------------------------------------

    def _mango_waiting_leg(self):
        """The caller's leg while the PBX still distributes it: in the voice
        menu or a group queue and not hung up. The voice menu answers the
        caller, so that leg may be Connected as well as Appeared."""
        self.ensure_one()
        waiting = self.leg_ids.filtered(
            lambda leg: (
                leg.state in ("Appeared", "Connected", "OnHold")
                and (leg.location or "").split(".")[0] in WAITING_LOCATIONS
            )
        )
        return waiting.sorted(
            lambda leg: (leg.appeared_at or fields.Datetime.now(), leg.id)
        )[:1]

    def _mango_smart_route(self):
        """Send a known customer waiting in the voice menu or a queue to their
        salesperson's extension, once per call and within Mango's route limit."""
        self.ensure_one()
        account = self.account_id
        if (
            not account.smart_routing
            or self.route_state in ("sent", "failed")
            or self.direction not in ("incoming", False)
            or self.status != "ringing"
        ):
            return
        partner = self.partner_id
        salesperson = partner.commercial_partner_id.user_id or partner.user_id
        if not salesperson:
            return
        leg = self._mango_waiting_leg()
        if not leg:
            return
        extension = account._mango_extension_of_user(salesperson)
        if not extension or extension == leg.to_extension:
            return
        if not account._mango_take_route_slot():
            self.write({"route_state": "throttled", "route_user_id": salesperson.id})
            return
        command_id = f"odoo-route-{self.env.cr.dbname}-{self.id}"
        try:
            account._mango_client().route(
                leg.mango_call_id, extension, command_id=command_id
            )
        except mango_errors.MangoError as error:
            _logger.info(
                "Mango refused to route call %s: %s (code %s)",
                self.id,
                type(error).__name__,
                error.code,
            )
            self.write({"route_state": "failed", "route_user_id": salesperson.id})
            return
        self.write(
            {
                "route_state": "sent",
                "route_user_id": salesperson.id,
                "route_command_id": command_id,
            }
        )
