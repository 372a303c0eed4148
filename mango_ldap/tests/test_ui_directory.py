"""The directory form in a browser, against a real slapd: what an administrator
sees after pressing Test connection."""

from odoo import Command
from odoo.tests import HttpCase, tagged

from odoo.addons.mango_telephony.tests.common import free_closed_port

from .common import MangoLdapCase, host_port, start_slapd

PEOPLE = "ou=people,dc=example,dc=test"


@tagged("post_install", "-at_install", "mango_ldap")
class TestDirectoryUi(MangoLdapCase, HttpCase):
    @classmethod
    def _start_server(cls):
        return start_slapd(users=20)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.server.env
        with open(env["LDAP_CA_FILE"], encoding="ascii") as handle:
            ca_pem = handle.read()
        host, port = host_port(env["LDAPS_URI"])
        cls.directory = cls.env["mango.ldap.directory"].create(
            {
                "name": "UI directory",
                "directory_type": "openldap",
                "transport": "ldaps",
                "server_ids": [Command.create({"host": host, "port": port})],
                "ca_certificate": ca_pem,
                "bind_dn": env["LDAP_BIND_DN"],
                "bind_password_input": env["LDAP_BIND_PW"],
                "base_dn_ids": [Command.create({"dn": PEOPLE, "scope": "subtree"})],
                "login_attribute": "uid",
            }
        )

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
