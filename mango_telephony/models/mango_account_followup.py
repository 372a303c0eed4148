import logging
import time
from datetime import timedelta

import psycopg2.errors

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from mango_office import errors as mango_errors
from mango_office import reconcile
from mango_office.events import EventParseError
from mango_office.signing import dumps

_logger = logging.getLogger(__name__)

# commands/route: 1 request per 2 s per product (reference §3.4, §6).
ROUTE_INTERVAL_SECONDS = 2.0
STATS_PAGE_SIZE = 1000
STATS_POLL_SECONDS = 5
STATS_POLL_TIMEOUT = 120


class MangoAccount(models.Model):
    _inherit = "mango.account"

    recording_mode = fields.Selection(
        [
            ("file", "Store the files in Odoo"),
            ("link", "Keep them at Mango, play on demand"),
        ],
        string="Recordings",
        required=True,
        default="file",
        help="Store: each recording is downloaded once and kept as an attachment. "
        "Keep at Mango: Odoo only remembers the recording and fetches it from "
        "Mango each time someone plays it (recordings deleted in Mango then "
        "cannot be played).",
    )
    recording_retention_days = fields.Integer(
        string="Keep recordings (days)",
        default=0,
        help="Stored recording files older than this are deleted (the call and "
        "the recording entry stay). 0 keeps them forever.",
    )
    missed_call_user_id = fields.Many2one(
        "res.users",
        string="Missed calls go to",
        domain="[('share', '=', False)]",
        ondelete="set null",
        help="Who gets the call-back activity for a missed call when neither the "
        "caller's salesperson nor the line names someone.",
    )
    smart_routing = fields.Boolean(
        string="Route known customers to their salesperson",
        help="While a known customer waits in the voice menu or a queue, send the "
        "call to the extension of the customer's salesperson. Mango's own routing "
        "applies when the salesperson has no extension.",
    )
    route_next_allowed_at = fields.Float(
        string="Next route command allowed at",
        readonly=True,
        copy=False,
        help="Epoch time before which no routing command is sent (Mango's limit).",
    )
    recording_probe_after = fields.Float(
        string="Next recording probe allowed at",
        readonly=True,
        copy=False,
        help="Epoch time before which no recording is asked for again after Mango "
        "answered 'not found yet' (a 3xxx answer, of which Mango allows one per two "
        "minutes).",
    )
    reconciled_at = fields.Datetime(
        string="Last reconciliation", readonly=True, copy=False
    )
    reconcile_message = fields.Char(
        string="Reconciliation result", readonly=True, copy=False
    )

    # ------------------------------------------------------------------
    # Smart routing throttle
    # ------------------------------------------------------------------

    def _mango_take_route_slot(self):
        """Reserve the account's routing slot if it is free; never waits for it.

        The reservation is committed at once on its own cursor: the command is
        sent whatever becomes of the event's transaction, and several workers
        must see each other's reservations straight away. The row lock is held
        for one statement only; should it be busy, the slot counts as taken.

        :return: True when a route command may be sent now
        """
        self.ensure_one()
        self.flush_recordset(["route_next_allowed_at"])
        now = time.time()
        try:
            with self.env.registry.cursor() as cr:
                cr.execute("SET LOCAL lock_timeout = '200ms'")
                cr.execute(
                    SQL(
                        """
                        UPDATE mango_account SET route_next_allowed_at = %(next)s
                         WHERE id = %(id)s
                           AND COALESCE(route_next_allowed_at, 0) <= %(now)s
                        RETURNING id
                        """,
                        next=now + ROUTE_INTERVAL_SECONDS,
                        id=self.id,
                        now=now,
                    )
                )
                taken = bool(cr.fetchone())
        except psycopg2.errors.LockNotAvailable:
            taken = False
        self.invalidate_recordset(["route_next_allowed_at"])
        return taken

    # ------------------------------------------------------------------
    # Reconciliation
    # ------------------------------------------------------------------

    def action_mango_reconcile(self):
        """Button: backfill the last day's calls from Mango's statistics now."""
        self.ensure_one()
        self.check_access("write")
        try:
            counts = self.sudo()._mango_reconcile()
        except mango_errors.MangoError as error:
            raise UserError(self._mango_error_message(error)) from error
        return (
            self._mango_notification(self.sudo().reconcile_message, "success")
            if counts
            else True
        )

    @api.model
    def _cron_mango_reconcile(self):
        for account in self.sudo().search([]):
            if not account.credentials_set:
                continue
            try:
                with self.env.cr.savepoint():
                    account._mango_reconcile()
            except mango_errors.MangoError as error:
                _logger.warning(
                    "Mango reconciliation of account %s failed: %s (code %s)",
                    account.id,
                    type(error).__name__,
                    error.code,
                )
                account.reconcile_message = self._mango_error_message(error)

    def _mango_reconcile(self, date_from=None, date_to=None):
        """Create or complete calls from ``stats/calls`` between two moments.

        Each statistics row becomes the webhook payloads it stands for
        (mango_office.reconcile); they are stored as events and folded like
        live ones, so a second run, or a late webhook, changes nothing.

        :param datetime date_from: UTC start (default: 24 h before ``date_to``)
        :param datetime date_to: UTC end (default: now)
        :return: dict of counts (rows, events, calls)
        """
        self.ensure_one()
        date_to = date_to or fields.Datetime.now()
        date_from = date_from or date_to - timedelta(days=1)
        rows = self._mango_fetch_call_stats(date_from, date_to)
        counts = self._mango_reconcile_rows(rows)
        self.write(
            {
                "reconciled_at": fields.Datetime.now(),
                "reconcile_message": _(
                    "%(rows)s calls in Mango's statistics: %(new)s added, "
                    "%(completed)s completed.",
                    rows=counts["rows"],
                    new=counts["created"],
                    completed=counts["completed"],
                ),
            }
        )
        return counts

    def _mango_fetch_call_stats(self, date_from, date_to):
        """Every statistics row between two UTC moments: the client pages and
        polls the extended report (Moscow wall time is its business)."""
        return self._mango_client().stats_calls(
            date_from,
            date_to,
            limit=STATS_PAGE_SIZE,
            poll_interval=self.env.context.get(
                "mango_stats_poll_seconds", STATS_POLL_SECONDS
            ),
            timeout=STATS_POLL_TIMEOUT,
        )

    def _mango_reconcile_rows(self, rows):
        self.ensure_one()
        Event = self.env["mango.event"].sudo()
        Call = self.env["mango.call"].sudo()
        counts = {"rows": 0, "created": 0, "completed": 0, "events": 0}
        new_event_ids = []
        touched = {}
        for row in rows:
            entry_id = str(row.get("entry_id") or "").strip()
            if not entry_id:
                continue
            counts["rows"] += 1
            call = Call.search(
                [("account_id", "=", self.id), ("entry_id", "=", entry_id)], limit=1
            )
            known_legs = call.leg_ids.mapped("mango_call_id") if call else []
            known_recordings = (
                self.env["mango.call.recording"]
                .sudo()
                .search([("call_id", "=", call.id)])
                .mapped("recording_id")
                if call
                else []
            )
            events = reconcile.stats_item_events(
                row, known_call_ids=known_legs, known_recording_ids=known_recordings
            )
            added = 0
            for path, payload in events:
                try:
                    event_id, is_new = Event._mango_ingest(
                        self, path, dumps(payload), remote_addr="reconciliation"
                    )
                except EventParseError as error:
                    # A statistics row is outside input too: one that does not
                    # make a valid event is skipped, not the whole run.
                    _logger.warning(
                        "Reconciliation skipped a %s event of call %s: %s",
                        path,
                        entry_id[:60],
                        error,
                    )
                    continue
                if is_new:
                    new_event_ids.append(event_id)
                    added += 1
            if added:
                touched[entry_id] = bool(call)
        counts["events"] = len(new_event_ids)
        if new_event_ids:
            Event.browse(new_event_ids)._mango_process()
        for existed in touched.values():
            counts["completed" if existed else "created"] += 1
        return counts
