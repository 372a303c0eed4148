"""Throw-away directory servers for tests: a real OpenLDAP (slapd) and a real
Samba AD DC, each in a private temp dir, stopped and removed afterwards.

Test fixtures, not product code: nothing in the addons imports this module. It
lives in the pure package so that both test suites import it the same way,
needing only ldap3 and the standard library:

* pytest (``tests/``, no database)::

      from mango_office.testing import ldap_servers
      slapd = ldap_servers.slapd          # session fixtures; they skip, with the
      samba_ad = ldap_servers.samba_ad    # reason, when a server cannot run here

* Odoo tests (``mango_ldap/tests``) and scripts::

      from mango_office.testing.ldap_servers import slapd_server, samba_ad_server

      with slapd_server(users=20) as ldap:  # scripts/ldap/slapd.sh, sample people
          ldap.uri, ldap.ldaps_uri, ldap.base_dn, ldap.bind_dn, ldap.password
          dn = ldap.add_user("jdoe", cn="John Doe", mail="jdoe@example.test")
          dn = ldap.move(dn, ldap.sales_dn)
          ldap.pause(); ldap.resume()       # an outage
          ldap.delete(dn)

      with samba_ad_server() as ad:         # scripts/ldap/samba-ad.sh, root only
          dn = ad.add_user("jdoe", displayName="John Doe", ipPhone="201")
          ad.disable_user(dn)

  ``start_slapd()`` / ``start_samba_ad()`` return a started server for class-level
  fixtures (call ``.stop()``); ``server.env`` holds the script's ``export`` lines.

The servers are started by the project's scripts (``scripts/ldap/*.sh``, which
install the Debian packages when missing). They are found next to this package
in a source checkout, or where ``MANGO_LDAP_SCRIPTS`` points.
"""

import contextlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import ldap3
from ldap3.utils.dn import parse_dn

from mango_office.directory.tls import _VerifyingTls

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(os.environ.get("MANGO_LDAP_SCRIPTS") or REPO / "scripts" / "ldap")


class ServerUnavailable(RuntimeError):
    """The directory server cannot run here (the message says why); tests skip."""


def host_port(uri):
    """``("127.0.0.1", 10636)`` of ``ldaps://127.0.0.1:10636``."""
    rest = uri.split("://", 1)[1].rstrip("/")
    host, _sep, port = rest.rpartition(":")
    return host, int(port)


