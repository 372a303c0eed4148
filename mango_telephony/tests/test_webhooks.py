"""Mango's webhooks at the real routes: signatures, keys, addresses, bodies, dedup."""

import gc
import logging
import os
import select
import time
from unittest.mock import patch

import psycopg2

import odoo
from odoo.sql_db import connection_info_for
from odoo.tests import TransactionCase, tagged

from mango_office import signing

from ..models import cron_wakeup
from ..models import mango_event as mango_event_module
from ..models.webhook_health import UNATTRIBUTED_PARAM, refusal_throttle
from .calls_common import MangoCallsMixin
from .common import MangoHttpCase

REFUSAL_LOGGER = "odoo.addons.mango_telephony.models.webhook_health"

CALL_EVENT = {
    "entry_id": "MzQ1Mzc1MzUxMzoxNjE=",
    "call_id": "MToxMDA3MTYxNToxNjE6Nzc2MTY1NjA4OjE=",
    "timestamp": 1513707786,
    "seq": 1,
    "call_state": "Appeared",
    "location": "ivr",
    "from": {"number": "79997356761"},
    "to": {"number": "74994509495", "line_number": "74994509495"},
}


@tagged("post_install", "-at_install")
class TestWebhooks(MangoCallsMixin, MangoHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()

    def setUp(self):
        super().setUp()
        refusal_throttle.clear()

    def post(self, path, data, headers=None):
        return self.url_open(f"/mango/{path}", data=data, headers=headers)

    def events(self):
        return (
            self.env["mango.event"]
            .sudo()
            .search([("account_id", "=", self.mango_account.id)])
        )

    def assertRefused(self, response, status, reason):
        self.assertEqual(response.status_code, status)
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))
        self.assertLess(len(response.text), 80)
        self.assertNotIn("Traceback", response.text)
        self.mango_account.invalidate_recordset()
        self.assertEqual(self.mango_account.last_refused_reason, reason)
        self.assertFalse(self.events())

    # ---------------------------------------------------------------- accepted

    def test_valid_signature_is_stored_then_folded(self):
        response = self.post("events/call", self.mango_form(CALL_EVENT))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.text, "OK")
        event = self.events()
        self.assertEqual(len(event), 1)
        self.assertEqual(event.state, "pending")
        self.assertEqual(event.payload, signing.dumps(CALL_EVENT))
        self.assertEqual(event.entry_id, CALL_EVENT["entry_id"])
        self.assertEqual(event.remote_addr, "127.0.0.1")
        self.assertFalse(event.create_uid, "Mango, not the public user, sent it")
        cron = self.env.ref("mango_telephony.ir_cron_mango_event_process")
        self.assertTrue(
            self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]),
            "storing an event wakes the processing cron",
        )
        self.mango_process_all()
        self.assertEqual(event.state, "done")
        call = self.mango_call(CALL_EVENT["entry_id"])
        self.assertEqual(event.call_id, call)
        self.assertEqual(call.status, "ringing")
        self.assertEqual(call.direction, "incoming")
        self.assertEqual(call.caller_number_e164, "+79997356761")
        self.assertEqual(call.line_number, "74994509495")
        self.assertTrue(self.mango_account.last_event_at)

    def test_raw_json_is_verified_as_sent(self):
        # Mango may escape differently from us: the signature covers the bytes sent,
        # and the stored payload is those bytes, not a re-serialisation.
        raw = (
            '{"entry_id":"e-raw", "call_id":"c\\u0031","seq":"1",'
            '"timestamp":"1513707786","call_state":"Appeared",'
            '"from":{"number":"79031234567"},"to":{"extension":101}}'
        )
        form = self.mango_form(raw)
        self.assertEqual(self.post("events/call", form).status_code, 200)
        self.assertEqual(self.events().payload, raw)

    def test_duplicate_is_acknowledged_not_stored_twice(self):
        form = self.mango_form(CALL_EVENT)
        cron = self.env.ref("mango_telephony.ir_cron_mango_event_process")
        Trigger = self.env["ir.cron.trigger"]
        self.assertEqual(self.post("events/call", form).status_code, 200)
        triggers = Trigger.search_count([("cron_id", "=", cron.id)])
        self.assertEqual(self.post("events/call", form).status_code, 200)
        self.assertEqual(len(self.events()), 1)
        self.assertEqual(
            Trigger.search_count([("cron_id", "=", cron.id)]),
            triggers,
            "a duplicate has nothing new to process",
        )

    def test_ignored_event_does_not_wake_the_worker(self):
        cron = self.env.ref("mango_telephony.ir_cron_mango_event_process")
        Trigger = self.env["ir.cron.trigger"]
        triggers = Trigger.search_count([("cron_id", "=", cron.id)])
        response = self.post("events/dtmf", self.mango_form({"seq": 1, "dtmf": "1"}))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), triggers)

    def test_other_documented_paths_are_ignored_with_200(self):
        paths = {
            "events/dtmf": {"entry_id": "e1", "call_id": "c1", "dtmf": "12", "seq": 1},
            "events/sms": {"command_id": "s1", "reason": 1000, "timestamp": 1},
            "events/ab": {"contact_id": 5},
            "events/record/tagged": {"entry_id": "e1", "recording_id": "r1"},
            "events/user/status_changed": {"user_id": 1, "status": "online"},
            "events/user/session_end": {"user_id": 1},
            "events/recognized/offline": {"task_id": 3},
        }
        for path, payload in paths.items():
            with self.subTest(path=path):
                response = self.post(path, self.mango_form(payload))
                self.assertEqual(response.status_code, 200)
        events = self.events()
        self.assertEqual(sorted(events.mapped("path")), sorted(paths))
        self.assertEqual(set(events.mapped("state")), {"ignored"})
        self.mango_process_all()
        self.assertEqual(set(events.mapped("state")), {"ignored"})
        self.assertFalse(self.env["mango.call"].sudo().search_count([]))

    def test_command_and_stats_results(self):
        for path, payload in (
            ("result/callback", {"command_id": "cmd-1", "result": 1000}),
            ("result/call/hangup", {"command_id": "cmd-2", "result": "4101"}),
            ("result/stat", {"key": "k1", "request_id": "r1"}),
            ("result/stats", {"key": "k2"}),
        ):
            with self.subTest(path=path):
                self.assertEqual(
                    self.post(path, self.mango_form(payload)).status_code, 200
                )
        self.assertEqual(len(self.events()), 4)
        self.mango_process_all()
        self.assertEqual(set(self.events().mapped("state")), {"done"})

    def test_ping_with_garbage_answers_200_and_keeps_it(self):
        """The cabinet's check gets its 200 whatever the body; a signed body no
        column can hold is kept as a refused event, without a traceback."""
        bodies = ["a\x00b", '{"a":"\\ud800"}', '{"a":1,"a":2}', "[" * 3000]
        for body in bodies:
            with self.subTest(body=body[:20]):
                refusal_throttle.clear()
                with self.assertNoLogs(level=logging.ERROR):
                    response = self.post("ping", self.mango_form(body))
                self.assertEqual((response.status_code, response.text), (200, "OK"))
        kept = self.env["mango.refused.event"].sudo().search([])
        self.assertEqual(
            kept.mapped("reason"),
            ["too_deep", "duplicate_key", "bad_characters", "bad_characters"],
        )
        self.assertEqual(set(kept.mapped("path")), {"ping"})
        self.assertFalse(self.events())
        # Text that is no JSON is still an ordinary ping.
        self.assertEqual(self.post("ping", self.mango_form("hello")).status_code, 200)
        self.assertEqual(self.events().kind, "ping")

    def test_ping(self):
        self.assertEqual(self.url_open("/mango/ping").status_code, 200)
        # The cabinet's check may come unsigned: still 200, nothing stored.
        self.assertEqual(self.post("ping", {"anything": "1"}).status_code, 200)
        self.assertFalse(self.events())
        self.assertEqual(self.post("ping", self.mango_form({})).status_code, 200)
        self.assertEqual(self.events().state, "ignored")
        self.assertEqual(self.events().kind, "ping")

    def test_simulator_end_to_end(self):
        """The simulator plays a shuffled, duplicated incoming call at our routes."""
        base = f"{self.base_url()}/mango"
        # Earlier tests' calls still on their way must not reach this server.
        self.mango_wait_idle()
        self.mango_sim_control(self.mango_sim, "webhook", {"url": base})
        self.addCleanup(self.mango_sim.set_webhook, None)
        # Events still on their way must not reach the next test's transaction.
        self.addCleanup(self.mango_wait_idle)
        with self.mango_serving_requests():
            result = self.mango_sim_control(
                self.mango_sim,
                "scenarios/incoming_answered",
                {
                    "shuffle": True,
                    "duplicates": 3,
                    "extension": "101",
                    "seed": 3,
                    "pace": "instant",
                },
            )
            deliveries = self.mango_sim_control(
                self.mango_sim, f"events?entry_id={result['entry_id']}", method="GET"
            )["events"]
        statuses = {d["status"] for d in deliveries}
        self.assertEqual(statuses, {200}, deliveries)
        self.assertEqual(len(self.events().filtered("entry_id")), result["events"])
        self.mango_process_all()
        call = self.mango_call(result["entry_id"])
        self.assertEqual(call.status, "answered")
        self.assertEqual(call.direction, "incoming")
        self.assertEqual(call.user_id, self.agent_101)
        self.assertGreater(call.talk_duration, 0)

    # ---------------------------------------------------------------- refused

    def test_missing_signature(self):
        form = self.mango_form(CALL_EVENT)
        del form["sign"]
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING) as logs:
            response = self.post("events/call", form)
        self.assertRefused(response, 403, "bad_signature")
        self.assertNotIn(self.mango_api_key, "\n".join(logs.output))

    def test_bad_signature(self):
        form = self.mango_form(CALL_EVENT)
        form["json"] = form["json"].replace("79997356761", "79990000000")
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING):
            response = self.post("events/call", form)
        self.assertRefused(response, 403, "bad_signature")
        self.assertEqual(self.mango_account.last_refused_address, "127.0.0.1")
        self.assertEqual(self.mango_account.refused_count, 1)

    def test_signature_with_wrong_salt(self):
        form = self.mango_form(CALL_EVENT, salt="not-the-salt")
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING):
            self.assertRefused(self.post("events/call", form), 403, "bad_signature")

    def test_unknown_key(self):
        form = self.mango_form(CALL_EVENT, key="someone-elses-key")
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING):
            response = self.post("events/call", form)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.text, "Forbidden: unknown key")
        self.assertFalse(self.events())
        param = self.env["ir.config_parameter"].sudo().get_param(UNATTRIBUTED_PARAM)
        self.assertIn("|unknown_key|127.0.0.1", param)
        self.assertEqual(self.mango_account.unattributed_refused_reason, "unknown_key")

    def test_archived_account_key_is_unknown(self):
        self.mango_account.active = False
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING):
            response = self.post("events/call", self.mango_form(CALL_EVENT))
        self.assertEqual(response.status_code, 403)
        self.assertFalse(self.events())

    def test_address_outside_allowlist(self):
        self.mango_account.write(
            {"ip_filter_mode": "list", "allowed_ips": "81.88.80.132\n81.88.82.0/24"}
        )
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING):
            response = self.post("events/call", self.mango_form(CALL_EVENT))
        self.assertRefused(response, 403, "address_not_allowed")

    def test_address_inside_allowlist(self):
        self.mango_account.write(
            {"ip_filter_mode": "list", "allowed_ips": "127.0.0.0/8"}
        )
        self.assertEqual(
            self.post("events/call", self.mango_form(CALL_EVENT)).status_code, 200
        )

    def test_forwarded_for_needs_proxy_mode(self):
        self.mango_account.write(
            {"ip_filter_mode": "list", "allowed_ips": "81.88.80.132"}
        )
        headers = {
            "X-Forwarded-For": "81.88.80.132",
            "X-Forwarded-Host": "odoo.example.com",
        }
        form = self.mango_form(CALL_EVENT)
        # Reached directly, the header is anyone's to write: it must not count.
        with (
            patch.dict(odoo.tools.config.options, {"proxy_mode": False}),
            self.assertLogs(REFUSAL_LOGGER, logging.WARNING),
        ):
            response = self.post("events/call", form, headers=headers)
        self.assertRefused(response, 403, "address_not_allowed")
        with patch.dict(odoo.tools.config.options, {"proxy_mode": True}):
            response = self.post("events/call", form, headers=headers)
            self.assertEqual(response.status_code, 200)
            # The proxy appends the real peer: a client-written first entry is ignored.
            spoofed = {**headers, "X-Forwarded-For": "81.88.80.132, 10.1.2.3"}
            other = self.mango_form({**CALL_EVENT, "seq": 2})
            refusal_throttle.clear()
            with self.assertLogs(REFUSAL_LOGGER, logging.WARNING):
                response = self.post("events/call", other, headers=spoofed)
            self.assertEqual(response.status_code, 403)
        self.assertEqual(self.events().remote_addr, "81.88.80.132")

    def assertKept(self, path, form, reason, field=None, status=400):
        """A signed request refused for its body: a short 4xx, a WARNING (no
        ERROR), nothing stored as an event, and a refused event kept."""
        Refused = self.env["mango.refused.event"].sudo()
        before = Refused.search([]).ids
        with (
            self.assertLogs(REFUSAL_LOGGER, logging.WARNING) as logs,
            self.assertNoLogs(level=logging.ERROR),
        ):
            response = self.post(path, form)
        self.assertRefused(response, status, "invalid_event")
        self.assertTrue(response.text.startswith(f"Bad request: {reason}"))
        self.assertIn(reason, "\n".join(logs.output))
        kept = Refused.search([("id", "not in", before)])
        self.assertEqual(len(kept), 1)
        self.assertEqual(
            (kept.account_id, kept.reason, kept.field or None, kept.remote_addr),
            (self.mango_account, reason, field, "127.0.0.1"),
        )
        self.assertEqual(kept.path, path)
        self.assertEqual(kept.payload_size, len(form["json"]))
        self.assertFalse(self.env["mango.call"].sudo().search_count([]))
        return kept

    def test_malformed_json(self):
        form = self.mango_form("{not json")
        kept = self.assertKept("events/call", form, "not_json")
        self.assertEqual(kept.payload, "{not json")

    def test_event_without_key_fields(self):
        form = self.mango_form({"call_id": "c1", "call_state": "Appeared"})
        self.assertKept("events/call", form, "missing_field", "entry_id")

    def test_event_with_nothing_but_an_entry_id(self):
        # Once a "missed" call: now the summary lacks what makes it a summary.
        form = self.mango_form({"entry_id": "only-me"})
        self.assertKept("events/summary", form, "missing_field", "call_direction")

    def test_signed_garbage_is_kept_safe_to_store(self):
        payload = dict(CALL_EVENT, entry_id="a\x00b", x_note="\ud800")
        form = self.mango_form(signing.dumps(payload).replace("\ud800", "\\ud800"))
        kept = self.assertKept("events/call", form, "bad_characters", "entry_id")
        self.assertIn('"entry_id":"a\\u0000b"', kept.payload)
        self.assertIn("\\ud800", kept.payload)
        refusal_throttle.clear()
        # A raw NUL outside any string is not JSON; it is kept escaped as well.
        form = self.mango_form("{\x00}")
        kept = self.assertKept("events/call", form, "not_json")
        self.assertEqual(kept.payload, "{\\u0000}")

    def test_long_garbage_is_kept_cut(self):
        form = self.mango_form({**CALL_EVENT, "note": "x" * 20_000})
        kept = self.assertKept("events/call", form, "too_long", "note")
        self.assertTrue(kept.payload_truncated)
        self.assertEqual(len(kept.payload), 4096)
        self.assertEqual(kept.payload_size, len(form["json"]))
        refusal_throttle.clear()
        form = self.mango_form({**CALL_EVENT, "note": "x" * 100_000})
        self.assertKept("events/call", form, "too_large", status=413)

    def test_hostile_numbers_and_identifiers(self):
        cases = [
            ({**CALL_EVENT, "entry_id": 12345}, "wrong_type", "entry_id"),
            ({**CALL_EVENT, "entry_id": "e" * 3000}, "too_long", "entry_id"),
            ({**CALL_EVENT, "seq": 2**64}, "out_of_range", "seq"),
            ({**CALL_EVENT, "timestamp": -1}, "out_of_range", "timestamp"),
            ({**CALL_EVENT, "from": None}, "missing_field", "from"),
            ({**CALL_EVENT, "to": []}, "wrong_type", "to"),
        ]
        for payload, reason, field in cases:
            with self.subTest(reason=reason, field=field):
                refusal_throttle.clear()
                self.assertKept("events/call", self.mango_form(payload), reason, field)
        refusal_throttle.clear()
        form = self.mango_form(signing.dumps(CALL_EVENT)[:-1] + ',"seq":2}')
        self.assertKept("events/call", form, "duplicate_key", "seq")
        refusal_throttle.clear()
        deep = '{"a":' + "[" * 2000 + "]" * 2000 + "}"
        self.assertKept("events/dtmf", self.mango_form(deep), "too_deep")

    def test_duplicate_form_fields_are_refused(self):
        """The first triple is valid and signed; which copy counts would be a guess."""
        form = self.mango_form(CALL_EVENT)
        other = self.mango_form({**CALL_EVENT, "entry_id": "other"})
        for name in ("json", "sign", "vpbx_api_key"):
            with self.subTest(field=name):
                refusal_throttle.clear()
                body = list(form.items()) + [(name, other[name])]
                with self.assertNoLogs(level=logging.ERROR):
                    response = self.opener.post(
                        f"{self.base_url()}/mango/events/call", data=body, timeout=12
                    )
                self.assertEqual(response.status_code, 400)
                self.assertEqual(
                    response.text, f"Bad request: duplicate_form_field ({name})"
                )
                self.assertFalse(self.events())
        kept = self.env["mango.refused.event"].sudo().search([])
        self.assertEqual(set(kept.mapped("reason")), {"duplicate_form_field"})
        self.assertEqual(sorted(kept.mapped("field")), ["json", "sign", "vpbx_api_key"])

    def test_uppercase_signature_is_refused(self):
        form = self.mango_form(CALL_EVENT)
        form["sign"] = form["sign"].upper()
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING):
            self.assertRefused(self.post("events/call", form), 403, "bad_signature")

    def test_refused_events_are_capped(self):
        from ..models import mango_refused_event

        self.startPatcher(patch.object(mango_refused_event, "KEEP_PER_ACCOUNT", 3))
        for index in range(5):
            response = self.post(
                "events/call", self.mango_form({"entry_id": f"g{index}"})
            )
            self.assertEqual(response.status_code, 400)
        kept = self.env["mango.refused.event"].sudo().search([])
        self.assertEqual(len(kept), 3, "the oldest are dropped past the cap")
        self.assertEqual(
            [p for p in kept.mapped("payload")],
            [signing.dumps({"entry_id": f"g{i}"}) for i in (4, 3, 2)],
        )

    def test_refused_events_on_the_settings_page(self):
        self.post("events/call", self.mango_form({"entry_id": "x"}))
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.mango_refused_event_count, 1)
        self.assertEqual(settings.mango_last_refused_reason, "invalid_event")
        action = settings.action_mango_view_refused_events()
        self.assertEqual(action["res_model"], "mango.refused.event")
        records = self.env["mango.refused.event"].search(action["domain"])
        self.assertEqual(records.reason, "missing_field")
        self.assertEqual(records.display_name, "events/call: Required field missing")
        views = self.env["mango.refused.event"].get_views(
            [(False, "list"), (False, "form"), (False, "search")]
        )
        self.assertEqual(set(views["views"]), {"list", "form", "search"})
        self.assertEqual(self.mango_account.refused_event_count, 1)
        self.assertEqual(
            self.mango_account.action_view_refused_events()["domain"],
            [("account_id", "in", self.mango_account.ids)],
        )

    def test_refused_events_open_from_the_settings_page_in_the_browser(self):
        """An administrator reaches the kept request from Event delivery: the
        button, the list and the form open in the web client without an error."""
        response = self.post("events/call", self.mango_form({"entry_id": "x"}))
        self.assertEqual(response.status_code, 400)
        self.start_tour("/odoo", "mango_refused_events_tour", login="admin")

    def test_raw_event_opens_in_the_browser(self):
        """The stored event's form renders its body (an invalid code editor mode
        used to crash it in the web client)."""
        response = self.post("events/call", self.mango_form(CALL_EVENT))
        self.assertEqual(response.status_code, 200)
        self.start_tour("/odoo", "mango_raw_event_form_tour", login="admin")

    def test_extreme_but_valid_values_never_fail_in_the_worker(self):
        """Whatever the boundary accepts fits the columns the worker writes."""
        entry_id = "я" * 64  # 128 bytes, the documented maximum
        events = [
            (
                "events/call",
                {
                    **CALL_EVENT,
                    "entry_id": entry_id,
                    "call_id": "c" * 128,
                    "seq": 2**31 - 1,
                    "timestamp": "4102444800",
                    "call_state": "Disconnected",
                    "disconnect_reason": 9999,
                    "to": {"extension": 10**16 - 1, "acd_group": ""},
                    "task_id": 2**63 - 1,
                },
            ),
            (
                "events/summary",
                {
                    "entry_id": entry_id,
                    "call_direction": "2",
                    "from": {},
                    "to": {"number": "sip:" + "u" * 250},
                    "create_time": 0,
                    "talk_time": 4102444799.5,
                    "end_time": "4102444799.999",
                    "entry_result": 1,
                    "disconnect_reason": "0",
                },
            ),
            (
                "events/recording",
                {
                    "entry_id": entry_id,
                    "recording_id": "r" * 128,
                    "recording_state": "completed",
                    "timestamp": 0,
                    "seq": 0,
                    "completion_code": 9999,
                    "extension": "0" * 16,
                },
            ),
            (
                "events/record/added",
                {
                    "entry_id": entry_id,
                    "recording_id": "r" * 128,
                    "timestamp": 4102444800,
                    "user_id": -1,
                    "product_id": 2**63 - 1,
                },
            ),
            ("result/callback", {"command_id": "k" * 128, "result": "9999"}),
            ("result/stats", {"key": "k" * 128, "request_id": 2**63 - 1}),
        ]
        for path, payload in events:
            response = self.post(path, self.mango_form(payload))
            self.assertEqual(response.status_code, 200, (path, response.text))
        with self.assertNoLogs(level=logging.ERROR):
            self.mango_process_all()
        self.assertFalse(self.events().filtered(lambda e: e.state == "failed"))
        call = self.mango_call(entry_id)
        self.assertEqual(call.status, "answered")
        self.assertEqual(call.leg_ids.disconnect_reason, 9999)
        self.assertEqual(call.leg_ids.seq, 2**31 - 1)
        self.assertEqual(call.leg_ids.to_extension, str(10**16 - 1))

    def test_body_not_a_form(self):
        form = self.mango_form(CALL_EVENT)
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING):
            response = self.opener.post(
                f"{self.base_url()}/mango/events/call", json=form, timeout=12
            )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.text, "Bad request: malformed body")
        self.assertFalse(self.events())
        self.assertEqual(self.mango_account.unattributed_refused_reason, "malformed")

    def test_get_is_not_an_event(self):
        response = self.url_open("/mango/events/call")
        self.assertEqual(response.status_code, 405)
        self.assertFalse(self.events())

    def test_oversized_body(self):
        form = self.mango_form({**CALL_EVENT, "padding": "x" * 400_000})
        response = self.post("events/call", form)
        self.assertEqual(response.status_code, 413)
        self.assertFalse(self.events())

    def test_refusals_are_throttled(self):
        form = self.mango_form(CALL_EVENT, salt="wrong")
        with self.assertLogs(REFUSAL_LOGGER, logging.WARNING) as logs:
            for _i in range(5):
                self.assertEqual(self.post("events/call", form).status_code, 403)
        self.assertEqual(len(logs.output), 1, "one log line and one write per interval")
        self.mango_account.invalidate_recordset()
        self.assertEqual(self.mango_account.refused_count, 1)
        first_at = self.mango_account.last_refused_at
        # After the interval the swallowed refusals are counted in the next write.
        with (
            patch.object(refusal_throttle, "interval", 0),
            self.assertLogs(REFUSAL_LOGGER, logging.WARNING),
        ):
            self.post("events/call", form)
        self.mango_account.invalidate_recordset()
        self.assertEqual(self.mango_account.refused_count, 6)
        self.assertGreaterEqual(self.mango_account.last_refused_at, first_at)

    def test_internal_error_never_leaks(self):
        def explode(*_args, **_kwargs):
            raise RuntimeError("secret internals /opt/odoo")

        Event = self.registry["mango.event"]
        with (
            patch.object(Event, "_mango_ingest", explode),
            self.assertLogs("odoo.addons.mango_telephony.controllers.main", "ERROR"),
        ):
            response = self.post("events/call", self.mango_form(CALL_EVENT))
        self.assertEqual(response.status_code, 500)
        self.assertEqual(response.text, "Internal error")
        self.assertFalse(self.events())

    def test_http_sample_in_any_order_gives_the_same_call(self):
        """A smaller HTTP twin of the replay test: a transfer scenario delivered
        in order, then again shuffled with duplicates, folds to the same call."""
        events = self.mango_play("transfer", extension="101")
        entry_id = events[0][1]["entry_id"]
        for path, payload in events:
            self.assertEqual(self.post(path, self.mango_form(payload)).status_code, 200)
        self.mango_process_all()
        in_order = self.mango_snapshot(self.mango_call(entry_id))
        self.env["mango.call"].sudo().search([]).unlink()
        self.events().unlink()
        for path, payload in self.mango_shuffled_with_duplicates(events, 0.5):
            self.assertEqual(self.post(path, self.mango_form(payload)).status_code, 200)
        self.assertEqual(len(self.events()), len(events))
        # Process in small batches, as concurrent deliveries would be.
        Event = self.env["mango.event"].sudo()
        while Event._mango_process_pending(limit=3):
            pass
        self.env.invalidate_all()
        self.assertEqual(self.mango_snapshot(self.mango_call(entry_id)), in_order)


