"""Click-to-call: the RPC, its refusals, softphone links and the call's origin."""

import json
import time

from odoo import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from .calls_common import MangoCallsMixin

CUSTOMER = "79031234567"


class MangoClickCase(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()
        cls.line = cls.env["mango.line"].create(
            {
                "account_id": cls.mango_account.id,
                "line_id": "400300001",
                "number": "74951234567",
                "name": "Main",
            }
        )
        cls.mango_account.sudo().default_line_id = cls.line
        cls.partner = cls.env["res.partner"].create(
            {"name": "Olga Customer", "phone": "+7 (903) 123-45-67"}
        )
        cls.no_extension = (
            cls.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {
                    "name": "No Extension",
                    "login": "noext@example.com",
                    USER_GROUPS: [
                        Command.link(cls.env.ref("mango_telephony.group_mango_user").id)
                    ],
                }
            )
        )

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()
        self.mango_sim.clear_commands()
        self.mango_sim.clear_events()
        self.mango_sim.clear_faults()

    def click(self, user, number, record=None):
        Users = self.env["res.users"].with_user(user)
        if record is None:
            return Users.mango_click_to_call(number)
        return Users.mango_click_to_call(number, record._name, record.id)

    def callbacks(self):
        return [c["payload"] for c in self.mango_sim.commands("commands/callback")]

    def wait_deliveries(self, command_id, timeout=15):
        """The events the simulator played for our command (no webhook here),
        once the call's summary is among them."""
        deadline = time.monotonic() + timeout
        events = []
        while time.monotonic() < deadline:
            delivered = self.mango_sim.events()
            # The simulator restarts its ids on reset: a late event of an earlier
            # test may share the entry_id, never the delivery batch.
            batches = {
                e["batch"]
                for e in delivered
                if e["payload"].get("command_id") == command_id
            }
            events = [e for e in delivered if e["batch"] in batches]
            if any(e["path"] == "events/summary" for e in events):
                break
            time.sleep(0.1)
        return [(e["path"], e["payload"]) for e in events]


