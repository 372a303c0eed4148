"""A company's time zone changes: the statistics are rebuilt at once, and
then count the new zone's days."""

from datetime import datetime

from odoo.tests import TransactionCase, tagged

from .calls_common import MangoCallsMixin


@tagged("post_install", "-at_install")
class TestStatisticsTimeZone(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.partner_id.tz = "Europe/Moscow"
        cls.mango_setup_calls()
        cls.rebuild = cls.env.ref("mango_telephony.ir_cron_mango_call_stat_rebuild")

    def rebuild_triggers(self):
        return (
            self.env["ir.cron.trigger"]
            .sudo()
            .search_count([("cron_id", "=", self.rebuild.id)])
        )

    def test_zone_change_rebuilds_the_days(self):
        # 22:30 UTC: 01:30 the next day in Moscow, the same day in London.
        self.env["mango.call"].sudo().create(
            {
                "account_id": self.mango_account.id,
                "company_id": self.env.company.id,
                "entry_id": "tz-change-1",
                "status": "answered",
                "direction": "incoming",
                "start_time": datetime(2026, 3, 10, 22, 30),
                "employee_user_id": self.agent_101.id,
                "customer_number_e164": "+79031234567",
            }
        )
        Stat = self.env["mango.call.stat"].sudo()
        Stat._mango_rebuild()
        self.assertEqual(Stat.search([]).mapped("date"), [datetime(2026, 3, 11).date()])
        before = self.rebuild_triggers()

        self.env.company.partner_id.tz = "Europe/London"
        self.assertEqual(self.rebuild_triggers(), before + 1)
        # What the triggered run does (in this transaction: the cron's own
        # would wait on this test's locks).
        self.assertEqual(self.rebuild.code.strip(), "model._mango_cron_rebuild()")
        Stat._mango_cron_rebuild()
        Stat.invalidate_model()
        self.assertEqual(Stat.search([]).mapped("date"), [datetime(2026, 3, 10).date()])

    def test_other_zone_changes_trigger_nothing(self):
        before = self.rebuild_triggers()
        # A salesperson's own zone, a contact's: not the statistics' days.
        self.agent_101.tz = "Asia/Vladivostok"
        self.env["res.partner"].create({"name": "Customer"}).tz = "Europe/Helsinki"
        # The company's zone written again unchanged.
        self.env.company.partner_id.tz = "Europe/Moscow"
        self.assertEqual(self.rebuild_triggers(), before)
