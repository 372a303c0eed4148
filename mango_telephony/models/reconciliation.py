"""Reconciliation: calls the webhooks never delivered, backfilled from Mango's
statistics.

A webhook lost on the way (Odoo down, a network cut, a refused request) would
leave a hole in the call log. Once a day, or on the button, the account's
``stats/calls`` report for the period is read; each row becomes the webhook
payloads it stands for (``mango_office.reconcile``), stored as events and folded
like live ones, so a second run, or a late webhook, changes nothing.
"""

import logging
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from mango_office import errors as mango_errors
from mango_office import reconcile
from mango_office.events import EventParseError
from mango_office.signing import dumps

_logger = logging.getLogger(__name__)

STATS_PAGE_SIZE = 1000
STATS_POLL_SECONDS = 5
STATS_POLL_TIMEOUT = 120


class MangoAccount(models.Model):
    _inherit = "mango.account"

    reconciled_at = fields.Datetime(
        string="Last reconciliation", readonly=True, copy=False
    )
    reconcile_message = fields.Char(
        string="Reconciliation result", readonly=True, copy=False
    )

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
        try:
            return self._mango_client().stats_calls(
                date_from,
                date_to,
                limit=STATS_PAGE_SIZE,
                poll_interval=self.env.context.get(
                    "mango_stats_poll_seconds", STATS_POLL_SECONDS
                ),
                timeout=STATS_POLL_TIMEOUT,
            )
        # The report's own failures, said as such rather than as a refused request.
        except mango_errors.MangoReportFailed as error:
            raise mango_errors.MangoProtocolError(
                _(
                    "Mango could not build the call statistics (status %(status)s).",
                    status=error.status,
                )
            ) from error
        except mango_errors.MangoReportLate as error:
            raise mango_errors.MangoTransportError(
                _("Mango's call statistics were not ready within two minutes.")
            ) from error

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
