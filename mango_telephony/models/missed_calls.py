"""Missed calls: a "Call back" activity for the right person, closed by the call
that reaches the customer.

An incoming call nobody answered gets one call-back activity per open streak of
missed calls from that number (a second miss adds a line to it), assigned to the
caller's salesperson, else the line's or the account's choice, else the employee
rung first. The first answered call with the number closes the activities and
measures how long the customer waited to be called back.

Two workers (of one Odoo instance or of two) may fold two calls of the same
number at once; each would find no open activity and open one. So the
bookkeeping of a number is serialised: a transaction-scoped advisory lock while
both transactions are open, and a row per number (``mango_missed_call_number``)
that every such transaction touches, which makes a transaction whose snapshot
predates another's commit fail with a serialization error instead of working on
what it cannot see. Either way the fold is retried a few seconds later.
"""

import hashlib
import logging

from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import SQL

from mango_office.rules import FINISHED_STATUSES

from .mango_event import CallBusy

_logger = logging.getLogger(__name__)

CALLBACK_ACTIVITY_XMLID = "mango_telephony.mail_activity_type_mango_call_back"


class MangoAccount(models.Model):
    _inherit = "mango.account"

    missed_call_user_id = fields.Many2one(
        "res.users",
        string="Missed calls go to",
        domain="[('share', '=', False)]",
        ondelete="set null",
        help="Who gets the call-back activity for a missed call when neither the "
        "caller's salesperson nor the line names someone.",
    )


class MangoLine(models.Model):
    _inherit = "mango.line"

    default_user_id = fields.Many2one(
        "res.users",
        string="Missed calls go to",
        domain="[('share', '=', False)]",
        ondelete="set null",
        help="Who gets the call-back activity for a missed call on this line when "
        "the caller has no salesperson. Leave empty to use the account's default.",
    )


class MangoCall(models.Model):
    _name = "mango.call"
    # The call-back activity sits on the call when the caller is no known contact.
    _inherit = ["mango.call", "mail.activity.mixin"]

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

    def init(self):
        result = super().init()
        self.env.cr.execute(
            """
            CREATE TABLE IF NOT EXISTS mango_missed_call_number (
                account_id integer NOT NULL
                    REFERENCES mango_account (id) ON DELETE CASCADE,
                number varchar NOT NULL,
                touched_at timestamp NOT NULL,
                PRIMARY KEY (account_id, number)
            )
            """
        )
        return result

    def _mango_drop_number_table(self):
        """Uninstalling: the table is created by SQL, so the ORM leaves it."""
        self.env.cr.execute("DROP TABLE IF EXISTS mango_missed_call_number")

    def _mango_hold_number(self, number):
        """Serialise the call-back bookkeeping of ``number`` on this call's
        account with every other worker (see the module's docstring).

        :raise CallBusy: another open transaction holds the number
        :raise psycopg2.errors.SerializationFailure: another transaction changed
            the number's bookkeeping after this one's snapshot
        """
        self.ensure_one()
        digest = hashlib.blake2b(
            f"mango.missed:{self.account_id.id}:{number}".encode(), digest_size=8
        ).digest()
        cr = self.env.cr
        cr.execute(
            SQL(
                "SELECT pg_try_advisory_xact_lock(%s)",
                int.from_bytes(digest, "big", signed=True),
            )
        )
        if not cr.fetchone()[0]:
            raise CallBusy(number)
        cr.execute(
            SQL(
                """
                INSERT INTO mango_missed_call_number (account_id, number, touched_at)
                VALUES (%s, %s, now() AT TIME ZONE 'UTC')
                ON CONFLICT (account_id, number)
                DO UPDATE SET touched_at = EXCLUDED.touched_at
                """,
                self.account_id.id,
                number,
            ),
            # A serialization failure is how a stale snapshot learns it lost
            # the number to another worker; the fold is retried, nothing to log.
            log_exceptions=False,
        )

    def _mango_step_follow_missed_call(self, previous):
        """A missed incoming call gets its call-back activity; an answered one
        closes those of the number."""
        for call in self:
            if call.status not in FINISHED_STATUSES:
                continue
            before = previous.get(call.id) or {}
            if call.status == "missed" and call.direction == "incoming":
                call._mango_missed_call_activity()
            elif call.status == "answered" and before.get("status") != "answered":
                call._mango_close_callbacks()

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
        number = self._mango_external_number()
        if number:
            self._mango_hold_number(number)
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
        # Closed once, whichever workers fold the calls of this number.
        self._mango_hold_number(number)
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
