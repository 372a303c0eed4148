"""A telephony user cannot act for, nor see, what belongs to another user.

Every method a telephony user can call, walked as that user: through the ORM
(``with_user``) and, for the ones a browser calls, through real HTTP JSON-RPC
with the user logged in. Agent 101 and Agent 102 are two salespeople with their
own extensions; each test has 101 reach for what is 102's.
"""

import json

from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from .calls_common import MangoCallsMixin
from .common import MangoHttpCase

CUSTOMER = "79031234567"
PASSWORD = "telephony-pass-1234"


class MangoIsolationMixin(MangoCallsMixin):
    @classmethod
    def mango_setup_isolation(cls):
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()
        salesman = cls.env.ref("sales_team.group_sale_salesman")
        listener = cls.env.ref("mango_telephony.group_mango_recording_listener")
        for agent in (cls.agent_101, cls.agent_102):
            agent.write(
                {
                    "password": PASSWORD,
                    USER_GROUPS: [
                        Command.link(salesman.id),
                        Command.link(listener.id),
                    ],
                }
            )
        cls.call_101 = cls.mango_fold_scenario("incoming_answered", extension="101")
        cls.call_102 = cls.mango_fold_scenario("incoming_answered", extension="102")
        cls.line = cls.env["mango.line"].create(
            {
                "account_id": cls.mango_account.id,
                "line_id": "400300001",
                "number": "74951234567",
                "name": "Main",
            }
        )
        cls.passive_line = cls.env["mango.line"].create(
            {
                "account_id": cls.mango_account.id,
                "line_id": "400300077",
                "name": "sip:line77@vpbx400012345.mangosip.ru",
                "region": "sip",
            }
        )

    def setUp(self):
        super().setUp()
        # Not a reset: the simulator would forget the recordings of the calls
        # above and number its next calls like them.
        self.mango_sim.limiter.clear()
        self.mango_sim.lockout.clear()
        self.mango_sim.clear_commands()

    def callbacks(self):
        return [c["payload"] for c in self.mango_sim.commands("commands/callback")]

    def ring_live(self, extension):
        result = self.mango_sim.play(
            "incoming_answered", wait=False, live=True, extension=extension
        )
        self.mango_ingest([(e["path"], e["payload"]) for e in result["planned"]])
        self.mango_process_all()
        return self.mango_call(result["entry_id"])


