"""Uninstalling leaves nothing of ours behind in SQL.

The hook runs inside the test's transaction (PostgreSQL's DDL is
transactional), so the database is as before once the test rolls back.
"""

from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_telephony import uninstall_hook

from .sql_objects import mango_sql_objects_outside_orm


@tagged("post_install", "-at_install")
class TestUninstallHook(TransactionCase):
    def test_hook_drops_every_object_made_in_sql(self):
        before = mango_sql_objects_outside_orm(self.env)
        # What the module makes by hand today: the test would pass vacuously
        # if it could not see them.
        for expected in (
            ("table", "mango_missed_call_number"),
            ("table", "mango_rate_limit_bucket"),
            ("function", "mango_partners_by_phone"),
        ):
            self.assertIn(expected, before)
        uninstall_hook(self.env)
        left = {
            (kind, name)
            for kind, name in mango_sql_objects_outside_orm(self.env)
            # Another addon's (mango_ldap drops its own).
            if not name.startswith("mango_ldap_")
        }
        self.assertEqual(left, set())
