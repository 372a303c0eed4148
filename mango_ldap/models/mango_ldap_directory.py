import json
import logging

from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError

from odoo.addons.mango_telephony.compat.constraints import table_constraints

from mango_office.directory import PRESETS

from ..sync import DirectorySync, directory_reader
from .connection_check import (
    check_connection,
    is_incomplete,
    notification_type,
)
from .connection_check import (
    describe as describe_connection,
)

_logger = logging.getLogger(__name__)

# Fields whose change alters which entries the directory returns: after such a
# change the next full run holds every removal for an administrator (a new
# filter that matches less is the classic cause of mass deprovisioning).
SCOPE_FIELDS = {
    "user_filter",
    "root_filter",
    "base_dn_ids",
    "server_ids",
    "bind_dn",
    "directory_type",
}
# Fields a connection test depends on: once one changes, the last test says
# nothing about the directory as now configured.
CONNECTION_FIELDS = SCOPE_FIELDS | {
    "transport",
    "ca_certificate",
    "verify_certificate",
    "timeout",
    "bind_password_input",
}

AD_PRESET = {
    "directory_type": "active_directory",
    "login_attribute": "sAMAccountName",
    "root_filter": "(&(objectCategory=person)(objectClass=user))",
    "extension_policy": "attribute_or_range",
    "extension_attribute": "ipPhone",
}
# One source per field, as an administrator sets it up: the name people see is
# displayName in Active Directory (cn is the entry's RDN, often "Surname, Given"
# or the login) and cn in OpenLDAP (the person schema requires it; displayName is
# optional). A second line for the same field is read only when the first gives
# nothing, which a preset showing two name sources does not make clear.
AD_MAPPINGS = [
    ("displayName", "user", "name", "trim", "always"),
    ("mail", "user", "email", "lower", "always"),
    ("title", "employee", "job_title", "trim", "always"),
    ("department", "employee", "department_id", "trim", "always"),
    ("telephoneNumber", "employee", "work_phone", "phone", "always"),
    ("mobile", "employee", "mobile_phone", "phone", "always"),
    ("mail", "employee", "work_email", "lower", "always"),
    ("manager", "employee", "parent_id", "first", "always"),
    ("mobile", "pbx", "mobile", "phone", "always"),
    ("title", "pbx", "position", "trim", "always"),
    ("department", "pbx", "department", "trim", "always"),
]
OPENLDAP_PRESET = {
    "directory_type": "openldap",
    "login_attribute": "uid",
    "root_filter": "(objectClass=inetOrgPerson)",
    "extension_policy": "range",
    "extension_attribute": False,
}
OPENLDAP_MAPPINGS = [
    ("cn", "user", "name", "trim", "always"),
    ("mail", "user", "email", "lower", "always"),
    ("title", "employee", "job_title", "trim", "always"),
    ("ou", "employee", "department_id", "trim", "always"),
    ("telephoneNumber", "employee", "work_phone", "phone", "always"),
    ("mobile", "employee", "mobile_phone", "phone", "always"),
    ("mail", "employee", "work_email", "lower", "always"),
    ("manager", "employee", "parent_id", "first", "always"),
    ("mobile", "pbx", "mobile", "phone", "always"),
    ("title", "pbx", "position", "trim", "always"),
    ("ou", "pbx", "department", "trim", "always"),
]