@tagged("post_install", "-at_install")
class TestClickToCall(MangoClickCase):
    def test_callback_uses_own_extension_and_normalised_number(self):
        answer = self.click(self.agent_101, "+7 (903) 123-45-67", self.partner)
        self.assertEqual(answer["status"], "calling", answer)
        self.assertIn("101", answer["message"])
        self.assertIn("+79031234567", answer["message"])
        [payload] = self.callbacks()
        self.assertEqual(str(payload["from"]["extension"]), "101")
        self.assertEqual(payload["to_number"], CUSTOMER)
        self.assertEqual(payload["line_number"], "74951234567")
        self.assertEqual(payload["command_id"], answer["command_id"])
        click = self.env["mango.click.to.call"].search(
            [("command_id", "=", answer["command_id"])]
        )
        self.assertEqual(click.user_id, self.agent_101)
        self.assertEqual(click.partner_id, self.partner)
        self.assertEqual(click.state, "sent")

    def test_the_account_extension_list_is_what_rings(self):
        # An administrator moves agent 101 to 103 in the account's list.
        self.env["mango.account.user"].search(
            [("user_id", "=", self.agent_101.id)]
        ).extension = "103"
        self.click(self.agent_101, "8 903 123 45 67")
        self.click(self.agent_102, "8 903 123 45 67")
        extensions = [str(p["from"]["extension"]) for p in self.callbacks()]
        self.assertEqual(extensions, ["103", "102"])

    def test_user_line_preferred_to_account_default(self):
        own = self.env["mango.line"].create(
            {
                "account_id": self.mango_account.id,
                "line_id": "400300009",
                "number": "74957654321",
            }
        )
        self.agent_101.with_user(self.agent_101).write({"mango_line_id": own.id})
        self.click(self.agent_101, CUSTOMER)
        self.assertEqual(self.callbacks()[0]["line_number"], "74957654321")

    def test_no_extension_is_refused_with_reason(self):
        answer = self.click(self.no_extension, CUSTOMER)
        self.assertEqual(answer["status"], "error")
        self.assertIn("extension", answer["message"])
        self.assertFalse(self.callbacks())

    def test_invalid_number_is_refused(self):
        answer = self.click(self.agent_101, "call me maybe")
        self.assertEqual(answer["status"], "error")
        self.assertIn("call me maybe", answer["message"])
        self.assertFalse(self.callbacks())

    def test_pbx_error_shows_code_and_meaning(self):
        self.mango_sim.add_fault(
            "result", code=2240, methods=["commands/callback"], count=1
        )
        answer = self.click(self.agent_101, CUSTOMER, self.partner)
        self.assertEqual(answer["status"], "error")
        self.assertIn("2240", answer["message"])
        click = self.env["mango.click.to.call"].search(
            [("user_id", "=", self.agent_101.id)]
        )
        self.assertEqual(click.state, "failed")
        self.assertEqual(click.result_code, 2240)

    def test_rpc_has_no_extension_argument(self):
        Users = self.env["res.users"].with_user(self.agent_101)
        with self.assertRaises(TypeError):
            Users.mango_click_to_call(CUSTOMER, extension="102")
        # A caller's context cannot choose the extension either.
        Users.with_context(mango_extension="102").mango_click_to_call(CUSTOMER)
        self.assertEqual(str(self.callbacks()[0]["from"]["extension"]), "101")

    def test_user_cannot_write_someone_elses_extension(self):
        with self.assertRaises(Exception):  # noqa: B017 - AccessError from the ORM
            self.agent_102.with_user(self.agent_101).write({"mango_extension": "101"})

    def test_softphone_mode_gives_link(self):
        self.agent_101.with_user(self.agent_101).write(
            {"mango_call_mode": "softphone", "mango_softphone_scheme": "callto"}
        )
        answer = self.click(self.agent_101, "8 (903) 123-45-67")
        self.assertEqual(answer["status"], "softphone")
        self.assertEqual(answer["url"], f"callto:{CUSTOMER}")
        self.assertFalse(self.callbacks())

    def test_session_info_exposes_preferences(self):
        info = self.agent_101._mango_session_info()
        self.assertTrue(info["is_user"])
        self.assertFalse(info["is_supervisor"])
        self.assertEqual(info["mode"], "mango")

    def test_call_is_linked_to_clicked_partner_and_posted(self):
        answer = self.click(self.agent_101, CUSTOMER, self.partner)
        events = self.wait_deliveries(answer["command_id"])
        self.assertTrue(events, "the simulator plays the click-to-call")
        self.mango_ingest(events)
        self.mango_process_all()
        call = (
            self.env["mango.call"]
            .sudo()
            .search([("command_id", "=", answer["command_id"])])
        )
        self.assertEqual(len(call), 1)
        self.assertEqual(call.origin_model, "res.partner")
        self.assertEqual(call.origin_res_id, self.partner.id)
        self.assertEqual(call.partner_id, self.partner)
        self.assertEqual(call.direction, "outgoing")
        click = self.env["mango.click.to.call"].search(
            [("command_id", "=", answer["command_id"])]
        )
        self.assertEqual(click.state, "linked")
        self.assertEqual(click.call_id, call)
        self.assertEqual(call.status, "answered")
        self.assertEqual(call.chatter_partner_id, self.partner)
        self.assertTrue(
            self.env["mail.message"].search_count(
                [
                    ("model", "=", "res.partner"),
                    ("res_id", "=", self.partner.id),
                    ("body", "like", f'data-oe-id="{call.id}"'),
                ]
            )
        )
        # The employee's own ring of a click-to-call is no incoming call.
        self.env.cr.precommit.run()
        cards = self.env["bus.bus"].search([("message", "like", "mango_call_card")])
        self.assertFalse(cards)

    def test_call_from_lead_gets_lead(self):
        self.agent_101[USER_GROUPS] |= self.env.ref(
            "sales_team.group_sale_salesman_all_leads"
        )
        lead = self.env["crm.lead"].create(
            {"name": "Big deal", "partner_id": self.partner.id, "phone": CUSTOMER}
        )
        answer = self.click(self.agent_101, CUSTOMER, lead)
        click = self.env["mango.click.to.call"].search(
            [("command_id", "=", answer["command_id"])]
        )
        self.assertEqual((click.lead_id, click.partner_id), (lead, self.partner))
        self.mango_ingest(self.wait_deliveries(answer["command_id"]))
        self.mango_process_all()
        call = (
            self.env["mango.call"]
            .sudo()
            .search([("command_id", "=", answer["command_id"])])
        )
        self.assertEqual(call.lead_id, lead)
        self.assertEqual(call.partner_id, self.partner)
        self.assertEqual(call.origin_model, "crm.lead")

    def test_unreadable_origin_is_ignored(self):
        lead = self.env["crm.lead"].create({"name": "Secret deal", "phone": CUSTOMER})
        answer = self.click(self.agent_101, CUSTOMER, lead)
        self.assertEqual(answer["status"], "calling")
        click = self.env["mango.click.to.call"].search(
            [("command_id", "=", answer["command_id"])]
        )
        self.assertFalse(click.res_model)
        self.assertFalse(click.lead_id)

    def test_refused_command_result_notifies_the_clicker(self):
        # 105 exists nowhere in the PBX: Mango accepts the request, then refuses
        # it asynchronously with result/callback 3100.
        self.env["mango.account.user"].search(
            [("user_id", "=", self.agent_101.id)]
        ).extension = "105"
        answer = self.click(self.agent_101, CUSTOMER)
        self.assertEqual(answer["status"], "calling")
        deadline = time.monotonic() + 10
        results = []
        while not results and time.monotonic() < deadline:
            results = [
                r
                for r in self.mango_sim.events(path="result/callback")
                if r["payload"].get("command_id") == answer["command_id"]
            ]
            time.sleep(0.1)
        self.assertTrue(results)
        self.env["bus.bus"].search([]).unlink()
        self.mango_ingest([(r["path"], r["payload"]) for r in results])
        self.mango_process_all()
        click = self.env["mango.click.to.call"].search(
            [("command_id", "=", answer["command_id"])]
        )
        self.assertEqual(click.state, "failed")
        self.assertEqual(click.result_code, 3100)
        self.env.cr.precommit.run()
        notes = self.env["bus.bus"].search([("message", "like", "simple_notification")])
        self.assertEqual(len(notes), 1)
        self.assertEqual(json.loads(notes.channel)[-1], self.agent_101.partner_id.id)
        self.assertIn("3100", json.loads(notes.message)["payload"]["message"])
        # The same result delivered again changes nothing.
        self.mango_ingest([(r["path"], r["payload"]) for r in results])
        self.mango_process_all()
        self.env.cr.precommit.run()
        self.assertEqual(
            self.env["bus.bus"].search_count(
                [("message", "like", "simple_notification")]
            ),
            1,
        )

    def test_clicks_are_private(self):
        answer = self.click(self.agent_101, CUSTOMER, self.partner)
        Click = self.env["mango.click.to.call"]
        self.assertFalse(
            Click.with_user(self.agent_102).search(
                [("command_id", "=", answer["command_id"])]
            )
        )
        self.assertTrue(
            Click.with_user(self.agent_101).search(
                [("command_id", "=", answer["command_id"])]
            )
        )
