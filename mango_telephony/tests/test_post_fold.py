"""The post-fold pipeline and the registry of identifiable models: what runs
after a fold, in which order, and who names the caller."""

from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.mango_telephony.compat.contact_phones import MOBILE_INPUT

from .followup_common import MangoFollowupCase


@tagged("post_install", "-at_install")
class TestPostFoldPipeline(MangoFollowupCase):
    def test_every_step_runs_once_in_the_listed_order(self):
        call = self.mango_run("incoming_answered", from_number="79990002233")
        Call = type(self.env["mango.call"])
        steps = call._mango_post_fold_steps()
        ran = []

        def recorder(name):
            def step(records, previous):
                ran.append((name, records, previous))

            return step

        previous = {call.id: {"status": "ringing", "is_new": False}}
        with patch.multiple(Call, **{name: recorder(name) for name in steps}):
            call._mango_on_call_updated(previous)
        self.assertEqual([name for name, _r, _p in ran], steps)
        for _name, records, given in ran:
            self.assertEqual(records, call)
            self.assertIs(given, previous)

    def test_the_order_the_side_effects_rely_on(self):
        steps = self.env["mango.call"]._mango_post_fold_steps()
        self.assertEqual(len(steps), len(set(steps)), "each step once")
        position = {name: index for index, name in enumerate(steps)}
        # The clicked record first, then who called, then what is posted about it.
        self.assertEqual(steps[0], "_mango_step_link_commands")
        self.assertLess(
            position["_mango_step_identify_caller"],
            position["_mango_step_smart_route"],
            "routing needs the caller's salesperson",
        )
        self.assertLess(
            position["_mango_step_identify_caller"],
            position["_mango_step_post_on_chatter"],
        )
        self.assertLess(
            position["_mango_step_post_on_chatter"],
            position["_mango_step_follow_missed_call"],
        )
        for name in steps:
            self.assertTrue(callable(getattr(self.env["mango.call"], name, None)))


@tagged("post_install", "-at_install")
class TestIdentifiableModels(MangoFollowupCase):
    def test_models_are_asked_in_the_priority_they_declare(self):
        sources = self.env["mango.call"]._mango_caller_sources()
        names = [name for _priority, name, _finder in sources]
        expected = ["res.partner", "crm.lead"]
        if "hr.employee" in self.env:
            expected.append("hr.employee")
        self.assertEqual(names, expected)
        self.assertNotIn("mango.phone.mixin", names)

    def test_the_first_model_to_know_the_number_names_the_caller(self):
        contact = self.env["res.partner"].create(
            {"name": "Contact with the number", MOBILE_INPUT: "8 916 222-33-44"}
        )
        customer = self.env["res.partner"].create({"name": "The lead's customer"})
        lead = self.env["crm.lead"].create(
            {
                "name": "Lead with the number",
                "phone": "+7 916 222-33-44",
                "partner_id": customer.id,
            }
        )
        call = self.mango_run("incoming_answered", from_number="79162223344")
        self.assertEqual((call.partner_id, call.lead_id), (contact, lead))
        # Leads asked before contacts: the lead's customer answers for the number.
        with patch.object(type(self.env["crm.lead"]), "_mango_caller_priority", 5):
            again = self.mango_run("incoming_answered", from_number="79162223344")
        self.assertEqual((again.partner_id, again.lead_id), (customer, lead))
