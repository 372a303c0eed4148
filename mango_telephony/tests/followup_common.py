"""Base of the follow-up tests (caller ID, recordings, missed calls, routing,
reconciliation): a simulator as the PBX, its account, agents with extensions,
and the real event path (store → fold → hook) for what the simulator plays."""

from odoo import Command
from odoo.tests import TransactionCase

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from .calls_common import MangoCallsMixin


class MangoFollowupCase(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()
        listener = cls.env.ref("mango_telephony.group_mango_recording_listener")
        Users = cls.env["res.users"].with_context(no_reset_password=True)
        cls.salesperson = Users.create(
            {
                "name": "Salesperson 103",
                "login": "sales103@example.com",
                "mango_extension": "103",
                USER_GROUPS: [
                    Command.link(cls.env.ref("mango_telephony.group_mango_user").id),
                    Command.link(listener.id),
                ],
            }
        )

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()

    def mango_run(self, scenario, **options):
        """Play ``scenario`` on the simulator, deliver all its events through the
        worker and return the resulting call."""
        events = self.mango_play(scenario, **options)
        self.mango_ingest(events)
        self.mango_process_all()
        entry_ids = {p.get("entry_id") for _path, p in events if p.get("entry_id")}
        self.assertEqual(len(entry_ids), 1, "one scenario, one call")
        return self.mango_call(entry_ids.pop())
