"""Directory sign-in through Odoo's own auth_ldap login path.

auth_ldap speaks python-ldap over ``ldap://`` (+ StartTLS) against the system
trust store. For configurations generated from a mango.ldap.directory every
step — the service account's search for the login, the person's own bind, a
password change — goes through the sync's LDAP stack instead: the core's
``DirectoryReader`` (ldap3) configured by ``mango_ldap.sync.reader_config``.
Sign-in and sync therefore share the servers and their failover, LDAPS or
StartTLS, the directory's stored CA, the certificate and host name checks and
the timeout; and only entries linked to an Odoo user by the sync may sign in.
"""

import dataclasses
import logging

from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from odoo import fields, models

from mango_office.directory import (
    DirectoryBindError,
    DirectoryError,
    DirectoryReader,
)

from ..sync import reader_config

_logger = logging.getLogger(__name__)


class ResCompanyLdap(models.Model):
    _inherit = "res.company.ldap"

    mango_directory_id = fields.Many2one(
        "mango.ldap.directory",
        string="Generated from directory",
        readonly=True,
        ondelete="cascade",
        index=True,
    )

    def _get_ldap_dicts(self):
        confs = super()._get_ldap_dicts()
        ids = [conf["id"] for conf in confs]
        by_id = {c.id: c for c in self.sudo().browse(ids)}
        for conf in confs:
            directory = by_id[conf["id"]].mango_directory_id
            if not directory:
                continue
            if not directory.active or not directory.signin_enabled:
                conf["mango_skip"] = True
                continue
            # The service account's secret stays on the directory: the reader's
            # configuration reads it there, when a sign-in needs it.
            conf["mango_directory_id"] = directory.id
        return [conf for conf in confs if not conf.get("mango_skip")]

    def _mango_directory(self, conf):
        return (
            self.env["mango.ldap.directory"].sudo().browse(conf["mango_directory_id"])
        )

    def _mango_reader_as(self, directory, bind_dn=None, password=None):
        """A reader connecting as the sync does; as ``bind_dn`` when given (the
        person signing in), else as the directory's service account."""
        config = reader_config(directory)
        if bind_dn is not None:
            config = dataclasses.replace(
                config, bind_dn=bind_dn, bind_password=password
            )
        return DirectoryReader(config)

    def _mango_find_entry(self, directory, login):
        """The one entry in the sync's scope whose login attribute is ``login``,
        read as the sync reads it (its anchor computed alike), or None."""
        config = reader_config(directory)
        scope = (config.user_filter or "").strip()
        if scope and not scope.startswith("("):
            scope = f"({scope})"
        wanted = f"({directory.login_attribute}={escape_filter_chars(login)})"
        config = dataclasses.replace(
            config,
            user_filter=f"(&{scope}{wanted})" if scope else wanted,
            # who someone is, not what groups give them: no membership read
            group_dns=(),
            attributes=(directory.login_attribute,),
            keep_attributes=(directory.login_attribute,),
        )
        try:
            with DirectoryReader(config) as reader:
                reader.connect()
                scan = reader.paged_scan("full")
                entries = [entry for page in scan for entry in page]
        except DirectoryBindError:
            _logger.error("Directory %s: service account bind failed.", directory.name)
            return None
        except DirectoryError as exc:
            _logger.error(
                "Directory %s: LDAP error during sign-in: %s", directory.name, exc
            )
            return None
        if scan.result.errors:
            _logger.error(
                "Directory %s: LDAP error during sign-in: %s",
                directory.name,
                "; ".join(scan.result.errors),
            )
            return None
        # Exactly one, as auth_ldap asks: an ambiguous login signs nobody in.
        return entries[0] if len(entries) == 1 else None

    def _get_entry(self, conf, login):
        if not conf.get("mango_directory_id"):
            return super()._get_entry(conf, login)
        directory = self._mango_directory(conf)
        entry = self._mango_find_entry(directory, login.strip())
        if entry is None:
            return False, False
        link = (
            self.env["mango.ldap.link"]
            .sudo()
            .search(
                [
                    ("directory_id", "=", directory.id),
                    ("anchor", "=", entry.anchor),
                    ("state", "=", "active"),
                ],
                limit=1,
            )
        )
        if not link or (link.user_id.login or "").lower() != login.strip().lower():
            # A directory entry may only open the Odoo account the sync linked it to.
            return False, False
        attributes = {
            name: [value.encode() for value in values]
            for name, values in entry.attributes.items()
        }
        return entry.dn, (entry.dn, attributes)

    def _authenticate(self, conf, login, password):
        if not conf.get("mango_directory_id"):
            return super()._authenticate(conf, login, password)
        # An empty password would be an unauthenticated bind (RFC 4513 §6.3.1).
        if not password:
            return False
        dn, entry = self._get_entry(conf, login)
        if not dn:
            return False
        directory = self._mango_directory(conf)
        try:
            with self._mango_reader_as(directory, dn, password) as reader:
                reader.connect()
        except DirectoryBindError:
            return False
        except DirectoryError as exc:
            _logger.error(
                "Directory %s: LDAP error during sign-in: %s", directory.name, exc
            )
            return False
        return entry

    def _change_password(self, conf, login, old_passwd, new_passwd):
        if not conf.get("mango_directory_id"):
            return super()._change_password(conf, login, old_passwd, new_passwd)
        if not old_passwd:
            return False
        dn, _entry = self._get_entry(conf, login)
        if not dn:
            return False
        directory = self._mango_directory(conf)
        try:
            with self._mango_reader_as(directory, dn, old_passwd) as reader:
                # the Password Modify extended operation (RFC 3062), as the
                # person, over the connection the sign-in uses
                return bool(
                    reader.connect().conn.extend.standard.modify_password(
                        dn, old_passwd, new_passwd
                    )
                )
        except DirectoryBindError:
            return False
        except (DirectoryError, LDAPException, OSError) as exc:
            _logger.error(
                "Directory %s: LDAP error during a password change: %s",
                directory.name,
                exc,
            )
            return False
