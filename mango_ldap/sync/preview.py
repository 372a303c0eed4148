"""Preview: a plan written as "planned" run lines, nothing applied.

A dry run reads and plans exactly as a real run does; only this last step
differs, so what the preview shows is what applying would do.
"""


class PlanPreview:
    """Part of :class:`~.run.DirectorySync`: writes through the journal."""

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

    def _disable_ops_preview(self, plan):
        if self.directory.departed_pbx_action != "disable":
            return
        for archive in plan.archives:
            link = self.links.get(archive.anchor)
            if link and link.pbx_user_id and link.pbx_state == "active":
                self._line("pbx_disable", "planned", archive.anchor)
