"""Real directory servers for the mango_ldap tests, started by the tests themselves.

The servers are the project's throw-away fixtures of
:mod:`mango_office.testing.ldap_servers` (``scripts/ldap/slapd.sh`` and
``scripts/ldap/samba-ad.sh``), the same the pure tests use; each server object also
writes to its directory as its administrator (``add``, ``modify``, ``move``,
``delete``, ``add_member``…). The PBX is the Mango simulator of mango_telephony's
test helpers. A test class whose server cannot start (no slapd/samba package, Samba
without root) is skipped with the reason.
"""

import copy
import subprocess
import unittest

from odoo import Command

from odoo.addons.mango_ldap.sync import DirectorySync
from odoo.addons.mango_telephony.tests.common import MangoSimulatorCase

from mango_office.simulator.state import DEFAULT_SEED
from mango_office.testing.ldap_servers import (
    ServerUnavailable,
    host_port,
    start_samba_ad,
    start_slapd,
)

__all__ = [
    "MangoLdapCase",
    "host_port",
    "start_samba_ad",
    "start_slapd",
]


ROOMY_SEED = copy.deepcopy(DEFAULT_SEED)
ROOMY_SEED["employee_limit"] = 500


class MangoLdapCase(MangoSimulatorCase):
    """A simulator-backed Mango account and a directory server started for the class.

    Each test starts from an empty Odoo side (its transaction is rolled back) and a
    freshly seeded PBX; changes to the directory itself persist, so every test
    changes its own entries only.
    """

    mango_seed = ROOMY_SEED

    @classmethod
    def _start_server(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.server = cls._start_server()
        except (
            ServerUnavailable,
            FileNotFoundError,
            PermissionError,
            subprocess.SubprocessError,
        ) as exc:
            raise unittest.SkipTest(f"directory fixture unavailable: {exc}") from exc
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()

    @classmethod
    def slapd_directory(cls, base_dn="ou=people,dc=example,dc=test", **values):
        """A directory on the class's slapd: LDAPS checked against its CA, the
        sync's service account, one search base."""
        env = cls.server.env
        with open(env["LDAP_CA_FILE"], encoding="ascii") as handle:
            cls.ca_pem = handle.read()
        host, port = host_port(env["LDAPS_URI"])
        return cls.env["mango.ldap.directory"].create(
            {
                "directory_type": "openldap",
                "transport": "ldaps",
                "server_ids": [Command.create({"host": host, "port": port})],
                "ca_certificate": cls.ca_pem,
                "bind_dn": env["LDAP_BIND_DN"],
                "bind_password_input": env["LDAP_BIND_PW"],
                "base_dn_ids": [Command.create({"dn": base_dn, "scope": "subtree"})],
                "login_attribute": "uid",
                **values,
            }
        )

    def run_sync(self, directory=None, mode="full", dry_run=False):
        directory = directory or self.directory
        return directory._mango_run(
            mode=mode, dry_run=dry_run, trigger="manual", commit=False
        )

    def confirm_removals(self, run):
        """The Confirm button of a waiting run, then the run it queued, started
        here as the queue's cron would but in the test's transaction.

        :return: the button's action (it opens the new run)
        """
        action = run.action_confirm_removals()
        queued = self.env["mango.ldap.sync.run"].browse(action["res_id"])
        DirectorySync.queued(queued, commit=False).execute()
        return action

    def links(self, directory=None):
        directory = directory or self.directory
        return self.env["mango.ldap.link"].search([("directory_id", "=", directory.id)])

    def link_for(self, login, directory=None):
        return self.links(directory).filtered(lambda link: link.login == login)

    def pbx_users(self):
        return {u["user_id"]: u for u in self.mango_sim.state.users.values()}

    def pbx_sips(self):
        return dict(self.mango_sim.state.sips)
