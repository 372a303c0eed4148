import datetime as dt
import re

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS
from odoo.addons.mango_telephony.tests.common import MangoSimulatorMixin

# 2026-11-25 is a Wednesday. The calendar below works 09:00-18:00 Moscow time
# (06:00-15:00 UTC) on weekdays.
WEDNESDAY_NOON_UTC = dt.datetime(2026, 11, 25, 9, 0)
SATURDAY_NOON_UTC = dt.datetime(2026, 11, 28, 9, 0)
MONDAY_OPENING_UTC = dt.datetime(2026, 11, 30, 6, 0)


class MangoCallbackMixin(MangoSimulatorMixin):
    @classmethod
    def mango_callback_setup(cls):
        cls.mango_sim = cls.mango_start_class_simulator()
        cls.mango_account = cls.mango_create_account(cls.mango_sim)
        cls.website = cls.env["website"].browse(1)
        cls.line = cls.env["mango.line"].create(
            {
                "account_id": cls.mango_account.id,
                "line_id": "400300001",
                "number": "74951234567",
                "name": "Main",
            }
        )
        cls.calendar = cls.env["resource.calendar"].create(
            {
                "name": "Sales 9-18 Moscow",
                "tz": "Europe/Moscow",
                "attendance_ids": [
                    (
                        0,
                        0,
                        {
                            "name": f"Day {day}",
                            "dayofweek": str(day),
                            "hour_from": 9,
                            "hour_to": 18,
                            "day_period": "morning",
                        },
                    )
                    for day in range(5)
                ],
            }
        )
        cls.follow_up_user = cls.env["res.users"].create(
            {
                "name": "Follow-up Fiona",
                "login": "mango_cb_fiona",
                "email": "fiona@example.com",
                USER_GROUPS: [
                    (6, 0, [cls.env.ref("sales_team.group_sale_salesman").id])
                ],
            }
        )
        cls.env["mango.callback.widget"].search(
            [("website_id", "=", cls.website.id)]
        ).unlink()
        cls.widget = cls.env["mango.callback.widget"].create(
            {
                "website_id": cls.website.id,
                "account_id": cls.mango_account.id,
                "calendar_id": cls.calendar.id,
                "target_type": "group",
                "group_extension": "900",
                "line_id": cls.line.id,
                "allowed_country_ids": [(6, 0, [cls.env.ref("base.ru").id])],
                "activity_user_id": cls.follow_up_user.id,
                "countdown_seconds": 25,
            }
        )

    def close_now(self):
        """Calling hours that exclude this moment: one hour, three days from now."""
        weekday = (dt.datetime.now().weekday() + 3) % 7
        self.calendar.attendance_ids = [(5, 0, 0)] + [
            (
                0,
                0,
                {
                    "name": "Only hour",
                    "dayofweek": str(weekday),
                    "hour_from": 10,
                    "hour_to": 11,
                    "day_period": "morning",
                },
            )
        ]

    def page_token(self):
        """The CSRF token of the widget's form on the home page (HTTP tests)."""
        html = self.url_open("/").text
        # Either quoting: Odoo 19.0 writes the attributes of a kept page with ''.
        match = re.search(r"""name=["']csrf_token["'] value=["']([^"']+)["']""", html)
        self.assertTrue(match, "the widget's form carries a CSRF token")
        return match.group(1)
