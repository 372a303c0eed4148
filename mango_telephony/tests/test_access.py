"""Who sees which calls and events: user, supervisor, listener, admin, portal,
public."""

from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import TransactionCase, new_test_user, tagged

from .calls_common import MangoCallsMixin


@tagged("post_install", "-at_install")
class TestCallAccess(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()
        env = cls.env
        cls.supervisor = new_test_user(
            env, "mango_supervisor", groups="mango_telephony.group_mango_supervisor"
        )
        cls.listener = new_test_user(
            env,
            "mango_listener",
            groups="base.group_user,mango_telephony.group_mango_recording_listener",
        )
        cls.admin = new_test_user(
            env, "mango_admin", groups="mango_telephony.group_mango_admin"
        )
        cls.employee = new_test_user(env, "plain_employee", groups="base.group_user")
        cls.portal = new_test_user(env, "mango_portal", groups="base.group_portal")
        cls.public = env.ref("base.public_user")
        cls.salesperson = new_test_user(
            env, "mango_salesperson", groups="mango_telephony.group_mango_user"
        )

        cls.call_101 = cls.mango_fold_scenario("incoming_answered", extension="101")
        cls.call_102 = cls.mango_fold_scenario("incoming_answered", extension="102")
        cls.call_missed = cls.mango_fold_scenario(
            "incoming_missed_no_operator", from_number="79035550000"
        )
        customer = env["res.partner"].create(
            {"name": "Customer", "user_id": cls.salesperson.id}
        )
        cls.call_missed.partner_id = customer

        # A call of another company: only its own people see it.
        cls.other_company = env["res.company"].create(
            {"name": "Other company", "country_id": env.ref("base.ru").id}
        )
        cls.other_account = cls.mango_create_account(
            cls.mango_sim,
            company=cls.other_company,
            api_key="other-company-key",
            api_salt="other-company-salt",
        )
        cls.call_other_company = cls.mango_fold_scenario(
            "incoming_answered", account=cls.other_account, extension="101"
        )
        cls.supervisor.write({"company_ids": [Command.link(cls.other_company.id)]})
        cls.all_calls = cls.call_101 | cls.call_102 | cls.call_missed

    def visible(self, user, company_ids=None):
        env = self.env(user=user)
        if company_ids:
            env = env(context={"allowed_company_ids": company_ids})
        return env["mango.call"].search(
            [("id", "in", (self.all_calls | self.call_other_company).ids)]
        )

    def test_setup_is_what_the_matrix_assumes(self):
        self.assertEqual(len(self.all_calls), 3)
        self.assertEqual(self.call_101.user_id, self.agent_101)
        self.assertEqual(self.call_102.user_id, self.agent_102)
        self.assertFalse(self.call_missed.user_id)
        self.assertTrue(self.call_other_company)

    def test_user_sees_own_calls(self):
        self.assertEqual(self.visible(self.agent_101), self.call_101)
        self.assertEqual(self.visible(self.agent_102), self.call_102)
        with self.assertRaises(AccessError):
            self.call_102.with_user(self.agent_101).read(["status"])

    def test_user_sees_calls_of_their_customers(self):
        self.assertEqual(self.visible(self.salesperson), self.call_missed)

    def test_user_sees_calls_of_their_leads(self):
        lead = self.env["crm.lead"].create(
            {"name": "Deal", "user_id": self.agent_102.id}
        )
        self.call_101.lead_id = lead
        self.assertEqual(self.visible(self.agent_102), self.call_101 | self.call_102)

    def test_user_writes_own_call_only(self):
        partner = self.env["res.partner"].create({"name": "Someone"})
        self.call_101.with_user(self.agent_101).partner_id = partner
        self.assertEqual(self.call_101.partner_id, partner)
        with self.assertRaises(AccessError):
            self.call_102.with_user(self.agent_101).partner_id = partner
        with self.assertRaises(AccessError):
            self.call_101.with_user(self.agent_101).unlink()

    def test_user_cannot_read_raw_events(self):
        with self.assertRaises(AccessError):
            self.env["mango.event"].with_user(self.agent_101).search([])

    def test_supervisor_sees_all_calls_of_their_companies(self):
        # Without a company selection a user works in all their companies.
        self.assertEqual(
            self.visible(self.supervisor), self.all_calls | self.call_other_company
        )
        self.assertEqual(
            self.visible(self.supervisor, self.env.company.ids), self.all_calls
        )
        self.assertEqual(
            self.visible(self.supervisor, self.other_company.ids),
            self.call_other_company,
        )
        both = (self.env.company | self.other_company).ids
        self.assertEqual(
            self.visible(self.supervisor, both),
            self.all_calls | self.call_other_company,
        )
        # Another company's supervisor, without access to ours, sees nothing here.
        outsider = new_test_user(
            self.env,
            "outside_supervisor",
            groups="mango_telephony.group_mango_supervisor",
            company_id=self.other_company.id,
            company_ids=[Command.set(self.other_company.ids)],
        )
        self.assertEqual(self.visible(outsider), self.call_other_company)
        with self.assertRaises(AccessError):
            self.env["mango.event"].with_user(self.supervisor).search([])

    def test_listener_alone_sees_no_call(self):
        with self.assertRaises(AccessError):
            self.visible(self.listener)

    def test_admin_sees_calls_and_raw_events(self):
        self.assertEqual(self.visible(self.admin), self.all_calls)
        events = self.env["mango.event"].with_user(self.admin).search([])
        self.assertTrue(events)
        self.assertNotIn(self.other_account, events.account_id)
        with self.assertRaises(AccessError):
            self.env["mango.event"].with_user(self.admin).create(
                {
                    "account_id": self.mango_account.id,
                    "path": "events/call",
                    "dedup_key": "forged",
                }
            )

    def test_employee_without_telephony_role(self):
        with self.assertRaises(AccessError):
            self.visible(self.employee)

    def test_portal_and_public(self):
        for user in (self.portal, self.public):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    self.visible(user)
                with self.assertRaises(AccessError):
                    self.env["mango.event"].with_user(user).search([])
                with self.assertRaises(AccessError):
                    self.env["mango.call.leg"].with_user(user).search([])

    def test_legs_follow_their_calls(self):
        legs = self.env["mango.call.leg"].with_user(self.agent_101).search([])
        self.assertEqual(legs.call_id, self.call_101)

    def test_extension_is_self_readable_and_checked_when_written(self):
        me = self.agent_102.with_user(self.agent_102)
        self.assertEqual(me.read(["mango_extension"])[0]["mango_extension"], "102")
        # 205 is no extension of the PBX: refused, the extension stays.
        with self.assertRaises(ValidationError):
            me.write({"mango_extension": " 205 "})
        self.assertEqual(self.agent_102.mango_extension, "102")
        with self.assertRaises(AccessError):
            self.agent_101.with_user(self.agent_102).write({"mango_extension": "300"})

    def test_account_extension_list(self):
        mapping = self.env["mango.account.user"].with_user(self.agent_101).search([])
        self.assertTrue(mapping)
        with self.assertRaises(AccessError):
            mapping.with_user(self.agent_101).write({"extension": "999"})
        self.env["mango.account.user"].with_user(self.admin).create(
            {
                "account_id": self.mango_account.id,
                "user_id": self.salesperson.id,
                "extension": "150",
            }
        )
