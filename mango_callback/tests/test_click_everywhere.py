"""The call-back widget's menus and views in the browser (Website → Site →
Call-back requests, Website → Configuration → Callback widget), as an administrator
and as each telephony role (see mango_telephony/tests/click_everywhere.py)."""

from odoo import Command
from odoo.tests import tagged

from odoo.addons.mango_telephony.tests.click_everywhere import (
    MangoClickEverywhereMixin,
)
from odoo.addons.mango_telephony.tests.common import MangoHttpCase


@tagged("post_install", "-at_install")
class TestClickEverywhere(MangoClickEverywhereMixin, MangoHttpCase):
    mango_addon = "mango_callback"
    mango_record_domains = {"mango.callback.request": [("state", "!=", "refused")]}

    @classmethod
    def mango_setup_records(cls):
        """A widget on the website, and what visitors left through it: a
        request the PBX calls and one refused for its number."""
        account = cls.mango_account
        account.action_mango_refresh_lines()
        calendar = cls.env["resource.calendar"].create(
            {
                "name": "Sales 9-18 Moscow",
                "tz": "Europe/Moscow",
                "attendance_ids": [
                    Command.create(
                        {
                            "name": f"Day {day}",
                            "dayofweek": str(day),
                            "hour_from": 9,
                            "hour_to": 18,
                            "day_period": "morning",
                        }
                    )
                    for day in range(5)
                ],
            }
        )
        website = cls.env["website"].search([], limit=1)
        cls.env["mango.callback.widget"].search(
            [("website_id", "=", website.id)]
        ).unlink()
        widget = cls.env["mango.callback.widget"].create(
            {
                "website_id": website.id,
                "account_id": account.id,
                "calendar_id": calendar.id,
                "target_type": "group",
                "group_extension": "200",
                "line_id": account.line_ids[:1].id,
                "allowed_country_ids": [Command.set(cls.env.ref("base.ru").ids)],
            }
        )
        Request = cls.env["mango.callback.request"]
        Request._mango_submit(
            widget, {"phone": "+7 916 555-12-34", "name": "Olga"}, "10.0.0.1"
        )
        Request._mango_submit(widget, {"phone": "+1 415 555 0132"}, "10.0.0.2")
