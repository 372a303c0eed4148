import datetime as dt

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools.translate import LazyTranslate

from odoo.addons.mango_telephony.compat.constraints import table_constraints
from odoo.addons.mango_telephony.compat.page_cache import forget_cached_pages

from mango_office import phones
from mango_office.retry import Backoff
from mango_office.schedule import Period, Schedule

_lt = LazyTranslate(__name__)

# What a visitor reads unless the administrator wrote their own: shown in the
# visitor's language (see _mango_text), whatever language the widget was set up in.
BUILT_IN_TEXTS = {
    "title": _lt("Free call back"),
    "button_label": _lt("Call me back"),
    "text_working": _lt("We'll call you back in {seconds} seconds"),
    # When the countdown is over the phone is about to ring, or rings already;
    # a visitor who misses it should know the request is not lost.
    "text_calling": _lt(
        "We are calling you now, please keep your phone at hand. Your request is "
        "registered: if we miss each other, we will call you again."
    ),
    "text_after_hours": _lt(
        "We are closed right now. We will call you back as soon as we open: {opening}."
    ),
    "consent_text": _lt("I agree to the processing of my personal data"),
}


def _built_in(name):
    return lambda self: self.env._(BUILT_IN_TEXTS[name])


@table_constraints
class MangoCallbackWidget(models.Model):
    _name = "mango.callback.widget"
    _description = "Website callback widget"
    _order = "website_id"

    name = fields.Char(required=True, default=lambda self: _("Callback widget"))
    active = fields.Boolean(
        string="Enabled",
        default=True,
        help="Show the widget on every page of the website.",
    )
    website_id = fields.Many2one("website", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="website_id.company_id", store=True)
    account_id = fields.Many2one(
        "mango.account",
        string="Mango account",
        required=True,
        domain="[('company_id', 'in', [company_id, False])]",
        help="The Mango Office account whose PBX places the calls.",
    )
    display_mode = fields.Selection(
        [("compact", "Compact (floating button)"), ("full", "Full (open panel)")],
        default="compact",
        required=True,
        help="How a new visitor first sees the widget; on a phone it starts "
        "collapsed, so as not to cover the page. A visitor who collapses or "
        "expands it keeps that choice (remembered in a cookie).",
    )
    countdown_seconds = fields.Integer(
        "Seconds shown",
        default=30,
        required=True,
        help='The N of "We\'ll call you back in N seconds".',
    )
    title = fields.Char(translate=True, default=_built_in("title"))
    button_label = fields.Char(translate=True, default=_built_in("button_label"))
    text_working = fields.Text(
        "Success text during working hours",
        translate=True,
        default=_built_in("text_working"),
        help="Shown after a request placed during office hours. {seconds} becomes "
        "a live countdown.",
    )
    text_calling = fields.Text(
        "Text when the countdown ends",
        translate=True,
        default=_built_in("text_calling"),
        help="Replaces the countdown once it reaches zero: the call is on its way.",
    )
    text_after_hours = fields.Text(
        "Success text after hours",
        translate=True,
        default=_built_in("text_after_hours"),
        help="Shown after a request made outside office hours. {opening} becomes "
        "the date and time the office opens next.",
    )
    calendar_id = fields.Many2one(
        "resource.calendar",
        string="Calling hours",
        required=True,
        default=lambda self: self.env.company.resource_calendar_id,
        help="Weekdays, hours and time zone when calls are placed at once. Public "
        "holidays are the calendar's global time off.",
    )
    target_type = fields.Selection(
        [
            ("group", "A Mango group (the customer is called first)"),
            ("employee", "An employee (the operator is called first)"),
        ],
        string="Who receives the calls",
        default="group",
        required=True,
    )
    group_extension = fields.Char(
        help="Extension of the Mango group that takes the calls "
        "(commands/callback_group)."
    )
    operator_id = fields.Many2one(
        "res.users",
        string="Employee",
        help="The employee called first; their telephony extension is used "
        "(commands/callback).",
    )
    line_id = fields.Many2one(
        "mango.line",
        string="Outgoing line",
        domain="[('account_id', '=', account_id)]",
        help="The number the customer sees. Mango requires one for group calls.",
    )
    allowed_country_ids = fields.Many2many(
        "res.country",
        "mango_callback_widget_allowed_country_rel",
        string="Allowed countries",
        default=lambda self: self.env.ref("base.ru", raise_if_not_found=False),
        help="Only numbers of these countries are accepted. Empty means any.",
    )
    blocked_country_ids = fields.Many2many(
        "res.country",
        "mango_callback_widget_blocked_country_rel",
        string="Blocked countries",
    )
    blocked_numbers = fields.Text(
        help="One number per line, in any format. Requests for them are refused."
    )
    require_consent = fields.Boolean("Ask for consent")
    consent_text = fields.Char(translate=True, default=_built_in("consent_text"))
    ask_name = fields.Boolean("Ask for a name", default=True)
    allow_slot_choice = fields.Boolean(
        "Visitor may pick a time",
        help="Outside office hours the visitor may choose one of the coming "
        "working periods instead of the next opening.",
    )
    slot_count = fields.Integer("Slots offered", default=6)
    limit_ip_short = fields.Integer("Per address in 2 minutes", default=2)
    limit_ip_long = fields.Integer("Per address in 30 minutes", default=2)
    limit_number_short = fields.Integer("Per number in 2 minutes", default=2)
    limit_number_long = fields.Integer("Per number in 30 minutes", default=3)
    max_attempts = fields.Integer("Attempts", default=3)
    retry_minutes = fields.Integer("Minutes between attempts", default=2)
    activity_user_id = fields.Many2one(
        "res.users",
        string="Follow-up by",
        help='Who gets a "Call back" activity when every attempt failed. '
        "Defaults to the employee, else the sales team leader.",
    )
    create_lead = fields.Boolean("Create a lead per request")
    team_id = fields.Many2one("crm.team", string="Sales team")
    request_count = fields.Integer(compute="_compute_request_count")

    _sql_constraints = [
        (
            "website_unique",
            "unique(website_id)",
            "A website has one callback widget.",
        ),
    ]

    def _compute_request_count(self):
        counts = dict(
            self.env["mango.callback.request"]._read_group(
                [("widget_id", "in", self.ids)], ["widget_id"], ["__count"]
            )
        )
        for widget in self:
            widget.request_count = counts.get(widget, 0)

    @api.constrains("target_type", "group_extension", "operator_id", "line_id")
    def _check_target(self):
        for widget in self:
            if widget.target_type == "group":
                if not (widget.group_extension or "").strip():
                    raise ValidationError(
                        _("Enter the extension of the Mango group taking the calls.")
                    )
                if not widget.line_id:
                    raise ValidationError(
                        _("Mango needs an outgoing line to call on behalf of a group.")
                    )
            elif not widget.operator_id:
                raise ValidationError(_("Choose the employee who takes the calls."))

    @api.constrains(
        "countdown_seconds",
        "max_attempts",
        "retry_minutes",
        "slot_count",
        "limit_ip_short",
        "limit_ip_long",
        "limit_number_short",
        "limit_number_long",
    )
    def _check_numbers(self):
        for widget in self:
            if widget.countdown_seconds < 1 or widget.countdown_seconds > 3600:
                raise ValidationError(_("Seconds shown must be between 1 and 3600."))
            if widget.max_attempts < 1 or widget.retry_minutes < 1:
                raise ValidationError(
                    _("There must be at least one attempt, one minute apart.")
                )
            limits = (
                widget.limit_ip_short,
                widget.limit_ip_long,
                widget.limit_number_short,
                widget.limit_number_long,
            )
            if min(limits) < 1 or widget.slot_count < 1:
                raise ValidationError(_("Limits and slot count must be at least 1."))

    # ------------------------------------------------------------------
    # Office hours
    # ------------------------------------------------------------------
    def _mango_backoff(self):
        """The call-back attempts' retry rule: ``retry_minutes`` apart, at most
        ``max_attempts`` (then a person takes over)."""
        self.ensure_one()
        return Backoff(
            first=dt.timedelta(minutes=self.retry_minutes),
            factor=1,
            max_attempts=self.max_attempts,
        )

    def _mango_schedule(self):
        """The widget's calendar as a core Schedule (weekly periods minus leaves)."""
        self.ensure_one()
        calendar = self.calendar_id
        periods = [
            Period(int(att.dayofweek), att.hour_from, min(att.hour_to, 24.0))
            for att in calendar.attendance_ids
            if not att.display_type and att.hour_to > att.hour_from
        ]
        now = fields.Datetime.now()
        leaves = self.env["resource.calendar.leaves"].search(
            [
                ("calendar_id", "in", [calendar.id, False]),
                ("resource_id", "=", False),
                ("date_to", ">=", now - dt.timedelta(days=1)),
                ("date_from", "<=", now + dt.timedelta(days=370)),
            ]
        )
        closures = [
            (
                leave.date_from.replace(tzinfo=dt.timezone.utc),
                leave.date_to.replace(tzinfo=dt.timezone.utc),
            )
            for leave in leaves
        ]
        return Schedule(
            periods,
            timezone=calendar.tz or "UTC",
            closures=closures,
            always_open=bool(getattr(calendar, "flexible_hours", False)),
        )

    def _mango_format_moment(self, moment, lang=None):
        """A moment in the calendar's time zone, in the visitor's language."""
        self.ensure_one()
        from babel.dates import format_datetime

        tz = self.calendar_id.tz or "UTC"
        locale = (lang or self.env.lang or "en_US").replace("-", "_")
        try:
            return format_datetime(
                moment, "EEEE d MMMM, HH:mm", tzinfo=tz, locale=locale
            )
        except (ValueError, LookupError):
            return format_datetime(
                moment, "EEEE d MMMM, HH:mm", tzinfo=tz, locale="en_US"
            )

    # ------------------------------------------------------------------
    # Validation of a visitor's number
    # ------------------------------------------------------------------
    def _mango_check_number(self, raw_number, country_code=None):
        """Normalise a visitor's number; return (e164, error message or None).

        ``country_code`` is the prefix the visitor picked: numbers typed without
        ``+`` are read in that country (when it is one we accept).
        """
        self.ensure_one()
        raw_number = (raw_number or "").strip()
        if not raw_number:
            return None, _("Please enter your phone number.")
        if len(raw_number) > 40:
            return None, _("This phone number is too long.")
        accepted_codes = self.allowed_country_ids.mapped("code")
        if country_code and (not accepted_codes or country_code in accepted_codes):
            region = country_code
        else:
            region = None
        region = (
            region
            or self.allowed_country_ids[:1].code
            or self.company_id.country_id.code
            or "RU"
        )
        e164 = phones.normalize(raw_number, default_region=region)
        if not e164 or e164.startswith("sip:") or not phones.is_valid(e164):
            return None, _("This does not look like a valid phone number.")
        country_code = phones.region_of(e164)
        if (
            self.allowed_country_ids
            and country_code not in self.allowed_country_ids.mapped("code")
        ):
            return None, _("We cannot call numbers in this country.")
        if country_code in self.blocked_country_ids.mapped("code"):
            return None, _("We cannot call numbers in this country.")
        if e164 in self._mango_blocked_numbers(region):
            return e164, _("We cannot call this number.")
        return e164, None

    def _mango_blocked_numbers(self, region):
        blocked = set()
        for line in (self.blocked_numbers or "").splitlines():
            normalized = phones.normalize(line.strip(), default_region=region)
            if normalized:
                blocked.add(normalized)
        return blocked

    def _mango_operator_extension(self):
        """The operator's extension on this widget's account's extension list."""
        self.ensure_one()
        if not (self.account_id and self.operator_id):
            return None
        return self.account_id.sudo()._mango_extension_of_user(self.operator_id) or None

    # ------------------------------------------------------------------
    # Frontend
    # ------------------------------------------------------------------
    def _mango_text(self, name, lang=None):
        """The visitor-facing text ``name`` in ``lang`` (the environment's by
        default): as the administrator wrote it, or, while it is the built-in text
        of any language (a widget set up in Russian stores the Russian one), the
        built-in text in the visitor's language.

        :param str name: a key of ``BUILT_IN_TEXTS``
        """
        self.ensure_one()
        widget = self.with_context(lang=lang) if lang else self
        text = (widget[name] or "").strip()
        built_in = BUILT_IN_TEXTS[name]
        if not text or text in self._mango_built_in_variants(name):
            return widget.env._(built_in)
        return text

    @api.model
    def _mango_built_in_variants(self, name):
        langs = [code for code, _name in self.env["res.lang"].get_installed()]
        return {
            self.with_context(lang=code).env._(BUILT_IN_TEXTS[name]).strip()
            for code in {"en_US", *langs}
        }

    def _mango_frontend_config(self):
        """What the page embeds for the widget: no secret, nothing per visitor."""
        self.ensure_one()
        return {
            "id": self.id,
            "mode": self.display_mode,
            "seconds": self.countdown_seconds,
            "slots": self.allow_slot_choice,
        }

    def action_view_requests(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mango_callback.mango_callback_request_action"
        )
        action["domain"] = [("widget_id", "=", self.id)]
        return action

    @api.model_create_multi
    def create(self, vals_list):
        widgets = super().create(vals_list)
        # Pages kept while the website had no widget must not hide it.
        forget_cached_pages(self.env)
        return widgets

    def write(self, vals):
        result = super().write(vals)
        forget_cached_pages(self.env)
        return result

    def unlink(self):
        result = super().unlink()
        forget_cached_pages(self.env)
        return result