def _run_script(script, *args, timeout=600):
    if not (SCRIPTS / script).is_file():
        raise ServerUnavailable(
            f"{SCRIPTS / script} not found: run from a source checkout or set "
            "MANGO_LDAP_SCRIPTS to its scripts/ldap folder"
        )
    proc = subprocess.run(
        [str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/tmp",
    )
    if proc.returncode != 0:
        raise ServerUnavailable(
            f"{script} {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}"
        )
    return proc.stdout


def _parse_env(text):
    env = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, value = line[len("export ") :].split("=", 1)
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            env[name] = value
    return env


class _Directory:
    """Common helpers: an admin connection and add/modify/move/delete of people and
    groups."""

    kind = None

    def __init__(self, env, script):
        self.env = env
        self.script = script
        self.stopped = False

    # --- connection
    # ------------------------------------------------------------------------

    def _tls(self):
        # The product's verifying TLS: ldap3's own check calls ssl.match_hostname,
        # deprecated, and gone in Python 3.12 (which Odoo 19.0 may run on).
        return _VerifyingTls(ca_file=self.ca_file)

    def admin(self):
        """A fresh admin connection over LDAPS (caller may keep or unbind it)."""
        host, port = self.ldaps_uri.rsplit("://", 1)[1].rsplit(":", 1)
        server = ldap3.Server(
            host, port=int(port), use_ssl=True, tls=self._tls(), get_info=ldap3.NONE
        )
        return ldap3.Connection(
            server,
            self.admin_dn,
            self.admin_password,
            auto_bind=True,
            raise_exceptions=True,
            receive_timeout=30,
        )

    def _with_admin(self, fn):
        conn = self.admin()
        try:
            return fn(conn)
        finally:
            conn.unbind()

    # --- generic operations
    # ----------------------------------------------------------------

    def modify(self, dn, **attrs):
        """Replace attributes (``None`` or ``[]`` deletes the attribute)."""
        changes = {}
        for name, value in attrs.items():
            values = (
                []
                if value is None
                else (list(value) if isinstance(value, (list, tuple)) else [value])
            )
            changes[name] = [(ldap3.MODIFY_REPLACE, values)]
        self._with_admin(lambda c: c.modify(dn, changes))

    def move(self, dn, new_parent, new_rdn=None):
        """Move (and optionally rename) an entry; returns the new DN. The anchor stays
        the same."""
        rdn = new_rdn or dn.split(",", 1)[0]
        self._with_admin(lambda c: c.modify_dn(dn, rdn, new_superior=new_parent))
        return f"{rdn},{new_parent}"

    def rename(self, dn, new_rdn):
        parent = dn.split(",", 1)[1]
        self._with_admin(lambda c: c.modify_dn(dn, new_rdn))
        return f"{new_rdn},{parent}"

    def delete(self, dn):
        self._with_admin(lambda c: c.delete(dn))

    def add(self, dn, object_classes, attributes):
        """Add any entry (OUs, groups, people with attributes of your choice)."""
        self._with_admin(lambda c: c.add(dn, list(object_classes), attributes))
        return dn

    def add_member(self, group_dn, member_dn):
        self._with_admin(
            lambda c: c.modify(group_dn, {"member": [(ldap3.MODIFY_ADD, [member_dn])]})
        )

    def remove_member(self, group_dn, member_dn):
        """Drop a member; one already gone is what the caller wanted (cleanups)."""
        try:
            self._with_admin(
                lambda c: c.modify(
                    group_dn, {"member": [(ldap3.MODIFY_DELETE, [member_dn])]}
                )
            )
        except ldap3.core.exceptions.LDAPNoSuchAttributeResult:
            return

    def search(self, base, flt, attributes=("*",)):
        def run(conn):
            conn.search(base, flt, attributes=list(attributes), paged_size=500)
            return [
                (e["dn"], e["raw_attributes"])
                for e in conn.response
                if e.get("type") == "searchResEntry"
            ]

        return self._with_admin(run)

    def exists(self, dn):
        def run(conn):
            try:
                return conn.search(
                    dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["1.1"]
                )
            except ldap3.core.exceptions.LDAPNoSuchObjectResult:
                return False

        return self._with_admin(run)

    # --- lifecycle
    # -------------------------------------------------------------------------

    def pause(self):
        """Stop the daemon, keep the data (simulates an outage)."""
        _run_script(self.script, "pause", self.dir)

    def resume(self):
        _run_script(self.script, "resume", self.dir)

    def stop(self):
        if not self.stopped:
            self.stopped = True
            _run_script(self.script, "stop", self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def dir(self):
        raise NotImplementedError


class SlapdServer(_Directory):
    kind = "openldap"

    def __init__(self, env):
        super().__init__(env, "slapd.sh")
        self.uri = env["LDAP_URI"]  # plain, and StartTLS on the same port
        self.starttls_uri = self.uri.replace("ldap://", "ldap+starttls://")
        self.ldaps_uri = env["LDAPS_URI"]
        self.ldaps_wrong_host_uri = env[
            "LDAPS_ALT_URI"
        ]  # same server, address not in the certificate
        self.base_dn = env["LDAP_BASE_DN"]
        self.bind_dn = env["LDAP_BIND_DN"]  # the size-limited service account
        self.password = env["LDAP_BIND_PW"]
        self.admin_dn = env["LDAP_ROOT_DN"]
        self.admin_password = env["LDAP_ROOT_PW"]
        self.ca_file = env["LDAP_CA_FILE"]
        self.wrong_ca_file = env["LDAP_WRONG_CA_FILE"]
        self.size_limit = int(env["LDAP_SIZE_LIMIT"])
        self.sample_users = int(env["LDAP_SAMPLE_USERS"])
        self.people_dn = f"ou=people,{self.base_dn}"
        self.sales_dn = f"ou=sales,{self.people_dn}"
        self.groups_dn = f"ou=groups,{self.base_dn}"

    @property
    def dir(self):
        return self.env["SLAPD_TEST_DIR"]

    def add_user(self, uid, parent=None, **attrs):
        dn = f"uid={uid},{parent or self.people_dn}"
        values = {"uid": uid, "cn": attrs.pop("cn", uid), "sn": attrs.pop("sn", uid)}
        values.update(attrs)
        self._with_admin(
            lambda c: c.add(
                dn, ["inetOrgPerson", "organizationalPerson", "person"], values
            )
        )
        return dn

    def add_group(self, name, members=(), parent=None):
        dn = f"cn={name},{parent or self.groups_dn}"
        # groupOfNames needs at least one member: an empty group points at itself, like
        # many admins do
        self._with_admin(
            lambda c: c.add(
                dn, ["groupOfNames"], {"cn": name, "member": list(members) or [dn]}
            )
        )
        return dn

    def set_limits(self, limits):
        """Replace the database's olcLimits (cn=config over LDAPI as the local root
        user)."""
        ldif = (
            "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\n"
            f"replace: olcLimits\nolcLimits: {limits}\n"
        )
        proc = subprocess.run(
            ["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", self.env["LDAPI_URI"]],
            input=ldif,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"ldapmodify failed: {proc.stderr}")

    def default_limits(self):
        limit = self.size_limit
        return (
            f"* size.soft={limit} size.hard={limit} size.pr=1000 size.prtotal=unlimited"
        )

    def anchor_of(self, dn):
        rows = self.search(dn, "(objectClass=*)", ["entryUUID"])
        return str(uuid.UUID(rows[0][1]["entryUUID"][0].decode()))


class SambaADServer(_Directory):
    kind = "ad"

    def __init__(self, env):
        super().__init__(env, "samba-ad.sh")
        self.ip = env["AD_IP"]
        self.hostname = env["AD_HOSTNAME"]
        self.uri = env["AD_URI"]  # StartTLS needed for simple binds (strong auth)
        self.starttls_uri = self.uri.replace("ldap://", "ldap+starttls://")
        self.ldaps_uri = env["AD_LDAPS_URI"]
        self.base_dn = env["AD_BASE_DN"]
        self.bind_dn = env["AD_BIND_DN"]
        self.password = env["AD_BIND_PW"]
        self.admin_dn = env["AD_BIND_DN"]
        self.admin_password = env["AD_BIND_PW"]
        self.ca_file = env["AD_CA_FILE"]
        self.wrong_ca_file = env["AD_WRONG_CA_FILE"]
        self.people_dn = f"OU=Staff,{self.base_dn}"
        self.groups_dn = f"OU=Groups,{self.base_dn}"
        self._ensure_ous()

    @property
    def dir(self):
        return self.env["SAMBA_TEST_DIR"]

    def _ensure_ous(self):
        def run(conn):
            for dn in (self.people_dn, self.groups_dn, f"OU=Sales,{self.people_dn}"):
                conn.raise_exceptions = False
                conn.add(dn, ["top", "organizationalUnit"], {"ou": parse_dn(dn)[0][1]})
                conn.raise_exceptions = True

        self._with_admin(run)
        self.sales_dn = f"OU=Sales,{self.people_dn}"

    def add_user(self, sam, parent=None, password=None, enabled=True, **attrs):
        dn = f"CN={attrs.get('cn', sam)},{parent or self.people_dn}"
        realm = self.bind_dn.split("@", 1)[1]
        values = {
            "sAMAccountName": sam,
            "userPrincipalName": f"{sam}@{realm}",
            # unicodePwd: UTF-16-LE of the quoted password, accepted over TLS only
            "unicodePwd": f'"{password or "Pw-" + sam + "-Secret1!"}"'.encode(
                "utf-16-le"
            ),
            "userAccountControl": 512 if enabled else 514,
        }
        values.update({k: v for k, v in attrs.items() if k != "cn"})
        self._with_admin(
            lambda c: c.add(
                dn, ["top", "person", "organizationalPerson", "user"], values
            )
        )
        return dn

    def add_group(self, name, members=(), parent=None):
        dn = f"CN={name},{parent or self.groups_dn}"
        values = {
            "sAMAccountName": name,
            "groupType": -2147483646,
        }  # global security group
        if members:
            values["member"] = list(members)
        self._with_admin(lambda c: c.add(dn, ["top", "group"], values))
        return dn

    def disable_user(self, dn):
        self.modify(dn, userAccountControl=514)

    def enable_user(self, dn):
        self.modify(dn, userAccountControl=512)

    def set_account_expires(self, dn, filetime):
        self.modify(dn, accountExpires=str(int(filetime)))

    def anchor_of(self, dn):
        rows = self.search(dn, "(objectClass=*)", ["objectGUID"])
        return str(uuid.UUID(bytes_le=rows[0][1]["objectGUID"][0]))

    def highest_usn(self):
        def run(conn):
            conn.search(
                "",
                "(objectClass=*)",
                search_scope=ldap3.BASE,
                attributes=["highestCommittedUSN"],
            )
            return int(conn.response[0]["raw_attributes"]["highestCommittedUSN"][0])

        return self._with_admin(run)


def _start(script, server_cls, *args):
    env = _parse_env(_run_script(script, "start", *args))
    try:
        return server_cls(env)
    except Exception:
        # Started but unusable (e.g. the DC refused the OUs): do not leak it.
        directory = env.get("SLAPD_TEST_DIR") or env.get("SAMBA_TEST_DIR")
        if directory:
            with contextlib.suppress(ServerUnavailable, subprocess.SubprocessError):
                _run_script(script, "stop", directory)
        raise


def _check_slapd():
    if (
        not (shutil.which("slapd") or os.path.exists("/usr/sbin/slapd"))
        and os.geteuid() != 0
    ):
        raise ServerUnavailable("slapd is not installed and installing it needs root")


def _check_samba():
    if os.geteuid() != 0:
        raise ServerUnavailable(
            "Samba AD DC needs root (it only listens on ports 389/636)"
        )


def start_slapd(users=250, empty=False):
    """A running OpenLDAP with ``users`` sample people (or none); the caller
    stops it."""
    _check_slapd()
    args = ["--empty"] if empty else ["--users", str(users)]
    return _start("slapd.sh", SlapdServer, *args)


def start_samba_ad():
    """A running Samba AD DC (OU=Staff, OU=Groups, OU=Sales created); the caller
    stops it."""
    _check_samba()
    return _start("samba-ad.sh", SambaADServer)


@contextlib.contextmanager
def slapd_server(users=250, empty=False):
    """A running OpenLDAP with the sample directory; stopped and removed on exit."""
    server = start_slapd(users=users, empty=empty)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def samba_ad_server():
    """A running Samba AD DC (OU=Staff, OU=Groups, OU=Sales created); stopped and
    removed on exit."""
    server = start_samba_ad()
    try:
        yield server
    finally:
        server.stop()


try:
    import pytest
except ImportError:  # Odoo's runner does not need the fixtures
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def slapd():
        try:
            with slapd_server() as server:
                yield server
        except ServerUnavailable as exc:
            pytest.skip(str(exc))

    @pytest.fixture(scope="session")
    def samba_ad():
        try:
            with samba_ad_server() as server:
                yield server
        except ServerUnavailable as exc:
            pytest.skip(str(exc))
