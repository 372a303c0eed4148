"""The outbox of PBX commands (mango.command): one row per command, whoever sent it,
matched to Mango's result and to the call it started; private to its user."""

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from .test_click_to_call import CUSTOMER, MangoClickCase


@tagged("post_install", "-at_install")
class TestPbxCommands(MangoClickCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Users = cls.env["res.users"].with_context(no_reset_password=True)
        cls.telephony_admin = Users.create(
            {
                "name": "Telephony Admin",
                "login": "mango_cmd_admin@example.com",
                USER_GROUPS: [
                    Command.link(cls.env.ref("mango_telephony.group_mango_admin").id)
                ],
            }
        )

    def outbox_row(self, command_id, user=None):
        Commands = self.env["mango.command"]
        if user:
            Commands = Commands.with_user(user)
        return Commands.search([("command_id", "=", command_id)])

    def test_a_click_is_one_command_in_the_outbox(self):
        answer = self.click(self.agent_101, CUSTOMER, self.partner)
        command = self.outbox_row(answer["command_id"])
        self.assertEqual(len(command), 1)
        self.assertEqual(command.kind, "click_to_call")
        self.assertEqual(command.user_id, self.agent_101)
        self.assertEqual(command.account_id, self.mango_account)
        self.assertEqual(command.state, "sent")
        click = self.env["mango.click.to.call"].search(
            [("mango_command_id", "=", command.id)]
        )
        self.assertEqual(click.number_mango, CUSTOMER)

    def test_the_result_and_the_call_land_on_the_command(self):
        answer = self.click(self.agent_101, CUSTOMER, self.partner)
        events = self.wait_deliveries(answer["command_id"])
        self.mango_ingest(events)
        self.mango_process_all()
        command = self.outbox_row(answer["command_id"])
        call = self.env["mango.call"].search(
            [("command_id", "=", answer["command_id"])]
        )
        self.assertEqual(command.state, "linked")
        self.assertEqual(command.call_id, call)
        # Replaying the same events changes nothing.
        self.mango_ingest(events)
        self.mango_process_all()
        self.assertEqual(command.call_id, call)
        self.assertEqual(command.state, "linked")

    def test_users_see_their_own_commands_and_admins_all(self):
        mine = self.click(self.agent_101, CUSTOMER)["command_id"]
        theirs = self.click(self.agent_102, CUSTOMER)["command_id"]
        self.assertTrue(self.outbox_row(mine, self.agent_101))
        self.assertFalse(self.outbox_row(theirs, self.agent_101))
        self.assertFalse(self.outbox_row(mine, self.agent_102))
        command = self.outbox_row(theirs)
        with self.assertRaises(AccessError):
            command.with_user(self.agent_101).read(["state"])
        with self.assertRaises(AccessError):
            command.with_user(self.agent_102).write({"state": "failed"})
        for command_id in (mine, theirs):
            self.assertTrue(self.outbox_row(command_id, self.telephony_admin))
