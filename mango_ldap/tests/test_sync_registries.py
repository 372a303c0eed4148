"""The planner's cross-page registries in the database behave as the in-memory ones.

A sync keeps the taken logins, extensions, SIP logins, linked PBX users, settled
claims and anchors seen as rows of its run (``sync/registries.py``), so its memory
does not grow with the directory. The same contract and the same three-page scenario
as the pure suite (``mango_office/testing/registries_contract.py``) run here on the
database, and must decide exactly what the in-memory registries decide.
"""

from odoo import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_ldap.sync.registries import TABLE, DatabaseRegistries

from mango_office.directory import MemoryRegistries
from mango_office.testing.registries_contract import (
    check_registries,
    guid,
    paged_outcome,
)


@tagged("post_install", "-at_install", "mango_ldap")
class TestDatabaseRegistries(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.directory = cls.env["mango.ldap.directory"].create(
            {
                "name": "Registries",
                "directory_type": "openldap",
                "transport": "plain",
                "login_attribute": "uid",
                "server_ids": [Command.create({"host": "127.0.0.1", "port": 1})],
                "base_dn_ids": [Command.create({"dn": "dc=example,dc=test"})],
            }
        )

    def new_run(self, state="running"):
        return self.env["mango.ldap.sync.run"].create(
            {"directory_id": self.directory.id, "mode": "full", "state": state}
        )

    def rows(self, run):
        self.env.cr.execute(f"SELECT count(*) FROM {TABLE} WHERE run_id = %s", [run.id])
        return self.env.cr.fetchone()[0]

    def test_database_registries_keep_the_contract(self):
        run = self.new_run()
        check_registries(DatabaseRegistries(self.env.cr, run.id))
        self.assertGreater(self.rows(run), 24000)

    def test_a_run_sees_only_its_own_rows(self):
        one, two = self.new_run(), self.new_run()
        first = DatabaseRegistries(self.env.cr, one.id)
        first.set_login_owner("alice", "anchor:a")
        first.add_extension_owner("201", "anchor:a")
        first.page_done()
        second = DatabaseRegistries(self.env.cr, two.id)
        self.assertIsNone(second.login_owner("alice"))
        self.assertEqual(second.extension_owners("201"), set())
        self.assertEqual(first.login_owner("alice"), "anchor:a")

    def test_pages_decide_as_in_memory(self):
        """A login taken on page 1 is taken on page 3; a number two pages ask for
        goes to the same person; the range skips the same numbers: page by page,
        the database-backed registries decide what the in-memory ones decide."""
        run = self.new_run()
        registries = DatabaseRegistries(self.env.cr, run.id)
        in_database = paged_outcome(registries)
        self.assertEqual(in_database, paged_outcome(MemoryRegistries()))
        first, _second, third, final = in_database
        self.assertIn((guid(1), "shared", "500"), first["creates"])
        self.assertIn((guid(9), "create", "login_conflict", None), third["held"])
        self.assertIn((guid(8), "user8", "301"), third["creates"])
        self.assertIn(
            (guid(2), "extension", "extension_conflict", "301"), final["held"]
        )
        # what the pages decided is in the database, not in the worker's memory
        self.assertEqual(registries._known, {})
        self.assertEqual(registries._pending, {})
        self.env.cr.execute(
            f"SELECT owner FROM {TABLE} WHERE run_id = %s AND kind = 'l' AND key = %s",
            [run.id, "shared"],
        )
        self.assertEqual(self.env.cr.fetchall(), [(f"anchor:{guid(1)}",)])
        self.assertEqual(registries.seen_count(), 11)

    def test_rows_of_ended_and_dead_runs_are_deleted(self):
        dead = self.new_run(state="failed")
        left = DatabaseRegistries(self.env.cr, dead.id)
        left.see("a")
        left.page_done()
        running = self.new_run()
        other = DatabaseRegistries(self.env.cr, running.id)
        other.see("b")
        other.page_done()
        current = self.new_run()
        mine = DatabaseRegistries(self.env.cr, current.id)
        mine.see("c")
        mine.page_done()
        mine.clear()
        self.assertEqual(self.rows(dead), 0)
        self.assertEqual(self.rows(current), 0)
        # another run still going keeps its rows
        self.assertEqual(self.rows(running), 1)
