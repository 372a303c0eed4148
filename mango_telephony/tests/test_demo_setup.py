"""The demo's account wiring (scripts/demo_setup.py) against the simulator: what a
new user sees first must be a coherent configuration."""

import importlib.util
import os
from pathlib import Path
from unittest.mock import patch

from odoo.modules.module import get_module_path
from odoo.tests import tagged

from mango_office.simulator import DEFAULT_SEED

from .common import MangoSimulatorCase

SCRIPT = Path(get_module_path("mango_telephony")).parent / "scripts" / "demo_setup.py"


@tagged("post_install", "-at_install")
class TestDemoSetup(MangoSimulatorCase):
    def setUp(self):
        super().setUp()
        if not SCRIPT.is_file():
            self.skipTest("the addon is not in a checkout of the repository")
        self.mango_sim_reset()

    def wire_account(self):
        environ = {
            "MANGO_SIM_CONTROL": self.mango_sim.control_url,
            "MANGO_SIM_URL": self.mango_sim.base_url,
            "MANGO_API_KEY": self.mango_api_key,
            "MANGO_API_SALT": self.mango_api_salt,
            "MANGO_ODOO_URL": "http://localhost:8069",
        }
        spec = importlib.util.spec_from_file_location("mango_demo_setup", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        # The script commits each step; here the test's transaction holds them.
        with (
            patch.dict(os.environ, environ),
            patch.object(self.env.cr, "commit", self.env.flush_all),
        ):
            spec.loader.exec_module(module)
            module.env = self.env
            module.wire_account()
        self.env.invalidate_all()
        return self.mango_account

    def test_outgoing_line_and_recording_links_are_set(self):
        account = self.wire_account()
        self.assertEqual(account.connection_state, "ok")
        self.assertEqual(account.default_line_id.number, "74951234567")
        # The simulated PBX plays recordings through links: the account says so.
        self.assertTrue(account.recording_links_allowed)

    def test_recording_links_follow_the_pbx(self):
        self.mango_sim_seed(dict(DEFAULT_SEED, recording_links_enabled=False))
        account = self.wire_account()
        self.assertFalse(account.recording_links_allowed)
        self.assertEqual(account.default_line_id.number, "74951234567")
