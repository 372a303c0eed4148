"""Two workers finishing calls of the same day, each in its own transaction.

A TransactionCase cannot show this: its data never leaves its one uncommitted
transaction. These tests open real connections, commit what they create, and
delete it afterwards.
"""

import uuid
from datetime import datetime

import psycopg2

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tests import tagged
from odoo.tests.common import BaseCase, get_db_name
from odoo.tools import SQL, mute_logger

TABLES = (
    "mango_call_stat",
    "mango_call_stat_callback",
    "mango_call_stat_callback_bucket",
    "mango_call_stat_period",
    "mango_call_stat_dirty",
    "mango_call_stat_contribution",
)


@tagged("post_install", "-at_install")
class TestConcurrentStatRefresh(BaseCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # Archived: the company keeps its one active account.
            account = env["mango.account"].create(
                {
                    "name": "Concurrent statistics",
                    "active": False,
                    "company_id": env.ref("base.main_company").id,
                    "api_key": uuid.uuid4().hex,
                    "api_salt": uuid.uuid4().hex,
                }
            )
            self.account_id = account.id
            self.company_id = account.company_id.id
            self.user_id = env.ref("base.user_admin").id
        self.addCleanup(self.delete_everything)
        self.cursors = []
        self.addCleanup(self.close_cursors)

    def close_cursors(self):
        for cr in self.cursors:
            if not cr.closed:
                cr.rollback()
                cr.close()

    def delete_everything(self):
        with self.registry.cursor() as cr:
            for table in (*TABLES, "mango_call"):
                cr.execute(
                    SQL(
                        "DELETE FROM %s WHERE account_id = %s",
                        SQL.identifier(table),
                        self.account_id,
                    )
                )
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["mango.account"].browse(self.account_id).unlink()

    def worker(self):
        """An environment on a connection of its own, as a cron worker has."""
        cr = self.registry.cursor()
        self.cursors.append(cr)
        return api.Environment(cr, SUPERUSER_ID, {})

    def finish_call(self, env, start, status="answered"):
        """What a fold that finishes a call leaves in its transaction."""
        call = env["mango.call"].create(
            {
                "account_id": self.account_id,
                "company_id": self.company_id,
                "entry_id": f"concurrent-{uuid.uuid4().hex}",
                "status": status,
                "direction": "incoming",
                "start_time": start,
                "employee_user_id": self.user_id,
                "user_id": self.user_id if status == "answered" else False,
                "line_number": "74951234567",
                "customer_number_e164": "+79031234567",
                "wait_duration": 5,
                "talk_duration": 60 if status == "answered" else 0,
            }
        )
        call._mango_step_refresh_statistics({call.id: {"status": False}})
        env.flush_all()
        return call

    def tables(self, cr):
        """This account's statistics rows, in a stable order (no ids)."""
        result = []
        for table, columns in (
            (
                "mango_call_stat",
                "date, user_id, line_number, direction, call_count, answered_count, "
                "missed_count, wait_total, talk_total",
            ),
            ("mango_call_stat_callback", "date, user_id, direction, delay, call_id"),
            (
                "mango_call_stat_callback_bucket",
                "user_id, line_number, direction, bucket, delay_count",
            ),
            (
                "mango_call_stat_period",
                "granularity, date, user_id, line_number, row_count, call_count, "
                "incoming_count, answered_count, missed_pending_count, "
                "called_back_count, wait_total, talk_total",
            ),
            (
                "mango_call_stat_contribution",
                "call_id, date, user_id, line_number, direction, call_count, "
                "answered_count, missed_pending_count, called_back_count, "
                "wait_total, talk_total, callback_time_total",
            ),
        ):
            cr.execute(
                SQL(
                    "SELECT %s FROM %s WHERE account_id = %s ORDER BY %s",
                    SQL(columns),
                    SQL.identifier(table),
                    self.account_id,
                    SQL(columns),
                )
            )
            result.append(cr.fetchall())
        return result

    def assert_equal_to_rebuild(self, calls):
        with self.registry.cursor() as cr:
            refreshed = self.tables(cr)
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["mango.call.stat"]._mango_rebuild()
            rebuilt = self.tables(cr)
            cr.rollback()
        self.assertEqual(sum(row[4] for row in refreshed[0]), calls)
        self.assertEqual(refreshed, rebuilt)

    def commit_all(self, *envs):
        failures = []
        for env in envs:
            try:
                env.cr.commit()
            except Exception as error:  # noqa: BLE001 - reported below
                failures.append(repr(error))
                env.cr.rollback()
        self.assertEqual(failures, [], "a fold's commit failed")

    def test_two_workers_finish_calls_of_the_same_day(self):
        day = datetime(2024, 3, 13, 9, 0)
        # The first calls of a day: both transactions start before either
        # commits, so neither sees the other's call.
        first, second = self.worker(), self.worker()
        self.finish_call(first, day)
        self.finish_call(second, day.replace(hour=10), status="missed")
        self.commit_all(first, second)
        self.assert_equal_to_rebuild(2)
        # The day, its week and its month exist now: both rewrite them again.
        first, second = self.worker(), self.worker()
        self.finish_call(first, day.replace(hour=11))
        self.finish_call(second, day.replace(hour=12))
        self.commit_all(first, second)
        self.assert_equal_to_rebuild(4)
        # Another day of the same week and month, still at the same time.
        first, second = self.worker(), self.worker()
        self.finish_call(first, day.replace(day=14))
        self.finish_call(second, day.replace(hour=13))
        self.commit_all(second, first)
        self.assert_equal_to_rebuild(6)
        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "SELECT count(*) FROM mango_call_stat_dirty WHERE account_id = %s",
                    self.account_id,
                )
            )
            self.assertEqual(cr.fetchone()[0], 0, "every marker was consumed")

    def change_call(self, env, call_id, values):
        """What a re-fold that changes a finished call leaves in its
        transaction (with the missed calls it now calls back)."""
        call = env["mango.call"].browse(call_id)
        previous = {call.id: {"status": call.status}}
        call.write(values)
        call._mango_step_refresh_statistics(previous)
        env.flush_all()
        return call

    def test_a_call_changes_while_another_of_its_day_finishes(self):
        day = datetime(2024, 3, 13, 9, 0)
        env = self.worker()
        answered = self.finish_call(env, day).id
        missed = self.finish_call(env, day.replace(hour=8), status="missed").id
        self.commit_all(env)
        self.assert_equal_to_rebuild(2)
        other_user = self.env_user_other()
        # One worker moves a call to another employee while another finishes
        # a call of the same day, week and month.
        first, second = self.worker(), self.worker()
        self.change_call(first, answered, {"employee_user_id": other_user})
        self.finish_call(second, day.replace(hour=10))
        self.commit_all(first, second)
        self.assert_equal_to_rebuild(3)
        # A call-back closes the missed call while another worker changes
        # the missed call's day neighbour: each refresh applies its own
        # difference to the same day row.
        first, second = self.worker(), self.worker()
        callback = self.finish_call(first, day.replace(hour=11))
        first["mango.call"].browse(missed).write(
            {"callback_call_id": callback.id, "time_to_callback": 600}
        )
        callback._mango_step_refresh_statistics({callback.id: {"status": False}})
        first.flush_all()
        self.change_call(second, answered, {"status": "failed", "talk_duration": 0})
        self.commit_all(second, first)
        self.assert_equal_to_rebuild(4)
        with self.registry.cursor() as cr:
            self.assertEqual(
                [row[3:] for row in self.tables(cr)[1]],
                [(600, missed)],
                "the call-back's delay, of its missed call",
            )

    def env_user_other(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            return env.ref("base.user_root").id

    def test_a_fold_whose_refresh_never_ran_is_caught_up_by_the_cron(self):
        env = self.worker()
        self.finish_call(env, datetime(2024, 3, 13, 9, 0))
        # The process stops between the commit and the refresh.
        env.cr.postcommit.clear()
        env.cr.commit()
        with self.registry.cursor() as cr:
            self.assertEqual(self.tables(cr)[0], [], "not refreshed yet")
            cr.execute(
                SQL(
                    "SELECT count(*) FROM mango_call_stat_dirty WHERE account_id = %s",
                    self.account_id,
                )
            )
            self.assertEqual(cr.fetchone()[0], 1, "the day stays marked")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["mango.call.stat"]._mango_cron_refresh_marked()
        self.assert_equal_to_rebuild(1)

    def test_two_refreshes_meet_on_a_band_of_delays(self):
        """Two missed calls of different months called back after 600 and
        605 s: their refreshes share no day, week or month, only the band of
        delays 600-649, which neither sees before the other commits. The
        second must wait for the first and add to its band, not start one of
        its own."""
        env = self.worker()
        answered = self.finish_call(env, datetime(2024, 3, 13, 9, 0)).id
        missed = [
            self.finish_call(env, datetime(2024, month, 13, 8, 0), "missed").id
            for month in (3, 5)
        ]
        self.commit_all(env)
        env = self.worker()
        for call_id, delay in zip(missed, (600, 605), strict=True):
            env["mango.call"].browse(call_id).write(
                {"callback_call_id": answered, "time_to_callback": delay}
            )
        env.flush_all()
        env.cr.postcommit.clear()
        env.cr.commit()

        def refresh_in_read_committed(call_id, lock_timeout="0"):
            cr = self.registry.cursor()
            self.cursors.append(cr)
            cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cr.execute("SET LOCAL lock_timeout = %s", [lock_timeout])
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["mango.call.stat"]._mango_refresh_calls([call_id])
            return cr

        first = refresh_in_read_committed(missed[0])
        # The second refresh waits for the first, which holds the band (both
        # in this one thread: it gives up waiting after a moment).
        with (
            self.assertRaises(psycopg2.errors.LockNotAvailable),
            mute_logger("odoo.sql_db"),
        ):
            refresh_in_read_committed(missed[1], lock_timeout="300ms")
        first.commit()
        refresh_in_read_committed(missed[1]).commit()
        self.assert_equal_to_rebuild(3)
        with self.registry.cursor() as cr:
            self.assertEqual(
                [row[3:] for row in self.tables(cr)[2]],
                [(600, 2)],
                "one band holding both delays",
            )
