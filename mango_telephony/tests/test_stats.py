"""Call statistics: the reporting table stays equal to the call log, and the
dashboard's figures are right."""

from datetime import date, datetime, timedelta

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged

from .calls_common import MangoCallsMixin

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
                    "groups_id": [
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
        # The table is refreshed when the worker's transaction commits.
        self.env.cr.precommit.run()
        self.env.invalidate_all()
        self.env.cr.execute(
            "SELECT date, account_id, user_id, line_number, direction, "
            + ", ".join(VALUE_FIELDS)
            + ", callback_times FROM mango_call_stat ORDER BY 1, 2, 3, 4, 5"
        )
        return self.env.cr.fetchall()

    def run_scenario(self, scenario, **options):
        result = self.mango_sim.play(scenario, wait=False, **options)
        self.mango_ingest([(e["path"], e["payload"]) for e in result["planned"]])
        self.mango_process_all()
        self.env.cr.precommit.run()
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
        self.assertTrue(incremental)
        self.assertEqual(sum(row[5] for row in incremental), 3)
        self.Stat._mango_rebuild()
        self.assertEqual(self.snapshot(), incremental)

    def test_refresh_is_idempotent(self):
        call = self.run_scenario("incoming_answered", extension="101")
        before = self.snapshot()
        keys = self.Stat._mango_keys_of_calls(call)
        self.Stat._mango_refresh(keys)
        self.Stat._mango_refresh(keys)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.Stat.sudo().search_count([]), len(before))

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
        self.Stat._mango_rebuild()
        with self.assertRaises(AccessError):
            self.Stat.with_user(self.agent_101).search([])
        with self.assertRaises(AccessError):
            self.Stat.with_user(self.agent_101).mango_dashboard_data()
        self.assertTrue(self.Stat.with_user(self.supervisor).search([]))
        with self.assertRaises(AccessError):
            self.Stat.with_user(self.supervisor).action_mango_rebuild()
        other = self.env["res.company"].create({"name": "Other company"})
        self.supervisor.company_ids |= other
        self.assertFalse(
            self.Stat.with_user(self.supervisor)
            .with_context(allowed_company_ids=other.ids)
            .search([])
        )
