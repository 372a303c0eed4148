"""The directory form in a browser, against a real slapd: what an administrator
sees after pressing Test connection."""

from odoo import Command
from odoo.tests import tagged

from odoo.addons.mango_telephony.tests.common import MangoHttpCase, free_closed_port

from .common import MangoLdapCase, start_slapd

PEOPLE = "ou=people,dc=example,dc=test"


@tagged("post_install", "-at_install", "mango_ldap")
class TestDirectoryUi(MangoLdapCase, MangoHttpCase):
    @classmethod
    def _start_server(cls):
        return start_slapd(users=20)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.directory = cls.slapd_directory(PEOPLE, name="UI directory")

    def open_form(self, directory, tour):
        self.start_tour(
            f"/odoo/action-mango_ldap.mango_ldap_directory_action/{directory.id}",
            tour,
            login="admin",
        )

    def test_connection_ok(self):
        self.open_form(self.directory, "mango_ldap_connection_ok_tour")
        self.assertEqual(self.directory.connection_state, "ok")

    def test_connection_failed(self):
        dead = self.directory.copy({"name": "Dead server"})
        dead.server_ids = [
            Command.clear(),
            Command.create({"host": "127.0.0.1", "port": free_closed_port()}),
        ]
        self.open_form(dead, "mango_ldap_connection_failed_tour")
        self.assertEqual(dead.connection_state, "failed")

    def test_connection_without_search_base(self):
        incomplete = self.directory.copy({"name": "No base"})
        incomplete.base_dn_ids = [Command.clear()]
        self.open_form(incomplete, "mango_ldap_connection_incomplete_tour")
