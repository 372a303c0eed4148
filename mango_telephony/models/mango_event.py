"""Raw webhook events from Mango and the worker that folds them into calls.

A webhook only stores the event (so nothing is lost if processing fails or the
worker dies); folding happens afterwards, in the cron worker, in batches claimed
with ``FOR UPDATE SKIP LOCKED`` so several workers never take the same event and
a worker that dies simply releases its claim with its transaction.
"""

import hashlib
import logging
from collections import defaultdict
from datetime import timedelta

from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.sql import create_index, drop_index, index_exists

from mango_office import calls as mango_calls
from mango_office import events as mango_events
from mango_office.retry import Backoff

from ..compat import cron
from ..compat.constraints import table_constraints
from .cron_wakeup import wake_cron_workers, wake_cron_workers_later

_logger = logging.getLogger(__name__)

# A failed event is retried with exponential backoff (1, 2, 4 … minutes, at most
# an hour) and then stays failed and visible to the administrator.
MAX_ATTEMPTS = 8
BACKOFF = Backoff(
    first=timedelta(minutes=1),
    factor=2,
    cap=timedelta(hours=1),
    max_attempts=MAX_ATTEMPTS,
)
BATCH_SIZE = 200
# The scheduled actions that fold the queue, one per worker folding at once:
# Odoo runs a job in one worker at a time, so N workers (of one instance or of
# several on the same database) fold in parallel only through N jobs. Each lane
# claims its own batches (SKIP LOCKED); the first is woken by the webhooks and
# wakes the others when the backlog is longer than one batch per lane awake.
PROCESSING_LANES = (
    "mango_telephony.ir_cron_mango_event_process",
    "mango_telephony.ir_cron_mango_event_process_lane_2",
    "mango_telephony.ir_cron_mango_event_process_lane_3",
    "mango_telephony.ir_cron_mango_event_process_lane_4",
)
# Two workers folding one call at once: the loser's write fails (the
# transaction's snapshot predates the winner's commit) and is retried shortly,
# once the winner's batch is committed.
RACE_DELAY = timedelta(seconds=2)
RACE_ERRORS = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
    pg_errors.UniqueViolation,
)


class CallBusy(Exception):
    """Another worker is folding this call right now."""


# Event classes that say something about a call identified by its entry_id.
CALL_EVENT_TYPES = (
    mango_events.CallEvent,
    mango_events.SummaryEvent,
    mango_events.RecordingEvent,
    mango_events.RecordAddedEvent,
)
# Classes kept for the record only: nothing in Odoo acts on them.
IGNORED_EVENT_TYPES = (mango_events.IgnoredEvent, mango_events.PingEvent)


