"""The call log as the worker writes it from stored events."""

from datetime import datetime, timedelta, timezone
from unittest.mock import patch

import odoo
from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged

from ..models.mango_call import known_reason_code
from ..models.mango_event import MAX_ATTEMPTS, _advisory_key
from .calls_common import MangoCallsMixin


@tagged("post_install", "-at_install")
class TestCallLog(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()

    def fold(self, scenario, **options):
        events = self.mango_play(scenario, **options)
        self.mango_ingest(events)
        self.mango_process_all()
        return self.mango_call(events[0][1]["entry_id"]), events

    def test_incoming_answered(self):
        call, events = self.fold(
            "incoming_answered", extension="101", from_number="+7 903 123-45-67"
        )
        self.assertEqual(len(call), 1)
        self.assertEqual(call.direction, "incoming")
        self.assertEqual(call.status, "answered")
        self.assertEqual(call.caller_number_e164, "+79031234567")
        self.assertEqual(call.customer_number_e164, "+79031234567")
        self.assertEqual(call.answered_extension, "101")
        self.assertEqual(call.user_id, self.agent_101, "found by the user's preference")
        self.assertEqual(call.employee_user_id, self.agent_101)
        self.assertEqual(call.company_id, self.mango_account.company_id)
        self.assertTrue(call.start_time <= call.answer_time <= call.end_time)
        self.assertEqual(
            call.talk_duration, (call.end_time - call.answer_time).total_seconds()
        )
        self.assertEqual(
            call.wait_duration, (call.answer_time - call.start_time).total_seconds()
        )
        self.assertEqual(call.disconnect_reason, 1110)
        self.assertEqual(call.disconnect_reason_code, "1110")
        self.assertEqual(call.disconnect_reason_text, "The caller hung up")
        self.assertGreaterEqual(len(call.leg_ids), 2)
        self.assertIn(self.agent_101, call.leg_ids.user_id)
        self.assertEqual(call.fold_state["status"], "answered")
        events_of_call = self.env["mango.event"].search([("call_id", "=", call.id)])
        self.assertEqual(len(events_of_call), len(events))
        self.assertEqual(set(events_of_call.mapped("state")), {"done"})
        self.assertEqual(call.event_count, len(events))

    def test_an_extension_has_one_holder(self):
        with self.assertRaises(ValidationError):
            self.agent_101.mango_extension = "102"
        call, _events = self.fold("incoming_answered", extension="102")
        self.assertEqual(call.user_id, self.agent_102)

    def test_extension_of_a_user_of_another_company_is_not_used(self):
        other = self.env["res.company"].create({"name": "Other company"})
        self.agent_101.write(
            {"company_ids": [(6, 0, other.ids)], "company_id": other.id}
        )
        call, _events = self.fold("incoming_answered", extension="101")
        self.assertEqual(call.answered_extension, "101")
        self.assertFalse(call.user_id)

    def test_missed_in_queue(self):
        call, _events = self.fold("incoming_missed_queue")
        self.assertEqual(call.direction, "incoming")
        self.assertEqual(call.status, "missed")
        self.assertFalse(call.user_id)
        self.assertFalse(call.answer_time)
        self.assertEqual(call.talk_duration, 0)
        self.assertTrue(call.group_extension)

    def test_click_to_call_and_its_command_result(self):
        command_id = self.mango_command_id()
        events = self.mango_play(
            "click_to_call", extension="101", command_id=command_id
        )
        # The command result arrives before the call's events (reference §2.9).
        results = [e for e in events if e[0].startswith("result/")]
        others = [e for e in events if not e[0].startswith("result/")]
        self.assertTrue(results)
        self.mango_ingest(results)
        self.mango_process_all()
        self.mango_ingest(others)
        self.mango_process_all()
        call = self.mango_call(others[0][1]["entry_id"])
        self.assertEqual(call.direction, "outgoing")
        self.assertEqual(call.employee_user_id, self.agent_101)
        self.assertEqual(call.command_id, command_id)
        results_seen = {
            k: int(v) for k, v in call.fold_state["command_results"].items()
        }
        self.assertEqual(results_seen, {command_id: 1000})
        result_event = self.env["mango.event"].search([("kind", "=", "command_result")])
        self.assertEqual(result_event.call_id, call)

    def test_sip_caller_and_reason_codes(self):
        call, _events = self.fold(
            "incoming_missed_no_operator", from_number="sip:guest@x.mangosip.ru"
        )
        self.assertEqual(call.caller_number_e164, "sip:guest@x.mangosip.ru")
        self.assertEqual(call.status, "missed")
        # An undocumented code is explained by its nearest documented ancestor.
        self.assertEqual(known_reason_code(1199), "1190")
        self.assertEqual(known_reason_code(1090), "1000")
        self.assertFalse(known_reason_code(9999))
        self.assertFalse(known_reason_code(None))

    def test_numbers_in_the_companys_region(self):
        self.env.company.country_id = self.env.ref("base.fi")
        call, _events = self.fold("incoming_answered", from_number="0401234567")
        self.assertEqual(call.caller_number_e164, "+358401234567")

    def test_hook_receives_previous_state(self):
        seen = []
        Call = self.registry["mango.call"]
        original = Call._mango_on_call_updated

        def spy(records, previous):
            seen.append((records.id, dict(previous)))
            return original(records, previous)

        events = self.mango_play("incoming_answered", extension="101")
        with patch.object(Call, "_mango_on_call_updated", spy):
            self.mango_ingest(events[:2])
            self.mango_process_all()
            self.mango_ingest(events[2:])
            self.mango_process_all()
            # Nothing new: no write, no hook.
            self.mango_ingest(events)
            self.mango_process_all()
        self.assertEqual(len(seen), 2)
        call_id = seen[0][0]
        self.assertEqual(seen[0][1], {call_id: {"status": False, "is_new": True}})
        self.assertEqual(seen[1][1][call_id]["is_new"], False)
        self.assertIn(seen[1][1][call_id]["status"], ("ringing", "in_progress"))
        self.assertEqual(self.env["mango.call"].browse(call_id).status, "answered")

    def test_processing_error_is_retried_with_backoff_then_stays_failed(self):
        events = self.mango_play("incoming_answered", extension="101")
        self.mango_ingest(events)
        Call = self.registry["mango.call"]

        def broken(*_args, **_kwargs):
            raise ValueError("partner lookup exploded")

        Event = self.env["mango.event"].sudo()
        stored = Event.search([("entry_id", "=", events[0][1]["entry_id"])])
        with patch.object(Call, "_mango_write_fold", broken):
            self.assertEqual(Event._mango_process_pending(), len(events))
            self.assertEqual(set(stored.mapped("state")), {"failed"})
            self.assertEqual(set(stored.mapped("attempts")), {1})
            self.assertIn("partner lookup exploded", stored[0].error)
            # Backoff: not claimed again before its time.
            self.assertEqual(Event._mango_process_pending(), 0)
            delays = []
            for attempt in range(2, MAX_ATTEMPTS + 1):
                stored.write(
                    {"next_attempt_at": fields.Datetime.now() - timedelta(seconds=1)}
                )
                before = fields.Datetime.now()
                self.assertEqual(Event._mango_process_pending(), len(events))
                self.assertEqual(set(stored.mapped("attempts")), {attempt})
                delays.append(stored[0].next_attempt_at - before)
            self.assertLess(delays[0], delays[1], "the wait grows")
            self.assertLessEqual(max(delays), timedelta(hours=1, seconds=1))
            stored.write(
                {"next_attempt_at": fields.Datetime.now() - timedelta(seconds=1)}
            )
            self.assertEqual(Event._mango_process_pending(), 0, "attempts are capped")
        self.assertFalse(self.mango_call(events[0][1]["entry_id"]))
        stored.action_retry()
        self.assertEqual(set(stored.mapped("state")), {"pending"})
        self.mango_process_all()
        self.assertEqual(set(stored.mapped("state")), {"done"})
        self.assertEqual(self.mango_call(events[0][1]["entry_id"]).status, "answered")

    def test_one_failing_call_does_not_block_the_batch(self):
        good = self.mango_play("incoming_answered", extension="101")
        bad = self.mango_play("incoming_missed_queue")
        self.mango_ingest(good + bad)
        bad_entry = bad[0][1]["entry_id"]
        Call = self.registry["mango.call"]
        original = Call._mango_write_fold

        def fail_one(records, account, folded):
            if folded.entry_id == bad_entry:
                raise RuntimeError("boom")
            return original(records, account, folded)

        with patch.object(Call, "_mango_write_fold", fail_one):
            self.env["mango.event"]._mango_process_pending()
        self.assertEqual(self.mango_call(good[0][1]["entry_id"]).status, "answered")
        self.assertFalse(self.mango_call(bad_entry))
        failed = self.env["mango.event"].search([("state", "=", "failed")])
        self.assertEqual(set(failed.mapped("entry_id")), {bad_entry})

    def test_unparsable_stored_event_fails_alone(self):
        events = self.mango_play("incoming_answered", extension="101")
        self.mango_ingest(events)
        broken = self.env["mango.event"].search([], limit=1, order="id")
        broken.sudo().write({"payload": "{garbage"})
        self.mango_process_all()
        self.assertEqual(broken.state, "failed")
        self.assertIn("EventParseError", broken.error)
        self.assertTrue(self.mango_call(events[0][1]["entry_id"]))

    def test_call_folded_elsewhere_is_deferred_not_failed(self):
        """While another worker holds a call, its events wait a few seconds."""
        events = self.mango_play("incoming_answered", extension="101")
        self.mango_ingest(events)
        entry_id = events[0][1]["entry_id"]
        key = _advisory_key(self.mango_account.id, entry_id)
        Event = self.env["mango.event"].sudo()
        stored = Event.search([("entry_id", "=", entry_id)])
        with odoo.sql_db.db_connect(self.env.cr.dbname).cursor() as other_worker:
            other_worker.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            self.assertEqual(Event._mango_process_pending(), len(events))
        self.assertEqual(set(stored.mapped("state")), {"pending"})
        self.assertEqual(set(stored.mapped("attempts")), {1})
        self.assertGreater(min(stored.mapped("next_attempt_at")), fields.Datetime.now())
        self.assertFalse(self.mango_call(entry_id))
        stored.write({"next_attempt_at": fields.Datetime.now() - timedelta(seconds=1)})
        self.mango_process_all()
        self.assertEqual(set(stored.mapped("state")), {"done"})
        self.assertEqual(self.mango_call(entry_id).status, "answered")

    def test_cron_processes_and_reports_progress(self):
        events = self.mango_play("transfer", extension="101")
        self.mango_ingest(events)
        cron = self.env.ref("mango_telephony.ir_cron_mango_event_process")
        progress = self.env["ir.cron.progress"].create({"cron_id": cron.id})
        self.env["mango.event"].with_context(
            ir_cron_progress_id=progress.id, cron_id=cron.id
        )._mango_cron_process()
        self.assertEqual(progress.done, len(events))
        self.assertEqual(progress.remaining, 0)
        self.assertEqual(self.mango_call(events[0][1]["entry_id"]).status, "answered")

    def test_times_are_utc(self):
        call, events = self.fold("incoming_answered", extension="101")
        first = min(p["timestamp"] for path, p in events if path == "events/call")
        self.assertEqual(
            call.start_time,
            datetime.fromtimestamp(first, tz=timezone.utc).replace(tzinfo=None),
        )

    def test_views_load(self):
        for view_type in ("list", "form", "pivot", "graph", "calendar", "search"):
            with self.subTest(view_type=view_type):
                self.env["mango.call"].get_view(view_type=view_type)
        self.env["mango.event"].get_view(view_type="form")
        self.env["res.users"].get_view(
            self.env.ref("base.view_users_form_simple_modif").id, "form"
        )