@tagged("post_install", "-at_install")
class TestCronWakeup(TransactionCase):
    """The webhook's wake-up reaches a listening cron worker, cheaply and robustly."""

    def setUp(self):
        super().setUp()
        _dbname, info = connection_info_for("postgres")
        self.listener = psycopg2.connect(**info)
        self.listener.autocommit = True
        self.addCleanup(self.listener.close)
        with self.listener.cursor() as cursor:
            cursor.execute("LISTEN cron_trigger")

    def received(self):
        """The payloads of the notifications received within a few seconds."""
        payloads = []
        deadline = time.monotonic() + 5
        while not payloads and time.monotonic() < deadline:
            select.select([self.listener], [], [], 0.2)
            self.listener.poll()
            payloads += [notify.payload for notify in self.listener.notifies]
            self.listener.notifies.clear()
        return payloads

    def test_wake_reaches_listening_cron_workers(self):
        self.assertTrue(cron_wakeup.wake_cron_workers(self.env.cr.dbname))
        self.assertIn(self.env.cr.dbname, self.received())

    def test_wake_reuses_one_connection(self):
        cron_wakeup.wake_cron_workers(self.env.cr.dbname)
        connection = cron_wakeup._connection[1]
        cron_wakeup.wake_cron_workers(self.env.cr.dbname)
        self.assertIs(cron_wakeup._connection[1], connection)

    def test_wake_survives_a_closed_connection(self):
        cron_wakeup.wake_cron_workers(self.env.cr.dbname)
        self.received()
        backend = cron_wakeup._connection[1].get_backend_pid()
        with self.listener.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
        # The server closes the session asynchronously: the next wake-up finds the
        # connection dead (or already closed) and reopens it.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self.listener.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend]
                )
                if not cursor.fetchone():
                    break
            time.sleep(0.05)
        self.assertTrue(cron_wakeup.wake_cron_workers(self.env.cr.dbname))
        self.assertIn(self.env.cr.dbname, self.received())
        self.assertNotEqual(cron_wakeup._connection[1].get_backend_pid(), backend)

    def test_forked_worker_leaves_its_parent_connection_alone(self):
        dbname = self.env.cr.dbname
        cron_wakeup.wake_cron_workers(dbname)
        parent_connection = cron_wakeup._connection[1]
        child = os.fork()
        if child == 0:
            # The child wakes through its own connection and drops the inherited
            # one; os._exit skips every cleanup of the test process's state.
            try:
                woke = cron_wakeup.wake_cron_workers(dbname)
                mine = cron_wakeup._connection[1] is not parent_connection
                del parent_connection  # the module's reference must be the last
                cron_wakeup._forget_connection()
                gc.collect()
                os._exit(0 if woke and mine else 1)
            except BaseException:  # noqa: BLE001 - the child must never return
                os._exit(2)
        _pid, status = os.waitpid(child, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertTrue(cron_wakeup.wake_cron_workers(dbname))
        self.assertIs(
            cron_wakeup._connection[1],
            parent_connection,
            "the parent's session survived the child: no reconnect was needed",
        )
        self.assertIn(dbname, self.received())

    def test_one_wake_per_transaction(self):
        Event = self.env["mango.event"].sudo()
        cron = self.env.ref("mango_telephony.ir_cron_mango_event_process")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        with patch.object(mango_event_module, "wake_cron_workers") as wake:
            Event._mango_trigger_processing()
            Event._mango_trigger_processing()
            wake.assert_not_called()
            self.env.cr.postcommit.run()
        wake.assert_called_once_with(self.env.cr.dbname)
        self.assertEqual(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]),
            triggers + 2,
            "every event leaves its trigger, so a lost wake-up loses nothing",
        )
