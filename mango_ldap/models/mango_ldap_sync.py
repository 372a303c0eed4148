"""The directory sync engine: Odoo side of mango_office.directory.

Reading and planning are pure and live in the core (``DirectoryReader``,
``build_plan``); this module turns a directory record into the core's
settings, the linked records into the core's ``LinkedRecord`` values, and
applies a ``Plan`` to users, employees, groups and the PBX.
"""

import ctypes
import ctypes.util
import json
import logging
import time
from datetime import timedelta

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tools import SQL

from mango_office import directory as core
from mango_office.errors import MangoError, MangoResultError

from .avatar_mixin import SKIP_STORED_AVATAR
from .bulk_subscriptions import SUBSCRIBE_BY_QUERY
from .extension_conflicts import ConflictWording

_logger = logging.getLogger(__name__)

# pg advisory lock namespace ("mldp"), second key = directory id.
LOCK_NAMESPACE = 0x6D6C6470 & 0x7FFFFFFF
BATCH_SIZE = 250
# Mango result codes meaning "the tariff has no room": recorded, retried next run.
CAPACITY_CODES = {5221, 5228}
# Mango access role "no access" (reference §4.4): a disabled member keeps its
# extension reserved but can neither log in nor use the PBX.
NO_ACCESS_ROLE = "3"

# Held removals an administrator may confirm; other holds are reported only.
CONFIRMABLE_REASONS = {"threshold", "filter_changed"}
# Holds that need someone to fix data (shown as errors, the run ends "with errors").
ERROR_REASONS = {
    "login_conflict",
    "extension_exhausted",
    "email_ambiguous",
    "pbx_match_ambiguous",
    "no_login",
    "pbx_user_missing",
}
# Holds the sync settled by a documented rule and reports on every run until the
# directory is corrected (shown as warnings, the run ends "with warnings"): the
# directory asks for an extension someone else holds or is given.
WARNING_REASONS = {"extension_conflict"}
HELD_ACTIONS = {
    "extension": "extension",
    "archive": "archive",
    "create": "create",
    "update": "update",
    "pbx": "pbx_create",
    "revoke": "roles",
    "reactivate": "reactivate",
    "link": "link",
}

TRUE_WORDS = {"1", "true", "yes", "y", "on", "t"}

# hr.employee fields stored on the work contact (hr.employee.base inverse).
WORK_CONTACT_FIELDS = (("work_email", "email"), ("mobile_phone", "mobile"))

# Creating people in bulk: no invitation mail, no chatter log or follower per
# record, no stored copy of the generated initials avatar (see avatar_mixin.py),
# channel subscriptions without loading the whole staff (see bulk_subscriptions.py).
CREATE_CONTEXT = {
    "no_reset_password": True,
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
    "mail_notrack": True,
    SKIP_STORED_AVATAR: True,
    SUBSCRIBE_BY_QUERY: True,
}


def _malloc_trim_function():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        return None


_MALLOC_TRIM = _malloc_trim_function()


