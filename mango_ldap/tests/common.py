"""Real directory servers for the mango_ldap tests, started by the tests themselves.

The servers are the project's throw-away fixtures (``scripts/ldap/slapd.sh`` and
``scripts/ldap/samba-ad.sh``); the PBX is the Mango simulator of mango_telephony's
test helpers. A test class whose server cannot start (no slapd/samba package, Samba
without root) is skipped with the reason.
"""

import copy
import os
import shutil
import ssl
import subprocess
import unittest
from pathlib import Path

import ldap3

from odoo.addons.mango_telephony.tests.common import MangoSimulatorCase

from mango_office.simulator.state import DEFAULT_SEED

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "ldap"


def _parse_exports(text):
    env = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, value = line[len("export ") :].split("=", 1)
            env[key] = value.strip().strip("'").strip('"')
    return env


class DirectoryServer:
    """A started fixture server: ``env`` holds its export lines (URIs, DNs, CA files)."""

    def __init__(self, script, *args):
        self.script = SCRIPTS / script
        self.args = args
        self.env = {}

    @property
    def dir(self):
        return self.env.get("SLAPD_TEST_DIR") or self.env.get("SAMBA_TEST_DIR")

    def start(self):
        if not self.script.exists():
            raise FileNotFoundError(f"{self.script} is missing")
        done = subprocess.run(
            ["bash", str(self.script), "start", *self.args],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.env = _parse_exports(done.stdout)
        return self

    def stop(self):
        if self.dir:
            subprocess.run(
                ["bash", str(self.script), "stop", self.dir],
                check=False,
                capture_output=True,
                timeout=120,
            )

    def pause(self):
        subprocess.run(
            ["bash", str(self.script), "pause", self.dir],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def resume(self):
        """Start the paused daemon again (no-op when it already runs)."""
        subprocess.run(
            ["bash", str(self.script), "resume", self.dir],
            check=False,
            capture_output=True,
            timeout=120,
        )


def start_slapd(users=20):
    if not (shutil.which("slapd") or os.path.exists("/usr/sbin/slapd")):
        raise FileNotFoundError(
            "slapd is not installed (scripts/ldap/ensure-packages.sh)"
        )
    return DirectoryServer("slapd.sh", "--users", str(users)).start()


def start_samba():
    if os.geteuid() != 0 or not shutil.which("samba"):
        raise PermissionError("Samba AD DC needs root and the samba packages")
    return DirectoryServer("samba-ad.sh").start()


def host_port(uri):
    rest = uri.split("://", 1)[1].rstrip("/")
    host, _sep, port = rest.rpartition(":")
    return host, int(port)


class LdapAdmin:
    """Writes to the test directory as its administrator (ldap3, verified TLS).

    One connection per operation, so a test that paused the server keeps working.
    """

    def __init__(self, uri, bind_dn, password, ca_file):
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
        host, port = host_port(uri)
        self.use_ssl = uri.startswith("ldaps")
        self.server = ldap3.Server(
            host, port=port, use_ssl=self.use_ssl, tls=tls, connect_timeout=10
        )
        self.bind_dn = bind_dn
        self.password = password

    def _conn(self):
        return ldap3.Connection(
            self.server,
            self.bind_dn,
            self.password,
            raise_exceptions=True,
            auto_bind=ldap3.AUTO_BIND_NO_TLS
            if self.use_ssl
            else ldap3.AUTO_BIND_TLS_BEFORE_BIND,
        )

    def _do(self, method, *args, **kwargs):
        conn = self._conn()
        try:
            return getattr(conn, method)(*args, **kwargs)
        finally:
            conn.unbind()

    def modify(self, dn, **changes):
        self._do(
            "modify",
            dn,
            {
                name: [
                    (
                        ldap3.MODIFY_REPLACE,
                        value if isinstance(value, list) else [value],
                    )
                ]
                if value is not None
                else [(ldap3.MODIFY_DELETE, [])]
                for name, value in changes.items()
            },
        )

    def add_member(self, group_dn, member_dn):
        self._do("modify", group_dn, {"member": [(ldap3.MODIFY_ADD, [member_dn])]})

    def remove_member(self, group_dn, member_dn):
        try:
            self._do(
                "modify", group_dn, {"member": [(ldap3.MODIFY_DELETE, [member_dn])]}
            )
        except ldap3.core.exceptions.LDAPNoSuchAttributeResult:
            return  # not a member any more: what the caller wanted

    def delete(self, dn):
        self._do("delete", dn)

    def rename(self, dn, new_rdn, new_superior=None):
        self._do("modify_dn", dn, new_rdn, new_superior=new_superior)

    def add(self, dn, object_class, attributes):
        self._do("add", dn, object_class, attributes)

    def close(self):
        """Nothing is kept open."""


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
        except (FileNotFoundError, PermissionError, subprocess.SubprocessError) as exc:
            raise unittest.SkipTest(f"directory fixture unavailable: {exc}") from exc
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()

    def run_sync(self, directory=None, mode="full", dry_run=False):
        directory = directory or self.directory
        return directory._mango_run(
            mode=mode, dry_run=dry_run, trigger="manual", commit=False
        )

    def links(self, directory=None):
        directory = directory or self.directory
        return self.env["mango.ldap.link"].search([("directory_id", "=", directory.id)])

    def link_for(self, login, directory=None):
        return self.links(directory).filtered(lambda link: link.login == login)

    def pbx_users(self):
        return {u["user_id"]: u for u in self.mango_sim.state.users.values()}

    def pbx_sips(self):
        return dict(self.mango_sim.state.sips)
