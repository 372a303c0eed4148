"""What the card, the systray and the call log tell a salesperson about a call:
the right title (incoming vs. transferred), people instead of SIP devices,
numbers formatted for people."""

import json

from odoo.tests import TransactionCase, tagged

from .calls_common import MangoCallsMixin

CUSTOMER = "79031234567"
LINE = "74951234567"


@tagged("post_install", "-at_install")
class TestCallDisplay(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()

    def card_of(self, call, extension, state="ringing"):
        leg = call.leg_ids.filtered(lambda leg: leg.to_extension == extension)[:1]
        self.assertTrue(leg, f"no leg rings extension {extension}")
        user = self.mango_account._mango_user_for_extension(extension)
        return leg, call._mango_card_payload(leg, user, state)

    def test_call_a_queue_distributes_is_an_incoming_call(self):
        call = self.mango_fold_scenario(
            "incoming_answered", extension="101", from_number=CUSTOMER
        )
        leg, card = self.card_of(call, "101")
        # Mango marks the operator's leg as taken from the queue's leg…
        self.assertTrue(leg.taken_from_call_id)
        self.assertTrue(call.group_extension)
        # …which is not a transfer: the card says "Incoming call".
        self.assertFalse(leg.is_transfer)
        self.assertFalse(card["transferred"])
        self.assertFalse(card["transferred_by"])
        self.assertFalse(card["colleague"])
        self.assertEqual(card["number"], "+" + CUSTOMER)
        self.assertEqual(card["number_display"], "+7 903 123-45-67")
        self.assertEqual(card["line_display"], "+7 495 123-45-67")

    def test_transfer_card_names_who_handed_the_call_over(self):
        call = self.mango_fold_scenario(
            "transfer", extension="101", to_extension="102", from_number=CUSTOMER
        )
        first, first_card = self.card_of(call, "101")
        second, second_card = self.card_of(call, "102")
        self.assertFalse(first.is_transfer)
        self.assertFalse(first_card["transferred"])
        self.assertTrue(second.is_transfer)
        self.assertTrue(second_card["transferred"])
        self.assertEqual(second_card["transferred_by"], "Agent 101")
        self.assertEqual(second_card["number"], "+" + CUSTOMER)

    def test_colleague_calling_shows_name_and_extension_not_sip(self):
        call = self.mango_fold_scenario(
            "click_to_call", extension="101", to_number="102"
        )
        self.assertEqual(call.direction, "internal")
        self.assertTrue(call.caller_number.startswith("sip:"))
        _leg, card = self.card_of(call, "102")
        self.assertEqual(card["colleague"], {"name": "Agent 101", "extension": "101"})
        self.assertFalse(card["number"])
        self.assertFalse(card["can_create_partner"])
        self.assertFalse(card["can_create_lead"])
        self.assertNotIn("sip:", json.dumps(card))
        self.assertEqual(call.from_display, "Agent 101 (101)")
        self.assertEqual(call.to_display, "Agent 102 (102)")
        self.assertEqual(
            call.display_name, "Internal: Agent 101 (101) → Agent 102 (102)"
        )

    def test_outgoing_call_log_shows_employee_and_line(self):
        call = self.mango_fold_scenario(
            "click_to_call", extension="101", to_number=CUSTOMER
        )
        self.assertEqual(call.direction, "outgoing")
        # Mango names the employee's side by its SIP device.
        self.assertTrue(call.caller_number.startswith("sip:"))
        self.assertEqual(call.from_display, "Agent 101 (101) · +7 495 123-45-67")
        self.assertEqual(call.to_display, "+7 903 123-45-67")
        self.assertEqual(call.display_name, "Outgoing: +7 903 123-45-67")
        summary = call._mango_call_summary()
        self.assertEqual(summary["number_display"], "+7 903 123-45-67")

    def test_incoming_call_log_shows_customer_and_line(self):
        call = self.mango_fold_scenario(
            "incoming_answered", extension="101", from_number=CUSTOMER
        )
        self.assertEqual(call.from_display, "+7 903 123-45-67")
        self.assertEqual(call.to_display, "+7 495 123-45-67")
        self.assertEqual(
            call.with_user(self.agent_101)._mango_call_summary()["number_display"],
            "+7 903 123-45-67",
        )

    def test_opportunity_shows_the_calls_with_its_customer(self):
        company = self.env["res.partner"].create(
            {"name": "Roga & Kopyta LLC", "is_company": True}
        )
        olga = self.env["res.partner"].create(
            {"name": "Olga", "phone": "+7 903 123-45-67", "parent_id": company.id}
        )
        lead = self.env["crm.lead"].create(
            {"name": "40 chairs", "type": "opportunity", "partner_id": company.id}
        )
        other_lead = self.env["crm.lead"].create({"name": "Someone else"})
        call = self.mango_fold_scenario(
            "incoming_answered", extension="101", from_number=CUSTOMER
        )
        self.mango_fold_scenario(
            "incoming_answered", extension="101", from_number="79169998877"
        )
        self.assertEqual(call.partner_id, olga)
        self.assertEqual(lead.mango_call_count, 1)
        self.assertEqual(other_lead.mango_call_count, 0)
        action = lead.action_mango_calls()
        self.assertEqual(self.env["mango.call"].search(action["domain"]), call)

    def test_chatter_post_writes_the_number_for_people(self):
        partner = self.env["res.partner"].create(
            {"name": "Olga", "phone": "+7 903 123-45-67"}
        )
        call = self.mango_fold_scenario(
            "incoming_answered", extension="101", from_number=CUSTOMER
        )
        self.assertEqual(call.partner_id, partner)
        post = partner.message_ids.filtered(
            lambda message: f'data-oe-id="{call.id}"' in str(message.body)
        )
        self.assertEqual(len(post), 1)
        self.assertIn("+7 903 123-45-67", str(post.body))
        self.assertNotIn("+" + CUSTOMER, str(post.body))
