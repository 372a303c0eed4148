"""Incoming-call cards on the bus: who gets them, what they show, and when."""

import json

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from .calls_common import MangoCallsMixin

CUSTOMER = "79031234567"


@tagged("post_install", "-at_install")
class TestIncomingCard(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()
        cls.salesperson = cls.env["res.users"].create(
            {
                "name": "Boris Sales",
                "login": "boris.sales@example.com",
                USER_GROUPS: [
                    Command.link(cls.env.ref("sales_team.group_sale_salesman").id)
                ],
            }
        )
        cls.company_partner = cls.env["res.partner"].create(
            {
                "name": "Roga & Kopyta LLC",
                "is_company": True,
                "user_id": cls.salesperson.id,
            }
        )
        cls.partner = cls.env["res.partner"].create(
            {
                "name": "Olga Customer",
                "phone": "+7 903 123-45-67",
                "parent_id": cls.company_partner.id,
            }
        )
        cls.lead = cls.env["crm.lead"].create(
            {
                "name": "Olga wants 40 chairs",
                "partner_id": cls.partner.id,
                "user_id": cls.salesperson.id,
            }
        )
        cls.supervisor = (
            cls.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {
                    "name": "Supervisor",
                    "login": "supervisor@example.com",
                    USER_GROUPS: [
                        Command.link(
                            cls.env.ref("mango_telephony.group_mango_supervisor").id
                        )
                    ],
                }
            )
        )

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()
        self.env["bus.bus"].sudo().search([]).unlink()

    def bus_messages(self, notification_type):
        """``[(partner id, payload)]`` of the bus messages of one type."""
        self.env.cr.precommit.run()
        messages = []
        for note in self.env["bus.bus"].sudo().search([], order="id"):
            message = json.loads(note.message)
            if message["type"] == notification_type:
                channel = json.loads(note.channel)
                messages.append((channel[-1], message["payload"]))
        self.env["bus.bus"].sudo().search([]).unlink()
        return messages

    def ring(self, extension="101", from_number=CUSTOMER):
        result = self.mango_sim.play(
            "incoming_answered",
            wait=False,
            live=True,
            extension=extension,
            from_number=from_number,
        )
        self.mango_ingest([(e["path"], e["payload"]) for e in result["planned"]])
        self.mango_process_all()
        return result["entry_id"]

    def act(self, entry_id, action):
        result = self.mango_sim.live_action(entry_id, action, wait=False)
        self.mango_ingest([(e["path"], e["payload"]) for e in result["planned"]])
        self.mango_process_all()

    def test_card_reaches_only_the_rung_user_and_follows_the_call(self):
        entry_id = self.ring("101")
        cards = self.bus_messages("mango_call_card")
        self.assertEqual(len(cards), 1, cards)
        recipient, card = cards[0]
        self.assertEqual(recipient, self.agent_101.partner_id.id)
        self.assertEqual(card["state"], "ringing")
        self.assertEqual(card["number"], "+" + CUSTOMER)
        self.assertEqual(card["partner"]["id"], self.partner.id)
        self.assertEqual(card["partner"]["company"], self.company_partner.name)
        self.assertEqual(card["partner"]["salesperson"], self.salesperson.name)
        self.assertTrue(card["partner"]["avatar_url"].endswith("/avatar_128"))

        self.act(entry_id, "answer")
        cards = self.bus_messages("mango_call_card")
        self.assertEqual(
            [(r, c["state"]) for r, c in cards],
            [(self.agent_101.partner_id.id, "connected")],
        )
        self.act(entry_id, "hangup")
        cards = self.bus_messages("mango_call_card")
        self.assertEqual(
            [(r, c["state"]) for r, c in cards],
            [(self.agent_101.partner_id.id, "ended")],
        )
        # Re-processing the same events pushes nothing again.
        call = self.mango_call(entry_id)
        call._mango_on_call_updated({call.id: {"status": call.status, "is_new": False}})
        self.assertFalse(self.bus_messages("mango_call_card"))

    def test_card_content_follows_the_users_rights(self):
        self.ring("101")
        [(_recipient, card)] = self.bus_messages("mango_call_card")
        # Agent 101 has no CRM rights: no leads on the card.
        self.assertFalse(self.agent_101.has_group("sales_team.group_sale_salesman"))
        self.assertEqual(card["leads"], [])
        self.assertFalse(card["can_create_lead"])

        self.agent_102[USER_GROUPS] |= self.env.ref(
            "sales_team.group_sale_salesman_all_leads"
        )
        self.ring("102")
        [(recipient, card)] = self.bus_messages("mango_call_card")
        self.assertEqual(recipient, self.agent_102.partner_id.id)
        self.assertEqual([lead["id"] for lead in card["leads"]], [self.lead.id])
        self.assertTrue(card["can_create_lead"])

    def test_unknown_number_card_offers_creation(self):
        self.ring("101", from_number="79169998877")
        [(_recipient, card)] = self.bus_messages("mango_call_card")
        self.assertFalse(card["partner"])
        self.assertEqual(card["number"], "+79169998877")
        self.assertFalse(card["can_create_partner"])
        self.agent_101[USER_GROUPS] |= self.env.ref("base.group_partner_manager")
        self.ring("101", from_number="79169998878")
        [(_recipient, card)] = self.bus_messages("mango_call_card")
        self.assertTrue(card["can_create_partner"])

    def test_active_cards_are_the_users_own(self):
        self.ring("101")
        Call = self.env["mango.call"]
        mine = Call.with_user(self.agent_101).mango_active_cards()
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["partner"]["id"], self.partner.id)
        self.assertEqual(Call.with_user(self.agent_102).mango_active_cards(), [])

    def test_other_user_cannot_read_the_call_of_the_card(self):
        entry_id = self.ring("101")
        call = self.mango_call(entry_id)
        with self.assertRaises(AccessError):
            call.with_user(self.agent_102).check_access("read")
        call.with_user(self.agent_101).check_access("read")

    def test_supervisor_systray_sees_live_calls(self):
        entry_id = self.ring("101")
        call = self.mango_call(entry_id)
        live = self.bus_messages("mango_call_live")
        self.assertIn(self.supervisor.partner_id.id, [r for r, _p in live])
        self.assertNotIn(self.agent_101.partner_id.id, [r for r, _p in live])
        data = self.env["mango.call"].with_user(self.supervisor).mango_systray_data()
        self.assertIn(call.id, [c["id"] for c in data["live"]])
        data = self.env["mango.call"].with_user(self.agent_101).mango_systray_data()
        self.assertEqual(data["live"], [])
        self.assertIn(call.id, [c["id"] for c in data["recent"]])
        data = self.env["mango.call"].with_user(self.agent_102).mango_systray_data()
        self.assertNotIn(call.id, [c["id"] for c in data["recent"]])

    def test_queue_rings_every_operator_and_closes_on_answer(self):
        # Both agents are operators of the simulator's sales queue (group 900);
        # the call goes unanswered: each got a card and each card ends.
        result = self.mango_sim.play("incoming_missed_queue", wait=False)
        events = [(e["path"], e["payload"]) for e in result["planned"]]
        appeared = [
            (p, e)
            for p, e in events
            if p == "events/call" and e.get("call_state") != "Disconnected"
        ]
        self.mango_ingest(appeared)
        self.mango_process_all()
        ringing = self.bus_messages("mango_call_card")
        self.assertEqual(
            sorted(r for r, _c in ringing),
            sorted([self.agent_101.partner_id.id, self.agent_102.partner_id.id]),
        )
        self.mango_ingest(events)
        self.mango_process_all()
        ended = self.bus_messages("mango_call_card")
        self.assertEqual({c["state"] for _r, c in ended}, {"ended"})
        self.assertEqual(len(ended), 2)
