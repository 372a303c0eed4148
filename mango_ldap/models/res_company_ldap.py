"""Directory sign-in through Odoo's own auth_ldap login path.

auth_ldap only speaks ``ldap://`` (+ StartTLS) against the system ``ldap.conf``
trust store. For configurations generated from a mango.ldap.directory we
connect the same way the sync does: LDAPS or StartTLS, the directory's stored
CA, certificate checking, failover over the ordered servers and every search
base; and only entries linked to an Odoo user by the sync may sign in.
"""

import hashlib
import logging
import os

import ldap

from odoo import fields, models, tools

from odoo.addons.auth_ldap.models.res_company_ldap import LDAPWrapper

from mango_office import directory as core

_logger = logging.getLogger(__name__)

SCOPES = {
    "subtree": ldap.SCOPE_SUBTREE,
    "onelevel": ldap.SCOPE_ONELEVEL,
    "base": ldap.SCOPE_BASE,
}


def canonical_anchor(attribute, raw):
    """The link key of a raw directory value (python-ldap gives bytes), as the
    core reader computes it: AD objectGUID bytes_le, or entryUUID text."""
    if isinstance(raw, bytes) and not (
        attribute.lower() == "objectguid" and len(raw) == 16
    ):
        raw = raw.decode("utf-8", "replace")
    return core.normalize_guid(raw)


def _ca_file(pem):
    """A file holding ``pem``: libldap takes CA certificates by path only."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:32]
    folder = os.path.join(tools.config["data_dir"], "mango_ldap")
    path = os.path.join(folder, f"ca-{digest}.pem")
    if not os.path.exists(path):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(pem)
        os.replace(tmp, path)
    return path


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
            directory = directory.sudo()
            # The secret stays on the directory only; it is read when needed.
            conf.update(
                mango_directory_id=directory.id,
                ldap_binddn=directory.bind_dn or "",
                ldap_password=directory.bind_password or "",
            )
        return [conf for conf in confs if not conf.get("mango_skip")]

    def _mango_directory(self, conf):
        return (
            self.env["mango.ldap.directory"].sudo().browse(conf["mango_directory_id"])
        )

    def _connect(self, conf):
        if not conf.get("mango_directory_id"):
            return super()._connect(conf)
        directory = self._mango_directory(conf)
        scheme = "ldaps" if directory.transport == "ldaps" else "ldap"
        uris = " ".join(
            f"{scheme}://{server.host}:{server.effective_port}"
            for server in directory.server_ids
        )
        connection = ldap.initialize(uris)
        connection.set_option(ldap.OPT_REFERRALS, ldap.OPT_OFF)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, directory.timeout or 15)
        connection.set_option(ldap.OPT_TIMEOUT, directory.timeout or 15)
        connection.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        if directory.transport != "plain":
            if directory.verify_certificate:
                connection.set_option(
                    ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND
                )
                if directory.ca_certificate:
                    connection.set_option(
                        ldap.OPT_X_TLS_CACERTFILE, _ca_file(directory.ca_certificate)
                    )
            else:
                connection.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_NEVER)
            # Per-connection TLS options only take effect in a fresh context.
            connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
            if directory.transport == "starttls":
                connection.start_tls_s()
        return LDAPWrapper(connection)

    def _query(self, conf, filter, retrieve_attributes=None):
        if not conf.get("mango_directory_id"):
            return super()._query(conf, filter, retrieve_attributes)
        directory = self._mango_directory(conf)
        attributes = list(retrieve_attributes or ["*"])
        if directory.anchor_attribute not in attributes:
            attributes.append(directory.anchor_attribute)
        results = []
        try:
            conn = self._connect(conf)
            conn.simple_bind_s(conf["ldap_binddn"] or "", conf["ldap_password"] or "")
            for base in directory.base_dn_ids:
                results.extend(
                    conn.search_st(
                        base.dn,
                        SCOPES[base.scope],
                        filter,
                        attributes,
                        timeout=directory.timeout or 15,
                    )
                )
            conn.unbind()
        except ldap.INVALID_CREDENTIALS:
            _logger.error("Directory %s: service account bind failed.", directory.name)
        except ldap.LDAPError as exc:
            _logger.error(
                "Directory %s: LDAP error during sign-in: %s", directory.name, exc
            )
        return results

    def _get_entry(self, conf, login):
        dn, entry = super()._get_entry(conf, login)
        if not dn or not conf.get("mango_directory_id"):
            return dn, entry
        directory = self._mango_directory(conf)
        raw = entry[1].get(directory.anchor_attribute) or [b""]
        anchor = canonical_anchor(directory.anchor_attribute, raw[0])
        link = (
            self.env["mango.ldap.link"]
            .sudo()
            .search(
                [
                    ("directory_id", "=", directory.id),
                    ("anchor", "=", anchor),
                    ("state", "=", "active"),
                ],
                limit=1,
            )
        )
        if not link or (link.user_id.login or "").lower() != login.strip().lower():
            # A directory entry may only open the Odoo account the sync linked it to.
            return False, False
        return dn, entry
