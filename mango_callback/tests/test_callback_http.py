import time

from odoo.tests import tagged

from odoo.addons.mango_telephony.tests.common import MangoHttpCase

from .common import MangoCallbackMixin


@tagged("post_install", "-at_install")
class TestCallbackHttp(MangoCallbackMixin, MangoHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_callback_setup()
        # Open around the clock, so the in-hours path does not depend on when the
        # suite runs.
        cls.calendar.attendance_ids = [(5, 0, 0)] + [
            (
                0,
                0,
                {
                    "name": f"All day {day}",
                    "dayofweek": str(day),
                    "hour_from": 0,
                    "hour_to": 24,
                    "day_period": "morning",
                },
            )
            for day in range(7)
        ]
        cls.Request = cls.env["mango.callback.request"]

    def setUp(self):
        super().setUp()
        self.mango_sim.reset()
        self.mango_sim.set_webhook(None)

    def deliver_to_this_server(self):
        """Point the simulator at our /mango routes for this test only; at its end,
        wait for every delivery so none reaches the next test's transaction.

        Calls placed by earlier tests may still be on their way (to nowhere):
        they are drained first, so only this test's events reach this server.
        """
        self.assertTrue(self.mango_wait_idle(), "earlier deliveries never ended")
        self.mango_sim.set_webhook(f"{self.base_url()}/mango")
        self.addCleanup(self.mango_sim.set_webhook, None)
        self.addCleanup(self.mango_wait_idle)

    def post(self, token, **fields):
        data = dict({"widget_id": self.widget.id, "country": "RU"}, **fields)
        if token is not None:
            data["csrf_token"] = token
        return self.url_open("/mango_callback/request", data=data)

    def test_widget_rendered_only_when_enabled(self):
        html = self.url_open("/").text
        self.assertIn('class="o_mango_callback"', html)
        self.assertIn(f'data-widget-id="{self.widget.id}"', html)
        self.assertNotIn(self.mango_account.api_key, html)
        self.widget.active = False
        self.assertNotIn('class="o_mango_callback"', self.url_open("/").text)

    def test_request_in_hours_over_http(self):
        token = self.page_token()
        response = self.post(token, phone="916 555-12-34", name="Vera")
        self.assertEqual(response.status_code, 200)
        answer = response.json()
        self.assertTrue(answer["ok"])
        self.assertEqual(answer["status"], "calling")
        self.assertEqual(answer["seconds"], 25)
        self.assertEqual(len(self.mango_sim.commands("commands/callback_group")), 1)
        request = self.Request.search([], order="id desc", limit=1)
        self.assertEqual(request.phone_e164, "+79165551234")
        self.assertEqual(request.ip_address, "127.0.0.1")

    def wait_for_deliveries(self, path, count=1, timeout=20):
        deadline = time.monotonic() + timeout
        with self.mango_serving_requests():
            while time.monotonic() < deadline:
                delivered = [d for d in self.mango_sim.events(path) if d.get("status")]
                if len(delivered) >= count:
                    return delivered
                time.sleep(0.2)
        self.fail(f"the simulator delivered no {path} in {timeout}s")

    def test_visitors_never_see_a_stale_widget(self):
        """Odoo 19.0 keeps pages for public visitors (18.0 renders each visit):
        the widget switched on, its texts edited or the widget switched off show
        on the very next visit, and a page with the widget is never kept (its
        form carries the visitor's own CSRF token)."""
        self.widget.active = False
        for _visit in range(2):  # the second visit may come from the page store
            self.assertNotIn('class="o_mango_callback"', self.url_open("/").text)
        self.widget.active = True
        self.assertIn('class="o_mango_callback"', self.url_open("/").text)
        self.widget.title = "Mango calls you back at once"
        self.assertIn("Mango calls you back at once", self.url_open("/").text)
        self.page_token()  # a first visitor
        # Another visitor, with a session of their own.
        self.opener.cookies.pop("session_id", None)
        answer = self.post(self.page_token(), phone="916 555-12-37").json()
        self.assertTrue(answer["ok"], answer)
        self.widget.active = False
        self.assertNotIn('class="o_mango_callback"', self.url_open("/").text)

    def test_request_followed_through_the_pbx_events(self):
        """The simulator places the call and reports it back to our /mango routes
        exactly as Mango would; the request ends answered, linked to its call."""
        self.deliver_to_this_server()
        self.widget.create_lead = True
        token = self.page_token()
        self.assertTrue(self.post(token, phone="916 555-12-34").json()["ok"])
        request = self.Request.search([], order="id desc", limit=1)
        self.wait_for_deliveries("events/summary")
        self.env["mango.event"]._mango_process_pending()
        self.assertEqual(request.state, "answered")
        call = request.call_ids
        self.assertEqual(len(call), 1)
        self.assertEqual(call.status, "answered")
        self.assertEqual(call.lead_id, request.lead_id)
        self.assertEqual(call.command_id, request.attempt_ids.command_id)

    def test_unanswered_customer_is_retried(self):
        self.deliver_to_this_server()
        self.mango_sim.configure(callback_options={"answered": False})
        self.addCleanup(self.mango_sim.configure, callback_options={})
        token = self.page_token()
        self.post(token, phone="916 555-12-36")
        request = self.Request.search([], order="id desc", limit=1)
        self.wait_for_deliveries("events/summary")
        self.env["mango.event"]._mango_process_pending()
        self.assertEqual(request.attempt_ids.state, "no_answer")
        self.assertEqual(request.state, "scheduled")

    def test_csrf_required(self):
        self.page_token()
        for token in (None, "forged"):
            response = self.post(token, phone="916 555-12-34")
            self.assertEqual(response.status_code, 400)
            self.assertFalse(response.json()["ok"])
            self.assertEqual(
                self.Request.search([], order="id desc", limit=1).refuse_reason, "csrf"
            )
        self.assertFalse(self.mango_sim.commands("commands/callback_group"))

    def test_field_errors_come_back_as_json(self):
        token = self.page_token()
        answer = self.post(token, phone="12").json()
        self.assertFalse(answer["ok"])
        self.assertIn("phone", answer["errors"])
        check = self.url_open(
            "/mango_callback/check",
            data={"widget_id": self.widget.id, "csrf_token": token, "phone": "12"},
        ).json()
        self.assertIn("phone", check["errors"])

    def test_unknown_widget_and_garbage_never_leak_a_traceback(self):
        token = self.page_token()
        for widget_id in ("999999", "abc", ""):
            response = self.url_open(
                "/mango_callback/request",
                data={"widget_id": widget_id, "csrf_token": token, "phone": "x" * 5000},
            )
            self.assertEqual(response.status_code, 404)
            self.assertNotIn("Traceback", response.text)

    def test_flood_from_one_address(self):
        """1,000 requests in a minute from one address: every one answered and
        stored, no more calls placed than the limits allow."""
        token = self.page_token()
        statuses = set()
        for index in range(1000):
            response = self.post(token, phone=f"916 {index % 1000:03d}-00-00")
            statuses.add(response.status_code)
            self.assertIn("ok", response.json())
        self.assertEqual(statuses, {200})
        self.assertEqual(
            self.Request.search_count([("widget_id", "=", self.widget.id)]), 1000
        )
        placed = len(self.mango_sim.commands("commands/callback_group"))
        self.assertEqual(placed, self.widget.limit_ip_short)
        self.assertEqual(
            self.Request.search_count([("refuse_reason", "=", "limit_ip")]), 998
        )

    def test_slots_endpoint(self):
        self.assertEqual(
            self.url_open(f"/mango_callback/slots?widget_id={self.widget.id}").json(),
            {"slots": []},
        )
        self.close_now()
        self.widget.allow_slot_choice = True
        slots = self.url_open(
            f"/mango_callback/slots?widget_id={self.widget.id}"
        ).json()["slots"]
        self.assertEqual(len(slots), self.widget.slot_count)
        self.assertTrue(all(slot["label"] for slot in slots))

    def test_tour_in_hours_countdown(self):
        # short, so the tour sees the countdown end
        self.widget.countdown_seconds = 3
        self.start_tour("/", "mango_callback_in_hours")
        self.assertEqual(len(self.mango_sim.commands("commands/callback_group")), 1)

    def test_tour_after_hours_text(self):
        self.close_now()
        self.widget.display_mode = "full"
        self.start_tour("/", "mango_callback_after_hours")
        self.assertFalse(self.mango_sim.commands("commands/callback_group"))
        self.assertEqual(
            self.Request.search([], order="id desc", limit=1).state, "scheduled"
        )

    def test_tour_collapse_remembered(self):
        self.widget.display_mode = "full"
        self.start_tour("/", "mango_callback_collapse_remembered")


@tagged("post_install", "-at_install")
class TestCallbackOnPhone(MangoCallbackMixin, MangoHttpCase):
    browser_size = "390x844"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_callback_setup()

    def test_tour_full_mode_starts_collapsed_on_a_phone(self):
        self.widget.display_mode = "full"
        self.start_tour("/", "mango_callback_full_on_phone")
