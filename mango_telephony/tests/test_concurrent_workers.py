"""Two workers on one queue, as two Odoo instances on one database have.

Each worker is its own connection (``db_connect(...).cursor()``), so what one
has not committed is invisible to the other and its row and advisory locks are
real; the test's own transaction only reads afterwards. The data is committed
for that reason, and removed again by ``_drop_committed``.
"""

import contextlib
import random
from datetime import timedelta

import odoo
from odoo import SUPERUSER_ID, api, fields
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from mango_office import calls as mango_calls
from mango_office import events as mango_events
from mango_office import signing

from .common import MangoSimulatorMixin


@tagged("post_install", "-at_install")
class TestConcurrentWorkers(MangoSimulatorMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_sim = cls.mango_start_class_simulator()

    def setUp(self):
        super().setUp()
        self.dbname = self.env.cr.dbname
        key = f"concurrentkey{random.randrange(10**9)}"
        with self.worker() as env:
            admin = env.ref("base.user_admin")
            account = (
                env["mango.account"]
                .sudo()
                .create(
                    {
                        "name": f"Concurrent workers {key}",
                        "api_base_url": self.mango_sim.base_url,
                        "api_key": key,
                        "api_salt": self.mango_api_salt,
                        "ip_filter_mode": "any",
                        "missed_call_user_id": admin.id,
                        # Committed: an active one would stand in the way of the
                        # company's own account (one active per company).
                        "active": False,
                    }
                )
            )
            self.account_id = account.id
        self.addCleanup(self._drop_committed)

    @contextlib.contextmanager
    def worker(self, commit=True):
        """An environment on a connection of its own (another worker's);
        committed when the block ends unless ``commit`` is False."""
        with odoo.sql_db.db_connect(self.dbname).cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            yield env
            if commit:
                env.flush_all()
                # Another worker's transaction: what the test races is its commit.
                cr.commit()  # pylint: disable=invalid-commit
            else:
                cr.rollback()

    def open_worker(self):
        """A worker whose transaction stays open until ``finish_worker``.

        Both workers run in the test's one thread: a lock one of them would wait
        for the other to release is given up after a while (an error the event
        worker treats as a lost race) rather than waited for forever.
        """
        cr = odoo.sql_db.db_connect(self.dbname).cursor()
        self.addCleanup(cr.close)
        cr.execute("SET lock_timeout = '3s'")
        return api.Environment(cr, SUPERUSER_ID, {})

    @staticmethod
    def finish_worker(env):
        env.flush_all()
        env.cr.commit()
        env.cr.close()

    def _drop_committed(self):
        with self.worker() as env:
            cr = env.cr
            cr.execute(
                "SELECT id FROM mango_call WHERE account_id = %s", [self.account_id]
            )
            calls = tuple(r[0] for r in cr.fetchall()) or (0,)
            cr.execute(
                "DELETE FROM mail_activity WHERE res_model = 'mango.call' "
                "AND res_id IN %s",
                [calls],
            )
            cr.execute(
                "DELETE FROM mail_message WHERE model = 'mango.call' AND res_id IN %s",
                [calls],
            )
            cr.execute(
                "DELETE FROM mango_event WHERE account_id = %s", [self.account_id]
            )
            cr.execute(
                "DELETE FROM mango_call WHERE account_id = %s", [self.account_id]
            )
            env["mango.account"].browse(self.account_id).unlink()

    def play(self, scenario, **options):
        result = self.mango_sim.play(scenario, wait=False, **options)
        return [(e["path"], signing.dumps(e["payload"])) for e in result["planned"]]

    def ingest(self, events):
        with self.worker() as env:
            account = env["mango.account"].browse(self.account_id)
            for path, json_str in events:
                env["mango.event"]._mango_ingest(account, path, json_str)

    def due_now(self):
        """What a race deferred is due now (the test does not wait 5 s)."""
        with self.worker() as env:
            env.cr.execute(
                "UPDATE mango_event SET next_attempt_at = %s "
                "WHERE account_id = %s AND state IN ('pending', 'failed')",
                [fields.Datetime.now() - timedelta(seconds=1), self.account_id],
            )

    def process_all(self):
        for _round in range(100):
            with self.worker() as env:
                if not env["mango.event"]._mango_process_pending():
                    return
        self.fail("the queue never ran dry")

    def stored(self):
        """``[(dedup_key, state, call_id, entry_id)]`` of the account's events,
        as committed."""
        with self.worker(commit=False) as env:
            env.cr.execute(
                "SELECT dedup_key, state, call_id, entry_id FROM mango_event "
                "WHERE account_id = %s",
                [self.account_id],
            )
            return env.cr.fetchall()

    def calls(self):
        with self.worker(commit=False) as env:
            env.cr.execute(
                "SELECT entry_id, count(*), max(status) FROM mango_call "
                "WHERE account_id = %s GROUP BY entry_id",
                [self.account_id],
            )
            return {entry: (n, status) for entry, n, status in env.cr.fetchall()}

    def assert_folded_once(self, events):
        """Every event done and linked, one call per entry, equal to the pure
        fold of the same events."""
        rows = self.stored()
        self.assertEqual({state for _k, state, _c, _e in rows} - {"ignored"}, {"done"})
        self.assertFalse(
            [k for k, state, call, entry in rows if entry and not call],
            "every call event is linked to its call",
        )
        expected = mango_calls.fold(
            mango_events.parse_event(path, json_str) for path, json_str in events
        )
        calls = self.calls()
        self.assertEqual(set(calls), set(expected))
        for entry, (count, status) in calls.items():
            self.assertEqual(count, 1, f"call {entry} recorded once")
            self.assertEqual(status, expected[entry].status)

    # ------------------------------------------------------------------ tests

    def test_two_workers_never_claim_the_same_event_nor_split_a_call(self):
        """Two workers claiming at once share the queue: no event in both
        claims, and the events of one call in one claim only (the other worker
        would otherwise find the call held and wait for nothing)."""
        events = []
        for seed in range(4):
            events += self.play("transfer", extension="101", seed=seed)
        random.Random(7).shuffle(events)
        self.ingest(events)
        first, second = self.open_worker(), self.open_worker()
        claimed_first = first["mango.event"]._mango_claim(limit=5)
        claimed_second = second["mango.event"]._mango_claim()
        self.assertTrue(claimed_first and claimed_second)
        self.assertFalse(set(claimed_first.ids) & set(claimed_second.ids))
        entries_first = set(claimed_first.mapped("entry_id")) - {False}
        entries_second = set(claimed_second.mapped("entry_id")) - {False}
        self.assertFalse(
            entries_first & entries_second, "a call's events in one claim only"
        )
        # One after the other: today's statistics refresh makes a worker wait
        # for another's commit when both finish calls of one day.
        claimed_first._mango_process()
        self.finish_worker(first)
        claimed_second._mango_process()
        self.finish_worker(second)
        self.due_now()
        self.process_all()
        self.assert_folded_once(events)

    def test_two_cursors_folding_one_call_end_with_one_call(self):
        """The second fold of a call starts before the first commits: it gives
        way, and the call ends up folded once from all of its events."""
        events = self.play("incoming_answered", extension="101")
        early, late = events[:-2], events[-2:]
        self.ingest(early)
        first = self.open_worker()
        first["mango.event"]._mango_process_pending()
        # The rest of the call arrives while the first fold is not committed;
        # the second worker's snapshot predates the first one's commit.
        self.ingest(late)
        second = self.open_worker()
        claimed = second["mango.event"]._mango_claim()
        self.assertTrue(claimed, "the late events are free to claim")
        self.finish_worker(first)
        # Its INSERT of the call meets the first one's: the race it must lose.
        with mute_logger("odoo.sql_db"):
            claimed._mango_process()
        self.finish_worker(second)
        self.due_now()
        self.process_all()
        self.assert_folded_once(events)

    def test_missed_call_activity_once_when_two_folds_race(self):
        """A missed call folded by two workers at once gets one call-back
        activity."""
        events = self.play("incoming_missed_no_operator", from_number="79035550101")
        self.ingest(events[:-1])
        first = self.open_worker()
        first["mango.event"]._mango_process_pending()
        # The last event (the summary) comes while the first fold, which already
        # sees the call missed, is not committed.
        self.ingest(events[-1:])
        second = self.open_worker()
        claimed = second["mango.event"]._mango_claim()
        self.assertTrue(claimed)
        self.finish_worker(first)
        # Its INSERT of the call meets the first one's: the race it must lose.
        with mute_logger("odoo.sql_db"):
            claimed._mango_process()
        self.finish_worker(second)
        self.due_now()
        self.process_all()
        self.assert_folded_once(events)
        with self.worker(commit=False) as env:
            call = env["mango.call"].search([("account_id", "=", self.account_id)])
            self.assertEqual(call.status, "missed")
            env.cr.execute(
                "SELECT count(*) FROM mail_activity a "
                "JOIN mail_activity_type t ON t.id = a.activity_type_id "
                "WHERE (a.res_model = 'mango.call' AND a.res_id = %s) "
                "OR a.id = %s",
                [call.id, call.callback_activity_id.id or 0],
            )
            self.assertEqual(env.cr.fetchone()[0], 1, "one call-back activity")

    def _callback_activities(self):
        """The account's calls ``[(status, callback activity id)]`` and the ids
        of the call-back activities on them."""
        with self.worker(commit=False) as env:
            calls = env["mango.call"].search([("account_id", "=", self.account_id)])
            env.cr.execute(
                "SELECT id FROM mail_activity WHERE res_model = 'mango.call' "
                "AND res_id IN %s",
                [tuple(calls.ids) or (0,)],
            )
            activities = {row[0] for row in env.cr.fetchall()}
            return [(c.status, c.callback_activity_id.id) for c in calls], activities

    def _two_missed_calls_of_one_number(self, second_claims_before_first_commits):
        number = "79035550202"
        first_call = self.play("incoming_missed_no_operator", from_number=number)
        second_call = self.play("incoming_missed_no_operator", from_number=number)
        self.ingest(first_call)
        first = self.open_worker()
        first["mango.event"]._mango_process_pending()
        self.ingest(second_call)
        second = self.open_worker()
        if second_claims_before_first_commits:
            # The second worker's snapshot predates the first one's commit.
            claimed = second["mango.event"]._mango_claim()
            self.finish_worker(first)
            claimed._mango_process()
        else:
            # Both transactions open at once.
            second["mango.event"]._mango_process_pending()
            self.finish_worker(first)
        self.finish_worker(second)
        self.due_now()
        self.process_all()
        self.assert_folded_once(first_call + second_call)
        calls, activities = self._callback_activities()
        self.assertEqual([status for status, _activity in calls], ["missed"] * 2)
        self.assertEqual(len(activities), 1, "one call-back activity per streak")
        self.assertEqual({activity for _status, activity in calls}, activities)

    def test_two_missed_calls_of_one_number_folded_at_once(self):
        """Two workers fold two missed calls of one number at the same time:
        the number gets one call-back activity, which both calls share."""
        self._two_missed_calls_of_one_number(second_claims_before_first_commits=False)

    def test_missed_call_folded_on_a_snapshot_older_than_the_first(self):
        """The second worker's snapshot predates the first one's commit: it
        cannot see the activity the first opened, so it must not open one."""
        self._two_missed_calls_of_one_number(second_claims_before_first_commits=True)

    def test_claim_after_another_worker_committed_the_same_events(self):
        """A worker whose snapshot predates another worker's commit of the same
        events claims nothing and asks for a new run, instead of failing the
        whole cron run (which Odoo would retry only a minute later)."""
        events = self.play("incoming_answered", extension="101")
        self.ingest(events)
        late = self.open_worker()
        late.cr.execute("SELECT 1")  # its snapshot is taken now
        with self.worker() as env:
            self.assertTrue(env["mango.event"]._mango_process_pending())
        with self.worker(commit=False) as env:
            cron_id = env["mango.event"]._mango_processing_cron_id()
            env.cr.execute(
                "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", [cron_id]
            )
            triggers_before = env.cr.fetchone()[0]
        self.assertEqual(late["mango.event"]._mango_process_pending(), 0)
        self.finish_worker(late)
        with self.worker(commit=False) as env:
            env.cr.execute(
                "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", [cron_id]
            )
            self.assertGreater(env.cr.fetchone()[0], triggers_before)
        self.assert_folded_once(events)
