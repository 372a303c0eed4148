import time

from odoo.tests import tagged

from ..models.call_chatter import _format_duration
from .followup_common import MangoFollowupCase

CALL_BACK = "mango_telephony.mail_activity_type_mango_call_back"


@tagged("post_install", "-at_install")
class TestMissedCalls(MangoFollowupCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Loyal customer",
                "phone": "+7 916 200-30-40",
                "user_id": cls.salesperson.id,
            }
        )
        cls.call_back_type = cls.env.ref(CALL_BACK)
        cls.line = cls.env["mango.line"].create(
            {
                "account_id": cls.mango_account.id,
                "line_id": "400300001",
                "number": "74951234567",
                "name": "Moscow",
            }
        )

    def _activities(self, record):
        return self.env["mail.activity"].search(
            [
                ("res_model", "=", record._name),
                ("res_id", "=", record.id),
                ("activity_type_id", "=", self.call_back_type.id),
            ]
        )

    def _callback_after(self, number, seconds=600, **options):
        """Our employee calls ``number`` back ``seconds`` later (click-to-call)."""
        return self.mango_run(
            "click_to_call",
            to_number=number,
            extension="101",
            start_time=int(time.time()) + seconds,
            **options,
        )

    def test_one_activity_for_repeated_missed_calls_then_closed_by_call_back(self):
        first = self.mango_run("incoming_missed_queue", from_number="79162003040")
        self.assertEqual(first.status, "missed")
        self.assertEqual(first.partner_id, self.customer)
        activity = self._activities(self.customer)
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.salesperson)
        self.assertEqual(first.callback_activity_id, activity)
        self.assertTrue(first.callback_pending)

        second = self.mango_run(
            "incoming_missed_no_operator", from_number="79162003040"
        )
        self.assertEqual(
            self._activities(self.customer), activity, "no second activity"
        )
        self.assertEqual(second.callback_activity_id, activity)
        self.assertIn(f'data-oe-id="{second.id}"', str(activity.note))

        # A third missed call while the activity is open: still one activity.
        self.mango_ingest(
            self.mango_play("incoming_missed_queue", from_number="79162003040")
        )
        self.mango_process_all()
        self.assertEqual(len(self._activities(self.customer)), 1)

        callback = self._callback_after("79162003040")
        self.assertEqual(callback.status, "answered")
        self.assertEqual(callback.direction, "outgoing")
        self.assertFalse(
            activity.active, "marked done (kept, the type keeps done ones)"
        )
        self.assertTrue(activity.date_done)
        done_message = self.customer.message_ids.filtered(
            lambda m: m.mail_activity_type_id == self.call_back_type
        )
        self.assertEqual(len(done_message), 1)
        self.assertIn(f'data-oe-id="{callback.id}"', str(done_message.body))
        for missed in first | second:
            self.assertEqual(missed.callback_call_id, callback)
            self.assertGreater(missed.time_to_callback, 0)
            self.assertFalse(missed.callback_pending)
        self.assertLess(first.time_to_callback, 700)
        pending = self.env["mango.call"].search(
            [("callback_pending", "=", True), ("id", "in", (first | second).ids)]
        )
        self.assertFalse(pending)

        # A new missed call after the call-back starts a new activity.
        self.mango_run(
            "incoming_missed_queue",
            from_number="79162003040",
            start_time=int(time.time()) + 3600,
        )
        self.assertEqual(len(self._activities(self.customer)), 1)
        self.assertNotEqual(self._activities(self.customer), activity)

    def test_answered_incoming_call_also_closes_the_activity(self):
        self.mango_run("incoming_missed_queue", from_number="79162003040")
        activity = self._activities(self.customer)
        self.mango_run(
            "incoming_answered",
            from_number="79162003040",
            start_time=int(time.time()) + 120,
        )
        self.assertFalse(activity.active)

    def test_unanswered_call_back_does_not_close(self):
        self.mango_run("incoming_missed_queue", from_number="79162003040")
        activity = self._activities(self.customer)
        self._callback_after("79162003040", answered=False)
        self.assertTrue(activity.active)

    def test_unknown_number_activity_goes_on_the_call_for_the_line_user(self):
        self.line.default_user_id = self.agent_101
        call = self.mango_run("incoming_missed_queue", from_number="79995550000")
        self.assertFalse(call.partner_id)
        activity = self._activities(call)
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.agent_101)

    def test_account_default_user_when_line_has_none(self):
        self.mango_account.missed_call_user_id = self.agent_102
        call = self.mango_run("incoming_missed_queue", from_number="79995550001")
        self.assertEqual(self._activities(call).user_id, self.agent_102)

    def test_finished_call_posted_once_on_partner_and_lead(self):
        lead = self.env["crm.lead"].create(
            {"name": "Upsell", "phone": "89162003040", "partner_id": self.customer.id}
        )
        events = self.mango_play("incoming_answered", from_number="79162003040")
        self.mango_ingest(events)
        self.mango_process_all()
        call = self.mango_call(events[0][1]["entry_id"])
        self.assertEqual(call.lead_id, lead)

        def posts(record):
            return record.message_ids.filtered(
                lambda m: f'data-oe-id="{call.id}"' in str(m.body)
            )

        self.assertEqual(len(posts(self.customer)), 1)
        self.assertEqual(len(posts(lead)), 1)
        body = str(posts(self.customer).body)
        self.assertIn("Incoming", body)
        self.assertIn("Agent 101", body, "who answered")
        self.assertIn(_format_duration(self.env, call.talk_duration), body)
        self.assertGreater(call.talk_duration, 0)
        # Duplicated, shuffled re-delivery and a forced re-fold post nothing new.
        self.mango_ingest(self.mango_shuffled_with_duplicates(events, ratio=1.0))
        self.mango_process_all()
        call.fold_state = {}
        self.env["mango.event"].sudo().search([("call_id", "=", call.id)])[
            :1
        ]._mango_fold_call(self.mango_account.id, call.entry_id)
        self.assertEqual(len(posts(self.customer)), 1)
        self.assertEqual(len(posts(lead)), 1)

    def test_ringing_call_is_not_posted(self):
        events = self.mango_play(
            "incoming_answered", from_number="79162003040", live=True
        )
        self.mango_ingest(events)
        self.mango_process_all()
        call = self.mango_call(events[0][1]["entry_id"])
        self.assertEqual(call.status, "ringing")
        self.assertFalse(
            self.customer.message_ids.filtered(
                lambda m: f'data-oe-id="{call.id}"' in str(m.body)
            )
        )
