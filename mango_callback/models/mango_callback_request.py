import datetime as dt
import hashlib
import logging
import re
import uuid

from odoo import _, api, fields, models
from odoo.tools import SQL

from mango_office import codes, safe_text
from mango_office.errors import MangoError

_logger = logging.getLogger(__name__)

# An attempt with no word from Mango for this long is treated as unanswered: Mango
# sends events for every call it places, so silence means the call never happened.
STALE_ATTEMPT_MINUTES = 15

# The widget's own limits (its inputs' maxlength); the stored copy of a refused
# value is cut there too.
PHONE_LIMIT = 64
NAME_LIMIT = 128
USER_AGENT_LIMIT = 256


def _consent(value):
    """The consent box: ticked, not ticked, or ``None`` for a value no browser
    sends (the form's box sends "1"; a plain HTML box sends "on")."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "on", "true", "yes"):
        return True
    if text in ("", "0", "off", "false", "no"):
        return False
    return None


REFUSE_REASONS = [
    ("invalid", "Invalid input"),
    ("csrf", "Invalid or missing security token"),
    ("honeypot", "Filled the hidden field (robot)"),
    ("blocked", "Blocked number or country"),
    ("limit_ip", "Too many requests from this address"),
    ("limit_number", "Too many requests for this number"),
    ("disabled", "Widget disabled"),
]


class MangoCallbackRequest(models.Model):
    _name = "mango.callback.request"
    _description = "Website callback request"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "received_at desc, id desc"
    _rec_name = "phone"

    widget_id = fields.Many2one(
        "mango.callback.widget", required=True, ondelete="cascade", index=True
    )
    website_id = fields.Many2one(related="widget_id.website_id", store=True)
    company_id = fields.Many2one(related="widget_id.company_id", store=True)
    # Our own clock, not create_date (the transaction's start): limits count
    # requests by when each one really arrived.
    received_at = fields.Datetime(
        default=fields.Datetime.now, required=True, index=True, readonly=True
    )
    phone = fields.Char("Number as typed", required=True)
    phone_e164 = fields.Char("Number", index=True)
    name = fields.Char("Visitor name")
    consent = fields.Boolean()
    ip_address = fields.Char("Address", index=True)
    user_agent = fields.Char()
    lang = fields.Char("Language")
    state = fields.Selection(
        [
            ("refused", "Refused"),
            ("scheduled", "Scheduled"),
            ("calling", "Calling"),
            ("answered", "Answered"),
            ("unanswered", "Not reached"),
            ("cancelled", "Cancelled"),
        ],
        default="scheduled",
        required=True,
        index=True,
        tracking=True,
    )
    refuse_reason = fields.Selection(REFUSE_REASONS)
    refuse_message = fields.Char()
    in_office_hours = fields.Boolean(
        help="Whether the request arrived during the calling hours."
    )
    scheduled_at = fields.Datetime(
        "Call at", index=True, help="When the next attempt will be placed."
    )
    slot_chosen = fields.Boolean(help="The visitor picked this time.")
    attempt_ids = fields.One2many("mango.callback.attempt", "request_id")
    attempt_count = fields.Integer(compute="_compute_attempt_count", store=True)
    lead_id = fields.Many2one("crm.lead", index=True, ondelete="set null")
    call_ids = fields.Many2many("mango.call", compute="_compute_call_ids")

    @api.depends("attempt_ids")
    def _compute_attempt_count(self):
        for request in self:
            request.attempt_count = len(request.attempt_ids)

    @api.depends("attempt_ids.call_id")
    def _compute_call_ids(self):
        for request in self:
            request.call_ids = request.attempt_ids.call_id

    # ------------------------------------------------------------------
    # Intake (public route)
    # ------------------------------------------------------------------
    @api.model
    def _mango_submit(self, widget, values, ip_address, user_agent=None, lang=None):
        """Store a visitor's request, apply the limits and place or queue the call.

        Every request is stored, refused ones too, so abuse is visible. Returns the
        answer for the visitor: ``ok``, ``status``, ``message``, ``errors`` (per field).
        """
        widget = widget.sudo()
        vals = self._mango_storable(
            {
                "widget_id": widget.id,
                "phone": values.get("phone") or "-",
                "name": (values.get("name") or "").strip() or False,
                "consent": bool(_consent(values.get("consent"))),
                "ip_address": ip_address or "",
                "user_agent": user_agent or "",
                "lang": lang,
            }
        )
        errors = self._mango_form_errors(values)
        e164 = None
        if "phone" not in errors:
            e164, number_error = widget._mango_check_number(
                values.get("phone"), values.get("country")
            )
            if number_error:
                errors["phone"] = number_error
        vals["phone_e164"] = e164
        if widget.require_consent and not vals["consent"]:
            errors.setdefault("consent", _("Please confirm that we may call you."))
        if not widget.active:
            return self._mango_refuse(
                vals, "disabled", _("Call-back requests are not accepted right now.")
            )
        if values.get("honeypot") or "company_website" in (
            values.get("unreadable") or ()
        ):
            # Robots get the same answer as people so they learn nothing.
            self._mango_refuse(vals, "honeypot", _("Robot detected."))
            return self._mango_answer_in_hours(widget, lang)
        if errors:
            reason = "blocked" if e164 and "phone" in errors else "invalid"
            answer = self._mango_refuse(vals, reason, "; ".join(errors.values()))
            answer["errors"] = errors
            return answer
        limit_error = self._mango_check_limits(widget, vals["ip_address"], e164)
        if limit_error:
            reason, message = limit_error
            return self._mango_refuse(vals, reason, message)

        now = fields.Datetime.now()
        schedule = widget._mango_schedule()
        in_hours = schedule.is_open(now)
        slot = values.get("slot")
        chosen = self._mango_parse_slot(widget, schedule, slot, now) if slot else None
        if slot and not chosen:
            answer = self._mango_refuse(
                vals, "invalid", _("Please choose one of the offered times.")
            )
            answer["errors"] = {"slot": answer["message"]}
            return answer
        if chosen:
            call_at = chosen
        elif in_hours:
            call_at = now
        else:
            opening = schedule.next_opening(now)
            call_at = (
                opening.astimezone(dt.timezone.utc).replace(tzinfo=None)
                if opening
                else None
            )
        vals.update(
            state="scheduled",
            in_office_hours=in_hours,
            scheduled_at=call_at,
            slot_chosen=bool(chosen),
        )
        request = self.sudo().create(vals)
        if widget.create_lead:
            request._mango_create_lead()
        if call_at is None:
            request._mango_give_up(_("The calling hours have no working period ahead."))
            return {
                "ok": True,
                "status": "scheduled",
                "message": _("Thank you! We will call you back."),
            }
        if in_hours and not chosen:
            request._mango_place_call()
            return self._mango_answer_in_hours(widget, lang)
        self.env.ref("mango_callback.ir_cron_mango_callback_process")._trigger(call_at)
        opening_text = widget._mango_format_moment(
            call_at.replace(tzinfo=dt.timezone.utc), lang
        )
        return {
            "ok": True,
            "status": "scheduled",
            "message": widget._mango_text("text_after_hours", lang).replace(
                "{opening}", opening_text
            ),
            "opening": opening_text,
        }

    @api.model
    def _mango_answer_in_hours(self, widget, lang=None):
        """``message`` counts ``seconds`` down; ``final_message`` replaces it at zero."""
        return {
            "ok": True,
            "status": "calling",
            "seconds": widget.countdown_seconds,
            "message": widget._mango_text("text_working", lang),
            "final_message": widget._mango_text("text_calling", lang),
        }

    @api.model
    def _mango_form_errors(self, values):
        """Per-field errors for what no visitor can have typed in the form: a
        value that is not text or holds NUL or control characters (listed in
        ``values["unreadable"]`` by the route), a country not from the list, a
        consent box with another value, a name longer than the field allows."""
        errors = {}
        for name in set(values.get("unreadable") or ()) - {"company_website"}:
            errors[name] = _("Please remove the special characters from this field.")
        country = values.get("country")
        if (
            "country" not in errors
            and country
            and not re.fullmatch(r"[A-Za-z]{2}", country)
        ):
            errors["country"] = _("Please choose a country from the list.")
        name = (values.get("name") or "").strip()
        if "name" not in errors and len(name) > NAME_LIMIT:
            errors["name"] = _("This name is too long.")
        if "consent" not in errors and _consent(values.get("consent")) is None:
            errors["consent"] = _("Please tick the box or leave it empty.")
        return errors

    @api.model
    def _mango_storable(self, vals):
        """``vals`` with the visitor's text made safe to store (NUL and control
        characters escaped, cut at the form's limits): refusals keep what was
        sent, readable."""
        limits = {
            "phone": PHONE_LIMIT,
            "name": NAME_LIMIT,
            "ip_address": 64,
            "user_agent": USER_AGENT_LIMIT,
        }
        return {
            key: safe_text.storable(value, limits[key], multiline=False)
            if key in limits and isinstance(value, str)
            else value
            for key, value in vals.items()
        }

    @api.model
    def _mango_refuse(self, vals, reason, message):
        # Refusals can come by the thousand in a flood: no chatter for them.
        self.sudo().with_context(tracking_disable=True).create(
            dict(
                self._mango_storable(vals),
                state="refused",
                refuse_reason=reason,
                refuse_message=message[:256],
            )
        )
        return {"ok": False, "status": "refused", "message": message}

    @api.model
    def _mango_check_limits(self, widget, ip_address, e164):
        """Mango's own anti-abuse rules, on accepted requests of this widget.

        A transaction-scoped advisory lock per widget serialises concurrent requests,
        so a burst cannot slip through between the count and the insert.
        """
        lock_key = int(
            hashlib.sha1(f"mango_callback:{widget.id}".encode()).hexdigest()[:15], 16
        )
        self.env.cr.execute(SQL("SELECT pg_advisory_xact_lock(%s)", lock_key))
        now = fields.Datetime.now()
        accepted = [("widget_id", "=", widget.id), ("state", "!=", "refused")]

        def count(field, value, minutes):
            return self.sudo().search_count(
                accepted
                + [
                    (field, "=", value),
                    ("received_at", ">", now - dt.timedelta(minutes=minutes)),
                ]
            )

        polite = _(
            "We have already received your request and will call you soon. "
            "Please try again a little later."
        )
        if ip_address and (
            count("ip_address", ip_address, 2) >= widget.limit_ip_short
            or count("ip_address", ip_address, 30) >= widget.limit_ip_long
        ):
            return "limit_ip", polite
        if (
            count("phone_e164", e164, 2) >= widget.limit_number_short
            or count("phone_e164", e164, 30) >= widget.limit_number_long
        ):
            return "limit_number", polite
        return None

    @api.model
    def _mango_parse_slot(self, widget, schedule, slot, now):
        """A slot value from the widget, accepted only if it is one we offered."""
        if not widget.allow_slot_choice:
            return None
        try:
            wanted = dt.datetime.fromisoformat(str(slot)).astimezone(dt.timezone.utc)
        except (TypeError, ValueError, OverflowError):
            # OverflowError: year 1 or 9999 moved across the date line.
            return None
        for start, _end in schedule.openings(now, widget.slot_count):
            if abs((start - wanted).total_seconds()) < 60:
                return wanted.replace(tzinfo=None)
        return None

    def _mango_create_lead(self):
        for request in self:
            widget = request.widget_id
            values = {
                "name": _("Call-back request from %(phone)s", phone=request.phone_e164),
                "type": "lead"
                if self.env.user.has_group("crm.group_use_lead")
                else "opportunity",
                "contact_name": request.name,
                "phone": request.phone_e164,
                "team_id": widget.team_id.id,
                "user_id": widget.team_id.user_id.id or widget.operator_id.id,
                "company_id": widget.company_id.id,
                "description": _("Requested through the website call-back widget."),
            }
            if "website_id" in self.env["crm.lead"]._fields:
                values["website_id"] = widget.website_id.id
            lead = (
                self.env["crm.lead"]
                .sudo()
                .with_company(widget.company_id)
                .create(values)
            )
            request.lead_id = lead

    # ------------------------------------------------------------------
    # Placing calls and following them
    # ------------------------------------------------------------------
    def _mango_place_call(self):
        """Ask the PBX to place one attempt for each request (errors are recorded)."""
        for request in self.sudo():
            widget = request.widget_id
            command_id = f"odoo-cb-{request.id}-{uuid.uuid4().hex[:12]}"
            attempt = (
                self.env["mango.callback.attempt"]
                .sudo()
                .create(
                    {
                        "request_id": request.id,
                        "command_id": command_id,
                        "account_id": widget.account_id.id,
                        "user_id": widget.target_type != "group"
                        and widget.operator_id.id,
                        "state": "calling",
                    }
                )
            )
            request.state = "calling"
            try:
                client = widget.account_id._mango_client()
                line_number = widget.line_id._mango_line_number() or None
                if widget.target_type == "group":
                    client.callback_group(
                        request.phone_e164.lstrip("+"),
                        widget.group_extension.strip(),
                        line_number,
                        command_id=command_id,
                    )
                else:
                    extension = widget._mango_operator_extension()
                    if not extension:
                        raise MangoError(
                            _(
                                "%(user)s has no telephony extension.",
                                user=widget.operator_id.name,
                            )
                        )
                    client.callback(
                        extension,
                        request.phone_e164.lstrip("+"),
                        line_number=line_number,
                        command_id=command_id,
                    )
            except MangoError as error:
                _logger.warning(
                    "Call-back request %s: Mango refused the call: %s",
                    request.id,
                    error,
                )
                code = getattr(error, "code", None)
                attempt.mango_command_id._mango_refused(code or 0, str(error))
                attempt._mango_finish("failed", str(error), code)

    def _mango_attempt_finished(self):
        """After an attempt ends: done, retry later, or leave it to a person."""
        for request in self:
            last = request.attempt_ids.sorted("id")[-1:]
            if last.state == "answered":
                request.state = "answered"
                activity_type = request._mango_activity_type()
                request.activity_ids.filtered(
                    lambda a, t=activity_type: a.activity_type_id == t
                ).action_feedback(_("The customer was reached."))
                continue
            backoff = request.widget_id._mango_backoff()
            if backoff.exhausted(request.attempt_count):
                request._mango_give_up(last.message or _("Nobody answered."))
                continue
            now = fields.Datetime.now()
            call_at = now + backoff.delay(request.attempt_count)
            schedule = request.widget_id._mango_schedule()
            opening = schedule.next_opening(call_at)
            if opening is None:
                request._mango_give_up(
                    _("The calling hours have no working period ahead.")
                )
                continue
            call_at = opening.astimezone(dt.timezone.utc).replace(tzinfo=None)
            request.write({"state": "scheduled", "scheduled_at": call_at})
            self.env.ref("mango_callback.ir_cron_mango_callback_process")._trigger(
                call_at
            )

    def _mango_activity_type(self):
        return self.env.ref("mango_telephony.mail_activity_type_mango_call_back")

    def _mango_give_up(self, reason):
        """Every attempt failed: a person takes over with a "Call back" activity."""
        for request in self:
            request.state = "unanswered"
            widget = request.widget_id
            user = (
                widget.activity_user_id
                or widget.operator_id
                or widget.team_id.user_id
                or widget.account_id.create_uid
            )
            target = request.lead_id or request
            target.sudo().activity_schedule(
                "mango_telephony.mail_activity_type_mango_call_back",
                user_id=user.id,
                summary=_("Call back %(phone)s", phone=request.phone_e164),
                note=_(
                    "The website call-back request could not be completed "
                    "automatically: %(reason)s",
                    reason=reason,
                ),
            )

    @api.model
    def _cron_mango_process(self, now=None):
        """Place due requests in office hours; close attempts Mango never reported."""
        now = now or fields.Datetime.now()
        stale = (
            self.env["mango.callback.attempt"]
            .sudo()
            .search(
                [
                    ("state", "=", "calling"),
                    (
                        "placed_at",
                        "<",
                        now - dt.timedelta(minutes=STALE_ATTEMPT_MINUTES),
                    ),
                ]
            )
        )
        for attempt in stale:
            attempt._mango_finish(
                "no_answer", _("No news from the PBX about this call.")
            )
        due = self.sudo().search(
            [("state", "=", "scheduled"), ("scheduled_at", "<=", now)],
            order="scheduled_at, id",
            limit=200,
        )
        for request in due:
            schedule = request.widget_id._mango_schedule()
            if not request.widget_id.active:
                continue
            if not schedule.is_open(now):
                opening = schedule.next_opening(now)
                if opening is None:
                    request._mango_give_up(
                        _("The calling hours have no working period ahead.")
                    )
                    continue
                request.scheduled_at = opening.astimezone(dt.timezone.utc).replace(
                    tzinfo=None
                )
                continue
            request._mango_place_call()
        if len(due) == 200:
            self.env.ref("mango_callback.ir_cron_mango_callback_process")._trigger()

    def action_call_now(self):
        for request in self:
            if request.state in ("scheduled", "unanswered", "calling"):
                request._mango_place_call()

    def action_cancel(self):
        self.filtered(lambda r: r.state in ("scheduled", "calling")).write(
            {"state": "cancelled"}
        )


class MangoCommand(models.Model):
    _inherit = "mango.command"

    kind = fields.Selection(
        selection_add=[("callback", "Website call-back")],
        ondelete={"callback": "cascade"},
    )


class MangoCallbackAttempt(models.Model):
    """One attempt to call a visitor back: a ``mango.command`` (its command_id,
    Mango's answer, the call it started) with the attempt's outcome."""

    _name = "mango.callback.attempt"
    _description = "Website callback attempt"
    _inherit = ["mango.command.owner"]
    _order = "id"
    _mango_command_kind = "callback"

    request_id = fields.Many2one(
        "mango.callback.request", required=True, ondelete="cascade", index=True
    )
    placed_at = fields.Datetime("Placed at", related="sent_at")
    # The attempt's outcome, not the command's: a command Mango accepted still
    # ends unanswered when nobody picks up.
    state = fields.Selection(
        [
            ("calling", "Calling"),
            ("answered", "Answered"),
            ("no_answer", "No answer"),
            ("failed", "Failed"),
        ],
        default="calling",
        required=True,
    )
    # Mango's refusal code or the call's disconnect reason.
    result_code = fields.Integer()
    message = fields.Char()

    def _mango_finish(self, state, message=None, code=None):
        attempts = self.filtered(lambda a: a.state == "calling")
        if not attempts:
            return
        attempts.write({"state": state, "message": message, "result_code": code or 0})
        attempts.request_id._mango_attempt_finished()

    # ------------------------------------------------------------------
    # Hooks of mango.command
    # ------------------------------------------------------------------

    def _mango_command_linked(self, calls):
        """Nothing yet: the call's outcome is read once the call log has
        identified and posted it (``mango.call._mango_step_follow_callbacks``)."""

    def _mango_command_refused(self, code):
        """``result/<command>`` refused this attempt: it ends here."""
        self._mango_finish("failed", codes.describe(code), int(code))
