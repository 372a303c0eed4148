"""One run of one directory: the sync's entry point.

Read, plan and apply (or preview) one LDAP page at a time, under a PostgreSQL
advisory lock per directory, committing each finished batch when the cron asks
for it, reporting progress to the administrators watching, and giving the
memory of each page back before the next. What a run reads, writes and reports
is in the other modules of this package; the order of it all is here.
"""

import ctypes
import ctypes.util
import json
import logging
import time
from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tools import SQL

from odoo.addons.mango_telephony.compat import cron

from mango_office import directory as core
from mango_office.errors import MangoError

from .apply_odoo import OdooApply
from .apply_pbx import PbxApply
from .config import SyncConfig, reader_config
from .existing import ExistingState
from .journal import RunJournal
from .preview import PlanPreview
from .registries import DatabaseRegistries

_logger = logging.getLogger(__name__)

# pg advisory lock namespace ("mldp"), second key = directory id.
LOCK_NAMESPACE = 0x6D6C6470 & 0x7FFFFFFF
BATCH_SIZE = 250
# A queued run that found its directory busy is tried again after this long.
QUEUED_RUN_RETRY = timedelta(minutes=1)


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


class DirectorySync(
    SyncConfig, ExistingState, RunJournal, PlanPreview, OdooApply, PbxApply
):
    """One run of one directory. Use :meth:`execute`; :meth:`queued` for a run
    an administrator asked for and the queue now starts."""

    batch_size = BATCH_SIZE

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
        # the planner's cross-page memory, rows of this run (made by _execute)
        self.registries = None

    @classmethod
    def queued(cls, run, commit=True):
        """The sync of a run an administrator asked for (``state`` queued): its
        mode, trigger and approved removals are stored on the run record.

        :param commit: commit after each batch, as the queue's cron does; False
            keeps the run in the caller's transaction.
        """
        approved = (
            set(json.loads(run.approved_anchors)) if run.approved_anchors else None
        )
        return cls(
            run.directory_id,
            mode=run.mode,
            dry_run=run.dry_run,
            trigger=run.trigger,
            commit=commit,
            run=run,
            approved=approved,
        )

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
            cron.report_progress(self.env, done=run.progress_done, remaining=0)

    def _progress(self, done, total=None):
        vals = {"progress_done": done}
        if total is not None:
            vals["progress_total"] = total
        self.run.write(vals)
        self._notify()

    def execute(self):
        d = self.directory
        # A run an administrator queued waits for its turn when another sync of
        # the directory runs (a scheduled one, perhaps in another Odoo instance)
        # instead of being cancelled: nobody would queue it again.
        waits_its_turn = self.run is not None and self.run.state == "queued"
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
            if waits_its_turn and self.commit:
                message = self._(
                    "Another sync of this directory is running; this run starts "
                    "when it ends."
                )
                self.run.write({"message": message})
                self.env.ref("mango_ldap.ir_cron_mango_ldap_queue").sudo()._trigger(
                    fields.Datetime.now() + QUEUED_RUN_RETRY
                )
                return self.run
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
            if self.registries is not None:
                self.registries.clear()
                self.registries.close()
                self.registries = None
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
        its records are dropped before the next page is read. The planner's
        registries and the anchors seen (departures are only decided once the read
        is complete) cross pages as rows of the run (``registries.py``); in memory
        stay counters, the linked accounts the directory disabled, and the
        references to people (managers) resolved when everybody exists."""
        d = self.directory
        run = self.run
        start = time.monotonic()
        settings = self.settings()
        config = reader_config(d)
        if not self.dry_run:
            self._release_extensions()
        self._start_counts()
        self.registries = DatabaseRegistries(self.env.cr, run.id)
        self.registries.clear()  # what runs that died left behind
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
                    self.registries.analyze()  # filled from every link
                elif result.pages % 25 == 0:
                    self.registries.analyze()  # a first import fills them page by page
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
            active_count, absent = self.active_links(planner.registries)
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
            registries=self.registries,
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
