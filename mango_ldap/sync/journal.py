"""The run's journal: its lines, its counters and how a held change reads.

Every outcome of a run — applied, planned, held, skipped, failed — becomes a
``mango.ldap.sync.run.line`` the administrator reads, and the run's counters
name its end state. Preview and apply write the same lines through here.
"""

import json

from ..models.extension_conflicts import ConflictWording

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


class RunJournal:
    """Run lines (buffered in ``self.line_vals``, written per batch) and counters.

    Part of :class:`~.run.DirectorySync`: uses ``self.run``, ``self.links``,
    ``self.directory`` and ``self.env``.
    """

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

    def _error(self, action, anchor, exc, dn=None, entry_name=None):
        self.counts["errors"] += 1
        message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self._line(
            action, "error", anchor, message=message, dn=dn, entry_name=entry_name
        )

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