def release_free_memory():
    """Hand the C heap's free pages back to the system.

    Each page leaves a few long-lived values (registries, caches) above the memory
    its batch freed, and glibc only returns the top of its heap by itself: without
    this the process keeps every page's high-water mark, and its size grows with
    the directory although what it holds does not."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def canonical_anchor(attribute, raw):
    """The link key of a raw directory value (python-ldap gives bytes), as the
    core reader computes it: AD objectGUID bytes_le, or entryUUID text."""
    if isinstance(raw, bytes) and not (
        attribute.lower() == "objectguid" and len(raw) == 16
    ):
        raw = raw.decode("utf-8", "replace")
    return core.normalize_guid(raw)


def reader_config(directory):
    """``DirectoryConfig`` for a mango.ldap.directory record."""
    d = directory.sudo()
    servers = [
        core.DirectoryServer(server.host, server.effective_port, security=d.transport)
        for server in d.server_ids
    ]
    attributes = {m.attribute for m in d.mapping_ids}
    for name in (d.login_attribute, d.extension_attribute):
        if name:
            attributes.add(name)
    return core.DirectoryConfig(
        servers=servers,
        bind_dn=d.bind_dn or "",
        bind_password=d.bind_password or "",
        kind="ad" if d.directory_type == "active_directory" else "openldap",
        bases=tuple(core.SearchBase(b.dn, scope=b.scope) for b in d.base_dn_ids),
        user_filter=d.user_filter or "",
        root_filter=d.root_filter or None,
        attributes=tuple(sorted(attributes)),
        # a page of entries lives until it is applied: only what the plan maps
        keep_attributes=tuple(sorted(attributes)),
        group_dns=tuple(
            dict.fromkeys(
                d.role_mapping_ids.mapped("group_dn") + list(d._mango_pbx_group_dns())
            )
        ),
        ca_pem=d.ca_certificate or None,
        verify_certificate=d.verify_certificate,
        timeout=d.timeout or 15,
        page_size=min(max(d.page_size or 500, 1), 5000),
    )


def directory_reader(directory):
    if not directory.server_ids:
        raise UserError(directory.env._("Add at least one directory server."))
    if not directory.base_dn_ids:
        raise UserError(directory.env._("Add at least one search base DN."))
    return core.DirectoryReader(reader_config(directory))


class DirectorySync:
    """One run of one directory. Use :meth:`execute` or :meth:`apply_held`."""

    def __init__(
        self,
        directory,
        mode="full",
        dry_run=False,
        trigger="manual",
        commit=False,
        run=None,
        approved=None,
    ):
        self.directory = directory.sudo()
        self.env = self.directory.env
        self.mode = mode
        self.dry_run = dry_run
        self.trigger = trigger
        self.commit = commit
        self.run = run.sudo() if run else None
        self._ = self.env._
        self.links = {}
        self.pbx_client = None
        self.reserved_extensions = {}
        # Mango's refusal for lack of room (tariff's employee limit): later PBX
        # users of the run would be refused alike, so they wait for the next run
        self.pbx_full = None
        self.line_vals = []
        self.approved = approved
        self.notify_user = run.create_uid if run else self.env.user

    # ------------------------------------------------------------------ util
    def _extensions_kept_in_odoo(self):
        """Whether users' extensions can be written in Odoo: a user's extension is
        a row of the extension list of their company's Mango account, so without
        an account only the directory link remembers it."""
        if not hasattr(self, "_has_mango_account"):
            self._has_mango_account = bool(
                self.env["mango.account"]._mango_account_for_company(
                    self.directory.company_id
                )
            )
        return self._has_mango_account

    def _commit(self):
        """Commit a finished batch; only the cron asks for it (tests and
        interactive calls stay in their one transaction)."""
        if self.commit:
            self.env.cr.commit()  # pylint: disable=invalid-commit

    def _end_batch(self):
        """Write the batch's run lines, commit, and forget the batch's records:
        the ORM cache of 10,000 people would otherwise grow with the directory."""
        self._flush_lines()
        self._commit()
        self.env.invalidate_all()

    def _lock(self):
        self.env.cr.execute(
            SQL(
                "SELECT pg_try_advisory_lock(%s, %s)", LOCK_NAMESPACE, self.directory.id
            )
        )
        return self.env.cr.fetchone()[0]

    def _unlock(self):
        self.env.cr.execute(
            SQL("SELECT pg_advisory_unlock(%s, %s)", LOCK_NAMESPACE, self.directory.id)
        )

    def _notify(self, final=False):
        run = self.run
        # To every administrator who may be watching, not only whoever clicked:
        # scheduled runs have nobody clicking (web listener: static/src/sync_progress).
        run._mango_send_progress(final=final, requester=self.notify_user)
        if final and self.commit:
            self.env["ir.cron"]._notify_progress(done=run.progress_done, remaining=0)

    def _progress(self, done, total=None):
        vals = {"progress_done": done}
        if total is not None:
            vals["progress_total"] = total
        self.run.write(vals)
        self._notify()

    def _line(
        self,
        action,
        status,
        anchor=None,
        message=None,
        changes=None,
        entry_name=None,
        dn=None,
        details=None,
    ):
        link = self.links.get(anchor) if anchor else None
        vals = {
            "run_id": self.run.id,
            "action": action,
            "status": status,
            "anchor": anchor,
            "entry_name": entry_name or (link.name if link else None),
            "dn": dn or (link.dn if link else None),
            "link_id": link.id if link else False,
            "message": message,
        }
        if changes:
            vals["changes"] = json.dumps(
                changes, ensure_ascii=False, default=str, sort_keys=True
            )
        if details:
            vals["details"] = json.dumps(
                details, ensure_ascii=False, default=str, sort_keys=True
            )
        self.line_vals.append(vals)

    def _flush_lines(self):
        if self.line_vals:
            self.env["mango.ldap.sync.run.line"].create(self.line_vals)
            self.line_vals = []

    # ------------------------------------------------------------- settings
    def _group_token(self, group):
        # one lookup per group and run: a 10,000-person re-sync asks per grant
        cache = self.__dict__.setdefault("_token_cache", {})
        if group.id not in cache:
            cache[group.id] = (
                group.get_external_id().get(group.id) or f"res.groups:{group.id}"
            )
        return cache[group.id]

    def _group_from_token(self, token):
        cache = self.__dict__.setdefault("_group_cache", {})
        if token not in cache:
            if token.startswith("res.groups:"):
                group = (
                    self.env["res.groups"].browse(int(token.split(":", 1)[1])).exists()
                )
            else:
                group = self.env.ref(token, raise_if_not_found=False)
            cache[token] = group.id if group else None
        group_id = cache[token]
        return self.env["res.groups"].browse(group_id or [])

    def settings(self):
        d = self.directory
        mappings = [
            core.FieldMapping(
                d.login_attribute,
                "user.login",
                transforms=("first", "trim", "lower"),
                rule="always",
            )
        ]
        for mapping in d.mapping_ids:
            if mapping.target == "pbx" and mapping.pbx_field == "extension":
                target = "extension"
            else:
                target = mapping._mango_target
            mappings.append(
                core.FieldMapping(
                    mapping.attribute,
                    target,
                    transforms=mapping.TRANSFORM_CHAINS[mapping.transform],
                    rule=mapping.rule,
                )
            )
        if (
            d.extension_policy in ("attribute", "attribute_or_range")
            and d.extension_attribute
        ):
            if not any(m.target == "extension" for m in mappings):
                mappings.append(
                    core.FieldMapping(
                        d.extension_attribute,
                        "extension",
                        transforms=("first", "digits"),
                        rule="always",
                    )
                )
        role_mappings = []
        for line in d.role_mapping_ids:
            role_mappings.append(
                core.RoleMapping(
                    line.group_dn,
                    groups=tuple(self._group_token(g) for g in line.group_ids),
                    mango_role=line.pbx_role_option_id.value or None,
                )
            )
        pbx_enabled = bool(d.account_id and d.create_pbx_users)
        return core.SyncSettings(
            field_mappings=tuple(mappings),
            role_mappings=tuple(role_mappings),
            extension=core.ExtensionPolicy(
                source=d.extension_policy,
                range_start=d.extension_range_from,
                range_end=d.extension_range_to,
            ),
            deletion=core.DeletionPolicy(
                max_count=d.max_removals if d.max_removals else None,
                max_percent=d.max_removals_percent if d.max_removals_percent else None,
                require_confirmation=True,
            ),
            pbx=core.PbxPolicy(
                enabled=pbx_enabled,
                sip=d.create_sip_accounts,
                sip_domain=d.sip_domain_option_id.value or None,
                default_access_role=d.pbx_role_option_id.value or None,
                on_departure="delete" if d.departed_pbx_action == "delete" else "keep",
                require_groups=d._mango_pbx_group_dns(),
            ),
            protected_user_ids=frozenset(d.protected_user_ids.ids),
            link_existing=d.link_existing,
            create_employees=d.create_employees,
        )

    # ------------------------------------------------------------ state read
    def _mapped_fields(self, model):
        return [
            m.field_id
            for m in self.directory.mapping_ids
            if m.field_id and m.field_id.model == model
        ]

    def linked_records(self, pbx_by_id, anchors=None):
        """``LinkedRecord`` for the links of these anchors (all links when None), with
        the current value of each mapped target; they become ``self.links``."""
        d = self.directory
        domain = [("directory_id", "=", d.id)]
        if anchors is not None:
            domain.append(("anchor", "in", list(anchors)))
        links = self.env["mango.ldap.link"].search(domain)
        # one read for 10,000 links instead of a dozen attribute reads per link
        link_rows = links.read(
            [
                "anchor",
                "user_id",
                "employee_id",
                "state",
                "dn",
                "extension",
                "pbx_user_id",
                "pbx_state",
                "pbx_role",
                "sip_login",
            ],
            load=None,
        )
        self.links = {
            row["anchor"]: link for link, row in zip(links, link_rows, strict=True)
        }
        user_fields = self._mapped_fields("res.users")
        employee_fields = self._mapped_fields("hr.employee")
        users = (
            self.env["res.users"]
            .browse({row["user_id"] for row in link_rows if row["user_id"]})
            .with_context(active_test=False)
        )
        employees = (
            self.env["hr.employee"]
            .browse({row["employee_id"] for row in link_rows if row["employee_id"]})
            .with_context(active_test=False)
        )
        user_data = (
            {
                row["id"]: row
                for row in users.read(
                    [f.name for f in user_fields] + ["login", "active"], load=None
                )
            }
            if users
            else {}
        )
        employee_data = (
            {
                row["id"]: row
                for row in employees.read(
                    ["name"] + [f.name for f in employee_fields if f.name != "name"],
                    load=None,
                )
            }
            if employees
            else {}
        )
        dn_by_employee = {
            row["employee_id"]: row["dn"] for row in link_rows if row["employee_id"]
        }
        dn_by_user = {row["user_id"]: row["dn"] for row in link_rows if row["user_id"]}
        m2o_names = self._m2o_names(
            user_fields, user_data, employee_fields, employee_data
        )
        mapped_groups = d.role_mapping_ids.group_ids
        roles_by_user = {}
        if mapped_groups and users:
            # Tokens first: they query ir.model.data and would replace the result set.
            tokens = {g.id: self._group_token(g) for g in mapped_groups}
            self.env.flush_all()
            self.env.cr.execute(
                SQL(
                    "SELECT uid, gid FROM res_groups_users_rel WHERE uid IN %s AND gid IN %s",
                    tuple(users.ids),
                    tuple(mapped_groups.ids),
                )
            )
            for uid, gid in self.env.cr.fetchall():
                roles_by_user.setdefault(uid, set()).add(tokens[gid])
        grants = {}
        Groups = self.env["res.groups"]
        for row in self.env["mango.ldap.grant"].search_read(
            [("link_id", "in", links.ids)], ["link_id", "group_id"], load=None
        ):
            grants.setdefault(row["link_id"], set()).add(
                self._group_token(Groups.browse(row["group_id"]))
            )
        records = []
        for link in link_rows:
            values = {}
            user_row = user_data.get(link["user_id"], {})
            for field in user_fields:
                values[f"user.{field.name}"] = self._current(
                    field,
                    user_row.get(field.name),
                    m2o_names,
                    dn_by_employee,
                    dn_by_user,
                )
            if "login" in user_row:
                values["user.login"] = user_row["login"]
            employee_row = employee_data.get(link["employee_id"], {})
            if employee_row:
                # The planner derives employee.name from user.name when it is not mapped.
                values["employee.name"] = employee_row.get("name") or None
            for field in employee_fields:
                values[f"employee.{field.name}"] = self._current(
                    field,
                    employee_row.get(field.name),
                    m2o_names,
                    dn_by_employee,
                    dn_by_user,
                )
            values["extension"] = link["extension"] or None
            pbx_user = (
                pbx_by_id.get(str(link["pbx_user_id"])) if link["pbx_user_id"] else None
            )
            if pbx_user is not None:
                values["pbx.extension"] = pbx_user.extension
            if link["pbx_role"]:
                values["pbx.access_role_id"] = link["pbx_role"]
            records.append(
                core.LinkedRecord(
                    anchor=link["anchor"],
                    user_id=link["user_id"] or None,
                    employee_id=link["employee_id"] or None,
                    active=link["state"] == "active"
                    and bool(user_row.get("active", True)),
                    archived_by_sync=link["state"] in ("departed", "disabled"),
                    values=values,
                    roles=frozenset(roles_by_user.get(link["user_id"], ())),
                    sync_roles=frozenset(grants.get(link["id"], ())),
                    pbx_user_id=(link["pbx_user_id"] or None)
                    if link["pbx_state"] != "deleted"
                    else None,
                    sip_logins=(link["sip_login"],) if link["sip_login"] else (),
                    dn=link["dn"],
                )
            )
        return records

    def _link_cursor_rows(self, query):
        """Rows of a query over the directory's links, fetched a slice at a time."""
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(query)
        while True:
            rows = cr.fetchmany(2000)
            if not rows:
                return
            yield from rows

    def registry_records(self, pbx_by_id):
        """Every link as a ``LinkedRecord`` carrying only what the planner's
        registries need (login, extensions, PBX user, SIP login): the logins and
        numbers taken by people on pages not read yet. Generated one at a time; the
        planner keeps the registries, not the records."""
        rows = self._link_cursor_rows(
            SQL(
                """SELECT l.anchor, l.user_id, l.extension, l.pbx_user_id,
                          l.pbx_state, l.sip_login, u.login
                     FROM mango_ldap_link l
                LEFT JOIN res_users u ON u.id = l.user_id
                    WHERE l.directory_id = %s""",
                self.directory.id,
            )
        )
        for (
            anchor,
            user_id,
            extension,
            pbx_user_id,
            pbx_state,
            sip_login,
            login,
        ) in rows:
            live = pbx_by_id.get(str(pbx_user_id)) if pbx_user_id else None
            yield core.LinkedRecord(
                anchor=anchor,
                user_id=user_id or None,
                values={
                    "extension": extension or None,
                    "pbx.extension": live.extension if live is not None else None,
                    "user.login": login,
                },
                pbx_user_id=pbx_user_id if pbx_state != "deleted" else None,
                sip_logins=(sip_login,) if sip_login else (),
            )

    def active_links(self, seen):
        """(number of active links, ``LinkedRecord`` of the active links whose anchor
        is not in ``seen``): what the departure check needs, nothing more."""
        rows = self._link_cursor_rows(
            SQL(
                """SELECT l.anchor, l.user_id, l.employee_id, l.pbx_user_id,
                          l.pbx_state, l.dn
                     FROM mango_ldap_link l
                LEFT JOIN res_users u ON u.id = l.user_id
                    WHERE l.directory_id = %s AND l.state = 'active'
                      AND (u.id IS NULL OR u.active)""",
                self.directory.id,
            )
        )
        count, absent = 0, []
        for anchor, user_id, employee_id, pbx_user_id, pbx_state, dn in rows:
            count += 1
            if anchor in seen:
                continue
            absent.append(
                core.LinkedRecord(
                    anchor=anchor,
                    user_id=user_id or None,
                    employee_id=employee_id or None,
                    pbx_user_id=pbx_user_id if pbx_state != "deleted" else None,
                    dn=dn,
                )
            )
        return count, absent

    def _load_links(self, anchors):
        """``self.links`` for these anchors only (the page or the departures)."""
        links = self.env["mango.ldap.link"].search(
            [("directory_id", "=", self.directory.id), ("anchor", "in", list(anchors))]
        )
        self.links = {link.anchor: link for link in links}

    def _m2o_names(self, user_fields, user_data, employee_fields, employee_data):
        """display names of the many2one values, one read per comodel."""
        wanted = {}
        for fields_, data in (
            (user_fields, user_data),
            (employee_fields, employee_data),
        ):
            for field in fields_:
                if field.ttype != "many2one" or field.relation in (
                    "hr.employee",
                    "res.users",
                ):
                    continue
                ids = {row.get(field.name) for row in data.values()} - {None, False}
                wanted.setdefault(field.relation, set()).update(ids)
        names = {}
        for model, ids in wanted.items():
            for record in self.env[model].sudo().browse(list(ids)).exists():
                names[(model, record.id)] = record.display_name
        return names

    @staticmethod
    def _current(field, value, m2o_names, dn_by_employee, dn_by_user):
        if value in (False, None, ""):
            return None
        if field.ttype == "many2one":
            if field.relation == "hr.employee":
                return dn_by_employee.get(value)
            if field.relation == "res.users":
                return dn_by_user.get(value)
            return m2o_names.get((field.relation, value))
        if field.ttype == "boolean":
            return "true" if value else None
        return str(value)

    def unlinked_users(self):
        """Odoo users this directory does not own: login/e-mail/extension clashes, adoption."""
        has_extension = "mango_extension" in self.env["res.users"]._fields
        cols = ["id", "login", "email", "active"] + (
            ["mango_extension"] if has_extension else []
        )
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "SELECT user_id FROM mango_ldap_link"
                " WHERE directory_id = %s AND user_id IS NOT NULL",
                self.directory.id,
            )
        )
        linked_ids = {user_id for (user_id,) in self.env.cr.fetchall()}
        rows = (
            self.env["res.users"]
            .with_context(active_test=False)
            .search_read([("share", "=", False)], cols, load=None)
        )
        employees = {}
        if self.directory.link_existing != "none":
            for row in (
                self.env["hr.employee"]
                .with_context(active_test=False)
                .search_read(
                    [
                        ("user_id", "!=", False),
                        ("company_id", "=", self.directory.company_id.id),
                    ],
                    ["user_id"],
                    load=None,
                )
            ):
                employees.setdefault(row["user_id"], row["id"])
        result = []
        for row in rows:
            if row["id"] in linked_ids:
                continue
            result.append(
                core.OdooUser(
                    row["id"],
                    row["login"],
                    email=row["email"] or None,
                    extension=(row.get("mango_extension") or None),
                    active=row["active"],
                    employee_id=employees.get(row["id"]),
                )
            )
        return result

    def pbx_users(self):
        d = self.directory
        if not (d.account_id and d.create_pbx_users):
            return []
        self.pbx_client = d.account_id._mango_client()
        items = self.pbx_client.users(
            ext_fields=(
                "general.user_id",
                "general.sips",
                "general.access_role_id",
                "general.mobile",
            )
        )
        # Mobiles stay as Mango spells them (7XXXXXXXXXX): the planner compares
        # numbers, not notations.
        return [core.PbxUser.from_mango(item) for item in items]

    def pbx_group_extensions(self):
        """{extension: label} of the PBX groups: numbers no person may be given."""
        if self.pbx_client is None:
            return {}
        return {
            str(group["extension"]): f"{group.get('name') or ''} ({group.get('id')})"
            for group in self.pbx_client.groups()
            if group.get("extension")
        }

    # --------------------------------------------------------------- execute
    def execute(self):
        d = self.directory
        if self.run is None:
            self.run = self.env["mango.ldap.sync.run"].create(
                {
                    "directory_id": d.id,
                    "mode": self.mode,
                    "dry_run": self.dry_run,
                    "trigger": self.trigger,
                }
            )
        if not self._lock():
            message = self._(
                "Another sync of this directory is running; try again when it ends."
            )
            if self.trigger == "cron" or self.commit:
                self.run.write({"state": "cancelled", "message": message})
                return self.run
            raise UserError(message)
        try:
            self.run.write(
                {
                    "state": "running",
                    "started_at": fields.Datetime.now(),
                    "message": False,
                }
            )
            self._commit()
            if self.commit:
                self._execute()
            else:
                # Without commits a failure must not poison the caller's transaction.
                with self.env.cr.savepoint():
                    self._execute()
        except Exception as exc:
            if self.commit:
                self.env.cr.rollback()
            self.env.invalidate_all()
            expected = isinstance(
                exc, (core.DirectoryError, MangoError, UserError, ValueError)
            )
            if expected:
                _logger.warning(
                    "Directory %s: sync run %s failed: %s", d.name, self.run.id, exc
                )
            else:
                _logger.exception(
                    "Directory %s: sync run %s failed", d.name, self.run.id
                )
            self.line_vals = []
            self.run.write(
                {
                    "state": "failed",
                    "finished_at": fields.Datetime.now(),
                    "message": self._("The run stopped: %s", exc),
                }
            )
            # Configuration and server problems end on the run record; a bug
            # surfaces to an interactive caller (and to the tests).
            if not (expected or self.commit or self.trigger == "cron"):
                self._commit()
                self._unlock()
                raise
        finally:
            if self.commit:
                self._commit()
        self._unlock()
        self._notify(final=True)
        return self.run

    def _scan(self, reader):
        """The read as a ``PagedScan``: nothing is read until it is iterated."""

        def on_page(pages, entries):
            self.run.write({"entries_seen": entries})
            self._notify()

        progress = self._on_page(on_page)
        if self.mode == "delta" and self.directory.watermark:
            try:
                watermark = core.Watermark.from_json(self.directory.watermark)
            except (ValueError, TypeError, KeyError):
                watermark = None
            if watermark is not None:
                return reader.paged_scan("delta", watermark, progress=progress)
        return reader.paged_scan("full", progress=progress)

    def _on_page(self, callback):
        """Hook for the per-page progress callback (tests wrap it to interrupt a read)."""
        return callback

    def _execute(self):
        """Read, plan and apply one LDAP page at a time, then decide departures.

        Memory does not grow with the directory: a page's entries, its plan and
        its records are dropped before the next page is read. What crosses pages
        is small: the planner's registries and the anchors seen (departures are
        only decided once the read is complete), counters, and the references to
        people (managers) resolved when everybody exists."""
        d = self.directory
        run = self.run
        start = time.monotonic()
        settings = self.settings()
        config = reader_config(d)
        if not self.dry_run:
            self._release_extensions()
        self._start_counts()
        with core.DirectoryReader(config) as reader:
            pbx_users = self.pbx_users()
            pbx_by_id = {str(u.user_id): u for u in pbx_users}
            self.reserved_extensions = self.pbx_group_extensions()
            fingerprint = config.scope_fingerprint()
            if self.approved is not None:
                # The administrator confirmed the removals of the new scope.
                filter_changed = False
            else:
                filter_changed = bool(d.scope_changed) or (
                    bool(d.scope_fingerprint) and d.scope_fingerprint != fingerprint
                )
            odoo_users = self.unlinked_users()
            claims = self._claims(reader, settings)
            scan = self._scan(reader)
            result = scan.result
            planner = None
            for page in scan:
                if planner is None:
                    # The reader settles the mode (a delta may escalate) and the
                    # missing groups before it hands out the first page.
                    run.write({"mode": result.mode})
                    planner = self._planner(
                        settings,
                        result,
                        pbx_by_id,
                        pbx_users,
                        odoo_users,
                        filter_changed,
                        claims,
                    )
                    claims = None
                dns = {entry.anchor: entry.dn for entry in page}
                linked = self.linked_records(pbx_by_id, anchors=list(dns))
                page_plan = planner.plan_page(
                    page, linked, missing_groups=result.missing_groups
                )
                # the entries are not needed to apply: let them go before the
                # ORM fills its cache with the page's records
                page = linked = None
                self._page_done(page_plan, dns)
                page_plan = dns = None
            if planner is None:
                planner = self._planner(
                    settings,
                    result,
                    pbx_by_id,
                    pbx_users,
                    odoo_users,
                    filter_changed,
                    claims,
                )
            run.write({"entries_seen": result.count, "mode": result.mode})
            active_count, absent = self.active_links(planner.seen)
            final = planner.finish(
                absent, complete=result.complete, active_linked=active_count
            )
            if final.needs_lookup and result.complete:
                confirmations = reader.confirm_departures(final.needs_lookup)
                final = planner.finish(
                    absent,
                    complete=result.complete,
                    active_linked=active_count,
                    confirmations=confirmations,
                )
        errors = [str(e) for e in (result.errors or ())]
        notes = self._read_notes(result, errors)
        if notes:
            run.message = notes
        self._final_done(final)
        if self.dry_run:
            run.write({"state": "preview", "finished_at": fields.Datetime.now()})
            return
        run.write(
            {"finished_at": fields.Datetime.now(), "state": self._end_state(result)}
        )
        if result.mode == "full" and result.complete and not errors:
            self._supersede_waiting()
        directory_vals = {"last_sync": fields.Datetime.now()}
        if result.complete and not errors:
            if result.watermark is not None:
                directory_vals["watermark"] = result.watermark.to_json()
            if result.mode == "full":
                directory_vals["last_full_sync"] = fields.Datetime.now()
                directory_vals["scope_fingerprint"] = fingerprint
                if not run.held_count:
                    directory_vals["scope_changed"] = False
        super(type(d), d).write(directory_vals)
        _logger.info(
            "Directory %s: %s run %s in %.1fs: %s entries, %s",
            d.name,
            result.mode,
            run.id,
            time.monotonic() - start,
            result.count,
            ", ".join(f"{k} {v}" for k, v in self.counts.items() if v),
        )

    @staticmethod
    def _claims(reader, settings):
        """Who asks for which extension, over the whole scope, when a directory
        attribute gives extensions: read before the first page, so that the read
        order never decides who gets a number several entries ask for."""
        if not settings.extension_from_directory:
            return None
        return core.collect_claims(
            settings, reader.claim_pages(*settings.claim_attributes())
        )

    def _end_state(self, result):
        """Removals to confirm, then errors, then warnings: the worst one names
        the run. Warnings (a conflict in the directory the sync settled by its
        documented rule) alone end "Done with warnings", never an error."""
        run = self.run
        if run.held_count:
            return "waiting"
        if run.error_count or result.errors or not result.complete:
            return "partial"
        if run.warning_count:
            return "warning"
        return "done"

    def _supersede_waiting(self):
        """Earlier runs still waiting for a removal confirmation are out of date:
        this complete full read decided every departure again (the removals still
        due are held, or applied, by this run)."""
        run = self.run
        older = self.env["mango.ldap.sync.run"].search(
            [
                ("directory_id", "=", self.directory.id),
                ("state", "=", "waiting"),
                ("id", "<", run.id),
            ]
        )
        if not older:
            return
        older.line_ids.filtered(lambda line: line.status == "held").write(
            {
                "status": "skipped",
                "message": self._(
                    "Superseded by run #%s, which read the directory again.", run.id
                ),
                # worded again when read, in the reader's language
                "details": json.dumps({"superseded_by": run.id}),
            }
        )
        older.write(
            {"state": "superseded", "superseded_by_id": run.id, "held_count": 0}
        )

    def _read_notes(self, result, errors):
        """What the administrator should know about the read itself."""
        notes = []
        if self.mode == "delta" and result.escalation:
            notes.append(
                self._(
                    "This changes-only run read the whole directory: %s",
                    self._escalation_reason(result),
                )
            )
        if result.missing_groups:
            notes.append(
                self._(
                    "These directory groups were not found, so no role or PBX user"
                    " changed because of them: %s",
                    ", ".join(result.missing_groups),
                )
            )
        if errors or not result.complete:
            notes.append(
                self._(
                    "The directory read was incomplete, so nobody was archived: %s",
                    "; ".join(errors) or self._("unknown reason"),
                )
            )
        return "\n".join(notes)

    def _escalation_reason(self, result):
        if result.escalation == "no_watermark":
            return self._("no earlier complete run to continue from")
        if result.escalation == "settings_changed":
            return self._("the directory settings changed since the last complete run")
        if result.escalation == "group_changed":
            return self._("the group %s changed", result.escalated_group)
        return result.escalated or self._("unknown reason")

    def _planner(
        self,
        settings,
        result,
        pbx_by_id,
        pbx_users,
        odoo_users,
        filter_changed,
        claims=None,
    ):
        return core.PagedPlanner(
            settings,
            mode=result.mode,
            linked=self.registry_records(pbx_by_id),
            pbx_users=pbx_users,
            odoo_users=odoo_users,
            filter_changed=filter_changed,
            approved_departures=tuple(self.approved or ()),
            missing_groups=result.missing_groups,
            reserved_extensions=self.reserved_extensions,
            claims=claims,
        )

    def _page_done(self, plan, dns):
        """Preview or apply one page's plan, then forget its records."""
        if self.dry_run:
            self._record_preview(plan)
        else:
            self._apply(plan, dns)
        self.links = {}
        self._end_batch()
        release_free_memory()

    def _final_done(self, plan):
        """Departures (and what they hold) once the read is over; then the
        references between people, now that everybody has a record."""
        anchors = {item.anchor for item in plan.archives}
        anchors.update(item.anchor for item in plan.held)
        anchors.update(op.anchor for op in plan.pbx)
        self._load_links(anchors)
        if self.dry_run:
            self._record_preview(plan)
        else:
            self._apply(plan, {})
            self._resolve_deferred()
        self.links = {}
        self._end_batch()

    def _release_extensions(self):
        """Extensions of people gone longer than the grace period become free again."""
        today = fields.Date.context_today(self.directory)
        expired = self.env["mango.ldap.link"].search(
            [
                ("directory_id", "=", self.directory.id),
                ("state", "in", ("departed", "disabled")),
                ("reserved_until", "<", today),
                ("extension", "!=", False),
            ]
        )
        for link in expired:
            self.line_vals.append(
                {
                    "run_id": self.run.id,
                    "action": "release",
                    "status": "done",
                    "anchor": link.anchor,
                    "entry_name": link.name,
                    "dn": link.dn,
                    "link_id": link.id,
                    "changes": json.dumps({"extension": [link.extension, None]}),
                }
            )
        expired.write({"extension": False, "reserved_until": False})

    # ----------------------------------------------------------------- holds
    def _classify_held(self, plan):
        """(confirmable, errors, warnings, infos) lists of Held items."""
        confirmable, errors, warnings, infos = [], [], [], []
        for item in plan.held:
            if item.action == "archive" and item.reason in CONFIRMABLE_REASONS:
                confirmable.append(item)
            elif item.reason in ERROR_REASONS:
                errors.append(item)
            elif item.reason in WARNING_REASONS:
                warnings.append(item)
            else:
                infos.append(item)
        return confirmable, errors, warnings, infos

    def _record_held(self, plan, preview=False):
        """Run lines of the plan's holds: (held, errors, warnings) counts."""
        confirmable, errors, warnings, infos = self._classify_held(plan)
        for item in confirmable:
            self._line("archive", "held", item.anchor, message=item.message)
        for item in errors:
            self._line(
                HELD_ACTIONS.get(item.action, "skip"),
                "error",
                item.anchor,
                message=item.message,
            )
        if warnings:
            words = ConflictWording(self.env, self.directory)
            for item in warnings:
                person = item.details.get("person") or {}
                self._line(
                    HELD_ACTIONS.get(item.action, "skip"),
                    "warning",
                    item.anchor,
                    message=words.message(item.details)
                    if item.details
                    else item.message,
                    entry_name=words.name_of(person) if person else None,
                    dn=person.get("dn") or None,
                    details=item.details or None,
                )
        for item in infos:
            self._line(
                HELD_ACTIONS.get(item.action, "skip"),
                "skipped",
                item.anchor,
                message=item.message,
            )
        return len(confirmable), len(errors), len(warnings)

    # --------------------------------------------------------------- preview
    def _record_preview(self, plan):
        for create in plan.creates:
            self._line(
                "create",
                "planned",
                create.anchor,
                entry_name=create.values.get("user.name") or create.login,
                dn=create.dn,
                changes={k: [None, v] for k, v in create.values.items()},
            )
        for adopted in plan.links:
            self._line(
                "link",
                "planned",
                adopted.anchor,
                dn=adopted.dn,
                message=self._("Matched by %s", adopted.matched_by),
                changes={c.target: [c.old, c.new] for c in adopted.changes},
            )
        for update in plan.updates:
            self._line(
                "update",
                "planned",
                update.anchor,
                changes={c.target: [c.old, c.new] for c in update.changes},
            )
        for reactivation in plan.reactivations:
            self._line("reactivate", "planned", reactivation.anchor)
        for change in plan.role_changes:
            self._line(
                "roles",
                "planned",
                change.anchor,
                changes=self._role_changes_display(change),
            )
        for archive in plan.archives:
            self._line("archive", "planned", archive.anchor, message=archive.reason)
        for op in plan.pbx:
            self._line(
                self._pbx_action(op),
                "planned",
                op.anchor,
                changes=self._pbx_payload_display(op),
            )
        self._disable_ops_preview(plan)
        held, errors, warnings = self._record_held(plan, preview=True)
        counts = self.counts
        counts["created"] += len(plan.creates) + len(plan.links)
        counts["updated"] += len(plan.updates)
        counts["archived"] += len(plan.archives)
        counts["held"] += held
        counts["pbx"] += len(plan.pbx)
        counts["errors"] += errors
        counts["warnings"] += warnings
        self._flush_lines()
        self._write_counts()

    def _role_changes_display(self, change):
        def names(tokens):
            return sorted(self._group_from_token(t).display_name or t for t in tokens)

        return {
            "grant": [None, names(change.grant)],
            "revoke": [names(change.revoke), None],
        }

    @staticmethod
    def _pbx_action(op):
        return {
            "link": "pbx_link",
            "member_create": "pbx_create",
            "member_update": "pbx_update",
            "member_delete": "pbx_delete",
            "sip_create": "sip_create",
        }.get(op.op, "pbx_update")

    @staticmethod
    def _pbx_payload_display(op):
        payload = {k: v for k, v in (op.payload or {}).items() if k != "password"}
        return {k: [None, v] for k, v in payload.items()}

    def _disable_ops_preview(self, plan):
        if self.directory.departed_pbx_action != "disable":
            return
        for archive in plan.archives:
            link = self.links.get(archive.anchor)
            if link and link.pbx_user_id and link.pbx_state == "active":
                self._line("pbx_disable", "planned", archive.anchor)

    # ----------------------------------------------------------------- apply
    def _start_counts(self):
        self.done = 0
        self.total = 0
        self.counts = {
            "created": 0,
            "updated": 0,
            "archived": 0,
            "held": 0,
            "pbx": 0,
            "errors": 0,
            "warnings": 0,
        }

    def _write_counts(self, **extra):
        counts = self.counts
        self.run.write(
            {
                "created_count": counts["created"],
                "updated_count": counts["updated"],
                "archived_count": counts["archived"],
                "held_count": counts["held"],
                "pbx_count": counts["pbx"],
                "error_count": counts["errors"],
                "warning_count": counts["warnings"],
                **extra,
            }
        )

    def _apply(self, plan, entry_dns):
        """Apply one page's plan (or the departures plan); progress counts grow
        page by page, since the size of the read is only known at its end."""
        self.total += (
            len(plan.creates)
            + len(plan.links)
            + len(plan.updates)
            + len(plan.reactivations)
            + len(plan.role_changes)
            + len(plan.archives)
            + len(plan.pbx)
        )
        self._progress(self.done, self.total)
        self._apply_creates(plan.creates)
        self._apply_links(plan.links)
        self._refresh_dns(entry_dns)
        self._apply_updates(plan.updates)
        self._apply_reactivations(plan.reactivations)
        self._apply_roles(plan.role_changes)
        self._apply_archives(plan.archives)
        self._apply_pbx(plan.pbx)
        held, errors, warnings = self._record_held(plan)
        self.counts["held"] += held
        self.counts["errors"] += errors
        self.counts["warnings"] += warnings
        self._flush_lines()
        self.done = self.total
        self._write_counts(progress_done=self.done)

    def _step(self, count=1):
        self.done += count
        if self.done % BATCH_SIZE < count or count >= BATCH_SIZE:
            self._progress(self.done)

    def _batches(self, items):
        for start in range(0, len(items), BATCH_SIZE):
            yield items[start : start + BATCH_SIZE]

    def _error(self, action, anchor, exc, dn=None, entry_name=None):
        self.counts["errors"] += 1
        message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self._line(
            action, "error", anchor, message=message, dn=dn, entry_name=entry_name
        )

    # values -> ORM ---------------------------------------------------------
    def _field_meta(self, model):
        return self.env[model]._fields

    def _convert(self, model, name, value, deferred, anchor):
        """ORM value for a planned directory value; None means 'skip this field'."""
        field = self._field_meta(model).get(name)
        if field is None:
            return None
        if value in (None, ""):
            return False
        if field.type in ("char", "text", "html"):
            return str(value)
        if field.type == "selection":
            keys = [k for k, _label in field._description_selection(self.env)]
            return value if value in keys else None
        if field.type == "integer":
            try:
                return int(str(value).strip())
            except ValueError:
                return None
        if field.type == "float":
            try:
                return float(str(value).replace(",", "."))
            except ValueError:
                return None
        if field.type == "boolean":
            return str(value).strip().lower() in TRUE_WORDS
        if field.type == "date":
            text = str(value)
            try:
                return fields.Date.to_date(
                    text[:10] if "-" in text else f"{text[:4]}-{text[4:6]}-{text[6:8]}"
                )
            except ValueError:
                return None
        if field.type == "many2one":
            if field.comodel_name in ("hr.employee", "res.users"):
                # the cached normalisation hands out one string per manager
                deferred.append((model, name, core.normalize_dn(str(value)), anchor))
                return None
            return self._find_or_create(field.comodel_name, str(value))
        return None

    def _find_or_create(self, comodel, name):
        cache = self.__dict__.setdefault("_m2o_cache", {})
        key = (comodel, name.lower())
        if key in cache:
            return cache[key]
        Model = self.env[comodel].sudo()
        domain = [
            (
                Model._rec_name or "name",
                "=ilike",
                name.replace("%", r"\%").replace("_", r"\_"),
            )
        ]
        if "company_id" in Model._fields:
            domain.append(("company_id", "in", [False, self.directory.company_id.id]))
        record = Model.search(domain, limit=1)
        if not record and comodel in ("hr.department", "hr.job"):
            vals = {"name": name}
            if "company_id" in Model._fields:
                vals["company_id"] = self.directory.company_id.id
            record = Model.create(vals)
        cache[key] = record.id or None
        return cache[key]

    def _split_values(self, values, deferred, anchor):
        user_vals, employee_vals, pbx_vals = {}, {}, {}
        for target, value in values.items():
            prefix, _sep, name = target.partition(".")
            if prefix == "user":
                if name == "login":
                    if value:
                        user_vals["login"] = value
                    continue
                converted = self._convert("res.users", name, value, deferred, anchor)
                if converted is not None:
                    user_vals[name] = converted
            elif prefix == "employee":
                converted = self._convert("hr.employee", name, value, deferred, anchor)
                if converted is not None:
                    employee_vals[name] = converted
            elif prefix == "pbx":
                pbx_vals[name] = value
        return user_vals, employee_vals, pbx_vals

    def _resolve_deferred(self):
        """Managers and other person references, once everybody has a record.

        Read from the link table, not from records kept in memory: the people
        referred to may have been created pages ago."""
        deferred = self.__dict__.pop("_deferred", [])
        if not deferred:
            return
        wanted = {dn for _model, _name, dn, _anchor in deferred}
        sources = {anchor for _model, _name, _dn, anchor in deferred}
        by_dn, by_anchor = {}, {}
        rows = self._link_cursor_rows(
            SQL(
                "SELECT anchor, dn, user_id, employee_id FROM mango_ldap_link"
                " WHERE directory_id = %s",
                self.directory.id,
            )
        )
        for anchor, dn, user_id, employee_id in rows:
            if anchor in sources:
                by_anchor[anchor] = (user_id, employee_id)
            if dn:
                key = core.normalize_dn.__wrapped__(dn)
                if key in wanted:
                    by_dn[key] = (user_id, employee_id)
        for index, (model, name, dn, anchor) in enumerate(deferred, 1):
            source = by_anchor.get(anchor)
            record_id = source and (source[1] if model == "hr.employee" else source[0])
            if not record_id:
                continue
            comodel = self._field_meta(model)[name].comodel_name
            target = by_dn.get(dn)
            ref_id = (
                (target[1] if comodel == "hr.employee" else target[0])
                if target
                else None
            )
            record = self.env[model].with_context(active_test=False).browse(record_id)
            try:
                with self.env.cr.savepoint():
                    record.write({name: ref_id or False})
            except Exception as exc:  # noqa: BLE001 - recorded on the run, never fatal
                self._error("update", anchor, exc)
            if index % BATCH_SIZE == 0:
                self._end_batch()

    # creates ---------------------------------------------------------------
    def _user_defaults(self):
        d = self.directory
        return {
            "company_id": d.company_id.id,
            "company_ids": [Command.set([d.company_id.id])],
        }

    def _apply_creates(self, creates):
        d = self.directory
        Users = self.env["res.users"].sudo().with_context(**CREATE_CONTEXT)
        Employees = self.env["hr.employee"].sudo().with_context(**CREATE_CONTEXT)
        Link = self.env["mango.ldap.link"].sudo()
        default_groups = d.default_group_ids
        deferred = self.__dict__.setdefault("_deferred", [])
        blank_targets = {
            m._mango_target
            for m in d.mapping_ids
            if m.target in ("user", "employee")
            and m.rule != "ignore"
            and m.field_id.name != "name"
            and not m.field_id.required
        }
        for batch in self._batches(list(creates)):
            prepared = []
            for create in batch:
                # Mapped fields the entry leaves empty start empty, instead of with
                # an Odoo default the next run would then clear.
                values = dict.fromkeys(blank_targets)
                values.update(create.values)
                user_vals, employee_vals, _pbx = self._split_values(
                    values, deferred, create.anchor
                )
                groups = default_groups | self.env["res.groups"].union(
                    *[self._group_from_token(t) for t in (create.roles or ())]
                )
                user_vals.setdefault("name", create.login)
                user_vals.update(
                    self._user_defaults(),
                    login=create.login,
                    groups_id=[Command.set(groups.ids)],
                )
                if create.extension and self._extensions_kept_in_odoo():
                    user_vals["mango_extension"] = create.extension
                if d.create_employees:
                    # The new employee's work contact is the user's partner, and
                    # hr writes work e-mail and mobile back to it one employee at a
                    # time; giving them to the partner with the user is the same end
                    # state in one batched insert (the employee's value wins, as
                    # with hr's own write).
                    for employee_field, partner_field in WORK_CONTACT_FIELDS:
                        if employee_field in employee_vals:
                            user_vals[partner_field] = employee_vals.pop(employee_field)
                prepared.append((create, user_vals, employee_vals))
            try:
                with self.env.cr.savepoint():
                    self._create_batch(prepared, Users, Employees, Link)
            except Exception:  # noqa: BLE001 - fall back to one by one to isolate the culprit
                for item in prepared:
                    try:
                        with self.env.cr.savepoint():
                            self._create_batch([item], Users, Employees, Link)
                    except Exception as exc:  # noqa: BLE001
                        create = item[0]
                        self._error(
                            "create",
                            create.anchor,
                            exc,
                            dn=create.dn,
                            entry_name=item[1].get("name"),
                        )
            self._step(len(batch))
            self._end_batch()

    def _create_batch(self, prepared, Users, Employees, Link):
        users = Users.create([user_vals for _c, user_vals, _e in prepared])
        if self.directory.create_employees:
            # hr.employee's create looks up each user's partner's employees one
            # person at a time, and work_contact_id has no index: one scan of
            # hr_employee per person makes an import quadratic. One read for the
            # batch fills the cache those lookups use.
            users.partner_id.fetch(["employee_ids"])
        employee_list = []
        for (_create, user_vals, employee_vals), user in zip(
            prepared, users, strict=True
        ):
            if self.directory.create_employees:
                vals = {
                    "name": user_vals.get("name"),
                    "company_id": self.directory.company_id.id,
                }
                vals.update(employee_vals)
                vals["user_id"] = user.id
                employee_list.append(vals)
        employees = Employees.create(employee_list) if employee_list else Employees
        link_vals = []
        grant_groups = []
        for index, ((create, user_vals, _e), user) in enumerate(
            zip(prepared, users, strict=True)
        ):
            employee = employees[index] if employee_list else Employees
            link_vals.append(
                {
                    "directory_id": self.directory.id,
                    "anchor": create.anchor,
                    "dn": create.dn,
                    "name": user_vals.get("name"),
                    "login": create.login,
                    "user_id": user.id,
                    "employee_id": employee.id or False,
                    "extension": create.extension or False,
                    "pbx_role": create.mango_role or False,
                    "last_seen": fields.Datetime.now(),
                }
            )
            grant_groups.append(create.roles or ())
        links = Link.create(link_vals)
        grants = []
        for link, tokens in zip(links, grant_groups, strict=True):
            self.links[link.anchor] = link
            for token in tokens:
                group = self._group_from_token(token)
                if group:
                    grants.append({"link_id": link.id, "group_id": group.id})
            self._line("create", "done", link.anchor)
        if grants:
            self.env["mango.ldap.grant"].sudo().create(grants)
        self.counts["created"] += len(links)

    # updates ---------------------------------------------------------------
    def _write_changes(self, link, changes, deferred):
        """Write planned FieldChanges to the link's user and employee."""
        values = {change.target: change.new for change in changes}
        user_vals, employee_vals, _pbx = self._split_values(
            values, deferred, link.anchor
        )
        link_vals = {"last_seen": fields.Datetime.now()}
        if "extension" in values:
            link_vals["extension"] = values["extension"] or False
            if self._extensions_kept_in_odoo():
                user_vals["mango_extension"] = values["extension"] or False
        if user_vals and link.user_id:
            link.user_id.with_context(active_test=False, mail_notrack=True).write(
                user_vals
            )
            if "name" in user_vals:
                link_vals["name"] = user_vals["name"]
            if "login" in user_vals:
                link_vals["login"] = user_vals["login"]
        if employee_vals and link.employee_id:
            link.employee_id.with_context(active_test=False, mail_notrack=True).write(
                employee_vals
            )
        link.write(link_vals)

    def _apply_updates(self, updates):
        deferred = self.__dict__.setdefault("_deferred", [])
        for batch in self._batches(list(updates)):
            for update in batch:
                link = self.links.get(update.anchor)
                if not link:
                    continue
                odoo_changes = [
                    c for c in update.changes if not c.target.startswith("pbx.")
                ]
                try:
                    with self.env.cr.savepoint():
                        self._write_changes(link, odoo_changes, deferred)
                    self.counts["updated"] += 1
                    self._line(
                        "update",
                        "done",
                        update.anchor,
                        changes={c.target: [c.old, c.new] for c in update.changes},
                    )
                except Exception as exc:  # noqa: BLE001 - recorded on the run, the rest goes on
                    self._error("update", update.anchor, exc)
            self._step(len(batch))
            self._end_batch()

    def _apply_links(self, adoptions):
        """Adopt Odoo users that existed before the sync (link_existing)."""
        Link = self.env["mango.ldap.link"].sudo()
        Employees = self.env["hr.employee"].sudo().with_context(**CREATE_CONTEXT)
        deferred = self.__dict__.setdefault("_deferred", [])
        for adopted in adoptions:
            try:
                with self.env.cr.savepoint():
                    user = self.env["res.users"].browse(adopted.user_id)
                    employee = self.env["hr.employee"].browse(adopted.employee_id or [])
                    if not employee and self.directory.create_employees:
                        employee = Employees.create(
                            {
                                "name": user.name,
                                "user_id": user.id,
                                "company_id": self.directory.company_id.id,
                            }
                        )
                    link = Link.create(
                        {
                            "directory_id": self.directory.id,
                            "anchor": adopted.anchor,
                            "dn": adopted.dn,
                            "name": user.name,
                            "login": user.login,
                            "user_id": user.id,
                            "employee_id": employee.id or False,
                            "extension": getattr(user, "mango_extension", False)
                            or False,
                        }
                    )
                    self.links[link.anchor] = link
                    self._write_changes(link, adopted.changes, deferred)
                self.counts["created"] += 1
                self._line(
                    "link",
                    "done",
                    adopted.anchor,
                    dn=adopted.dn,
                    message=self._("Matched by %s", adopted.matched_by),
                    changes={c.target: [c.old, c.new] for c in adopted.changes},
                )
            except Exception as exc:  # noqa: BLE001
                self._error("link", adopted.anchor, exc, dn=adopted.dn)
            self._step()
        self._flush_lines()
        self._commit()

    def _refresh_dns(self, entry_dns):
        """DNs follow renames and moves even when no mapped value changed."""
        for anchor, dn in entry_dns.items():
            link = self.links.get(anchor)
            if link and dn and link.dn != dn:
                link.dn = dn

    def _apply_reactivations(self, reactivations):
        for item in reactivations:
            link = self.links.get(item.anchor)
            if not link:
                continue
            try:
                with self.env.cr.savepoint():
                    if link.user_id:
                        link.user_id.with_context(active_test=False).write(
                            {"active": True}
                        )
                    if link.employee_id:
                        link.employee_id.with_context(active_test=False).write(
                            {"active": True}
                        )
                    link.write(
                        {
                            "state": "active",
                            "departed_at": False,
                            "reserved_until": False,
                        }
                    )
                self._line("reactivate", "done", item.anchor)
                self.counts["updated"] += 1
            except Exception as exc:  # noqa: BLE001
                self._error("reactivate", item.anchor, exc)
            self._step()
        self._flush_lines()
        self._commit()

    def _apply_roles(self, role_changes):
        Grant = self.env["mango.ldap.grant"].sudo()
        for change in role_changes:
            link = self.links.get(change.anchor)
            if not link or not link.user_id:
                continue
            try:
                with self.env.cr.savepoint():
                    grant = self.env["res.groups"].union(
                        *[self._group_from_token(t) for t in change.grant]
                    )
                    revoke = self.env["res.groups"].union(
                        *[self._group_from_token(t) for t in change.revoke]
                    )
                    commands = [Command.link(g.id) for g in grant]
                    commands += [Command.unlink(g.id) for g in revoke]
                    if commands:
                        link.user_id.with_context(
                            active_test=False, **{SUBSCRIBE_BY_QUERY: True}
                        ).write({"groups_id": commands})
                    wanted = self.env["res.groups"].union(
                        *[self._group_from_token(t) for t in change.sync_roles]
                    )
                    existing = link.grant_ids
                    existing.filtered(
                        lambda g, wanted=wanted: g.group_id not in wanted
                    ).unlink()
                    have = existing.exists().group_id
                    Grant.create(
                        [{"link_id": link.id, "group_id": g.id} for g in wanted - have]
                    )
                self._line(
                    "roles",
                    "done",
                    change.anchor,
                    changes=self._role_changes_display(change),
                )
            except Exception as exc:  # noqa: BLE001
                self._error("roles", change.anchor, exc)
            self._step()
        self._flush_lines()
        self._commit()

    # archives --------------------------------------------------------------
    def _apply_archives(self, archives):
        for archive in archives:
            self._archive_one(archive.anchor, archive.reason)
            self._step()
        self._flush_lines()
        self._commit()

    def _archive_one(self, anchor, reason):
        link = self.links.get(anchor)
        if not link:
            return
        d = self.directory
        if link.user_id and link.user_id in d.protected_user_ids:
            self._line(
                "archive",
                "skipped",
                anchor,
                message=self._("Protected user: left untouched."),
            )
            return
        try:
            with self.env.cr.savepoint():
                if link.user_id:
                    link.user_id.with_context(active_test=False).write(
                        {"active": False}
                    )
                if link.employee_id:
                    link.employee_id.with_context(active_test=False).write(
                        {"active": False}
                    )
                grace = timedelta(days=max(d.extension_grace_days, 0))
                link.write(
                    {
                        "state": "disabled"
                        if reason in ("disabled", "expired")
                        else "departed",
                        "departed_at": fields.Datetime.now(),
                        "reserved_until": fields.Date.context_today(d) + grace
                        if link.extension
                        else False,
                    }
                )
            self.counts["archived"] += 1
            self._line("archive", "done", anchor, message=reason)
        except Exception as exc:  # noqa: BLE001 - recorded on the run, the rest goes on
            self._error("archive", anchor, exc)
            return
        if (
            d.departed_pbx_action == "disable"
            and link.pbx_user_id
            and link.pbx_state == "active"
        ):
            self._pbx_disable(link)

    # PBX -------------------------------------------------------------------
    def _client(self):
        if self.pbx_client is None:
            self.pbx_client = self.directory.account_id._mango_client()
        return self.pbx_client

    def _apply_pbx(self, ops):
        if not ops:
            return
        results = {}
        failed_keys = set()
        for op in ops:
            link = self.links.get(op.anchor)
            if op.after and op.after in failed_keys:
                failed_keys.add(op.key)
                self._line(
                    self._pbx_action(op),
                    "skipped",
                    op.anchor,
                    message=self._("Skipped: the PBX user could not be created."),
                )
                continue
            if not link:
                continue
            if op.op == "member_create" and self.pbx_full is not None:
                failed_keys.add(op.key)
                self._pbx_not_sent(op, link)
                self._step()
                continue
            try:
                self._pbx_op(op, link, results)
                self.counts["pbx"] += 1
            except MangoError as exc:
                failed_keys.add(op.key)
                self._pbx_failed(op, link, exc)
            except ValueError as exc:
                failed_keys.add(op.key)
                self._pbx_failed(op, link, exc)
            self._step()
            # A PBX object exists from here on: make the link durable now so a
            # crash cannot lead to a duplicate on the next run.
            self._flush_lines()
            self._commit()

    def _pbx_failed(self, op, link, exc):
        code = getattr(exc, "code", None)
        if isinstance(exc, MangoResultError) and code in CAPACITY_CODES:
            message = self._(
                "Mango refused (%(code)s, %(meaning)s): retried on the next run.",
                code=code,
                meaning=getattr(exc, "meaning", "") or exc,
            )
            if op.op == "member_create":
                self.pbx_full = exc
        else:
            message = self._("Mango refused: %s", exc)
        self._pbx_error(op, link, message)

    def _pbx_not_sent(self, op, link):
        exc = self.pbx_full
        self._pbx_error(
            op,
            link,
            self._(
                "Not sent: Mango refused an earlier PBX user of this run (%(code)s,"
                " %(meaning)s); retried on the next run.",
                code=exc.code,
                meaning=getattr(exc, "meaning", "") or exc,
            ),
        )

    def _pbx_error(self, op, link, message):
        """The person's PBX side failed: the next run tries again."""
        link.write({"pbx_state": "error", "pbx_error": message[:250]})
        self._error(self._pbx_action(op), op.anchor, message)

    def _pbx_op(self, op, link, results):
        client = self._client()
        payload = dict(op.payload or {})
        user_id = (
            op.pbx_user_id
            or link.pbx_user_id
            or (results.get(op.after) if op.after else None)
        )
        if op.op == "link":
            link.write(
                {
                    "pbx_user_id": str(op.pbx_user_id),
                    "pbx_state": "active",
                    "pbx_error": False,
                    "extension": payload.get("extension") or link.extension,
                }
            )
            if payload.get("sip_login"):
                link.sip_login = payload["sip_login"]
            results[op.key] = str(op.pbx_user_id)
            self._line(
                "pbx_link", "done", op.anchor, changes=self._pbx_payload_display(op)
            )
        elif op.op == "member_create":
            new_id = client.member_create(**payload)
            link.write(
                {
                    "pbx_user_id": str(new_id),
                    "pbx_state": "active",
                    "pbx_error": False,
                    "extension": payload.get("extension") or link.extension,
                    "pbx_role": str(payload.get("access_role_id") or "") or False,
                }
            )
            results[op.key] = str(new_id)
            self._line(
                "pbx_create", "done", op.anchor, changes=self._pbx_payload_display(op)
            )
        elif op.op == "member_update":
            client.member_update(user_id, **payload)
            vals = {"pbx_state": "active", "pbx_error": False}
            if "access_role_id" in payload:
                vals["pbx_role"] = str(payload["access_role_id"])
            if "extension" in payload:
                vals["extension"] = payload["extension"]
            link.write(vals)
            results[op.key] = user_id
            self._line(
                "pbx_update", "done", op.anchor, changes=self._pbx_payload_display(op)
            )
        elif op.op == "member_delete":
            self._pbx_delete(link, user_id)
            results[op.key] = user_id
        elif op.op == "sip_create":
            login = payload["login"]
            password = payload["password"]
            sip_id = client.sip_create(
                user_id,
                login,
                password,
                payload["domain"],
                description=payload.get("description"),
            )
            link.write(
                {
                    "sip_id": str(sip_id),
                    "sip_login": login,
                    # a re-enabled person's PBX user is usable again with its new SIP account
                    "pbx_state": "active",
                    "pbx_error": False,
                }
            )
            self.env["mango.ldap.sip.secret"].sudo().create(
                {
                    "run_id": self.run.id,
                    "link_id": link.id,
                    "user_name": link.name,
                    "sip_login": f"{login}@{payload['domain']}",
                    "password": password,
                }
            )
            results[op.key] = user_id
            self._line(
                "sip_create",
                "done",
                op.anchor,
                changes={"login": [None, f"{login}@{payload['domain']}"]},
            )

    def _pbx_delete(self, link, user_id=None):
        user_id = user_id or link.pbx_user_id
        try:
            self._client().member_delete(user_id)
        except MangoResultError as exc:
            # 3300: already gone on the PBX, which is the wanted end state.
            if getattr(exc, "code", None) != 3300:
                raise
        link.write(
            {
                "pbx_state": "deleted",
                "pbx_user_id": False,
                "sip_id": False,
                "sip_login": False,
            }
        )
        self._line("pbx_delete", "done", link.anchor)

    def _pbx_disable(self, link):
        """No access role and no numbers: the PBX user keeps the extension but can
        neither sign in nor receive calls, and its SIP accounts are removed."""
        try:
            self._client().member_update(
                link.pbx_user_id, access_role_id=NO_ACCESS_ROLE, numbers=[]
            )
        except (MangoError, ValueError) as exc:
            self._error("pbx_disable", link.anchor, self._("Mango refused: %s", exc))
            return
        link.write({"pbx_state": "disabled", "sip_id": False, "sip_login": False})
        self.counts["pbx"] += 1
        self._line("pbx_disable", "done", link.anchor)