@table_constraints
class MangoLdapDirectory(models.Model):
    """An Active Directory / OpenLDAP source of staff, and how it flows into
    users, employees and Mango PBX users."""

    _name = "mango.ldap.directory"
    _description = "Staff directory (LDAP / Active Directory)"
    _order = "sequence, id"

    # -- connection -------------------------------------------------------
    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        ondelete="cascade",
    )
    directory_type = fields.Selection(
        [
            ("active_directory", "Active Directory / Samba AD"),
            ("openldap", "OpenLDAP / other"),
        ],
        required=True,
        default="active_directory",
    )
    server_ids = fields.One2many(
        "mango.ldap.server", "directory_id", string="Servers", copy=True
    )
    transport = fields.Selection(
        [
            ("ldaps", "LDAPS (TLS from the first byte)"),
            ("starttls", "StartTLS"),
            ("plain", "Plain LDAP (unencrypted)"),
        ],
        required=True,
        default="ldaps",
    )
    ca_certificate = fields.Text(
        string="CA certificate (PEM)",
        groups="base.group_system",
        help="The certificate authority that signed the directory servers' certificates. "
        "Leave empty to trust the system's certificate store.",
    )
    verify_certificate = fields.Boolean(
        string="Check server certificate",
        default=True,
        help="Refuse servers whose certificate is not signed by the CA or does not match "
        "the host name. Turn off only for a lab.",
    )
    timeout = fields.Integer(string="Timeout (s)", default=15)
    page_size = fields.Integer(
        default=500,
        help="Entries per page of the paged search (Active Directory serves at most 1000).",
    )
    bind_dn = fields.Char(
        string="Bind DN",
        groups="base.group_system",
        help="Service account used to read the directory, as a DN or user@domain.",
    )
    bind_password = fields.Char(groups="base.group_system", copy=False, prefetch=False)
    bind_password_input = fields.Char(
        string="Bind password",
        compute="_compute_bind_password_input",
        inverse="_inverse_bind_password_input",
        groups="base.group_system",
        help="Stored for the sync only; never shown again once saved.",
    )
    has_bind_password = fields.Boolean(compute="_compute_has_bind_password")
    # -- what to read -----------------------------------------------------
    base_dn_ids = fields.One2many(
        "mango.ldap.base.dn", "directory_id", string="Search bases", copy=True
    )
    user_filter = fields.Char(
        help="Narrows who is synced among the people of the directory, e.g. "
        "(memberOf=CN=Staff,OU=Groups,DC=corp,DC=example). Empty: everybody.",
    )
    root_filter = fields.Char(
        string="Directory root filter",
        help="What a person is in this directory; every search also satisfies it. "
        "Empty: the preset's, (&(objectCategory=person)(objectClass=user)) for Active "
        "Directory, (objectClass=inetOrgPerson) for OpenLDAP.",
    )
    anchor_attribute = fields.Char(
        string="Unique id attribute",
        compute="_compute_anchor_attribute",
        help="Immutable identifier: objectGUID for Active Directory, entryUUID for OpenLDAP.",
    )
    login_attribute = fields.Char(
        required=True,
        default="sAMAccountName",
        help="Attribute that becomes the Odoo login (sAMAccountName, userPrincipalName, uid).",
    )
    link_existing = fields.Selection(
        [
            ("none", "Never: report a clash"),
            ("login", "Adopt an Odoo user with the same login"),
            ("email", "Adopt an Odoo user with the same e-mail"),
        ],
        string="Existing Odoo users",
        required=True,
        default="none",
        help="What to do when a directory person matches an Odoo user the sync did not create. "
        "Adopted users are linked and kept in sync from then on.",
    )
    mapping_ids = fields.One2many(
        "mango.ldap.mapping", "directory_id", string="Field mapping", copy=True
    )
    role_mapping_ids = fields.One2many(
        "mango.ldap.role.mapping", "directory_id", string="Role mapping", copy=True
    )
    default_group_ids = fields.Many2many(
        "res.groups",
        "mango_ldap_directory_default_group_rel",
        "directory_id",
        "group_id",
        string="Default groups",
        help="Groups every synced user gets on creation.",
        default=lambda self: self.env.ref("base.group_user", raise_if_not_found=False),
    )
    create_employees = fields.Boolean(default=True)
    # -- PBX --------------------------------------------------------------
    account_id = fields.Many2one(
        "mango.account", string="Mango account", ondelete="restrict"
    )
    create_pbx_users = fields.Boolean(
        string="Create PBX users",
        default=True,
        help="Create a Mango PBX user with an extension and a SIP account for every synced user.",
    )
    pbx_group_dns = fields.Text(
        string="PBX users only for members of",
        help="Directory groups, one DN per line (nested membership counts): only their "
        "members get a PBX user; everybody synced still gets an Odoo user. A person "
        "who leaves these groups loses the PBX user as on departure. Empty: everybody.",
    )
    pbx_role_option_id = fields.Many2one(
        "mango.ldap.pbx.option",
        string="Default access role",
        domain="[('account_id', '=', account_id), ('kind', '=', 'role')]",
        ondelete="restrict",
    )
    sip_domain_option_id = fields.Many2one(
        "mango.ldap.pbx.option",
        string="SIP domain",
        domain="[('account_id', '=', account_id), ('kind', '=', 'domain')]",
        ondelete="restrict",
    )
    create_sip_accounts = fields.Boolean(string="Create SIP accounts", default=True)
    extension_policy = fields.Selection(
        [
            ("attribute", "From a directory attribute"),
            ("attribute_or_range", "From the attribute, else the next free number"),
            ("range", "Next free number in a range"),
            ("none", "No extensions"),
        ],
        required=True,
        default="attribute_or_range",
    )
    extension_attribute = fields.Char(default="ipPhone")
    extension_range_from = fields.Integer(default=100)
    extension_range_to = fields.Integer(default=999)
    departed_pbx_action = fields.Selection(
        [("disable", "Disable the PBX user"), ("delete", "Delete the PBX user")],
        string="Departed users on the PBX",
        required=True,
        default="disable",
    )
    extension_grace_days = fields.Integer(
        string="Extension grace period (days)",
        default=30,
        help="A departed user's extension is not given to anyone else for this many days.",
    )
    # -- safety -----------------------------------------------------------
    max_removals = fields.Integer(
        string="Max removals per run",
        default=25,
        help="More departures than this in one run wait for a confirmation.",
    )
    max_removals_percent = fields.Float(
        string="Max removals (%)",
        default=10.0,
        help="Departures above this share of linked users wait for a confirmation.",
    )
    protected_user_ids = fields.Many2many(
        "res.users",
        "mango_ldap_directory_protected_user_rel",
        "directory_id",
        "user_id",
        string="Protected users",
        help="Never archived, disabled or changed by the sync.",
    )
    scope_changed = fields.Boolean(
        readonly=True,
        help="Filters, bases or servers changed: the next full run holds all removals.",
    )
    # -- schedule ---------------------------------------------------------
    # Off until an admin has seen a preview: a new directory with a wrong filter
    # must not start creating users and PBX accounts on its own.
    auto_sync = fields.Boolean(
        string="Synchronise automatically",
        help="Run the change and nightly syncs on schedule. Turn on once a "
        "preview shows the plan you expect.",
    )
    delta_interval = fields.Integer(string="Sync changes every (minutes)", default=15)
    full_sync_hour = fields.Integer(
        string="Full sync at (hour, server time)", default=2
    )
    delta_cron_id = fields.Many2one(
        "ir.cron", readonly=True, ondelete="set null", copy=False
    )
    full_cron_id = fields.Many2one(
        "ir.cron", readonly=True, ondelete="set null", copy=False
    )
    watermark = fields.Char(
        readonly=True, copy=False, help="Change marker of the last good run."
    )
    last_full_sync = fields.Datetime(readonly=True, copy=False)
    scope_fingerprint = fields.Char(
        readonly=True,
        copy=False,
        help="Scope of the last complete full run (bases and filters).",
    )
    last_sync = fields.Datetime(readonly=True, copy=False)
    # -- sign-in ----------------------------------------------------------
    signin_enabled = fields.Boolean(
        string="Sign in with directory password",
        help="Synced users log in to Odoo with their directory password, over the same "
        "secured connection.",
    )
    ldap_config_id = fields.Many2one(
        "res.company.ldap", string="Sign-in configuration", readonly=True, copy=False
    )
    # -- stats --------------------------------------------------------------
    link_ids = fields.One2many("mango.ldap.link", "directory_id")
    link_count = fields.Integer(compute="_compute_counts")
    run_ids = fields.One2many("mango.ldap.sync.run", "directory_id")
    run_count = fields.Integer(compute="_compute_counts")
    last_run_id = fields.Many2one("mango.ldap.sync.run", compute="_compute_counts")
    last_run_state = fields.Selection(
        lambda self: self.env["mango.ldap.sync.run"]._fields["state"].selection,
        string="Last run",
        compute="_compute_counts",
    )
    # -- connection test ----------------------------------------------------
    connection_state = fields.Selection(
        [("unknown", "Not checked"), ("ok", "Connected"), ("failed", "Failed")],
        string="Connection",
        default="unknown",
        readonly=True,
        copy=False,
    )
    connection_checked_at = fields.Datetime(
        string="Last checked", readonly=True, copy=False
    )
    connection_outcome = fields.Text(
        string="Connection test outcome",
        readonly=True,
        copy=False,
        help="What the last connection test found (JSON, see connection_check.py).",
    )
    connection_message = fields.Text(
        string="Last check", compute="_compute_connection_message"
    )

    _sql_constraints = [
        (
            "range_ok",
            "CHECK(extension_range_from <= extension_range_to)",
            "The extension range must start before it ends.",
        ),
        (
            "thresholds_ok",
            "CHECK(max_removals >= 0 AND max_removals_percent >= 0)",
            "Removal limits cannot be negative.",
        ),
        (
            "delta_ok",
            "CHECK(delta_interval >= 0)",
            "The change interval cannot be negative.",
        ),
        (
            "hour_ok",
            "CHECK(full_sync_hour >= 0 AND full_sync_hour < 24)",
            "The full sync hour must be between 0 and 23.",
        ),
    ]

    # ------------------------------------------------------------ computes
    def _compute_bind_password_input(self):
        # Never send the stored password to the browser.
        for directory in self:
            directory.bind_password_input = False

    def _inverse_bind_password_input(self):
        for directory in self:
            if directory.bind_password_input:
                directory.sudo().bind_password = directory.bind_password_input

    def _compute_has_bind_password(self):
        for directory in self:
            directory.has_bind_password = bool(directory.sudo().bind_password)

    @api.depends("connection_outcome")
    @api.depends_context("lang")
    def _compute_connection_message(self):
        for directory in self:
            try:
                outcome = json.loads(directory.connection_outcome or "null")
            except ValueError:
                outcome = None
            directory.connection_message = describe_connection(self.env, outcome)

    @api.depends("directory_type")
    def _compute_anchor_attribute(self):
        for directory in self:
            kind = (
                "ad" if directory.directory_type == "active_directory" else "openldap"
            )
            directory.anchor_attribute = PRESETS[kind].anchor_attribute

    def _compute_counts(self):
        Link = self.env["mango.ldap.link"]
        Run = self.env["mango.ldap.sync.run"]
        links = dict(
            Link._read_group(
                [("directory_id", "in", self.ids)], ["directory_id"], ["__count"]
            )
        )
        # Runs are ordered newest first: the last run is the highest id.
        runs = {
            directory: (count, last_id)
            for directory, count, last_id in Run._read_group(
                [("directory_id", "in", self.ids)],
                ["directory_id"],
                ["__count", "id:max"],
            )
        }
        for directory in self:
            count, last_id = runs.get(directory, (0, False))
            last_run = Run.browse(last_id)
            directory.link_count = links.get(directory, 0)
            directory.run_count = count
            directory.last_run_id = last_run
            directory.last_run_state = last_run.state

    # ----------------------------------------------------------- constraints
    @api.constrains("transport", "verify_certificate", "server_ids")
    def _check_servers(self):
        for directory in self:
            for server in directory.server_ids:
                if not server.host or any(c in server.host for c in " /"):
                    raise ValidationError(
                        self.env._("%s is not a valid host name.", server.host or "")
                    )

    @api.constrains("user_filter", "root_filter")
    def _check_filters(self):
        from ldap3.core.exceptions import LDAPInvalidFilterError
        from ldap3.operation.search import parse_filter

        for directory in self:
            for flt in (directory.user_filter, directory.root_filter):
                if not flt:
                    continue
                text = flt.strip()
                if not text.startswith("("):
                    text = f"({text})"
                try:
                    parse_filter(text, None, True, None, None, False)
                except (LDAPInvalidFilterError, ValueError, IndexError) as exc:
                    raise ValidationError(
                        self.env._(
                            "Invalid LDAP filter %(filter)s: %(error)s",
                            filter=flt,
                            error=exc,
                        )
                    ) from exc

    @api.constrains("pbx_group_dns")
    def _check_pbx_group_dns(self):
        from ldap3.core.exceptions import LDAPInvalidDnError
        from ldap3.utils.dn import parse_dn

        for directory in self:
            for dn in directory._mango_pbx_group_dns():
                try:
                    parse_dn(dn)
                except (LDAPInvalidDnError, ValueError) as exc:
                    raise ValidationError(
                        self.env._("%s is not a valid group DN.", dn)
                    ) from exc

    def _mango_with_scope_baseline(self):
        """The directories whose scope a later change is measured against: one
        a complete full run recorded, or people already linked."""
        linked = set(
            self.env["mango.ldap.link"]
            .sudo()
            .search([("directory_id", "in", self.ids)])
            .directory_id.ids
        )
        return self.filtered(lambda d: d.scope_fingerprint or d.id in linked)

    def _mango_scope_signature(self):
        """Everything in SCOPE_FIELDS, normalised: saving the same filter again,
        or a form that sends unchanged lines, changes nothing."""
        self.ensure_one()
        d = self.sudo()

        def text(value):
            return " ".join((value or "").split())

        kind = "ad" if d.directory_type == "active_directory" else "openldap"
        return (
            d.directory_type,
            # empty means the preset's root filter
            text(d.root_filter or PRESETS[kind].root_filter),
            text(d.user_filter),
            text(d.bind_dn).lower(),
            tuple(sorted((text(b.dn).lower(), b.scope) for b in d.base_dn_ids)),
            tuple(sorted((text(s.host).lower(), s.port or 0) for s in d.server_ids)),
        )

    def _mango_pbx_group_dns(self):
        """The DNs of "PBX users only for members of", one per line."""
        self.ensure_one()
        return tuple(
            line.strip()
            for line in (self.pbx_group_dns or "").splitlines()
            if line.strip()
        )

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        directories = super().create(vals_list)
        directories._mango_sync_crons()
        directories._mango_sync_signin_config()
        return directories

    def write(self, vals):
        # A scope changes only against the one of an earlier sync: a directory
        # nobody was synced from yet has none (its presets and first filters are
        # its setup, not a change that could strand anyone).
        watch_scope = self.browse()
        if SCOPE_FIELDS & set(vals) and "scope_changed" not in vals:
            watch_scope = self._mango_with_scope_baseline()
        scopes = {d.id: d._mango_scope_signature() for d in watch_scope}
        if CONNECTION_FIELDS & set(vals) and "connection_state" not in vals:
            vals = dict(vals, connection_state="unknown")
        result = super().write(vals)
        changed = watch_scope.filtered(
            lambda d: d._mango_scope_signature() != scopes[d.id]
        )
        if changed:
            super(MangoLdapDirectory, changed).write({"scope_changed": True})
        if {"delta_interval", "full_sync_hour", "active", "auto_sync", "name"} & set(
            vals
        ):
            self._mango_sync_crons()
        self._mango_sync_signin_config()
        return result

    def unlink(self):
        crons = self.delta_cron_id | self.full_cron_id
        configs = self.ldap_config_id
        result = super().unlink()
        crons.sudo().unlink()
        configs.sudo().unlink()
        return result

    # --------------------------------------------------------------- presets
    def _mango_apply_preset(self, preset, mappings):
        self.ensure_one()
        Fields = self.env["ir.model.fields"]
        lines = [Command.clear()]
        for seq, (attribute, target, field_name, transform, rule) in enumerate(
            mappings, 1
        ):
            vals = {
                "sequence": seq * 10,
                "attribute": attribute,
                "target": target,
                "transform": transform,
                "rule": rule,
            }
            if target == "pbx":
                vals["pbx_field"] = field_name
            else:
                model = "res.users" if target == "user" else "hr.employee"
                field = Fields._get(model, field_name)
                if not field:
                    continue
                vals["field_id"] = field.id
            lines.append(Command.create(vals))
        self.write(dict(preset, mapping_ids=lines))
        return True

    def action_preset_active_directory(self):
        return self._mango_apply_preset(AD_PRESET, AD_MAPPINGS)

    def action_preset_openldap(self):
        return self._mango_apply_preset(OPENLDAP_PRESET, OPENLDAP_MAPPINGS)

    # ------------------------------------------------------------- schedule
    def _mango_sync_crons(self):
        """Keep one delta and one nightly full ir.cron per directory."""
        Cron = self.env["ir.cron"].sudo()
        model = self.env["ir.model"]._get("mango.ldap.directory")
        for directory in self:
            active = directory.active and directory.auto_sync
            delta_vals = {
                "name": self.env._("Directory sync (changes): %s", directory.name),
                "model_id": model.id,
                "state": "code",
                "code": f"model.browse({directory.id})._mango_cron_sync('delta')",
                "interval_number": max(directory.delta_interval, 1),
                "interval_type": "minutes",
                "active": active and directory.delta_interval > 0,
                "user_id": self.env.ref("base.user_root").id,
            }
            now = fields.Datetime.now()
            nextcall = now.replace(hour=directory.full_sync_hour, minute=0, second=0)
            if nextcall <= now:
                nextcall = fields.Datetime.add(nextcall, days=1)
            full_vals = {
                "name": self.env._("Directory sync (full): %s", directory.name),
                "model_id": model.id,
                "state": "code",
                "code": f"model.browse({directory.id})._mango_cron_sync('full')",
                "interval_number": 1,
                "interval_type": "days",
                "active": active,
                "user_id": self.env.ref("base.user_root").id,
            }
            if directory.delta_cron_id:
                directory.delta_cron_id.sudo().write(delta_vals)
            else:
                directory.delta_cron_id = Cron.create(delta_vals)
            if directory.full_cron_id:
                if directory.full_cron_id.nextcall.hour != directory.full_sync_hour:
                    full_vals["nextcall"] = nextcall
                directory.full_cron_id.sudo().write(full_vals)
            else:
                directory.full_cron_id = Cron.create(dict(full_vals, nextcall=nextcall))

    def _mango_cron_sync(self, mode):
        for directory in self.filtered("active"):
            directory._mango_run(mode=mode, dry_run=False, trigger="cron", commit=True)

    @api.model
    def _cron_process_queue(self):
        """Runs an administrator asked for from the form (applies can be long)."""
        runs = self.env["mango.ldap.sync.run"].search(
            [("state", "=", "queued")], order="id"
        )
        for run in runs:
            DirectorySync.queued(run, commit=True).execute()

    # -------------------------------------------------------------- sign-in
    def _mango_sync_signin_config(self):
        """Mirror the directory into auth_ldap's res.company.ldap, so Odoo's own
        login path does the directory bind (see res_company_ldap.py)."""
        Config = self.env["res.company.ldap"].sudo()
        for directory in self:
            wanted = (
                directory.active and directory.signin_enabled and directory.server_ids
            )
            if not wanted:
                if directory.ldap_config_id:
                    config = directory.ldap_config_id
                    super(MangoLdapDirectory, directory).write(
                        {"ldap_config_id": False}
                    )
                    config.unlink()
                continue
            first = directory.server_ids[:1]
            login_attr = directory.login_attribute or "uid"
            kind = (
                "ad" if directory.directory_type == "active_directory" else "openldap"
            )
            root = directory.root_filter or PRESETS[kind].root_filter
            parts = [root, directory.user_filter or ""]
            base_filter = "".join(
                p if p.startswith("(") else f"({p})" for p in parts if p
            )
            vals = {
                "company": directory.company_id.id,
                "sequence": directory.sequence,
                "ldap_server": first.host,
                "ldap_server_port": first.effective_port,
                "ldap_tls": directory.transport == "starttls",
                "ldap_base": directory.base_dn_ids[:1].dn or "",
                "ldap_filter": f"(&{base_filter}({login_attr}=%s))",
                "ldap_binddn": False,
                "ldap_password": False,
                "create_user": False,
                "mango_directory_id": directory.id,
            }
            if directory.ldap_config_id:
                directory.ldap_config_id.write(vals)
            else:
                config = Config.create(vals)
                super(MangoLdapDirectory, directory).write(
                    {"ldap_config_id": config.id}
                )
        return True

    # ---------------------------------------------------------------- actions

    def _mango_reader(self):
        return directory_reader(self)

    def action_test_connection(self):
        """Connect, bind and count the people the filters match, as the sync would,
        and answer as the telephony account's test does: a notification naming
        the exact problem, and the stored status shown on the form.

        :return: a ``display_notification`` client action that reloads the form
        """
        self.ensure_one()
        self.check_access("write")
        outcome = check_connection(self)
        if not is_incomplete(outcome):
            # Nothing was checked when a server or a base is missing: the last
            # real check stays as it was.
            self.write(
                {
                    "connection_state": "ok" if outcome["ok"] else "failed",
                    "connection_checked_at": fields.Datetime.now(),
                    "connection_outcome": json.dumps(outcome),
                }
            )
        kind = notification_type(outcome)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Connection test: %s", self.display_name),
                "message": describe_connection(self.env, outcome),
                "type": kind,
                "sticky": kind != "success",
                "className": "o_mango_ldap_notification",
                # Reload so the status and the last check shown are current.
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_fetch_pbx_options(self):
        """Read access roles and SIP domains from the PBX."""
        self.ensure_one()
        if not self.account_id:
            raise UserError(self.env._("Choose the Mango account first."))
        from mango_office.errors import MangoError

        client = self.account_id._mango_client()
        try:
            roles = client.roles()
            domains = client.domains()
        except MangoError as exc:
            raise UserError(self.env._("Mango refused the request: %s", exc)) from exc
        Option = self.env["mango.ldap.pbx.option"].sudo()
        existing = {
            (o.kind, o.value): o
            for o in Option.search([("account_id", "=", self.account_id.id)])
        }
        for role in roles:
            key = ("role", str(role.get("role_id")))
            vals = {"name": role.get("name") or key[1]}
            if key in existing:
                existing[key].write(vals)
            else:
                existing[key] = Option.create(
                    dict(vals, account_id=self.account_id.id, kind="role", value=key[1])
                )
        for domain in domains:
            key = ("domain", str(domain))
            if key not in existing:
                existing[key] = Option.create(
                    {
                        "account_id": self.account_id.id,
                        "kind": "domain",
                        "value": key[1],
                        "name": key[1],
                    }
                )
        if not self.sip_domain_option_id and domains:
            self.sip_domain_option_id = existing[("domain", str(domains[0]))]
        if not self.pbx_role_option_id:
            no_access = existing.get(("role", "3"))
            if no_access:
                self.pbx_role_option_id = no_access
        return True

    def action_preview(self):
        self.ensure_one()
        run = self._mango_run(mode="full", dry_run=True, trigger="manual", commit=False)
        return run._mango_open()

    def _mango_enqueue(self, mode):
        self.ensure_one()
        run = self.env["mango.ldap.sync.run"].create(
            {
                "directory_id": self.id,
                "mode": mode,
                "dry_run": False,
                "trigger": "manual",
            }
        )
        self.env.ref("mango_ldap.ir_cron_mango_ldap_queue").sudo()._trigger()
        return run

    def action_sync_full(self):
        self.ensure_one()
        return self._mango_enqueue("full")._mango_open()

    def action_sync_delta(self):
        self.ensure_one()
        return self._mango_enqueue("delta")._mango_open()

    def action_view_links(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Linked entries"),
            "res_model": "mango.ldap.link",
            "view_mode": "list,form",
            "domain": [("directory_id", "=", self.id)],
            "context": {"default_directory_id": self.id},
        }

    def action_view_runs(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Sync runs"),
            "res_model": "mango.ldap.sync.run",
            "view_mode": "list,form",
            "domain": [("directory_id", "=", self.id)],
        }

    # ---------------------------------------------------------------- engine
    def _mango_run(
        self,
        mode="full",
        dry_run=False,
        trigger="manual",
        commit=False,
        run=None,
        approved=None,
    ):
        """Read, plan and (unless ``dry_run``) apply. Returns the run record.

        :param commit: commit after each batch; only the cron passes True, so a
            test or an interactive call stays in one transaction.
        """
        self.ensure_one()
        return DirectorySync(
            self,
            mode=mode,
            dry_run=dry_run,
            trigger=trigger,
            commit=commit,
            run=run,
            approved=approved,
        ).execute()

    def _mango_confirm_held(self, run):
        """Approve the removals ``run`` held: a new full run with them approved, so
        each one is checked again against the directory as it is now."""
        self.ensure_one()
        held = run.line_ids.filtered(
            lambda line: line.status == "held" and line.action == "archive"
        )
        anchors = sorted(set(held.mapped("anchor")))
        new_run = self.env["mango.ldap.sync.run"].create(
            {
                "directory_id": self.id,
                "mode": "full",
                "trigger": "confirm",
                "approved_anchors": json.dumps(anchors),
            }
        )
        held.write(
            {
                "status": "done",
                "message": self.env._(
                    "Confirmed by %(user)s; applied in run %(run)s.",
                    user=self.env.user.name,
                    run=new_run.id,
                ),
            }
        )
        run.write({"state": "done", "held_count": 0})
        self.env.ref("mango_ldap.ir_cron_mango_ldap_queue").sudo()._trigger()
        return new_run
