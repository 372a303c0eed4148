"""Queued directory runs with several Odoo instances on one database: a run an
administrator queued waits while another sync of its directory runs (a scheduled
one, possibly started by another instance's cron) instead of being cancelled.
No directory server is needed: the run never gets to read it."""

import odoo
from odoo import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_ldap.sync.run import LOCK_NAMESPACE
from odoo.addons.mango_telephony.tests.common import free_closed_port


@tagged("post_install", "-at_install")
class TestQueuedRuns(TransactionCase):
    def test_queued_run_waits_for_the_running_sync(self):
        directory = self.env["mango.ldap.directory"].create(
            {
                "name": "Branch office",
                "directory_type": "openldap",
                "transport": "plain",
                "login_attribute": "uid",
                "server_ids": [
                    Command.create({"host": "127.0.0.1", "port": free_closed_port()})
                ],
                "base_dn_ids": [Command.create({"dn": "ou=people,dc=example,dc=test"})],
                "bind_dn": "cn=odoo-sync,dc=example,dc=test",
            }
        )
        run = self.env["mango.ldap.sync.run"].create(
            {"directory_id": directory.id, "mode": "full"}
        )
        queue = self.env.ref("mango_ldap.ir_cron_mango_ldap_queue")
        triggers_before = (
            queue.sudo()
            .env["ir.cron.trigger"]
            .search_count([("cron_id", "=", queue.id)])
        )
        # Another process (a scheduled sync in another instance) holds the
        # directory, as DirectorySync does while it runs.
        with odoo.sql_db.db_connect(self.env.cr.dbname).cursor() as other:
            other.execute(
                "SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, directory.id)
            )
            try:
                self.env["mango.ldap.directory"]._cron_process_queue()
            finally:
                other.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, directory.id)
                )
        self.assertEqual(run.state, "queued", "the administrator's run is kept")
        self.assertIn("this run starts when it ends", run.message)
        self.assertGreater(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", queue.id)]),
            triggers_before,
            "the queue tries it again",
        )
