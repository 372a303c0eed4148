"""A call-back attempt is a command in the PBX outbox (mango.command): listed with
click-to-call, its refusal stored there, and private to the operator it rings."""

from freezegun import freeze_time

from odoo import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from mango_office import signing

from .common import WEDNESDAY_NOON_UTC, MangoCallbackMixin


@tagged("post_install", "-at_install")
class TestCallbackOutbox(MangoCallbackMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_callback_setup()
        cls.Request = cls.env["mango.callback.request"]
        group_user = cls.env.ref("mango_telephony.group_mango_user")
        Users = cls.env["res.users"].with_context(no_reset_password=True)
        cls.operator = Users.create(
            {
                "name": "Operator Oleg",
                "login": "mango_cb_outbox_oleg",
                "mango_extension": "102",
                USER_GROUPS: [Command.link(group_user.id)],
            }
        )
        cls.colleague = Users.create(
            {
                "name": "Colleague Vera",
                "login": "mango_cb_outbox_vera",
                USER_GROUPS: [Command.link(group_user.id)],
            }
        )

    def setUp(self):
        super().setUp()
        self.mango_sim.reset()

    def submit(self):
        self.Request._mango_submit(
            self.widget, {"phone": "+7 916 555-12-34"}, "10.0.0.1"
        )
        return self.Request.search([], order="id desc", limit=1)

    @freeze_time(WEDNESDAY_NOON_UTC)
    def test_an_attempt_is_a_callback_command_in_the_outbox(self):
        request = self.submit()
        attempt = request.attempt_ids
        command = attempt.mango_command_id
        self.assertEqual(command.kind, "callback")
        self.assertEqual(command.command_id, attempt.command_id)
        self.assertEqual(command.account_id, self.widget.account_id)
        self.assertEqual(command.state, "sent")
        self.assertFalse(command.user_id, "a group call rings nobody's own phone")

    @freeze_time(WEDNESDAY_NOON_UTC)
    def test_a_refusal_is_stored_on_the_command_and_ends_the_attempt(self):
        request = self.submit()
        attempt = request.attempt_ids
        event_id, _new = self.env["mango.event"]._mango_ingest(
            self.mango_account,
            "result/callback_group",
            signing.dumps({"command_id": attempt.command_id, "result": 2240}),
        )
        self.env["mango.event"].browse(event_id)._mango_process()
        self.assertEqual(attempt.mango_command_id.state, "failed")
        self.assertEqual(attempt.mango_command_id.result_code, 2240)
        self.assertEqual(attempt.state, "failed")
        self.assertEqual(request.state, "scheduled")

    @freeze_time(WEDNESDAY_NOON_UTC)
    def test_the_operator_sees_the_command_that_rings_them_colleagues_do_not(self):
        self.widget.write({"target_type": "employee", "operator_id": self.operator.id})
        command = self.submit().attempt_ids.mango_command_id
        self.assertEqual(command.user_id, self.operator)
        Commands = self.env["mango.command"]
        domain = [("id", "=", command.id)]
        self.assertEqual(Commands.with_user(self.operator).search(domain), command)
        self.assertFalse(Commands.with_user(self.colleague).search(domain))