@tagged("post_install", "-at_install")
class TestUserIsolation(MangoIsolationMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_setup_isolation()

    def test_setup(self):
        self.assertEqual(self.call_101.user_id, self.agent_101)
        self.assertEqual(self.call_102.user_id, self.agent_102)

    # -- the call log -----------------------------------------------------------
    def test_own_call_cannot_be_handed_to_or_taken_from_a_colleague(self):
        mine = self.call_101.with_user(self.agent_101)
        for values in (
            {"user_id": self.agent_102.id},
            {"employee_user_id": self.agent_102.id},
            {"answered_extension": "102"},
            {"status": "missed"},
            {"talk_duration": 3600},
            {"company_id": self.env["res.company"].create({"name": "Away"}).id},
            {"command_id": "forged"},
        ):
            with self.subTest(values=values), self.assertRaises(AccessError):
                mine.write(values)
        self.assertEqual(self.call_101.user_id, self.agent_101)
        self.assertEqual(self.call_101.status, "answered")
        # What the form lets a salesperson change stays writable.
        partner = self.env["res.partner"].create({"name": "Known caller"})
        mine.write({"partner_id": partner.id})
        self.assertEqual(self.call_101.partner_id, partner)

    def test_colleagues_call_cannot_be_linked_through_a_new_contact(self):
        partner = (
            self.env["res.partner"]
            .with_user(self.agent_101)
            .with_context(mango_link_call_id=self.call_102.id)
            .create({"name": "Mine now", "user_id": self.agent_101.id})
        )
        self.assertTrue(partner)
        self.assertFalse(self.call_102.partner_id)
        self.assertFalse(
            self.env["mango.call"]
            .with_user(self.agent_101)
            .search([("id", "=", self.call_102.id)])
        )

    def test_colleagues_call_cannot_be_linked_through_a_new_lead(self):
        lead = (
            self.env["crm.lead"]
            .with_user(self.agent_101)
            .with_context(mango_link_call_id=self.call_102.id)
            .create({"name": "Mine now", "user_id": self.agent_101.id})
        )
        self.assertTrue(lead)
        self.assertFalse(self.call_102.lead_id)
        self.assertFalse(
            self.env["mango.call"]
            .with_user(self.agent_101)
            .search([("id", "=", self.call_102.id)])
        )

    def test_own_call_is_linked_through_a_new_contact(self):
        partner = (
            self.env["res.partner"]
            .with_user(self.agent_101)
            .with_context(mango_link_call_id=self.call_101.id)
            .create({"name": "Olga Customer"})
        )
        self.assertEqual(self.call_101.partner_id, partner)

    def test_colleagues_call_buttons_are_refused(self):
        theirs = self.call_102.with_user(self.agent_101)
        for action in ("action_mango_create_partner", "action_mango_create_lead"):
            with self.subTest(action=action), self.assertRaises(AccessError):
                getattr(theirs, action)()

    # -- live calls, cards, systray ---------------------------------------------
    def test_cards_and_systray_are_the_users_own(self):
        live = self.ring_live("102")
        self.assertIn(self.agent_102, live.leg_ids.user_id)
        Call = self.env["mango.call"]
        self.assertFalse(Call.with_user(self.agent_101).mango_active_cards())
        self.assertEqual(
            [c["call_id"] for c in Call.with_user(self.agent_102).mango_active_cards()],
            [live.id],
        )
        data = Call.with_user(self.agent_101).mango_systray_data()
        self.assertFalse(data["live"])
        self.assertEqual({c["id"] for c in data["recent"]}, {self.call_101.id})

    # -- click-to-call and preferences ------------------------------------------
    def test_own_outgoing_line_must_be_one_that_can_call(self):
        me = self.agent_101.with_user(self.agent_101)
        with self.assertRaises(ValidationError):
            me.write({"mango_line_id": self.passive_line.id})
        other_company = self.env["res.company"].create({"name": "Elsewhere"})
        elsewhere = self.mango_create_account(
            self.mango_sim,
            company=other_company,
            api_key="elsewhere-key",
            api_salt="elsewhere-salt",
        )
        foreign = self.env["mango.line"].create(
            {"account_id": elsewhere.id, "line_id": "9", "number": "74990000000"}
        )
        with self.assertRaises(ValidationError):
            me.write({"mango_line_id": foreign.id})
        me.write({"mango_line_id": self.line.id})
        self.assertEqual(self.agent_101.mango_line_id, self.line)

    def test_account_actions_are_for_administrators(self):
        account = self.mango_account.with_user(self.agent_101)
        for action in (
            "action_mango_test_connection",
            "action_mango_refresh_lines",
            "action_mango_reconcile",
            "action_mango_clear_credentials",
        ):
            with self.subTest(action=action), self.assertRaises(AccessError):
                getattr(account, action)()
        self.assertFalse(self.mango_sim.commands())

    def test_statistics_are_the_users_own(self):
        Stat = self.env["mango.call.stat"]
        Stat.sudo()._mango_rebuild()
        own = Stat.with_user(self.agent_101)
        self.assertEqual(own.search([]).user_id, self.agent_101)
        data = own.mango_dashboard_data(period="all", group_by="user")
        self.assertEqual([r["key"] for r in data["rows"]], [self.agent_101.id])
        groups = own.read_group([], ["call_count:sum"], ["user_id"])
        self.assertEqual([g["user_id"][0] for g in groups], [self.agent_101.id])
        with self.assertRaises(AccessError):
            own.action_mango_rebuild()

    def test_recordings_of_colleagues_cannot_be_fetched_again(self):
        recording = self.call_102.recording_ids[:1]
        self.assertTrue(recording, "the scenario records the call")
        with self.assertRaises(AccessError):
            recording.with_user(self.agent_101).action_mango_retry()
        self.assertFalse(
            self.env["mango.call.recording"]
            .with_user(self.agent_101)
            .search([("id", "=", recording.id)])
        )


@tagged("post_install", "-at_install")
class TestUserIsolationOverHttp(MangoIsolationMixin, MangoHttpCase):
    """The same rules through the web client's own door: JSON-RPC as the
    logged-in user."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_setup_isolation()

    def setUp(self):
        super().setUp()
        self.authenticate(self.agent_101.login, PASSWORD)

    def rpc(self, model, method, *args, **kwargs):
        """``(result, error message)`` of a call_kw as the logged-in user."""
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {
                "model": model,
                "method": method,
                "args": list(args),
                "kwargs": kwargs,
            },
        }
        response = self.url_open(
            f"/web/dataset/call_kw/{model}/{method}",
            data=json.dumps(payload),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 200)
        body = response.json()
        if "error" in body:
            return None, body["error"]["data"]["message"]
        return body["result"], None

    def test_self_assigning_a_colleagues_extension_is_refused(self):
        _result, error = self.rpc(
            "res.users", "write", [self.agent_101.id], {"mango_extension": "102"}
        )
        self.assertTrue(error)
        self.assertIn(self.agent_102.name, error)
        self.env.invalidate_all()
        self.assertEqual(self.agent_101.mango_extension, "101")

    def test_click_to_call_rings_the_users_own_phone(self):
        self.rpc("res.users", "write", [self.agent_101.id], {"mango_extension": "102"})
        answer, error = self.rpc(
            "res.users",
            "mango_click_to_call",
            CUSTOMER,
            context={"mango_extension": "102"},
        )
        self.assertFalse(error)
        self.assertEqual(answer["status"], "calling", answer)
        self.assertEqual(
            [str(p["from"]["extension"]) for p in self.callbacks()], ["101"]
        )

    def test_colleagues_call_stays_theirs(self):
        _result, error = self.rpc(
            "mango.call", "write", [self.call_101.id], {"user_id": self.agent_102.id}
        )
        self.assertTrue(error)
        _result, error = self.rpc(
            "mango.call", "read", [self.call_102.id], ["caller_number"]
        )
        self.assertTrue(error)
        partner_id, error = self.rpc(
            "res.partner",
            "create",
            {"name": "Mine now", "user_id": self.agent_101.id},
            context={"mango_link_call_id": self.call_102.id},
        )
        self.assertFalse(error)
        self.assertTrue(partner_id)
        self.env.invalidate_all()
        self.assertFalse(self.call_102.partner_id)
        cards, error = self.rpc("mango.call", "mango_active_cards")
        self.assertEqual((cards, error), ([], None))
        data, error = self.rpc(
            "mango.call.stat", "mango_dashboard_data", period="all", group_by="user"
        )
        self.assertFalse(error)
        self.assertNotIn(self.agent_102.id, [r["key"] for r in data["rows"]])

    def test_colleagues_recording_is_not_played(self):
        recording = self.call_102.recording_ids[:1]
        recording.sudo()._mango_fetch()
        self.assertEqual(recording.state, "stored")
        response = self.url_open(f"/mango/recording/{recording.id}")
        self.assertEqual(response.status_code, 403)
        own = self.call_101.recording_ids[:1]
        own.sudo()._mango_fetch()
        self.assertEqual(self.url_open(f"/mango/recording/{own.id}").status_code, 200)