def _advisory_key(account_id, entry_id):
    """A signed 64-bit key naming one call for pg_advisory_xact_lock."""
    digest = hashlib.blake2b(
        f"mango.call:{account_id}:{entry_id}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


@table_constraints
class MangoEvent(models.Model):
    _name = "mango.event"
    _inherit = ["mango.retry.mixin"]
    _description = "Mango webhook event"
    _order = "id desc"
    _rec_name = "path"

    # No single-column indexes on account_id or kind: the unique (account_id,
    # dedup_key) index serves account lookups, kind has a handful of values, and
    # every index is paid for on each webhook's INSERT.
    account_id = fields.Many2one(
        "mango.account", required=True, ondelete="cascade", readonly=True
    )
    company_id = fields.Many2one(related="account_id.company_id")
    path = fields.Char(required=True, readonly=True, help="Path below /mango/")
    kind = fields.Char(readonly=True)
    payload = fields.Text(
        readonly=True, help="The json form field exactly as Mango sent it."
    )
    dedup_key = fields.Char(required=True, readonly=True)
    entry_id = fields.Char(string="Entry ID", index="btree_not_null", readonly=True)
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("ignored", "Ignored"),
        ],
        required=True,
        default="pending",
        readonly=True,
    )
    # The shared name is last_error (mango.retry.mixin); ``error`` stays for
    # the readers written before it.
    error = fields.Text("Error", related="last_error")
    received_at = fields.Datetime(
        required=True, default=fields.Datetime.now, readonly=True
    )
    processed_at = fields.Datetime(readonly=True)
    remote_addr = fields.Char(string="Source address", readonly=True)
    command_id = fields.Char(readonly=True, index="btree_not_null")
    call_id = fields.Many2one("mango.call", readonly=True, index="btree_not_null")

    _sql_constraints = [
        (
            "dedup_key_account_uniq",
            "unique(account_id, dedup_key)",
            "An event is stored once per account.",
        ),
    ]

    def init(self):
        # Databases installed by earlier versions still carry the two indexes the
        # fields no longer declare (Odoo keeps indexes it does not expect).
        for obsolete in ("mango_event__account_id_index", "mango_event__kind_index"):
            drop_index(self.env.cr, obsolete, self._table)
        # The worker's claim query only ever looks at unfinished events; a partial
        # index keeps it cheap however many processed events are kept.
        name = "mango_event_todo_idx"
        if not index_exists(self.env.cr, name):
            create_index(
                self.env.cr,
                name,
                self._table,
                ["id"],
                where="state IN ('pending', 'failed')",
            )

    # ------------------------------------------------------------------ ingest

    @api.model
    def _mango_ingest(self, account, path, json_str, remote_addr=None, wake=False):
        """Store one verified webhook body; the caller has checked key, sign, address.

        :param account: the ``mango.account`` the request was signed for
        :param str path: the path below ``/mango/`` (``events/call``, ``result/stat``…)
        :param str json_str: the raw ``json`` form field
        :param bool wake: a new pending event also wakes the processing cron (in
            the same statement: the webhook's answer waits for every round trip)
        :return: ``(event_id, is_new)``; a duplicate returns the stored id, False
        :raise mango_office.events.EventParseError: the body is not a Mango event
        """
        parsed = mango_events.parse_event(path, json_str)
        state = "ignored" if isinstance(parsed, IGNORED_EVENT_TYPES) else "pending"
        cron_id = self._mango_processing_cron_id() if wake else None
        now = fields.Datetime.now()
        # Plain SQL with ON CONFLICT: two deliveries of the same event racing in two
        # workers must both succeed without a unique-violation rolling one back.
        self.env.cr.execute(
            SQL(
                """
                WITH stored AS (
                    INSERT INTO mango_event (account_id, path, kind, payload,
                        dedup_key, entry_id, command_id, state, attempts, received_at,
                        remote_addr, create_uid, write_uid, create_date, write_date)
                    VALUES (%(account)s, %(path)s, %(kind)s, %(payload)s, %(key)s,
                        %(entry)s, %(command)s, %(state)s, 0, %(now)s, %(addr)s,
                        %(uid)s, %(uid)s, %(now)s, %(now)s)
                    ON CONFLICT (account_id, dedup_key) DO NOTHING
                    RETURNING id, state
                ), triggered AS (
                    %(trigger)s
                      AND EXISTS (SELECT FROM stored WHERE state = 'pending')
                    RETURNING id
                )
                SELECT stored.id, EXISTS (SELECT FROM triggered) FROM stored
                """,
                account=account.id,
                path=path,
                kind=parsed.kind,
                payload=json_str,
                key=parsed.dedup_key,
                entry=parsed.entry_id or None,
                command=getattr(parsed, "command_id", None),
                state=state,
                now=now,
                addr=remote_addr,
                uid=self._mango_author_uid(),
                trigger=self._mango_trigger_insert(cron_id, now),
            )
        )
        row = self.env.cr.fetchone()
        if row:
            if row[1]:
                self._mango_wake_after_commit()
            return row[0], state == "pending"
        self.env.cr.execute(
            SQL(
                "SELECT id FROM mango_event WHERE account_id = %s AND dedup_key = %s",
                account.id,
                parsed.dedup_key,
            )
        )
        row = self.env.cr.fetchone()
        return (row[0] if row else None), False

    @api.model
    def _mango_processing_cron_id(self):
        # The cached xmlid lookup, not env.ref(), which reads the record again.
        return self.env["ir.model.data"]._xmlid_to_res_id(
            "mango_telephony.ir_cron_mango_event_process", raise_if_not_found=False
        )

    @api.model
    def _mango_trigger_insert(self, cron_id, now):
        """An ``INSERT … SELECT`` of a trigger due now for the processing cron, if
        that cron exists and is active; callers may add conditions with ``AND``.

        What ``ir.cron._trigger()`` does, without its extra queries, because it
        runs for every webhook. ``call_at`` is the insert's own instant, not the
        second Odoo would round it to: a job run that ends deletes the triggers
        older than its start, and a rounded time could make the trigger of an
        event the run never saw look older than it is.
        """
        return SQL(
            """
            INSERT INTO ir_cron_trigger (cron_id, call_at, create_uid, write_uid,
                create_date, write_date)
            SELECT id, clock_timestamp() AT TIME ZONE 'UTC', %(uid)s, %(uid)s,
                   %(now)s, %(now)s
              FROM ir_cron WHERE id = %(cron)s AND active
            """,
            cron=cron_id or None,
            now=now,
            uid=self._mango_author_uid(),
        )

    def _mango_author_uid(self):
        """The creator recorded on queue rows: none for Mango's own requests.

        A webhook runs as the public user, who authored nothing; leaving the column
        empty also spares every webhook a foreign-key lock on that one
        ``res_users`` row, which concurrent webhooks would all share.
        """
        return None if self.env.user._is_public() else self.env.uid

    def _mango_wake_after_commit(self):
        """Wake the cron workers once this transaction commits, once per
        transaction (see ``cron_wakeup``: the cheap way)."""
        postcommit = self.env.cr.postcommit
        if not postcommit.data.get("mango.event.wake"):
            postcommit.data["mango.event.wake"] = True
            dbname = self.env.cr.dbname
            postcommit.add(lambda: wake_cron_workers(dbname))

    @api.model
    def _mango_trigger_processing(self):
        """Wake the processing cron once the current transaction commits."""
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                "%s RETURNING id",
                self._mango_trigger_insert(self._mango_processing_cron_id(), now),
            )
        )
        if self.env.cr.fetchone():
            self._mango_wake_after_commit()

    # ------------------------------------------------------------------ worker

    @api.model
    def _mango_claim(self, limit=BATCH_SIZE):
        """Lock the oldest processable events, with every other processable
        event of the same calls; other workers skip them all.

        Taking a call's later events along means each call is folded once per
        claim, however its events are spread through the queue (a shuffled
        stream would otherwise fold a call once per batch holding one of its
        events), and a second worker rarely finds a call already held.
        """
        self.env.flush_all()
        processable = SQL(
            """
            state IN ('pending', 'failed') AND attempts < %(max)s
            AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
            """,
            max=MAX_ATTEMPTS,
            now=fields.Datetime.now(),
        )
        self.env.cr.execute(
            SQL(
                """
                WITH head AS (
                    SELECT id, account_id, entry_id FROM mango_event
                     WHERE %(processable)s
                     ORDER BY id
                     LIMIT %(limit)s
                       FOR UPDATE SKIP LOCKED
                ), mates AS (
                    SELECT id FROM mango_event
                     WHERE %(processable)s
                       AND (account_id, entry_id) IN (
                            SELECT account_id, entry_id FROM head
                             WHERE entry_id IS NOT NULL)
                       AND id NOT IN (SELECT id FROM head)
                       FOR UPDATE SKIP LOCKED
                )
                SELECT id FROM head UNION ALL SELECT id FROM mates
                """,
                processable=processable,
                limit=limit,
            ),
            # Losing a race here is expected with several workers and handled
            # by the caller: not an error for the log.
            log_exceptions=False,
        )
        return self.browse(sorted(r[0] for r in self.env.cr.fetchall()))

    @api.model
    def _mango_count_processable(self):
        self.env.cr.execute(
            SQL(
                """
                SELECT count(*) FROM mango_event
                 WHERE state IN ('pending', 'failed') AND attempts < %s
                   AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
                """,
                MAX_ATTEMPTS,
                fields.Datetime.now(),
            )
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _mango_process_pending(self, limit=BATCH_SIZE):
        """Claim and process one batch. :return: how many events were claimed."""
        try:
            with self.env.cr.savepoint(flush=False):
                batch = self._mango_claim(limit)
        except RACE_ERRORS as exc:
            # Another worker committed a batch of these events after this
            # transaction's snapshot was taken: claim again in a new transaction
            # (a failed claim would fail the whole cron run, which Odoo then
            # reschedules at its next interval, a minute later).
            _logger.debug("Mango event claim lost a race: %s", exc)
            self._mango_trigger_processing()
            return 0
        batch._mango_process()
        return len(batch)

    @api.model
    def _mango_cron_process(self):
        """Cron entry point: one batch per run; Odoo reruns the job (committing in
        between) while it reports remaining work. A backlog of more than a batch
        wakes the other lanes, so that every cron worker given to the queue, in
        this instance or another, takes its share."""
        done = self._mango_process_pending()
        remaining = self._mango_count_processable() if done else 0
        if remaining > BATCH_SIZE:
            self._mango_wake_lanes(remaining)
        cron.report_progress(self.env, done=done, remaining=remaining)

    @api.model
    def _mango_lane_ids(self):
        IrModelData = self.env["ir.model.data"]
        return [
            cron_id
            for cron_id in (
                IrModelData._xmlid_to_res_id(xmlid, raise_if_not_found=False)
                for xmlid in PROCESSING_LANES
            )
            if cron_id
        ]

    @api.model
    def _mango_wake_lanes(self, remaining):
        """Give the other lanes a trigger due now (one batch each of what is
        left), unless they have one already; the workers are woken at commit."""
        running = self.env.context.get("cron_id")
        others = [i for i in self._mango_lane_ids() if i != running]
        wanted = others[: max(0, remaining // BATCH_SIZE - 1) or 1]
        if not wanted:
            return
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO ir_cron_trigger (cron_id, call_at, create_uid, write_uid,
                    create_date, write_date)
                SELECT c.id, %(now)s, %(uid)s, %(uid)s, %(now)s, %(now)s
                  FROM ir_cron c
                 WHERE c.id = ANY(%(lanes)s) AND c.active
                   AND NOT EXISTS (SELECT FROM ir_cron_trigger t
                                    WHERE t.cron_id = c.id AND t.call_at <= %(now)s)
                RETURNING id
                """,
                now=now,
                uid=self.env.uid,
                lanes=wanted,
            )
        )
        if self.env.cr.fetchall():
            self._mango_wake_after_commit()

    def _mango_process(self):
        """Process these (claimed) events: call events grouped by call.

        A command result has no entry_id; it joins the call whose legs carry its
        command_id when that call is known. Each group runs in a savepoint: an
        error marks that group's events failed and leaves the rest untouched.
        Every stored event of the batch's calls is read in one query, and the
        events of every folded call are marked done in one statement at the end.
        """
        groups = defaultdict(list)
        own = {}
        others = []
        for event in self.sorted("id"):
            try:
                parsed = mango_events.parse_event(event.path, event.payload)
            except Exception as exc:  # noqa: BLE001 - stored text may predate a parser fix
                event._mango_mark_failed(exc)
                continue
            entry_id = parsed.entry_id if isinstance(parsed, CALL_EVENT_TYPES) else None
            if entry_id is None and isinstance(parsed, mango_events.CommandResultEvent):
                entry_id = event._mango_entry_of_command(parsed.command_id)
            if entry_id:
                groups[(event.account_id.id, entry_id)].append(event.id)
                own[event.id] = parsed
            else:
                others.append((event, parsed))
        stored = self._mango_stored_events_of_calls(groups, known=own)
        folded = []
        for key, ids in sorted(groups.items()):
            events = self.browse(ids)
            call = self._mango_run_isolated(
                events,
                lambda evs=events, k=key: evs._mango_fold_call(
                    *k, parsed=stored.get(k, {})
                ),
            )
            if call:
                folded.append((ids, list(stored.get(key, ())), call.id))
        self._mango_mark_folded(folded)
        for event, parsed in others:
            self._mango_run_isolated(
                event, lambda ev=event, p=parsed: ev._mango_process_other(p)
            )

    @api.model
    def _mango_mark_folded(self, folded):
        """Mark the events of the folded calls done and linked to their call, in
        one statement; a call's stored command results that were processed
        before the call existed join it too.

        :param list folded: ``[(claimed event ids, stored event ids, call id)]``
        """
        if not folded:
            return
        claimed = [(i, call) for ids, _stored, call in folded for i in ids]
        linked = [(i, call) for _ids, stored, call in folded for i in stored]
        self.env.cr.execute(
            SQL(
                """
                WITH claimed AS (
                    UPDATE mango_event e
                       SET state = 'done', last_error = NULL, next_attempt_at = NULL,
                           processed_at = %(now)s, call_id = v.call_id,
                           write_date = %(now)s, write_uid = %(uid)s
                      FROM unnest(%(ids)s::int[], %(calls)s::int[]) AS v(id, call_id)
                     WHERE e.id = v.id
                    RETURNING e.id
                )
                UPDATE mango_event e SET call_id = v.call_id
                  FROM unnest(%(linked)s::int[], %(lcalls)s::int[]) AS v(id, call_id)
                 WHERE e.id = v.id AND e.call_id IS NULL AND e.state = 'done'
                   AND e.id NOT IN (SELECT id FROM claimed)
                """,
                now=fields.Datetime.now(),
                uid=self.env.uid,
                ids=[i for i, _c in claimed],
                calls=[c for _i, c in claimed],
                linked=[i for i, _c in linked],
                lcalls=[c for _i, c in linked],
            )
        )
        self.invalidate_model(
            ["state", "last_error", "next_attempt_at", "processed_at", "call_id"]
        )

    def _mango_entry_of_command(self, command_id):
        """The entry_id of the call our command started, if its events arrived."""
        self.ensure_one()
        self.env.cr.execute(
            SQL(
                """
                SELECT entry_id FROM mango_event
                 WHERE account_id = %s AND command_id = %s AND entry_id IS NOT NULL
                 ORDER BY id LIMIT 1
                """,
                self.account_id.id,
                command_id,
            )
        )
        row = self.env.cr.fetchone()
        return row[0] if row else None

    def _mango_run_isolated(self, events, work):
        """Run ``work`` in a savepoint; :return: what it returned, or None when
        it failed (the events are then marked failed, or deferred on a race)."""
        try:
            with self.env.cr.savepoint():
                return work()
        except (CallBusy, *RACE_ERRORS) as exc:
            _logger.debug("Mango event(s) %s deferred: %s", events.ids, exc)
            events._mango_defer(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on the event
            _logger.info("Mango event(s) %s failed: %s", events.ids, type(exc).__name__)
            events._mango_mark_failed(exc)
        return None

    def _mango_defer(self, exc):
        """Leave events pending a few seconds after losing a race for their call;
        a race that never ends (a bug, not a race) still ends up failed."""
        now = fields.Datetime.now()
        for event in self:
            if BACKOFF.exhausted(event.attempts + 1):
                event._mango_mark_failed(exc)
            else:
                event.write(
                    {
                        "attempts": event.attempts + 1,
                        "next_attempt_at": now + RACE_DELAY,
                    }
                )
        cron_id = self._mango_processing_cron_id()
        postcommit = self.env.cr.postcommit
        if cron_id and not postcommit.data.get("mango.event.wake_later"):
            # Once per transaction: a trigger when the events are due, and a
            # timer that wakes the cron workers then (see cron_wakeup).
            postcommit.data["mango.event.wake_later"] = True
            self.env["ir.cron.trigger"].sudo().create(
                {"cron_id": cron_id, "call_at": now + RACE_DELAY}
            )
            dbname = self.env.cr.dbname
            postcommit.add(
                lambda: wake_cron_workers_later(
                    dbname, RACE_DELAY.total_seconds() + 0.2
                )
            )

    def _mango_mark_failed(self, exc):
        now = fields.Datetime.now()
        for event in self:
            attempts = event.attempts + 1
            # Planned even after the last attempt: the list shows when it would
            # have been; the claim skips events out of attempts.
            event.write(
                {
                    "state": "failed",
                    "attempts": attempts,
                    "last_error": f"{type(exc).__name__}: {exc}"[:2000],
                    "next_attempt_at": now + BACKOFF.delay(attempts),
                }
            )

    def _mango_mark_done(self, call=None):
        vals = {
            "state": "done",
            "last_error": False,
            "processed_at": fields.Datetime.now(),
            "next_attempt_at": False,
        }
        if call:
            vals["call_id"] = call.id
        self.write(vals)

    @api.model
    def _mango_stored_events_of_calls(self, keys, known=None):
        """Every stored event of these calls, parsed, in one query: each call's
        own events and the results of the commands that started it. Events that
        no longer parse are left out (they are marked failed where they are
        processed).

        :param keys: ``(account id, entry_id)`` pairs
        :param dict known: ``{event id: parsed event}`` already parsed
        :return: ``{(account id, entry_id): {event id: parsed event}}``
        """
        keys = list(keys)
        if not keys:
            return {}
        known = known or {}
        self.env.cr.execute(
            SQL(
                """
                WITH calls AS (
                    SELECT * FROM unnest(%(accounts)s::int[], %(entries)s::varchar[])
                        AS k(account_id, entry_id)
                ), own AS (
                    SELECT e.id, e.account_id, e.entry_id, e.path, e.payload,
                           e.command_id
                      FROM mango_event e
                      JOIN calls k ON k.account_id = e.account_id
                                  AND k.entry_id = e.entry_id
                     WHERE e.state != 'ignored'
                )
                SELECT id, account_id, entry_id, path, payload FROM own
                UNION
                SELECT r.id, c.account_id, c.entry_id, r.path, r.payload
                  FROM (SELECT DISTINCT account_id, entry_id, command_id FROM own
                         WHERE command_id IS NOT NULL) c
                  JOIN mango_event r ON r.account_id = c.account_id
                                    AND r.command_id = c.command_id
                 WHERE r.kind = 'command_result' AND r.state != 'ignored'
                """,
                accounts=[account for account, _entry in keys],
                entries=[entry for _account, entry in keys],
            )
        )
        result = {key: {} for key in keys}
        for event_id, account_id, entry_id, path, payload in self.env.cr.fetchall():
            parsed = known.get(event_id)
            if parsed is None:
                try:
                    parsed = mango_events.parse_event(path, payload)
                except mango_events.EventParseError:
                    continue
            result[(account_id, entry_id)][event_id] = parsed
        return result

    @api.model
    def _mango_stored_events_of_call(self, account_id, entry_id):
        """Every stored event of one call (see ``_mango_stored_events_of_calls``).

        :return: ``{event id: parsed event}``
        """
        key = (account_id, entry_id)
        return self._mango_stored_events_of_calls([key])[key]

    def _mango_fold_call(self, account_id, entry_id, parsed=None):
        """Fold these events (of one call) into their ``mango.call``.

        The call is re-folded from every stored event of its entry: the core fold
        is order- and duplicate-independent, so whatever order events arrived and
        were processed in, the record ends up equal to an in-order delivery.
        Marking the events done is the caller's (``_mango_mark_folded``).

        :param dict parsed: the call's stored events, ``{id: parsed}``, when the
            caller read them already (``_mango_stored_events_of_calls``)
        :return: the ``mango.call``
        """
        # Events of one call may be claimed by two workers at once. The second
        # one gives way instead of waiting: its snapshot predates the first one's
        # commit, so it could not see the result anyway.
        self.env.cr.execute(
            SQL(
                "SELECT pg_try_advisory_xact_lock(%s)",
                _advisory_key(account_id, entry_id),
            )
        )
        if not self.env.cr.fetchone()[0]:
            raise CallBusy(entry_id)
        if parsed is None:
            parsed = self._mango_stored_events_of_call(account_id, entry_id)
        folded = mango_calls.fold(parsed.values()).get(entry_id)
        if folded is None:
            raise ValueError(f"No event of call {entry_id} could be read")
        account = self.env["mango.account"].sudo().browse(account_id)
        return self.env["mango.call"].sudo()._mango_write_fold(account, folded)

    def _mango_process_other(self, parsed):
        """Events that belong to no known call.

        A command result whose call has not shown up yet is kept as done: the
        call's fold picks it up by command_id when its events arrive. Other addons
        extend this method for their own commands and for ``result/stat``.
        """
        self.ensure_one()
        self._mango_mark_done()

    # ------------------------------------------------------------------ actions

    def action_retry(self):
        """Put failed events back in the queue with a fresh attempt budget."""
        self.filtered(lambda e: e.state == "failed").write(
            dict(self._mango_retry_reset_values(), state="pending")
        )
        self._mango_trigger_processing()
        return True
