import datetime as dt

from freezegun import freeze_time

from odoo.tests import TransactionCase, tagged

from .common import (
    MONDAY_OPENING_UTC,
    SATURDAY_NOON_UTC,
    WEDNESDAY_NOON_UTC,
    MangoCallbackMixin,
)


@tagged("post_install", "-at_install")
class TestCallbackRequest(MangoCallbackMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_callback_setup()
        cls.Request = cls.env["mango.callback.request"]

    def setUp(self):
        super().setUp()
        self.mango_sim.reset()

    def submit(self, phone="+7 916 555-12-34", ip="10.0.0.1", **values):
        return self.Request._mango_submit(self.widget, dict(values, phone=phone), ip)

    def last_request(self):
        return self.Request.search([], order="id desc", limit=1)

    def group_commands(self):
        return self.mango_sim.commands("commands/callback_group")

    # -- placing calls ---------------------------------------------------
    @freeze_time(WEDNESDAY_NOON_UTC)
    def test_in_hours_places_group_call_customer_first(self):
        answer = self.submit("8 (916) 555-12-34")
        self.assertEqual(answer["status"], "calling")
        self.assertEqual(answer["seconds"], 25)
        self.assertIn("{seconds}", answer["message"])
        request = self.last_request()
        self.assertEqual(request.state, "calling")
        self.assertEqual(request.phone_e164, "+79165551234")
        self.assertTrue(request.in_office_hours)
        commands = self.group_commands()
        self.assertEqual(len(commands), 1)
        payload = commands[0]["payload"]
        self.assertEqual(payload["from"], "79165551234")
        self.assertEqual(payload["to"], "900")
        self.assertEqual(payload["line_number"], "74951234567")
        self.assertEqual(payload["command_id"], request.attempt_ids.command_id)

    @freeze_time(WEDNESDAY_NOON_UTC)
    def test_employee_target_calls_operator_first(self):
        operator = self.env["res.users"].create(
            {
                "name": "Operator Oleg",
                "login": "mango_cb_oleg",
                "mango_extension": "102",
            }
        )
        self.widget.write({"target_type": "employee", "operator_id": operator.id})
        self.submit()
        commands = self.mango_sim.commands("commands/callback")
        self.assertEqual(len(commands), 1)
        self.assertEqual(commands[0]["payload"]["from"]["extension"], "102")
        self.assertEqual(commands[0]["payload"]["to_number"], "79165551234")
        self.assertFalse(self.group_commands())

    # -- validation -------------------------------------------------------
    def test_invalid_input_gets_field_messages_and_is_stored(self):
        for phone in ("", "12", "not a number", "+1 202 555 0143"):
            with self.subTest(phone=phone):
                answer = self.submit(phone)
                self.assertFalse(answer["ok"])
                self.assertIn("phone", answer["errors"])
                self.assertEqual(self.last_request().state, "refused")
        self.assertFalse(self.group_commands())

    def test_consent_required(self):
        self.widget.require_consent = True
        answer = self.submit()
        self.assertIn("consent", answer["errors"])
        with freeze_time(WEDNESDAY_NOON_UTC):
            self.assertTrue(self.submit(consent="1")["ok"])

    def test_what_no_visitor_types_is_refused_field_by_field(self):
        """Values no browser sends are refused with an error on their field, and
        the refusal is stored with its text escaped."""
        cases = [
            ({"phone": "+7 916 555\x0012 34", "unreadable": ["phone"]}, "phone"),
            ({"name": "Вера\x1b[31m", "unreadable": ["name"]}, "name"),
            ({"country": "ЫЫ"}, "country"),
            ({"country": "RUS"}, "country"),
            ({"name": "n" * 129}, "name"),
            ({"consent": "x" * 50}, "consent"),
        ]
        for values, field in cases:
            with self.subTest(field=field, values=str(values)[:40]):
                answer = self.submit(**values)
                self.assertFalse(answer["ok"])
                self.assertEqual(list(answer["errors"]), [field])
                request = self.last_request()
                self.assertEqual(request.refuse_reason, "invalid")
                for name in ("phone", "name"):
                    self.assertNotIn("\x00", request[name] or "")
                    self.assertNotIn("\x1b", request[name] or "")
        self.assertIn(
            "\\u0000", self.Request.search([("phone", "like", "916")])[-1].phone
        )
        self.assertFalse(self.group_commands())

    @freeze_time(WEDNESDAY_NOON_UTC)
    def test_ordinary_values_still_pass(self):
        cases = (
            {"name": "Jean-Luc O'Neill", "country": "RU", "consent": "on"},
            {"name": "李", "country": "ru", "consent": "1"},
            {"name": "שלום\u200f", "consent": ""},
        )
        for index, values in enumerate(cases):
            with self.subTest(values=values):
                answer = self.submit(
                    f"+7 916 555-12-4{index}", ip=f"10.0.0.{index + 10}", **values
                )
                self.assertTrue(answer["ok"], answer)

    def test_impossible_slot_dates_are_refused(self):
        self.widget.allow_slot_choice = True
        for slot in (
            "0001-01-01",
            "9999-12-31T23:59:59-14:00",
            "2026-13-45",
            "x" * 500,
        ):
            with self.subTest(slot=slot[:20]):
                answer = self.submit(slot=slot)
                self.assertEqual(list(answer["errors"]), ["slot"])

    def test_blocked_number_and_country_never_reach_the_pbx(self):
        self.widget.write(
            {
                "blocked_numbers": "8 916 555-12-34\n",
                "allowed_country_ids": [(5, 0, 0)],
                "blocked_country_ids": [(6, 0, [self.env.ref("base.us").id])],
            }
        )
        answer = self.submit("+7 916 555 12 34")
        self.assertFalse(answer["ok"])
        self.assertEqual(self.last_request().refuse_reason, "blocked")
        answer = self.submit("+1 202 555 0143")
        self.assertFalse(answer["ok"])
        self.assertFalse(self.group_commands())

    @freeze_time(WEDNESDAY_NOON_UTC)
    def test_honeypot_looks_accepted_but_places_nothing(self):
        answer = self.submit(honeypot="http://spam.example")
        self.assertTrue(answer["ok"])
        self.assertEqual(self.last_request().refuse_reason, "honeypot")
        self.assertFalse(self.group_commands())

    # -- limits ---------------------------------------------------------------
    def test_ip_limit_two_per_two_minutes(self):
        self.widget.write(
            {"limit_ip_long": 100, "limit_number_short": 100, "limit_number_long": 100}
        )
        with freeze_time(WEDNESDAY_NOON_UTC) as frozen:
            self.assertTrue(self.submit("+79165550001")["ok"])
            self.assertTrue(self.submit("+79165550002")["ok"])
            answer = self.submit("+79165550003")
            self.assertFalse(answer["ok"])
            self.assertEqual(self.last_request().refuse_reason, "limit_ip")
            self.assertTrue(self.submit("+79165550004", ip="10.0.0.2")["ok"])
            frozen.tick(dt.timedelta(minutes=2, seconds=1))
            self.assertTrue(self.submit("+79165550005")["ok"])
        self.assertEqual(len(self.group_commands()), 4)

    def test_ip_limit_two_per_thirty_minutes(self):
        self.widget.write({"limit_number_short": 100, "limit_number_long": 100})
        with freeze_time(WEDNESDAY_NOON_UTC) as frozen:
            self.assertTrue(self.submit("+79165550001")["ok"])
            frozen.tick(dt.timedelta(minutes=5))
            self.assertTrue(self.submit("+79165550002")["ok"])
            frozen.tick(dt.timedelta(minutes=5))
            self.assertEqual(self.submit("+79165550003")["status"], "refused")
            frozen.tick(dt.timedelta(minutes=21))
            self.assertTrue(self.submit("+79165550004")["ok"])

    def test_number_limits(self):
        self.widget.write({"limit_ip_short": 100, "limit_ip_long": 100})
        with freeze_time(WEDNESDAY_NOON_UTC) as frozen:
            self.assertTrue(self.submit(ip="10.0.1.1")["ok"])
            self.assertTrue(self.submit(ip="10.0.1.2")["ok"])
            self.assertEqual(self.submit(ip="10.0.1.3")["status"], "refused")
            self.assertEqual(self.last_request().refuse_reason, "limit_number")
            frozen.tick(dt.timedelta(minutes=3))
            self.assertTrue(self.submit(ip="10.0.1.4")["ok"])
            # three in 30 minutes is the most a number gets
            self.assertEqual(self.submit(ip="10.0.1.5")["status"], "refused")

    # -- what the visitor reads -----------------------------------------------
    @freeze_time(WEDNESDAY_NOON_UTC)
    def test_countdown_has_a_final_text(self):
        """When the countdown reaches zero the widget shows where things stand:
        the call is on its way and the request is registered."""
        answer = self.submit()
        self.assertEqual(answer["status"], "calling")
        self.assertIn("We are calling you now", answer["final_message"])
        self.assertIn("request is registered", answer["final_message"])
        self.widget.text_calling = "Pick up, we are ringing!"
        self.assertEqual(
            self.submit("+79165550111")["final_message"], "Pick up, we are ringing!"
        )

    def test_built_in_texts_follow_the_visitors_language(self):
        """A widget set up in one language greets each visitor in theirs, until
        the administrator writes texts of their own."""
        self.env["res.lang"]._activate_lang("ru_RU")
        self.env["res.lang"]._activate_lang("fi_FI")
        self.env["ir.module.module"]._load_module_terms(
            ["mango_callback"], ["ru_RU", "fi_FI"], overwrite=True
        )
        # set up by a Finnish administrator: the Finnish defaults are stored
        widget = (
            self.env["mango.callback.widget"]
            .with_context(lang="fi_FI")
            .create(
                {
                    "website_id": self.env["website"].create({"name": "Other"}).id,
                    "account_id": self.mango_account.id,
                    "calendar_id": self.calendar.id,
                    "group_extension": "200",
                    "line_id": self.line.id,
                }
            )
            .with_context(lang="en_US")
        )
        self.assertEqual(widget.button_label, "Soita minulle")
        self.assertEqual(widget._mango_text("button_label", "ru_RU"), "Перезвоните мне")
        self.assertEqual(widget._mango_text("button_label", "en_US"), "Call me back")
        with freeze_time(SATURDAY_NOON_UTC):
            answer = self.Request._mango_submit(
                widget, {"phone": "+7 916 555-12-99"}, "10.9.9.9", lang="ru_RU"
            )
        self.assertIn("Сейчас мы не работаем", answer["message"])
        with freeze_time(WEDNESDAY_NOON_UTC):
            answer = self.Request._mango_submit(
                widget, {"phone": "+7 916 555-12-98"}, "10.9.9.8", lang="fi_FI"
            )
        self.assertIn("Soitamme sinulle nyt", answer["final_message"])
        # the administrator's own words are kept, in every language
        widget.button_label = "Ring me"
        self.assertEqual(widget._mango_text("button_label", "ru_RU"), "Ring me")

    # -- office hours ---------------------------------------------------------
    def test_after_hours_queued_and_placed_at_opening(self):
        with freeze_time(SATURDAY_NOON_UTC):
            answer = self.submit()
        self.assertEqual(answer["status"], "scheduled")
        self.assertIn("We are closed right now", answer["message"])
        self.assertNotIn("{opening}", answer["message"])
        request = self.last_request()
        self.assertEqual(request.state, "scheduled")
        self.assertEqual(request.scheduled_at, MONDAY_OPENING_UTC)
        self.assertFalse(self.group_commands())
        # Sunday evening: still closed, nothing placed.
        with freeze_time(MONDAY_OPENING_UTC - dt.timedelta(hours=10)):
            self.Request._cron_mango_process()
        self.assertFalse(self.group_commands())
        with freeze_time(MONDAY_OPENING_UTC + dt.timedelta(minutes=1)):
            self.Request._cron_mango_process()
        self.assertEqual(request.state, "calling")
        self.assertEqual(len(self.group_commands()), 1)

    def test_public_holiday_moves_the_call(self):
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Holiday",
                "calendar_id": self.calendar.id,
                "date_from": dt.datetime(2026, 11, 29, 21, 0),
                "date_to": dt.datetime(2026, 11, 30, 21, 0),
            }
        )
        with freeze_time(SATURDAY_NOON_UTC):
            self.submit()
        self.assertEqual(
            self.last_request().scheduled_at, MONDAY_OPENING_UTC + dt.timedelta(days=1)
        )

    def test_visitor_picks_a_slot(self):
        self.widget.allow_slot_choice = True
        with freeze_time(SATURDAY_NOON_UTC):
            slot = "2026-12-01T06:00:00+00:00"
            answer = self.submit(slot=slot)
            self.assertEqual(answer["status"], "scheduled")
            self.assertEqual(
                self.last_request().scheduled_at, dt.datetime(2026, 12, 1, 6, 0)
            )
            self.assertTrue(self.last_request().slot_chosen)
            answer = self.submit("+79165550009", slot="2026-12-01T03:00:00+00:00")
            self.assertIn("slot", answer["errors"])

    # -- following the call ---------------------------------------------------
    def feed_result(self, command_id, result):
        from mango_office import signing

        payload = signing.dumps({"command_id": command_id, "result": result})
        event_id, _new = self.env["mango.event"]._mango_ingest(
            self.mango_account, "result/callback_group", payload
        )
        self.env["mango.event"].browse(event_id)._mango_process()

    def test_refused_command_is_retried_then_left_to_a_person(self):
        with freeze_time(WEDNESDAY_NOON_UTC) as frozen:
            self.submit()
            request = self.last_request()
            for attempt_number in range(1, 4):
                attempt = request.attempt_ids.sorted("id")[-1]
                self.assertEqual(len(request.attempt_ids), attempt_number)
                self.feed_result(attempt.command_id, 2240)
                self.assertEqual(attempt.state, "failed")
                self.assertEqual(attempt.result_code, 2240)
                if attempt_number < 3:
                    self.assertEqual(request.state, "scheduled")
                    self.assertEqual(
                        request.scheduled_at,
                        WEDNESDAY_NOON_UTC + dt.timedelta(minutes=2 * attempt_number),
                    )
                    frozen.tick(dt.timedelta(minutes=2))
                    self.Request._cron_mango_process()
            self.assertEqual(request.state, "unanswered")
            self.assertEqual(len(self.group_commands()), 3)
            activity = request.activity_ids
            self.assertEqual(len(activity), 1)
            self.assertEqual(activity.user_id, self.follow_up_user)
            self.assertEqual(
                activity.activity_type_id,
                self.env.ref("mango_telephony.mail_activity_type_mango_call_back"),
            )

    def test_answered_call_completes_the_request_and_links_the_lead(self):
        self.widget.create_lead = True
        with freeze_time(WEDNESDAY_NOON_UTC):
            self.submit(name="Visitor Vera")
        request = self.last_request()
        self.assertTrue(request.lead_id)
        self.assertEqual(request.lead_id.phone, "+79165551234")
        command_id = request.attempt_ids.command_id
        call = self.env["mango.call"].create(
            {
                "account_id": self.mango_account.id,
                "company_id": self.mango_account.company_id.id,
                "entry_id": "cb-entry-1",
                "command_id": command_id,
                "status": "answered",
            }
        )
        call._mango_on_call_updated({call.id: {"status": False, "is_new": True}})
        self.assertEqual(request.state, "answered")
        self.assertEqual(request.attempt_ids.call_id, call)
        self.assertEqual(call.lead_id, request.lead_id)
        self.assertEqual(request.call_ids, call)

    def test_silent_pbx_counts_as_no_answer(self):
        with freeze_time(WEDNESDAY_NOON_UTC) as frozen:
            self.submit()
            request = self.last_request()
            frozen.tick(dt.timedelta(minutes=16))
            self.Request._cron_mango_process()
            self.assertEqual(request.attempt_ids[0].state, "no_answer")
            self.assertEqual(request.state, "scheduled")

    def test_pbx_error_is_recorded_and_retried(self):
        self.mango_sim.add_fault(
            "result", count=10, code=2240, methods=["commands/callback_group"]
        )
        with freeze_time(WEDNESDAY_NOON_UTC):
            answer = self.submit()
        self.assertTrue(answer["ok"], "the visitor is not told about our PBX trouble")
        request = self.last_request()
        self.assertEqual(request.attempt_ids.state, "failed")
        self.assertTrue(request.attempt_ids.message)
        self.assertEqual(request.state, "scheduled")
