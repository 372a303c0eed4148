from datetime import datetime, timezone

from odoo.tests import tagged

from mango_office.calls import fold
from mango_office.events import parse_event

from .followup_common import MangoFollowupCase


def _utc(epoch):
    return datetime.fromtimestamp(epoch, tz=timezone.utc).replace(tzinfo=None)


@tagged("post_install", "-at_install")
class TestReconciliation(MangoFollowupCase):
    def setUp(self):
        super().setUp()
        self.mango_sim.configure(stats_delay=0)
        self.Account = self.mango_account.with_context(mango_stats_poll_seconds=0.05)

    def _live_fold(self, events):
        parsed = [parse_event(path, payload) for path, payload in events]
        return next(iter(fold(parsed).values()))

    def test_dropped_call_is_backfilled_like_a_live_one(self):
        answered = self.mango_play("incoming_answered", from_number="79161112233")
        missed = self.mango_play("incoming_missed_queue", from_number="79161112244")
        # Neither call's webhooks reached Odoo.
        entry_answered = answered[0][1]["entry_id"]
        entry_missed = missed[0][1]["entry_id"]
        self.assertFalse(self.mango_call(entry_answered))

        counts = self.Account._mango_reconcile()
        self.assertEqual(counts["rows"], 2)
        self.assertEqual(counts["created"], 2)
        self.assertIn("2 added", self.mango_account.reconcile_message)
        self.assertTrue(self.mango_account.reconciled_at)

        call = self.mango_call(entry_answered)
        live = self._live_fold(answered)
        self.assertEqual(call.status, "answered")
        self.assertEqual(call.direction, "incoming")
        self.assertEqual(call.customer_number_e164, "+79161112233")
        self.assertEqual(call.start_time, _utc(live.start_time))
        self.assertEqual(call.answer_time, _utc(live.answer_time))
        self.assertEqual(call.end_time, _utc(live.end_time))
        self.assertEqual(call.answered_extension, "101")
        self.assertEqual(call.user_id, self.agent_101)
        self.assertEqual(
            set(call.leg_ids.mapped("mango_call_id")), set(live.legs), "same legs"
        )
        self.assertEqual(
            set(call.recording_ids.mapped("recording_id")),
            {rid for rid, rec in live.recordings.items() if rec.saved},
        )
        missed_call = self.mango_call(entry_missed)
        self.assertEqual(missed_call.status, "missed")
        self.assertTrue(missed_call.callback_pending)
        events = self.env["mango.event"].sudo().search([("call_id", "=", call.id)])
        self.assertEqual(set(events.mapped("remote_addr")), {"reconciliation"})
        self.assertEqual(set(events.mapped("state")), {"done"})

    def test_second_run_changes_nothing(self):
        self.mango_play("incoming_answered")
        self.Account._mango_reconcile()
        calls = self.env["mango.call"].search_count([])
        events = self.env["mango.event"].sudo().search_count([])
        counts = self.Account._mango_reconcile()
        self.assertEqual(counts["events"], 0)
        self.assertEqual(counts["created"] + counts["completed"], 0)
        self.assertEqual(self.env["mango.call"].search_count([]), calls)
        self.assertEqual(self.env["mango.event"].sudo().search_count([]), events)

    def test_call_with_lost_end_is_completed_without_touching_live_legs(self):
        events = self.mango_play("incoming_missed_queue", from_number="79161112255")
        # Only the first events (the voice menu) arrived.
        self.mango_ingest(events[:2])
        self.mango_process_all()
        entry_id = events[0][1]["entry_id"]
        call = self.mango_call(entry_id)
        self.assertEqual(call.status, "ringing")
        live_leg = call.leg_ids
        self.assertEqual(len(live_leg), 1)

        counts = self.Account._mango_reconcile()
        self.assertEqual(counts["completed"], 1)
        self.assertEqual(counts["created"], 0)
        self.assertEqual(self.mango_call(entry_id), call, "same record")
        self.assertEqual(call.status, "missed")
        self.assertTrue(call.end_time)
        self.assertIn(live_leg, call.leg_ids)
        synthetic = (
            self.env["mango.event"]
            .sudo()
            .search([("call_id", "=", call.id), ("remote_addr", "=", "reconciliation")])
        )
        self.assertTrue(synthetic.filtered(lambda e: e.kind == "summary"))
        self.assertFalse(
            synthetic.filtered(
                lambda e: e.kind == "call" and live_leg.mango_call_id in e.payload
            ),
            "no synthetic event for a leg live events already describe",
        )

        # The real webhooks arriving late agree with the backfill.
        self.mango_ingest(events[2:])
        self.mango_process_all()
        live = self._live_fold(events)
        self.assertEqual(call.status, live.status)
        self.assertEqual(
            self.env["mango.call"].search_count([("entry_id", "=", entry_id)]), 1
        )

    def test_button_reports_the_outcome(self):
        self.mango_play("incoming_answered")
        action = self.Account.action_mango_reconcile()
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("1 added", action["params"]["message"])

    def test_cron_skips_accounts_without_credentials(self):
        self.mango_play("incoming_answered")
        self.env["mango.account"].with_context(
            mango_stats_poll_seconds=0.05
        )._cron_mango_reconcile()
        self.assertTrue(self.mango_account.reconciled_at)
        requests_before = len(self.mango_sim.commands("stats/calls/request"))
        self.mango_account.sudo().write({"api_key": False})
        self.env["mango.account"]._cron_mango_reconcile()
        self.assertEqual(
            len(self.mango_sim.commands("stats/calls/request")), requests_before
        )
