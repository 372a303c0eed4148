import json

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.mango_telephony.compat.groups import users_of

from ..sync.registries import create_table
from .extension_conflicts import ConflictWording

LINE_ACTIONS = [
    ("create", "Create"),
    ("link", "Link existing"),
    ("update", "Update"),
    ("roles", "Roles"),
    ("disable", "Disable"),
    ("reactivate", "Reactivate"),
    ("archive", "Archive (departed)"),
    ("pbx_create", "PBX: create user"),
    ("pbx_link", "PBX: link existing user"),
    ("pbx_update", "PBX: update user"),
    ("pbx_delete", "PBX: delete user"),
    ("pbx_disable", "PBX: disable user"),
    ("sip_create", "PBX: create SIP account"),
    ("release", "Release extension"),
    ("extension", "Extension conflict"),
    ("skip", "Skip"),
    ("error", "Error"),
]


# Bus notification type of a run's progress; the web client's listener is
# mango_ldap/static/src/sync_progress (keep the payload keys in step with it).
PROGRESS_NOTIFICATION = "mango_ldap/progress"


class MangoLdapSyncRun(models.Model):
    """One preview or application of the directory plan, with its outcome."""

    _name = "mango.ldap.sync.run"
    _description = "Directory sync run"
    _order = "id desc"

    def init(self):
        # the planner's cross-page registries of each run (sync/registries.py)
        create_table(self.env.cr)

    directory_id = fields.Many2one(
        "mango.ldap.directory", required=True, ondelete="cascade", index=True
    )
    name = fields.Char(compute="_compute_name")
    mode = fields.Selection(
        [("full", "Full"), ("delta", "Changes only")], required=True
    )
    dry_run = fields.Boolean(string="Preview only")
    trigger = fields.Selection(
        [("manual", "Manual"), ("cron", "Scheduled"), ("confirm", "Confirmation")],
        default="manual",
    )
    state = fields.Selection(
        [
            ("queued", "Queued"),
            ("running", "Running"),
            ("preview", "Preview ready"),
            ("waiting", "Waiting for confirmation"),
            ("done", "Done"),
            # a conflict in the directory the sync settled by its rule and reports
            # on every run until the directory is corrected (see the readme)
            ("warning", "Done with warnings"),
            ("partial", "Done with errors"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
            # a later complete full run decided the removals again
            ("superseded", "Superseded"),
        ],
        default="queued",
        required=True,
        index=True,
    )
    started_at = fields.Datetime()
    finished_at = fields.Datetime()
    duration = fields.Float(compute="_compute_duration")
    watermark = fields.Char(
        help="Change marker read before the run; stored on success only."
    )
    entries_seen = fields.Integer()
    progress_done = fields.Integer()
    progress_total = fields.Integer()
    progress = fields.Float(compute="_compute_progress")
    created_count = fields.Integer(string="Created")
    updated_count = fields.Integer(string="Updated")
    archived_count = fields.Integer(string="Archived")
    held_count = fields.Integer(string="Held removals")
    pbx_count = fields.Integer(string="PBX operations")
    error_count = fields.Integer(string="Errors")
    warning_count = fields.Integer(string="Warnings")
    superseded_by_id = fields.Many2one(
        "mango.ldap.sync.run",
        string="Superseded by",
        readonly=True,
        ondelete="set null",
        help="The later full run that read the directory again and decided these "
        "removals anew.",
    )
    message = fields.Text()
    line_ids = fields.One2many("mango.ldap.sync.run.line", "run_id")
    approved_anchors = fields.Text(
        help="JSON list of the held removals an administrator confirmed for this run."
    )
    secret_count = fields.Integer(compute="_compute_secret_count")

    @api.depends("directory_id", "mode", "create_date")
    def _compute_name(self):
        for run in self:
            run.name = self.env._(
                "%(directory)s — %(mode)s #%(id)s",
                # Telephony administrators read runs (a run's notification opens
                # it) but not directories: the name is all they learn of it, as
                # the web client shows many2one names to anyone.
                directory=run.directory_id.sudo().name,
                mode=dict(run._fields["mode"]._description_selection(self.env)).get(
                    run.mode
                ),
                id=run.id or "",
            )

    @api.depends("started_at", "finished_at")
    def _compute_duration(self):
        for run in self:
            if run.started_at and run.finished_at:
                run.duration = (run.finished_at - run.started_at).total_seconds()
            else:
                run.duration = 0.0

    @api.depends("progress_done", "progress_total")
    def _compute_progress(self):
        for run in self:
            run.progress = (
                100.0 * run.progress_done / run.progress_total
                if run.progress_total
                else 0.0
            )

    def _compute_secret_count(self):
        counts = dict(
            self.env["mango.ldap.sip.secret"]
            .sudo()
            ._read_group([("run_id", "in", self.ids)], ["run_id"], ["__count"])
        )
        for run in self:
            run.secret_count = counts.get(run, 0)

    def _mango_open(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "current",
        }

    # ------------------------------------------------------------ progress
    def _mango_progress_payload(self, final=False):
        """What an administrator's browser shows of the run while it goes."""
        self.ensure_one()
        return {
            "run_id": self.id,
            "directory_id": self.directory_id.id,
            "directory_name": self.directory_id.name,
            "state": self.state,
            "dry_run": self.dry_run,
            "done": self.progress_done,
            "total": self.progress_total,
            "entries_seen": self.entries_seen,
            "created": self.created_count,
            "updated": self.updated_count,
            "archived": self.archived_count,
            "held": self.held_count,
            "pbx": self.pbx_count,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "final": bool(final),
        }

    def _mango_progress_recipients(self, requester=None):
        """Whoever may watch the run: the administrator who asked for it and the
        telephony administrators of the directory's company. A scheduled run
        has nobody asking, yet an admin may have its record open."""
        self.ensure_one()
        company = self.directory_id.company_id
        group = self.env.ref("mango_telephony.group_mango_admin")
        users = users_of(group.sudo())
        if requester:
            users |= requester
        return users.filtered(
            lambda user: (
                user.active
                and not user.share
                and not user._is_superuser()
                and (not company or company in user.company_ids)
            )
        )

    def _mango_send_progress(self, final=False, requester=None):
        """Push the run's progress on the bus (delivered at the next commit)."""
        for run in self:
            payload = run._mango_progress_payload(final)
            for user in run._mango_progress_recipients(requester):
                user._bus_send(PROGRESS_NOTIFICATION, payload)

    def _mango_check_waiting(self):
        self.ensure_one()
        if self.state == "superseded":
            raise UserError(
                self.env._(
                    "Run #%s read the directory again after this one: confirm or "
                    "discard the removals it holds instead.",
                    self.superseded_by_id.id,
                )
            )
        if self.state != "waiting":
            raise UserError(self.env._("This run is not waiting for a confirmation."))

    def action_confirm_removals(self):
        """Apply the removals a threshold held back, as the administrator decided."""
        self._mango_check_waiting()
        return self.directory_id._mango_confirm_held(self)._mango_open()

    def action_discard_removals(self):
        self._mango_check_waiting()
        self.line_ids.filtered(lambda line: line.status == "held").write(
            {
                "status": "skipped",
                "message": self.env._("Discarded by an administrator."),
            }
        )
        self.state = "done"
        return True

    def action_apply_preview(self):
        """Apply the directory as previewed (re-read, so the result reflects now)."""
        self.ensure_one()
        if self.state != "preview":
            raise UserError(self.env._("Only a preview can be applied."))
        return self.directory_id.action_sync_full()

    def action_reveal_sip_passwords(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("New SIP passwords"),
            "res_model": "mango.ldap.sip.reveal",
            "view_mode": "form",
            "target": "new",
            "context": {"default_run_id": self.id},
        }


class MangoLdapSyncRunLine(models.Model):
    _name = "mango.ldap.sync.run.line"
    _description = "Directory sync run line"
    _order = "run_id, id"

    run_id = fields.Many2one(
        "mango.ldap.sync.run", required=True, ondelete="cascade", index=True
    )
    link_id = fields.Many2one("mango.ldap.link", ondelete="set null", index=True)
    anchor = fields.Char(string="GUID")
    dn = fields.Char(string="DN")
    entry_name = fields.Char(string="Entry")
    action = fields.Selection(LINE_ACTIONS, required=True)
    status = fields.Selection(
        [
            ("planned", "Planned"),
            ("done", "Done"),
            ("error", "Error"),
            ("held", "Held for confirmation"),
            ("warning", "Warning"),
            ("skipped", "Skipped"),
        ],
        default="planned",
        required=True,
        index=True,
    )
    changes = fields.Text(
        string="Changes (JSON)",
        help="JSON: target → [old, new], with the technical names the field "
        "mapping uses (user.login, employee.department_id, pbx.position).",
    )
    changes_display = fields.Text(string="Changes", compute="_compute_changes_display")
    message = fields.Text(
        string="Message as written", help="As written by the run, in its language."
    )
    details = fields.Text(
        help="JSON facts the message is worded from when read: an extension "
        "conflict (see models/extension_conflicts.py) or the run that superseded "
        "this one."
    )
    summary = fields.Text(string="Message", compute="_compute_summary")

    @api.depends("message", "details")
    @api.depends_context("lang")
    def _compute_summary(self):
        """The message in the reader's language: runs are mostly written by the
        scheduler, in its own."""
        wordings = {}
        for line in self:
            try:
                data = json.loads(line.details) if line.details else None
            except ValueError:
                data = None
            if not isinstance(data, dict):
                line.summary = line.message
            elif "superseded_by" in data:
                line.summary = self.env._(
                    "Superseded by run #%s, which read the directory again.",
                    data["superseded_by"],
                )
            else:
                directory = line.run_id.directory_id
                wording = wordings.setdefault(
                    directory.id, ConflictWording(self.env, directory)
                )
                try:
                    line.summary = wording.message(data)
                except (ValueError, TypeError, KeyError):
                    line.summary = line.message

    @api.depends("changes", "action")
    @api.depends_context("lang")
    def _compute_changes_display(self):
        labels = _ChangeLabels(self.env)
        for line in self:
            if not line.changes:
                line.changes_display = False
                continue
            try:
                data = json.loads(line.changes)
            except ValueError:
                line.changes_display = line.changes
                continue
            if not isinstance(data, dict):
                line.changes_display = line.changes
                continue
            # PBX lines carry Mango's payload, whose keys have no "pbx." prefix.
            on_pbx = line.action in PBX_ACTIONS
            creating = line.action in CREATING_ACTIONS
            rows = []
            for key, value in data.items():
                target = f"pbx.{key}" if on_pbx and "." not in key else key
                rank, label = labels.label(target)
                if target == "pbx.access_role_id":
                    value = labels.roles(line.run_id.directory_id.account_id, value)
                if isinstance(value, list) and len(value) == 2:
                    old, new = value
                    if target in ("grant", "revoke"):
                        names = new if target == "grant" else old
                        if names:
                            rows.append((rank, label, f"{label}: {_short(names)}"))
                        continue
                    if creating and _empty(old):
                        text = f"{label}: {_short(new)}"
                    else:
                        text = f"{label}: {_short(old)} → {_short(new)}"
                else:
                    text = f"{label}: {_short(value)}"
                rows.append((rank, label, text))
            line.changes_display = "\n".join(row[2] for row in sorted(rows))


# Lines whose changes are Mango's payload; lines that create what they list.
PBX_ACTIONS = {
    "pbx_create",
    "pbx_link",
    "pbx_update",
    "pbx_delete",
    "pbx_disable",
    "sip_create",
}
CREATING_ACTIONS = {"create", "pbx_create", "sip_create"}


class _ChangeLabels:
    """Labels of the change targets in the reader's language: "Employee ›
    Department" for employee.department_id, as the field mapping names them."""

    TARGET_MODELS = {"user": "res.users", "employee": "hr.employee"}

    def __init__(self, env):
        self.env = env
        self._cache = {}
        self._roles = {}
        mapping = env["mango.ldap.mapping"]._fields
        self.targets = dict(mapping["target"]._description_selection(env))
        self.pbx_fields = dict(mapping["pbx_field"]._description_selection(env))

    def label(self, target):
        """``(rank, label)``: users first, then employees, then the PBX."""
        if target not in self._cache:
            self._cache[target] = self._label(target)
        return self._cache[target]

    def _label(self, target):
        _ = self.env._
        if target == "grant":
            return (3, _("Groups granted"))
        if target == "revoke":
            return (3, _("Groups revoked"))
        prefix, _dot, name = target.partition(".")
        if not name:
            prefix, name = "pbx", target  # "extension": the PBX user's number
        if prefix in self.TARGET_MODELS:
            field = self.env[self.TARGET_MODELS[prefix]]._fields.get(name)
            field_label = field._description_string(self.env) if field else name
            if name == "name":
                # One word for the person's name on all three sides ("Name",
                # "Employee Name" and the PBX's "Full name"; Odoo's Finnish leaves
                # "Employee Name" in English).
                field_label = self.pbx_fields["name"]
            rank = 0 if prefix == "user" else 1
            return (rank, f"{self.targets[prefix]} › {field_label}")
        if prefix == "pbx":
            pbx_labels = {
                "access_role_id": _("Access role"),
                "login": _("SIP login"),
                "domain": _("SIP domain"),
                "description": _("Description"),
                "numbers": _("Numbers"),
                **self.pbx_fields,
            }
            return (2, f"{self.targets['pbx']} › {pbx_labels.get(name, name)}")
        return (4, target)

    def roles(self, account, value):
        """Mango role ids as their names, where the PBX options were loaded."""
        if account not in self._roles:
            options = (
                self.env["mango.ldap.pbx.option"]
                .sudo()
                .search([("account_id", "=", account.id), ("kind", "=", "role")])
            )
            self._roles[account] = {o.value: o.name for o in options}
        names = self._roles[account]
        if isinstance(value, list):
            return [names.get(str(item), item) if item else item for item in value]
        return names.get(str(value), value) if value else value


def _empty(value):
    return value in (None, False, "") or value == []


def _short(value):
    if _empty(value):
        return "∅"
    text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 120 else text[:117] + "…"
