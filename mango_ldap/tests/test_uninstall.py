"""Uninstalling leaves nothing of ours behind in SQL (see
mango_telephony/tests/test_uninstall.py)."""

from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_ldap import uninstall_hook
from odoo.addons.mango_telephony.tests.sql_objects import (
    mango_sql_objects_outside_orm,
)


@tagged("post_install", "-at_install")
class TestUninstallHook(TransactionCase):
    def test_hook_drops_every_object_made_in_sql(self):
        self.assertIn(
            ("table", "mango_ldap_run_registry"),
            mango_sql_objects_outside_orm(self.env),
        )
        uninstall_hook(self.env)
        left = {
            (kind, name)
            for kind, name in mango_sql_objects_outside_orm(self.env)
            if name.startswith("mango_ldap_")
        }
        self.assertEqual(left, set())
