"""IP telephony's menus and views in the browser, as an administrator and as each
telephony role (see click_everywhere.py)."""

from odoo.tests import tagged

from .calls_common import MangoCallsMixin
from .click_everywhere import MangoClickEverywhereMixin
from .common import MangoHttpCase

# Extensions of the simulated PBX, one per role that takes calls.
EXTENSIONS = {
    "telephony_user": "102",
    "recording_listener": "103",
    "telephony_supervisor": "104",
}


@tagged("post_install", "-at_install")
class TestClickEverywhere(MangoClickEverywhereMixin, MangoCallsMixin, MangoHttpCase):
    mango_addon = "mango_telephony"
    mango_extended_actions = (
        {
            "action": "contacts.action_contacts",
            "views": ("list", "form"),
            "domain": [("phone", "!=", False)],
        },
        {
            "action": "crm.crm_lead_action_pipeline",
            "views": ("list", "form"),
            "domain": [("phone", "!=", False)],
        },
        {"action": "crm.crm_lead_all_leads", "views": ("list",)},
        {
            "action": "base.action_res_users",
            "views": ("form",),
            "groups": "base.group_erp_manager",
        },
        {
            "action": "base_setup.action_general_configuration",
            "views": ("form",),
            "groups": "base.group_system",
        },
    )
    mango_navigation_buttons = {
        "res.config.settings": ("action_mango_open_account",),
    }
    mango_record_domains = {"mango.call": [("recording_ids", "!=", False)]}

    @classmethod
    def mango_setup_records(cls):
        cls.env.company.country_id = cls.env.ref("base.ru")
        account = cls.mango_account
        account.action_mango_refresh_lines()
        for role, extension in EXTENSIONS.items():
            cls.env["mango.account.user"].create(
                {
                    "account_id": account.id,
                    "user_id": cls.mango_role_users[role].id,
                    "extension": extension,
                }
            )
        # Real calls, folded from the events Mango sends: with legs, a recording,
        # a missed call's follow-up activity and statistics.
        for extension in EXTENSIONS.values():
            cls.mango_fold_scenario("incoming_answered", extension=extension)
        cls.mango_fold_scenario(
            "incoming_missed_no_operator", from_number="79035550000"
        )
        # A signed event the webhook refused, as the settings page lists them.
        cls.env["mango.refused.event"]._mango_keep(
            account,
            "/mango/events/call",
            '{"entry_id": "MTAx", "seq": [1]',
            "not_json",
            None,
            "127.0.0.1",
        )

        # A click-to-call, so that the PBX commands list has a row to open.
        cls.env["res.users"].with_user(
            cls.mango_role_users["telephony_user"]
        ).mango_click_to_call("+79035550000")

    def mango_extra_steps(self, env):
        # The user menu's "Preferences": the Telephony section of one's own user.
        return [
            {
                "label": "Preferences",
                "action": self.env.ref("base.action_res_users_my").id,
                "viewType": "form",
                "resId": env.uid,
                "dialog": True,
            }
        ]
