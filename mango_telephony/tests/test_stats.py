"""Call statistics: the reporting table stays equal to the call log, and the
dashboard's figures are right."""

import gc
import random
from datetime import date, datetime, timedelta
from unittest.mock import patch

import psycopg2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import Command, models
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS
from odoo.addons.mango_telephony.models import (
    group_labels,
    mango_call_stat,
    mango_call_stat_rollup,
)

from .calls_common import MangoCallsMixin
from .common import mango_refresh_statistics

KEY_FIELDS = ("date", "account_id", "user_id", "line_number", "direction")
VALUE_FIELDS = (
    "call_count",
    "answered_count",
    "missed_count",
    "failed_count",
    "missed_pending_count",
    "called_back_count",
    "wait_total",
    "talk_total",
    "callback_time_total",
)


@tagged("post_install", "-at_install")
class TestCallStats(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.env.company.partner_id.tz = "Europe/Moscow"
        cls.mango_setup_calls()
        cls.supervisor = (
            cls.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {
                    "name": "Supervisor",
                    "login": "stat.supervisor@example.com",
                    USER_GROUPS: [
                        Command.link(
                            cls.env.ref("mango_telephony.group_mango_supervisor").id
                        )
                    ],
                }
            )
        )
        cls.Stat = cls.env["mango.call.stat"]

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()

    def snapshot(self):
        """Day rows (with their ratios), call-back delays, weeks and months,
        the ledger of each call's contribution and the bands of delays, in a
        stable order."""
        # The table is refreshed when the worker's transaction commits.
        mango_refresh_statistics(self.env)
        self.env.invalidate_all()
        cr = self.env.cr
        cr.execute(
            "SELECT date, account_id, company_id, user_id, line_number, direction, "
            + ", ".join(VALUE_FIELDS)
            + ", answered_rate, avg_wait, avg_talk, avg_callback_time"
            " FROM mango_call_stat ORDER BY 1, 2, 3, 4, 5, 6"
        )
        days = cr.fetchall()
        cr.execute(
            "SELECT date, account_id, user_id, line_number, direction, delay, call_id "
            "FROM mango_call_stat_callback ORDER BY 1, 2, 3, 4, 5, 6, 7"
        )
        delays = cr.fetchall()
        cr.execute(
            "SELECT granularity, date, account_id, company_id, user_id, line_number, "
            "row_count, incoming_count, outgoing_count, internal_count, "
            + ", ".join(VALUE_FIELDS)
            + " FROM mango_call_stat_period ORDER BY 1, 2, 3, 4, 5, 6"
        )
        periods = cr.fetchall()
        cr.execute(
            "SELECT call_id, date, account_id, company_id, user_id, line_number, "
            "direction, "
            + ", ".join(VALUE_FIELDS)
            + " FROM mango_call_stat_contribution ORDER BY 1"
        )
        ledger = cr.fetchall()
        cr.execute(
            "SELECT account_id, company_id, user_id, line_number, direction, bucket, "
            "delay_count FROM mango_call_stat_callback_bucket ORDER BY 1, 2, 3, 4, 5, 6"
        )
        return days, delays, periods, ledger, cr.fetchall()

    def assert_equal_to_rebuild(self, message=None):
        """The tables as the refreshes left them are what a rebuild writes
        (compared in a savepoint, so the refreshes go on from their own state,
        not from the rebuild's)."""
        refreshed = self.snapshot()
        cr = self.env.cr
        cr.execute("SAVEPOINT mango_stat_rebuild")
        self.Stat.sudo()._mango_rebuild()
        rebuilt = self.snapshot()
        cr.execute("ROLLBACK TO SAVEPOINT mango_stat_rebuild")
        self.env.invalidate_all()
        self.assertEqual(refreshed, rebuilt, message)
        return refreshed

    def fold(self, calls, previous=None):
        """What the fold of ``calls`` does to the statistics: its step marks
        them (and the missed calls they called back), then the refresh."""
        calls.flush_recordset()
        calls._mango_step_refresh_statistics(previous or {})
        mango_refresh_statistics(self.env)

    def run_scenario(self, scenario, **options):
        result = self.mango_sim.play(scenario, wait=False, **options)
        self.mango_ingest([(e["path"], e["payload"]) for e in result["planned"]])
        self.mango_process_all()
        mango_refresh_statistics(self.env)
        return self.mango_call(result["entry_id"])

    def make_call(self, user, start, status, direction="incoming", **values):
        return (
            self.env["mango.call"]
            .sudo()
            .create(
                {
                    "account_id": self.mango_account.id,
                    "company_id": self.env.company.id,
                    "entry_id": f"stat-{self.env['mango.call'].sudo().search_count([])}"
                    f"-{start.isoformat()}-{values.get('talk_duration', 0)}"
                    f"-{values.get('time_to_callback', 0)}-{status}",
                    "status": status,
                    "direction": direction,
                    "start_time": start,
                    "employee_user_id": user.id,
                    "user_id": user.id if status == "answered" else False,
                    "line_number": "74951234567",
                    "customer_number_e164": "+79031234567",
                    **values,
                }
            )
        )

    def test_hook_keeps_table_equal_to_a_rebuild(self):
        self.run_scenario("incoming_answered", extension="101")
        self.run_scenario(
            "incoming_answered", extension="102", from_number="79035550000"
        )
        self.run_scenario("incoming_missed_queue")
        incremental = self.snapshot()
        days, _delays, periods, _ledger, _bands = incremental
        self.assertTrue(days)
        self.assertEqual(sum(row[6] for row in days), 3)
        # Each call is in exactly one week of each first day, and one month.
        self.assertEqual(sum(sum(row[7:10]) for row in periods), 3 * 4)
        self.Stat._mango_rebuild()
        self.assertEqual(self.snapshot(), incremental)

    def test_refresh_is_idempotent(self):
        call = self.run_scenario("incoming_answered", extension="101")
        before = self.snapshot()
        keys = self.Stat._mango_keys_of_calls(call)
        self.Stat._mango_refresh(keys)
        self.Stat._mango_refresh(keys)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.Stat.sudo().search_count([]), len(before[0]))

    def test_callback_clears_pending_missed_call(self):
        number = "79037770000"
        missed = self.run_scenario("incoming_missed_no_operator", from_number=number)
        self.assertEqual(missed.status, "missed")
        row = self.Stat.sudo().search([("missed_count", ">", 0)])
        self.assertEqual(row.missed_pending_count, 1)
        self.run_scenario("incoming_answered", extension="101", from_number=number)
        missed.invalidate_recordset()
        self.assertTrue(missed.callback_call_id)
        row = self.Stat.sudo().search([("missed_count", ">", 0)])
        self.assertEqual(row.missed_pending_count, 0)
        self.assertEqual(row.called_back_count, 1)
        self.Stat.invalidate_model()
        snapshot = self.snapshot()
        self.Stat._mango_rebuild()
        self.assertEqual(self.snapshot(), snapshot)

    def test_dashboard_figures(self):
        day = datetime(2026, 3, 10, 9, 0)
        agent = self.agent_101
        answered = [
            self.make_call(
                agent,
                day + timedelta(minutes=i),
                "answered",
                wait_duration=wait,
                talk_duration=talk,
            )
            for i, (wait, talk) in enumerate(((10, 60), (20, 120), (30, 180)))
        ]
        for i, seconds in enumerate((100, 300)):
            self.make_call(
                agent,
                day + timedelta(hours=1, minutes=i),
                "missed",
                callback_call_id=answered[i].id,
                time_to_callback=seconds,
            )
        self.make_call(agent, day + timedelta(hours=2), "missed")
        self.make_call(
            agent,
            day + timedelta(hours=3),
            "answered",
            direction="outgoing",
            wait_duration=5,
            talk_duration=30,
        )
        self.make_call(self.agent_102, day, "failed", direction="outgoing")
        self.Stat._mango_rebuild()

        data = self.Stat.with_user(self.supervisor).mango_dashboard_data(
            period="all", group_by="user", interval="week"
        )
        row = next(r for r in data["rows"] if r["key"] == agent.id)
        self.assertEqual(row["incoming"], 6)
        self.assertEqual(row["outgoing"], 1)
        self.assertEqual(row["missed"], 3)
        self.assertEqual(row["answered"], 4)
        self.assertEqual(row["answered_rate"], round(4 * 100 / 7, 2))
        self.assertEqual(row["avg_wait"], round((10 + 20 + 30 + 5) / 4, 2))
        self.assertEqual(row["avg_talk"], round((60 + 120 + 180 + 30) / 4, 2))
        self.assertEqual(row["missed_pending"], 1)
        self.assertEqual(row["median_callback_time"], 200.0)
        self.assertEqual(data["totals"]["calls"], 8)
        self.assertEqual(data["totals"]["failed"], 1)
        self.assertEqual(data["totals"]["median_callback_time"], 200.0)
        self.assertEqual(len(data["series"]), 1)

        by_line = self.Stat.with_user(self.supervisor).mango_dashboard_data(
            period="all", group_by="line"
        )
        self.assertEqual([r["key"] for r in by_line["rows"]], ["74951234567"])

        groups = self.Stat.with_user(self.supervisor).read_group(
            [], ["answered_rate:avg", "avg_talk:avg"], ["user_id"]
        )
        group = next(g for g in groups if g["user_id"][0] == agent.id)
        self.assertEqual(group["answered_rate"], round(4 * 100 / 7, 2))
        self.assertEqual(group["avg_talk"], 97.5)

    def test_periods_limit_the_rows(self):
        today = date.today()
        old = datetime.combine(today - timedelta(days=400), datetime.min.time())
        self.make_call(self.agent_101, old.replace(hour=9), "answered")
        self.Stat._mango_rebuild()
        stats = self.Stat.with_user(self.supervisor)
        self.assertEqual(
            stats.mango_dashboard_data(period="month")["totals"]["calls"], 0
        )
        self.assertEqual(stats.mango_dashboard_data(period="all")["totals"]["calls"], 1)

    def test_access(self):
        self.make_call(self.agent_101, datetime(2026, 3, 10, 9), "answered")
        self.make_call(self.agent_102, datetime(2026, 3, 10, 10), "answered")
        self.Stat._mango_rebuild()
        # Telephony users see their own figures only, on every path.
        own = self.Stat.with_user(self.agent_101)
        self.assertEqual(own.search([]).user_id, self.agent_101)
        data = own.mango_dashboard_data(period="all", interval="week")
        self.assertEqual(data["totals"]["calls"], 1)
        self.assertEqual([r["key"] for r in data["rows"]], [self.agent_101.id])
        with self.assertRaises(AccessError):
            own.action_mango_rebuild()
        with self.assertRaises(AccessError):
            self.env["mango.call.stat.period"].with_user(self.agent_101).search([])
        with self.assertRaises(AccessError):
            self.env["mango.call.stat.callback"].with_user(self.agent_101).search([])
        outsider = (
            self.env["res.users"]
            .with_context(no_reset_password=True)
            .create({"name": "Outsider", "login": "stat.outsider@example.com"})
        )
        with self.assertRaises(AccessError):
            self.Stat.with_user(outsider).mango_dashboard_data()
        supervisor = self.Stat.with_user(self.supervisor)
        self.assertEqual(len(supervisor.search([])), 2)
        data = supervisor.mango_dashboard_data(period="all", interval="week")
        self.assertEqual(data["totals"]["calls"], 2)
        with self.assertRaises(AccessError):
            supervisor.action_mango_rebuild()
        other = self.env["res.company"].create({"name": "Other company"})
        self.supervisor.company_ids |= other
        elsewhere = supervisor.with_context(allowed_company_ids=other.ids)
        self.assertFalse(elsewhere.search([]))
        self.assertEqual(
            elsewhere.mango_dashboard_data(period="all")["totals"]["calls"], 0
        )

    # ------------------------------------------------------------------
    # Weeks, months and call-back delays
    # ------------------------------------------------------------------

    LINES = ("74951234567", "74957654321")

    def make_history(self):
        """40 calls over four months: two employees, two lines, every direction
        and status, and call-back delays giving odd and even counts."""
        start = datetime(2026, 1, 26, 8, 0)
        calls = self.env["mango.call"]
        for index in range(40):
            status = ("answered", "missed", "answered", "failed")[index % 4]
            values = {"line_number": self.LINES[index % 2]}
            if status == "answered":
                values.update(wait_duration=5 + index, talk_duration=30 + 7 * index)
            calls |= self.make_call(
                self.agent_101 if index % 3 else self.agent_102,
                start + timedelta(days=index * 3, hours=index % 5),
                status,
                direction=("incoming", "outgoing", "incoming", "internal", "incoming")[
                    index % 5
                ],
                **values,
            )
        missed = calls.filtered(lambda c: c.status == "missed")
        answered = calls.filtered(lambda c: c.status == "answered")
        for index, call in enumerate(missed[:-1]):
            call.write(
                {
                    "callback_call_id": answered[index].id,
                    "time_to_callback": 60 * (index + 1) + (index % 3) * 7,
                }
            )
        self.Stat._mango_rebuild()
        return calls

    @staticmethod
    def median(values):
        values = sorted(values)
        if not values:
            return None
        middle = len(values) // 2
        if len(values) % 2:
            return float(values[middle])
        return (values[middle - 1] + values[middle]) / 2

    def expected_medians(self, calls, group_field):
        called_back = calls.filtered("callback_call_id")
        medians = {"__total__": self.median(called_back.mapped("time_to_callback"))}
        for call in called_back:
            key = (
                call.employee_user_id.id if group_field == "user" else call.line_number
            )
            medians.setdefault(key, [])
        for key in list(medians):
            if key == "__total__":
                continue
            medians[key] = self.median(
                called_back.filtered(
                    lambda c, k=key: (
                        (
                            c.employee_user_id.id
                            if group_field == "user"
                            else c.line_number
                        )
                        == k
                    )
                ).mapped("time_to_callback")
            )
        return medians

    def test_whole_history_matches_the_day_rows(self):
        calls = self.make_history()
        self.assertTrue(self.env["mango.call.stat.period"].sudo().search_count([]))
        stats = self.Stat.with_user(self.supervisor)
        for group_by in ("user", "line"):
            for interval in ("day", "week", "month"):
                fast = stats.mango_dashboard_data(
                    period="all", group_by=group_by, interval=interval
                )
                # Without translatable rules everything comes from the day rows
                # (and the delays through them): the reference figures.
                with patch.object(
                    type(self.Stat), "_mango_rules_for", lambda self, model: None
                ):
                    slow = stats.mango_dashboard_data(
                        period="all", group_by=group_by, interval=interval
                    )
                self.assertEqual(fast, slow, f"{group_by} × {interval}")
            self.assertEqual(fast["totals"]["calls"], 40)
            self.assertEqual(
                sum(point["calls"] for point in fast["series"]), 40, group_by
            )
            expected = self.expected_medians(calls, group_by)
            self.assertEqual(
                fast["totals"]["median_callback_time"], expected["__total__"]
            )
            for row in fast["rows"]:
                self.assertEqual(
                    row["median_callback_time"], expected.get(row["key"]), row
                )
        weeks = stats.mango_dashboard_data(period="all", interval="week")["series"]
        self.assertTrue(
            all(date.fromisoformat(p["date"]).weekday() == 0 for p in weeks)
        )
        months = stats.mango_dashboard_data(period="all", interval="month")["series"]
        self.assertEqual([p["date"][8:] for p in months], ["01"] * len(months))
        self.assertEqual(len(months), 5)

    def dashboard_by(self, method, **kwargs):
        """The dashboard of the supervisor with its medians found by ``method``
        (``sort``, ``band`` or ``rank``), and whether it was."""
        stats = self.Stat.with_user(self.supervisor)
        Bucket = type(self.env["mango.call.stat.callback.bucket"])
        Stat = type(self.Stat)
        used = []

        def spy(name):
            original = getattr(Stat, name)

            def wrapper(self, *args):
                used.append(name)
                return original(self, *args)

            return patch.object(Stat, name, wrapper)

        with (
            patch.object(
                mango_call_stat, "SORT_MEDIAN_LIMIT", 10**9 if method == "sort" else 0
            ),
            # The company rule cannot be put on the bands: the walk by rank.
            patch.object(
                Bucket,
                "_mango_rule_fields",
                frozenset() if method == "rank" else Bucket._mango_rule_fields,
            ),
            spy(f"_mango_medians_by_{method}"),
        ):
            data = stats.mango_dashboard_data(**kwargs)
        self.assertTrue(used, f"medians by {method}")
        return data

    def test_medians_by_band_and_by_rank_equal_medians_by_sort(self):
        calls = self.make_history()
        for group_by in ("user", "line"):
            by_sort = self.dashboard_by("sort", period="all", group_by=group_by)
            expected = self.expected_medians(calls, group_by)
            self.assertEqual(
                by_sort["totals"]["median_callback_time"], expected["__total__"]
            )
            self.assertEqual(
                {r["key"]: r["median_callback_time"] for r in by_sort["rows"]},
                {r["key"]: expected.get(r["key"]) for r in by_sort["rows"]},
            )
            for method in ("band", "rank"):
                self.assertEqual(
                    self.dashboard_by(method, period="all", group_by=group_by),
                    by_sort,
                    f"{method}, {group_by}",
                )

    @given(
        delays=st.lists(
            st.tuples(
                st.sampled_from(["a", "b", None]),  # employee
                st.sampled_from(["74951234567", "74957654321", None]),  # line
                st.one_of(
                    st.integers(0, 40),
                    st.integers(90, 1600),
                    st.integers(0, 200_000),
                    st.sampled_from(
                        [19, 20, 24, 25, 99, 100, 149, 150, 999, 1000, 1499, 10**6]
                    ),
                ),
            ),
            min_size=1,
            max_size=60,
        )
    )
    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def test_medians_by_band_of_any_delays(self, delays):
        """Any delays, with ties, across band edges and in one band: the band
        of the middle and the walk within it give ``percentile_cont``'s
        median, per employee, per line and overall."""
        users = {"a": self.agent_101.id, "b": self.agent_102.id, None: None}
        Stat = self.Stat.sudo()
        Callback = self.env["mango.call.stat.callback"].sudo()
        Bucket = self.env["mango.call.stat.callback.bucket"].sudo()
        cr = self.env.cr
        cr.execute("SAVEPOINT mango_band")
        try:
            cr.execute("DELETE FROM mango_call_stat_callback")
            cr.execute("DELETE FROM mango_call_stat_callback_bucket")
            for index, (user, line, delay) in enumerate(delays):
                cr.execute(
                    "INSERT INTO mango_call_stat_callback (call_id, date, account_id, "
                    "company_id, user_id, line_number, direction, delay) "
                    "VALUES (%s, '2026-03-02', %s, %s, %s, %s, 'incoming', %s)",
                    (
                        -index - 1,
                        self.mango_account.id,
                        self.mango_account.company_id.id,
                        users[user],
                        line,
                        delay,
                    ),
                )
            cr.execute(Stat._mango_bucket_insert_sql())
            for group_field in ("user_id", "line_number"):
                by_sort = Stat._mango_medians_by_sort(Callback._search([]), group_field)
                by_band = Stat._mango_medians_by_band(
                    Bucket._search([]), Callback._search([]), group_field
                )
                self.assertEqual(by_band, by_sort, group_field)
            # The band SQL counts into is the band Python reads back.
            cr.execute(
                SQL(
                    "SELECT delay, %s FROM mango_call_stat_callback",
                    mango_call_stat_rollup.delay_bucket_sql(SQL.identifier("delay")),
                )
            )
            for delay, band in cr.fetchall():
                self.assertEqual(mango_call_stat_rollup.delay_bucket(delay), band)
                width = mango_call_stat_rollup.delay_bucket_width(band)
                self.assertTrue(band <= delay < band + width, (delay, band, width))
                self.assertLessEqual(width, max(1, band // 2), "half at most")
        finally:
            cr.execute("ROLLBACK TO SAVEPOINT mango_band")
            self.env.invalidate_all()

    def test_refold_rewrites_weeks_months_and_delays_once(self):
        calls = self.make_history()
        reference = self.snapshot()
        Stat = self.Stat.sudo()
        call = calls.filtered(lambda c: c.status == "missed" and c.callback_call_id)[0]
        keys = Stat._mango_keys_of_calls(call)
        # The same fold applied again: nothing may count twice.
        Stat._mango_refresh(keys)
        Stat._mango_refresh(keys)
        self.assertEqual(self.snapshot(), reference)
        # A re-fold that changes the outcome: the day, its week, its month and
        # the delays move with it, exactly as a rebuild would have them.
        call.write(
            {
                "status": "answered",
                "callback_call_id": False,
                "time_to_callback": False,
                "wait_duration": 12,
                "talk_duration": 40,
                "user_id": call.employee_user_id.id,
            }
        )
        Stat._mango_refresh(keys)
        Stat._mango_refresh(keys)
        refreshed = self.snapshot()
        self.assertNotEqual(refreshed, reference)
        self.assertEqual(len(refreshed[1]), len(reference[1]) - 1)
        Stat._mango_rebuild()
        self.assertEqual(self.snapshot(), refreshed)

    def test_each_change_of_a_call_moves_only_its_contribution(self):
        """A call refreshed on its own after each kind of change (its marker,
        not its day's) leaves every table equal to a rebuild."""
        calls = self.make_history()
        self.assert_equal_to_rebuild()
        call = calls.filtered(lambda c: c.status == "answered")[0]
        other = (
            self.agent_102
            if call.employee_user_id == self.agent_101
            else (self.agent_101)
        )
        for label, values in (
            ("employee", {"employee_user_id": other.id, "user_id": other.id}),
            ("line", {"line_number": "74990000000"}),
            ("direction", {"direction": "outgoing"}),
            ("durations", {"wait_duration": 3.5, "talk_duration": 61.25}),
            ("status", {"status": "missed", "user_id": False, "direction": "incoming"}),
            ("another month", {"start_time": call.start_time + timedelta(days=40)}),
        ):
            previous = {call.id: {"status": call.status}}
            call.write(values)
            self.fold(call, previous)
            self.assert_equal_to_rebuild(label)
        # A call-back closes a missed call of another day: only the call-back is
        # folded, the missed call is marked through it.
        missed = calls.filtered(
            lambda c: (
                c.status == "missed"
                and c.direction == "incoming"
                and not c.callback_call_id
            )
        )[0]
        before = self.snapshot()
        callback = self.make_call(
            self.agent_101,
            missed.start_time + timedelta(days=9),
            "answered",
            direction="outgoing",
            wait_duration=4,
            talk_duration=50,
        )
        missed.write({"callback_call_id": callback.id, "time_to_callback": 777})
        callback.flush_recordset()
        callback._mango_step_refresh_statistics({callback.id: {"status": False}})
        self.env.cr.precommit.run()
        self.env.cr.execute(
            "SELECT call_id FROM mango_call_stat_dirty WHERE call_id IS NOT NULL"
        )
        self.assertEqual(
            {call_id for (call_id,) in self.env.cr.fetchall()},
            {callback.id, missed.id},
            "the fold marks its calls, not their days",
        )
        refreshed = self.assert_equal_to_rebuild("call-back")
        self.assertIn(777, [row[5] for row in refreshed[1]])
        self.assertEqual(len(refreshed[1]), len(before[1]) + 1)
        # The same fold again: nothing counts twice.
        self.fold(callback, {callback.id: {"status": "answered"}})
        self.assertEqual(self.snapshot(), refreshed)
        # The only call of a line leaves the finished statuses: its day row
        # goes, and so do its weeks and month.
        lone = self.make_call(
            self.agent_102,
            datetime(2025, 6, 15, 10, 0),
            "answered",
            line_number="74991111111",
            wait_duration=7,
            talk_duration=70,
        )
        self.fold(lone, {lone.id: {"status": False}})
        Period = self.env["mango.call.stat.period"].sudo()
        self.assertEqual(
            sorted(
                Period.search([("line_number", "=", "74991111111")]).mapped("row_count")
            ),
            [1, 1, 1, 1],
        )
        lone.write({"status": "in_progress"})
        self.fold(lone, {lone.id: {"status": "answered"}})
        self.assert_equal_to_rebuild("no longer finished")
        self.assertFalse(Period.search([("line_number", "=", "74991111111")]))
        self.assertFalse(self.Stat.sudo().search([("line_number", "=", "74991111111")]))
        # Calls removed from the log: a missed call called back, and a call-back
        # (its missed call loses it): their unlink marks them.
        missed = calls.filtered(lambda c: c.status == "missed" and c.callback_call_id)
        gone = missed[0] | missed[1].callback_call_id
        kept = missed[1]
        gone_ids = set(gone.ids)
        gone.unlink()
        refreshed = self.assert_equal_to_rebuild("unlinked")
        self.assertFalse(gone_ids & {row[0] for row in refreshed[3]})
        self.assertIn(kept.id, {row[0] for row in refreshed[3]})

    def test_random_changes_refreshed_call_by_call_equal_a_rebuild(self):
        """Any sequence of changes (employee, status in and out of the finished
        ones, direction, line, day, call-backs set, moved and removed), each
        batch refreshed through its fold's markers only, ends on a rebuild's
        tables."""
        rng = random.Random(20261206)
        calls = self.make_history()
        users = (self.agent_101, self.agent_102, self.env["res.users"])
        for batch in range(8):
            changed = self.env["mango.call"]
            previous = {}
            for _change in range(4):
                call = rng.choice(calls)
                previous.setdefault(call.id, {"status": call.status})
                kind = rng.choice(
                    ("employee", "status", "direction", "line", "day", "callback")
                )
                if kind == "employee":
                    user = rng.choice(users)
                    values = {"employee_user_id": user.id or False}
                elif kind == "status":
                    values = {
                        "status": rng.choice(
                            ("answered", "missed", "failed", "in_progress")
                        ),
                        "wait_duration": rng.randint(0, 30),
                        "talk_duration": rng.randint(0, 300),
                    }
                elif kind == "direction":
                    values = {
                        "direction": rng.choice(("incoming", "outgoing", "internal"))
                    }
                elif kind == "line":
                    values = {"line_number": rng.choice((*self.LINES, False))}
                elif kind == "day":
                    values = {
                        "start_time": call.start_time
                        + timedelta(days=rng.randint(-35, 35), hours=rng.randint(0, 23))
                    }
                else:
                    target = rng.choice((*calls.filtered("start_time"), None))
                    values = {
                        "callback_call_id": target.id if target else False,
                        "time_to_callback": rng.randint(1, 5000) if target else 0,
                    }
                call.write(values)
                changed |= call
            self.fold(changed, previous)
            self.assert_equal_to_rebuild(f"batch {batch}")

    def test_record_rules_on_other_fields(self):
        calls = self.make_history()
        stats = self.Stat.with_user(self.supervisor)
        model = self.env.ref("mango_telephony.model_mango_call_stat")
        # A rule on the direction: weeks and months cannot answer it, the
        # delays can.
        rule = self.env["ir.rule"].create(
            {
                "name": "Incoming only",
                "model_id": model.id,
                "domain_force": "[('direction', '=', 'incoming')]",
            }
        )
        incoming = calls.filtered(lambda c: c.direction == "incoming")
        for interval in ("week", "month"):
            data = stats.mango_dashboard_data(period="all", interval=interval)
            self.assertEqual(data["totals"]["calls"], len(incoming))
            self.assertEqual(data["totals"]["outgoing"], 0)
            self.assertEqual(
                data["totals"]["median_callback_time"],
                self.expected_medians(incoming, "user")["__total__"],
            )
            with patch.object(mango_call_stat, "SORT_MEDIAN_LIMIT", 0):
                self.assertEqual(
                    stats.mango_dashboard_data(period="all", interval=interval), data
                )
        # A rule on a counter: the delays are kept through their day rows.
        rule.domain_force = "[('answered_count', '=', 0)]"
        data = stats.mango_dashboard_data(period="all", interval="month")
        unanswered_days = self.Stat.sudo().search([("answered_count", "=", 0)])
        self.assertEqual(
            data["totals"]["calls"], sum(unanswered_days.mapped("call_count"))
        )
        self.assertEqual(
            data["totals"]["called_back"],
            sum(unanswered_days.mapped("called_back_count")),
        )
        self.assertIsNotNone(data["totals"]["median_callback_time"])

    def test_a_context_cannot_reshape_the_weekly_totals(self):
        """The totals are read summed per grouped value only when our own code
        asks, as superuser: a telephony administrator who sends the context
        key over RPC (a list) still reads the table's own rows, and even the
        real object is not obeyed without the superuser."""
        self.make_history()
        admin = self.env["res.users"].create(
            {
                "name": "Telephony admin",
                "login": "stat.admin@example.com",
                USER_GROUPS: [
                    Command.link(self.env.ref("mango_telephony.group_mango_admin").id)
                ],
            }
        )
        Period = self.env["mango.call.stat.period"].with_user(admin)
        rows = Period.search_read([], ["line_number", "call_count"], order="id")
        self.assertGreater(len(rows), 10)
        scope = [[], ["date"], ["call_count"]]
        for context in (
            scope,
            mango_call_stat_rollup.SummedPeriods([], ("date",), ("call_count",)),
        ):
            reshaped = Period.with_context(mango_period_groups=context)
            self.assertEqual(
                reshaped.search_read([], ["line_number", "call_count"], order="id"),
                rows,
            )
            self.assertEqual(
                reshaped._read_group([], ["line_number"], ["call_count:sum"]),
                Period._read_group([], ["line_number"], ["call_count:sum"]),
            )

    def test_pivot_groupings_from_weeks_and_months(self):
        self.make_history()
        stats = self.Stat.with_user(self.supervisor)
        measures = [
            "call_count:sum",
            "answered_rate:avg",
            "avg_wait:avg",
            "avg_talk:avg",
            "missed_pending_count:sum",
            "talk_total:sum",
        ]
        routed = [
            ([], measures, ["user_id", "date:week"], False),
            ([], measures, ["user_id", "date:week"], True),
            ([], ["__count", *measures], ["line_number", "date:month"], False),
            ([], measures, [], False),
            (
                [("date", ">=", "2026-02-01"), ("date", "<=", "2026-03-31")],
                measures,
                ["date:quarter", "user_id"],
                False,
            ),
            ([("user_id", "=", self.agent_101.id)], measures, ["date:year"], True),
        ]
        for domain, measure_specs, groupby, lazy in routed:
            with self.subTest(domain=domain, groupby=groupby, lazy=lazy):
                self.assertIsNotNone(
                    stats._mango_read_group_periods(
                        domain,
                        groupby,
                        ["__count"],
                        (),
                        0,
                        None,
                        None,
                    )
                )
                fast = stats.read_group(domain, measure_specs, groupby, lazy=lazy)
                with patch.object(
                    type(self.Stat),
                    "_mango_read_group_periods",
                    lambda self, *args: None,
                ):
                    slow = stats.read_group(domain, measure_specs, groupby, lazy=lazy)
                self.assertEqual(fast, slow)
                self.assertTrue(fast)
        if hasattr(models.BaseModel, "_read_grouping_sets"):  # Odoo 19.0
            # Odoo 19.0's pivot: all its groupings in one call, each routed alone.
            grouping_sets = [
                ["user_id", "date:week"],
                ["date:week"],
                ["user_id"],
                [],
                ["direction"],
            ]
            # Ordered as the web client asks: by every grouping's fields.
            order = "user_id, date:week, direction"
            fast = stats._read_grouping_sets([], grouping_sets, measures, order=order)
            with patch.object(
                type(self.Stat), "_mango_period_request", lambda self, *args: None
            ):
                slow = stats._read_grouping_sets(
                    [], grouping_sets, measures, order=order
                )
            self.assertEqual(fast, slow)
            self.assertTrue(all(fast))
            offered, queries = [], []
            requested = type(self.Stat)._mango_period_request
            Period = type(self.env["mango.call.stat.period"])
            read_sets = Period._read_grouping_sets

            def spy(model, domain, grouping, *args):
                answer = requested(model, domain, grouping, *args)
                offered.append((tuple(grouping), answer is not None))
                return answer

            def count(model, *args, **kwargs):
                queries.append(args[1])
                return read_sets(model, *args, **kwargs)

            with (
                patch.object(type(self.Stat), "_mango_period_request", spy),
                patch.object(Period, "_read_grouping_sets", count),
            ):
                stats._read_grouping_sets([], grouping_sets, measures, order=order)
            self.assertEqual(
                offered,
                [
                    (("user_id", "date:week"), True),
                    (("date:week",), True),
                    (("user_id",), True),
                    ((), True),
                    (("direction",), False),
                ],
                "the totals answer every grouping they hold, whatever the order",
            )
            self.assertEqual(
                queries,
                [[("user_id", "date:week"), ("date:week",)], [("user_id",), ()]],
                "one read of the weeks, one of the months",
            )
            with patch.object(
                type(self.Stat),
                "_mango_read_grouping_sets_periods",
                lambda self, domain, sets, *args: [[]] * len(sets),
            ):
                self.assertEqual(
                    stats._read_grouping_sets([], grouping_sets, measures),
                    [[]] * len(grouping_sets),
                    "every grouping is offered to the totals first",
                )
        # What only the day rows can answer (en_US: weeks from Sunday).
        for domain, groupby in (
            ([("date", ">=", "2026-02-02")], ["date:week"]),
            ([], ["date:day"]),
            ([], ["direction"]),
            ([], ["user_id", "date:week", "date:month"]),
            ([("date", ">=", "2026-02-03")], ["date:month"]),
            ([("direction", "=", "incoming")], ["user_id"]),
        ):
            with self.subTest(domain=domain, groupby=groupby):
                self.assertIsNone(
                    stats._mango_read_group_periods(
                        domain, groupby, ["__count"], (), 0, None, None
                    )
                )
        self.assertIsNone(
            stats._mango_read_group_periods(
                [], ["user_id"], ["answered_count:max"], (), 0, None, None
            )
        )
        # A telephony user's pivot holds their own figures only.
        own = self.Stat.with_user(self.agent_101).read_group(
            [], ["call_count:sum"], ["user_id"]
        )
        self.assertEqual([g["user_id"][0] for g in own], [self.agent_101.id])

    def test_grouped_reads_pause_the_garbage_collector(self):
        """The call log's and the statistics' grouped reads (read_group on
        18.0; formatted_read_group and formatted_read_grouping_sets, the web
        client's, on 19.0) run with the cyclic collector paused
        (group_labels.py), and leave it on after, also when they fail."""
        self.make_history()
        on_19 = "formatted_read_group" in dir(self.env["mango.call"])
        hook = "_web_read_group_format" if on_19 else "_read_group_format_result"
        seen = []
        # Odoo's hook, as every model has it (19.0's comes from web).
        base = type(self.env["base"])
        odoo_format = getattr(base, hook)

        def watching(model, *args):
            seen.append((model._name, gc.isenabled()))
            return odoo_format(model, *args)

        def grouped(model, groupby):
            if on_19:
                records = self.env[model]
                records.formatted_read_group([], groupby, ["__count"])
                return records.formatted_read_grouping_sets(
                    [], [groupby[:1], groupby], ["__count"]
                )
            return self.env[model].read_group([], ["__count"], groupby, lazy=False)

        self.assertTrue(gc.isenabled())
        with patch.object(base, hook, watching):
            grouped("mango.call.stat", ["user_id", "date:week"])
            grouped("mango.call", ["employee_user_id", "start_time:week", "status"])
        self.assertEqual(
            {name for name, _enabled in seen}, {"mango.call.stat", "mango.call"}
        )
        self.assertGreaterEqual(len(seen), 4 if on_19 else 2)
        self.assertFalse(any(enabled for _name, enabled in seen))
        self.assertTrue(gc.isenabled())
        with self.assertRaises(ValueError):
            grouped("mango.call", ["no_such_field"])
        self.assertTrue(gc.isenabled(), "back on after a read that failed")
        # Already paused by someone else: left paused for them to resume.
        gc.disable()
        try:
            grouped("mango.call", ["status"])
            self.assertFalse(gc.isenabled())
        finally:
            gc.enable()

    def test_group_labels_are_odoos(self):
        """Every group's label, bounds, domain, order and figures are Odoo's
        own when each distinct value is formatted once (group_labels.py): by
        day, week, month, quarter and year, alone, under an employee and over
        a status, in Sunday, Monday and Saturday weeks, on "Call analysis"
        and on the call log (from the statistics and from the log)."""
        self.make_history()
        # An employee nobody is, a call without a start: the empty values.
        self.make_call(self.env["res.users"], datetime(2026, 2, 12, 9, 0), "missed")
        unstarted = self.make_call(
            self.agent_102, datetime(2026, 2, 11, 9, 0), "missed"
        )
        unstarted.start_time = False
        self.env.flush_all()
        self.Stat._mango_rebuild()
        base = type(self.env["base"])
        web_formatting = hasattr(base, "_web_read_group_format")  # Odoo 19.0
        Lang = self.env["res.lang"]
        line = [("line_number", "=", self.LINES[0])]
        for code in ("en_US", "ru_RU", "ar_001"):
            Lang._activate_lang(code)
            for model, date_name, person, measures, context, by_status in (
                (
                    "mango.call.stat",
                    "date",
                    "user_id",
                    ["call_count:sum", "answered_rate:avg", "talk_total:sum"],
                    {},
                    "direction",
                ),
                (
                    "mango.call",
                    "start_time",
                    "employee_user_id",
                    ["__count", "talk_duration:sum"],
                    {"tz": "Europe/Moscow"},
                    "status",
                ),
                (  # another time zone: read from the log
                    "mango.call",
                    "start_time",
                    "employee_user_id",
                    ["__count", "talk_duration:sum"],
                    {"tz": "America/New_York"},
                    "status",
                ),
            ):
                records = (
                    self.env[model]
                    .with_user(self.supervisor)
                    .with_context(lang=code, **context)
                )
                for granularity in ("day", "week", "month", "quarter", "year"):
                    spec = f"{date_name}:{granularity}"
                    for domain, groupby in (
                        ([], [spec]),
                        ([], [person, spec]),
                        ([(1, "=", 1)], [person, spec]),
                        (line, [spec, person]),
                        ([], [person, spec, by_status]),
                        (line, [by_status, spec]),
                    ):
                        with self.subTest(
                            lang=code, model=model, context=context, groupby=groupby
                        ):
                            self.assert_groups_are_odoos(
                                records, base, domain, groupby, measures
                            )
                if web_formatting:
                    grouping_sets = [
                        [],
                        [person],
                        [f"{date_name}:week"],
                        [person, f"{date_name}:week", by_status],
                    ]
                    ours = records.formatted_read_grouping_sets(
                        line, grouping_sets, measures
                    )
                    with patch.object(
                        type(records),
                        "_web_read_group_format",
                        base._web_read_group_format,
                    ):
                        odoos = records.formatted_read_grouping_sets(
                            line, grouping_sets, measures
                        )
                    self.assertEqual(ours, odoos)
                    self.assertEqual(
                        [[list(group) for group in groups] for groups in ours],
                        [[list(group) for group in groups] for groups in odoos],
                    )
        # Odoo's formatting runs once per distinct value, not per group, and
        # a week once per worker: the next request formats the employees only.
        group_labels._date_formats.clear()
        stats = self.Stat.with_user(self.supervisor).with_context(lang="en_US")
        formatted = []
        odoo_format = models.BaseModel._read_group_format_result

        def counting(model, rows, groupby):
            formatted.append((tuple(groupby), len(rows)))
            return odoo_format(model, rows, groupby)

        with patch.object(models.BaseModel, "_read_group_format_result", counting):
            groups = stats.read_group(
                [], ["call_count:sum"], ["user_id", "date:week"], lazy=False
            )
            again = stats.read_group(
                [], ["call_count:sum"], ["user_id", "date:week"], lazy=False
            )
        weeks = {group["date:week"] for group in groups}
        users = {group["user_id"] for group in groups}
        self.assertGreater(len(groups), len(weeks))
        self.assertEqual(
            formatted,
            [
                (("user_id",), len(users)),
                (("date:week",), len(weeks)),
                (("user_id",), len(users)),
            ],
        )
        self.assertEqual(again, groups)

    def assert_groups_are_odoos(self, records, base, domain, groupby, measures):
        """``read_group`` (and on 19.0 ``formatted_read_group``) of
        ``records`` give what Odoo's own formatting gives, group by group."""
        for lazy in (False, True):
            ours = records.read_group(domain, measures, groupby, lazy=lazy)
            with patch.object(
                type(records),
                "_read_group_format_result",
                base._read_group_format_result,
            ):
                odoos = records.read_group(domain, measures, groupby, lazy=lazy)
            self.assertTrue(ours)
            self.assertEqual(ours, odoos)
            self.assertEqual(
                [list(group) for group in ours], [list(group) for group in odoos]
            )
        if hasattr(base, "_web_read_group_format"):  # Odoo 19.0
            ours = records.formatted_read_group(domain, groupby, measures)
            with patch.object(
                type(records), "_web_read_group_format", base._web_read_group_format
            ):
                odoos = records.formatted_read_group(domain, groupby, measures)
            self.assertTrue(ours)
            self.assertEqual(ours, odoos)
            self.assertEqual(
                [list(group) for group in ours], [list(group) for group in odoos]
            )

    def test_weeks_of_every_language(self):
        """Sunday (en_US), Monday (ru_RU) and Saturday (ar_001) weeks are each
        answered from weekly totals, with the figures the day rows give."""
        self.make_history()
        measures = ["__count", "call_count:sum", "answered_rate:avg", "avg_wait:avg"]
        Lang = self.env["res.lang"]
        for code, week_start, first_day in (
            ("en_US", "7", "2026-02-01"),
            ("ru_RU", "1", "2026-02-02"),
            ("ar_001", "6", "2026-01-31"),
        ):
            Lang._activate_lang(code)
            self.assertEqual(Lang._lang_get(code).week_start, week_start)
            stats = self.Stat.with_user(self.supervisor).with_context(lang=code)
            for domain, groupby in (
                ([], ["user_id", "date:week"]),
                ([], ["date:week"]),
                ([("date", ">=", first_day)], ["line_number", "date:week"]),
            ):
                with self.subTest(lang=code, domain=domain, groupby=groupby):
                    answered = stats._mango_read_group_periods(
                        domain, groupby, measures, (), 0, None, None
                    )
                    self.assertIsNotNone(answered, "served from the weekly totals")
                    with patch.object(
                        type(self.Stat),
                        "_mango_read_group_periods",
                        lambda self, *args: None,
                    ):
                        from_days = stats._read_group(domain, groupby, measures)
                    self.assertEqual(answered, from_days)
                    self.assertEqual(
                        stats._read_group(domain, groupby, measures), from_days
                    )
                    self.assertGreater(len(from_days), 1)
            # The call log itself counts the same calls per week (company and
            # user both in Moscow time).
            calls = (
                self.env["mango.call"]
                .with_context(lang=code, tz="Europe/Moscow")
                ._read_group(
                    [("account_id", "=", self.mango_account.id)],
                    ["start_time:week"],
                    ["__count"],
                )
            )
            weekly = stats._read_group([], ["date:week"], ["call_count:sum"])
            self.assertEqual(
                [(week.date(), count) for week, count in calls],
                [(week, count) for week, count in weekly],
            )
        # A first day no language of Odoo uses: the day rows answer.
        Lang._lang_get("en_US").week_start = "3"
        stats = self.Stat.with_user(self.supervisor).with_context(lang="en_US")
        self.assertIsNone(
            stats._mango_read_group_periods(
                [], ["date:week"], ["__count"], (), 0, None, None
            )
        )
        self.assertTrue(stats._read_group([], ["date:week"], ["call_count:sum"]))

    def test_call_log_pivot_from_the_statistics(self):
        """The call log's pivot and graph by employee, line, week and month
        give the log's own figures, read from the statistics, in each
        language's weeks; a ringing call is added from the log."""
        calls = self.make_history()
        # Not counted by the statistics: in progress, and without a start.
        self.make_call(self.agent_101, datetime(2026, 2, 10, 9, 0), "ringing")
        self.env.flush_all()
        self.assertEqual(len(calls), 40)
        Lang = self.env["res.lang"]
        measures = ["__count", "talk_duration:sum"]
        groupings = (
            ["employee_user_id", "start_time:week"],
            ["start_time:week"],
            ["employee_user_id"],
            ["line_number", "start_time:month"],
            ["start_time:quarter", "employee_user_id"],
            [],
            # The call log's default pivot: employee × week × status.
            ["employee_user_id", "start_time:week", "status"],
            ["start_time:week", "status"],
            ["status"],
        )
        for code in ("en_US", "ru_RU", "ar_001"):
            Lang._activate_lang(code)
            log = (
                self.env["mango.call"]
                .with_user(self.supervisor)
                .with_context(lang=code, tz="Europe/Moscow")
            )
            first_day = datetime.combine(
                date(2026, 2, 2)
                - timedelta(days=(7 - int(Lang._lang_get(code).week_start) + 1) % 7),
                datetime.min.time(),
            ) - timedelta(hours=3)  # local midnight, in UTC
            for domain in (
                [("account_id", "=", self.mango_account.id)],
                [("start_time", ">=", first_day)],
                [("employee_user_id", "=", self.agent_101.id)],
            ):
                for groupby in groupings:
                    with self.subTest(lang=code, domain=domain, groupby=groupby):
                        answered = log._mango_read_group_from_stats(
                            domain, groupby, measures, None
                        )
                        self.assertIsNotNone(answered, "served from the statistics")
                        with patch.object(
                            type(log),
                            "_mango_read_group_from_stats",
                            lambda self, *args: None,
                        ):
                            from_log = log._read_group(domain, groupby, measures)
                        self.assertEqual(answered, from_log)
                        # read_group orders by the groupings themselves.
                        self.assertIsNotNone(
                            log._mango_read_group_from_stats(
                                domain, groupby, measures, ",".join(groupby)
                            )
                        )
                        self.assertEqual(
                            log._read_group(domain, groupby, measures), from_log
                        )
            if hasattr(models.BaseModel, "_read_grouping_sets"):  # Odoo 19.0
                # The pivot's groupings in one call, the way 19.0 asks them.
                grouping_sets = [
                    [],
                    ["employee_user_id"],
                    ["start_time:week", "status"],
                    ["employee_user_id", "start_time:week", "status"],
                ]
                web_order = "employee_user_id, start_time:week, status"
                for order in (None, web_order):  # Odoo's default, the web client's
                    fast = log._read_grouping_sets(
                        [], grouping_sets, measures, order=order
                    )
                    with patch.object(
                        type(log), "_mango_stat_plan", lambda self, *args: None
                    ):
                        slow = log._read_grouping_sets(
                            [], grouping_sets, measures, order=order
                        )
                    self.assertEqual(fast, slow)
                    self.assertTrue(all(fast))
            graph = log.read_group(
                [], ["talk_duration:sum"], ["start_time:month", "employee_user_id"]
            )
            self.assertTrue(graph)
        log = self.env["mango.call"].with_user(self.supervisor)
        unstarted = self.make_call(
            self.agent_102, datetime(2026, 2, 11, 9, 0), "missed"
        )
        unstarted.start_time = False
        self.env.flush_all()
        log = log.with_context(tz="Europe/Moscow")
        answered = log._mango_read_group_from_stats(
            [], ["employee_user_id"], measures, None
        )
        self.assertEqual(
            answered, log._read_group([], ["employee_user_id"], measures, order="")
        )
        if hasattr(models.BaseModel, "_read_grouping_sets"):  # Odoo 19.0
            # The same, the groupings read at once: the call without a start
            # is added from the log to the statistics' rows.
            sets = [["employee_user_id"], [], ["employee_user_id", "status"]]
            rows_from_stats = type(log)._mango_rows_from_stats
            used = []

            def spy(model, rows, groupby, *args):
                used.append(tuple(groupby))
                return rows_from_stats(model, rows, groupby, *args)

            with patch.object(type(log), "_mango_rows_from_stats", spy):
                fast = log._read_grouping_sets([], sets, measures)
            self.assertEqual(
                used,
                [("employee_user_id",), (), ("employee_user_id", "status")],
                "from the statistics",
            )
            with patch.object(type(log), "_mango_stat_plan", lambda self, *args: None):
                self.assertEqual(fast, log._read_grouping_sets([], sets, measures))
        with patch.object(
            type(log), "_mango_read_group_from_stats", lambda self, *args: None
        ):
            self.assertEqual(
                answered, log._read_group([], ["employee_user_id"], measures)
            )
        # A week only the call without a start is in: the log answers.
        self.assertIsNone(
            log._mango_read_group_from_stats([], ["start_time:week"], measures, None)
        )
        # What only the log answers: another time zone, a status, an average,
        # a bound that is not a midnight of the company.
        for context, domain, groupby, measure_specs in (
            ({"tz": "Europe/Helsinki"}, [], ["start_time:week"], ["__count"]),
            ({"tz": "Europe/Moscow"}, [("status", "=", "missed")], [], ["__count"]),
            ({"tz": "Europe/Moscow"}, [], ["status", "employee_user_id"], ["__count"]),
            ({"tz": "Europe/Moscow"}, [], [], ["wait_duration:avg"]),
            (
                {"tz": "Europe/Moscow"},
                [("start_time", ">=", datetime(2026, 2, 2, 0, 0))],
                [],
                ["__count"],
            ),
        ):
            with self.subTest(context=context, domain=domain, groupby=groupby):
                self.assertIsNone(
                    log.with_context(**context)._mango_read_group_from_stats(
                        domain, groupby, measure_specs, None
                    )
                )
        # A day waiting for its refresh: the log answers until it is refreshed.
        self.env["mango.call.stat.dirty"]._mango_mark(
            {(self.mango_account.id, date(2026, 2, 2))}
        )
        self.assertIsNone(
            log._mango_read_group_from_stats([], ["employee_user_id"], measures, None)
        )
        mango_refresh_statistics(self.env)
        self.assertIsNotNone(
            log._mango_read_group_from_stats([], ["employee_user_id"], measures, None)
        )
        # A telephony user's rules (their own calls) are not the statistics'.
        own = self.env["mango.call"].with_user(self.agent_101)
        self.assertIsNone(
            own._mango_read_group_from_stats(
                [], ["employee_user_id"], ["__count"], None
            )
        )

    def test_rebuild_puts_back_the_ledger_keys_and_indexes(self):
        """The rebuild sets the ledger's indexes aside while it fills it: they
        are all back afterwards, and its foreign keys still hold."""
        cr = self.env.cr

        def ledger_schema():
            cr.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'mango_call_stat_contribution'::regclass "
                "ORDER BY 1"
            )
            constraints = cr.fetchall()
            cr.execute(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'mango_call_stat_contribution' ORDER BY 1"
            )
            return constraints, cr.fetchall()

        before = ledger_schema()
        self.assertEqual(
            sorted(
                name for name, definition in before[0] if "FOREIGN KEY" in definition
            ),
            [
                "mango_call_stat_contribution_account_id_fkey",
                "mango_call_stat_contribution_user_id_fkey",
            ],
        )
        self.make_history()
        self.assertEqual(ledger_schema(), before)
        with (
            self.assertRaises(psycopg2.errors.ForeignKeyViolation),
            self.env.cr.savepoint(),
            mute_logger("odoo.sql_db"),
        ):
            cr.execute(
                "UPDATE mango_call_stat_contribution SET user_id = -1 "
                "WHERE id = (SELECT min(id) FROM mango_call_stat_contribution)"
            )

    def test_upgrade_from_1_3_0_fills_the_ledger(self):
        """A database from 1.3.0 has day rows, weeks, months and delays but no
        ledger (and delays without their call): the update rebuilds them once,
        and the refresh of a call then goes on from there."""
        calls = self.make_history()
        full = self.snapshot()
        self.assertEqual(len(full[3]), len(calls), "one ledger row per call")
        self.env.cr.execute("DELETE FROM mango_call_stat_contribution")
        self.env.cr.execute("UPDATE mango_call_stat_callback SET call_id = NULL")
        mango_call_stat_rollup.mango_derive_once(self.env)
        self.assertEqual(self.snapshot(), full)
        call = calls.filtered(lambda c: c.status == "failed")[0]
        call.write({"status": "answered", "wait_duration": 9, "talk_duration": 90})
        self.fold(call, {call.id: {"status": "failed"}})
        self.assertNotEqual(self.assert_equal_to_rebuild(), full)
        # Once filled, an update leaves the tables alone.
        with patch.object(
            type(self.Stat), "_mango_rebuild", side_effect=AssertionError("rebuilt")
        ):
            mango_call_stat_rollup.mango_derive_once(self.env)

    def test_upgrade_from_1_4_0_counts_the_bands(self):
        """A database from 1.4.0 has every table but the bands of delays: the
        update counts them from the delays, without a rebuild, and the refresh
        of a call then goes on from there."""
        calls = self.make_history()
        full = self.snapshot()
        self.assertTrue(full[4], "bands of the delays")
        self.env.cr.execute("DELETE FROM mango_call_stat_callback_bucket")
        with patch.object(
            type(self.Stat), "_mango_rebuild", side_effect=AssertionError("rebuilt")
        ):
            mango_call_stat_rollup.mango_derive_once(self.env)
        self.assertEqual(self.snapshot(), full)
        missed = calls.filtered(lambda c: c.status == "missed" and c.callback_call_id)
        missed[0].write({"time_to_callback": 4321})
        self.fold(missed[0], {missed[0].id: {"status": "missed"}})
        self.assertIn((4000, 1), [row[5:] for row in self.assert_equal_to_rebuild()[4]])

    def test_upgrade_from_1_2_0_sums_the_new_weeks(self):
        """A database from 1.2.0 has Monday weeks and months only: the update
        sums the Sunday and Saturday weeks from its day rows."""
        self.make_history()
        full = self.snapshot()
        self.env.cr.execute(
            "DELETE FROM mango_call_stat_period WHERE granularity LIKE 'week_%'"
        )
        mango_call_stat_rollup.mango_derive_once(self.env)
        self.assertEqual(self.snapshot(), full)
