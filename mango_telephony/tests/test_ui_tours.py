"""Browser tours: call buttons, the incoming-call card, statistics views."""

import json
import threading
import time
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api
from odoo.tests import tagged

from odoo.addons.bus.models.bus import channel_with_db, hashable
from odoo.addons.bus.websocket import WebsocketConnectionHandler
from odoo.addons.mango_telephony.compat.contact_phones import MOBILE_INPUT, phone_values
from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from .calls_common import MangoCallsMixin
from .common import (
    MangoHttpCase,
    mango_load_languages,
    push_bus_notifications,
    wait_for_bus_subscription,
)

CUSTOMER = "79031234567"


@tagged("post_install", "-at_install")
class TestTelephonyTours(MangoCallsMixin, MangoHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()
        for user in (cls.agent_101, cls.agent_102):
            user.password = user.login
        cls.salesperson = cls.env["res.users"].create(
            {"name": "Boris Sales", "login": "boris.tour@example.com"}
        )
        company = cls.env["res.partner"].create(
            {
                "name": "Roga & Kopyta LLC",
                "is_company": True,
                "user_id": cls.salesperson.id,
            }
        )
        cls.partner = cls.env["res.partner"].create(
            {
                "name": "Olga Customer",
                "phone": "+7 903 123-45-67",
                "parent_id": company.id,
            }
        )

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()
        self.mango_sim.clear_commands()

    def test_click_to_call_from_partner_form(self):
        # A contact manager edits the form: the button sits next to the input.
        self.agent_101[USER_GROUPS] |= self.env.ref("base.group_partner_manager")
        self.start_tour(
            f"/odoo/res.partner/{self.partner.id}",
            "mango_click_to_call_tour",
            login=self.agent_101.login,
        )
        commands = self.mango_sim.commands("commands/callback")
        self.assertEqual(len(commands), 1)
        payload = commands[0]["payload"]
        self.assertEqual(str(payload["from"]["extension"]), "101")
        self.assertEqual(payload["to_number"], CUSTOMER)
        click = self.env["mango.click.to.call"].search(
            [("command_id", "=", payload["command_id"])]
        )
        self.assertEqual(click.user_id, self.agent_101)
        self.assertEqual(
            (click.res_model, click.res_id), ("res.partner", self.partner.id)
        )

    def test_softphone_link(self):
        # Agent 102 may not edit contacts: the button follows the read-only link.
        self.agent_102.write(
            {"mango_call_mode": "softphone", "mango_softphone_scheme": "callto"}
        )
        self.start_tour(
            f"/odoo/res.partner/{self.partner.id}",
            "mango_softphone_tour",
            login=self.agent_102.login,
        )
        self.assertFalse(self.mango_sim.commands("commands/callback"))

    def _card_tour(self, tour, user, extension, ring_seconds=4, talk_seconds=4):
        """Mango posts a call ringing ``user``'s extension to this server's /mango
        routes; the worker folds the events and the card reaches ``user``'s browser
        over the bus (websockets are off in tests unless allowed, as bus's own
        tests do) while ``tour`` runs there.

        :return: ``[(channel, payload)]`` of the card messages sent
        """
        self.startPatcher(
            patch.object(
                WebsocketConnectionHandler, "websocket_allowed", return_value=True
            )
        )
        # Earlier tests' calls still on their way must not reach this server.
        self.mango_wait_idle()
        self.mango_sim.set_webhook(self.base_url() + "/mango")
        self.addCleanup(self.mango_sim.set_webhook, None)
        # Events still on their way must not reach the next test's transaction.
        self.addCleanup(self.mango_wait_idle)
        channel = hashable(channel_with_db(self.registry.db_name, user.partner_id))
        failures = []
        sent = []
        seen = set()

        def deliver(fn, *args, **kwargs):
            result = fn(*args, **kwargs)
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                while env["mango.event"]._mango_process_pending():
                    pass
                cr.flush()
                for note in env["bus.bus"].search([("id", "not in", list(seen))]):
                    seen.add(note.id)
                    message = json.loads(note.message)
                    if message["type"] == "mango_call_card":
                        sent.append((json.loads(note.channel), message["payload"]))
            push_bus_notifications(channel)
            return result

        def drive():
            try:
                wait_for_bus_subscription(channel)
                time.sleep(1)
                result = deliver(
                    self.mango_sim.play,
                    "incoming_answered",
                    live=True,
                    extension=extension,
                    from_number=CUSTOMER,
                )
                time.sleep(ring_seconds)
                deliver(self.mango_sim.live_action, result["entry_id"], "answer")
                time.sleep(talk_seconds)
                deliver(self.mango_sim.live_action, result["entry_id"], "hangup")
            except Exception as error:  # noqa: BLE001 - reported by the test
                failures.append(error)

        driver = threading.Thread(target=drive, name="mango-tour-driver")
        driver.start()
        try:
            self.start_tour("/odoo", tour, login=user.login)
        finally:
            driver.join(60)
        self.assertFalse(failures, failures)
        return sent

    def test_incoming_card(self):
        sent = self._card_tour("mango_incoming_card_tour", self.agent_101, "101")
        recipients = {tuple(channel_[1:]) for channel_, _payload in sent}
        self.assertEqual(recipients, {("res.partner", self.agent_101.partner_id.id)})
        other = hashable(
            channel_with_db(self.registry.db_name, self.agent_102.partner_id)
        )
        self.assertNotIn(list(other), [c for c, _p in sent])
        self.assertEqual(
            [p["state"] for _c, p in sent], ["ringing", "connected", "ended"]
        )

    def _earlier_call(self, user):
        """An answered call of the customer, answered by a colleague with a long
        name: the card lists it under "last calls"."""
        colleague = (
            self.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {"name": "Mikaela Virtanen-Lindqvist", "login": f"mikaela.{user.id}"}
            )
        )
        self.env["mango.call"].sudo().create(
            {
                "account_id": self.mango_account.id,
                "company_id": self.env.company.id,
                "entry_id": f"earlier-{user.id}",
                "status": "answered",
                "direction": "incoming",
                "start_time": datetime.now() - timedelta(days=2),
                "customer_number_e164": "+" + CUSTOMER,
                "caller_number": CUSTOMER,
                # Taken by the user, answered by the colleague after a transfer:
                # the user may read it, and the card names who answered.
                "user_id": colleague.id,
                "employee_user_id": user.id,
                "talk_duration": 137,
            }
        )

    def test_incoming_card_in_russian_closes_itself(self):
        """The last calls in the user's language, names whole, and the card gone
        a few seconds after the call."""
        mango_load_languages(self.env)
        self.agent_101.lang = "ru_RU"
        self._earlier_call(self.agent_101)
        sent = self._card_tour("mango_incoming_card_closes_tour", self.agent_101, "101")
        ringing = next(p for _c, p in sent if p["state"] == "ringing")
        self.assertEqual(
            (
                ringing["calls"][0]["direction_label"],
                ringing["calls"][0]["status_label"],
            ),
            ("Входящий", "Отвечен"),
        )

    def test_incoming_card_in_finnish_kept_after_the_call(self):
        """A user who keeps ended cards closes them themselves."""
        mango_load_languages(self.env)
        self.agent_102.write({"lang": "fi_FI", "mango_card_keep_open": True})
        self._earlier_call(self.agent_102)
        self._card_tour("mango_incoming_card_kept_tour", self.agent_102, "102")

    def _statistics_supervisor(self):
        """A supervisor, and four incoming calls of agent 101 (three answered)."""
        supervisor = (
            self.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {
                    "name": "Tour Supervisor",
                    "login": "tour.supervisor@example.com",
                    "password": "tour.supervisor@example.com",
                    USER_GROUPS: [
                        Command.link(
                            self.env.ref("mango_telephony.group_mango_supervisor").id
                        ),
                        Command.link(self.env.ref("sales_team.group_sale_salesman").id),
                    ],
                }
            )
        )
        start = datetime.now() - timedelta(days=3)
        Call = self.env["mango.call"].sudo()
        # Three days ago, and one today: this week's chart has a bar for sure.
        for index, status in enumerate(("answered", "answered", "missed", "answered")):
            Call.create(
                {
                    "account_id": self.mango_account.id,
                    "company_id": self.env.company.id,
                    "entry_id": f"tour-stat-{index}",
                    "status": status,
                    "direction": "incoming",
                    "start_time": (
                        datetime.now() - timedelta(minutes=5)
                        if index == 3
                        else start + timedelta(minutes=index)
                    ),
                    "employee_user_id": self.agent_101.id,
                    "line_number": "74951234567",
                    "wait_duration": 12,
                    "talk_duration": 60 if status == "answered" else 0,
                }
            )
        self.env["mango.call.stat"]._mango_rebuild()
        return supervisor

    def test_statistics_views(self):
        supervisor = self._statistics_supervisor()
        self.start_tour(
            "/odoo/action-mango_telephony.mango_call_stat_dashboard_action",
            "mango_stats_tour",
            login=supervisor.login,
        )

    def test_statistics_in_russian(self):
        """Rates in the reader's notation ("75,0 %", not "75.0 %"), durations in
        their words."""
        mango_load_languages(self.env)
        supervisor = self._statistics_supervisor()
        supervisor.lang = "ru_RU"
        self.start_tour(
            "/odoo/action-mango_telephony.mango_call_stat_dashboard_action",
            "mango_stats_l10n_tour",
            login=supervisor.login,
        )

    def test_one_call_button_per_phone_field(self):
        """Ours replaces Odoo's tel: "Call" link and never doubles up, whether the
        form is editable or read-only, in forms and lists, on partners, leads and
        employees."""
        self.partner[MOBILE_INPUT] = "+7 903 765-43-21"
        editor = self.agent_101
        lead = self.env["crm.lead"].create(
            {
                "name": "Olga wants 40 chairs",
                "type": "opportunity",
                "partner_id": self.partner.id,
                **phone_values(
                    self.env["crm.lead"],
                    phone="+7 903 123-45-67",
                    mobile="+7 903 765-43-21",
                ),
                "user_id": editor.id,
            }
        )
        editor[USER_GROUPS] |= self.env.ref("base.group_partner_manager")
        editor[USER_GROUPS] |= self.env.ref("sales_team.group_sale_salesman")
        reader = self.agent_102
        reader[USER_GROUPS] -= self.env.ref("base.group_partner_manager")
        cases = [
            (
                f"/odoo/res.partner/{self.partner.id}",
                editor,
                "mango_phone_buttons_tour",
            ),
            (
                f"/odoo/res.partner/{self.partner.id}",
                reader,
                "mango_phone_buttons_tour",
            ),
            (f"/odoo/crm.lead/{lead.id}", editor, "mango_phone_buttons_tour"),
            (
                "/odoo/action-base.action_partner_form?view_type=list",
                editor,
                "mango_phone_buttons_list_tour",
            ),
        ]
        if "hr.employee" in self.env:
            employee = self.env["hr.employee"].create(
                {
                    "name": "Ivan Office",
                    "work_phone": "+7 495 111-22-33",
                    "mobile_phone": "+7 903 111-22-33",
                }
            )
            admin = self.env.ref("base.user_admin")
            cases.append(
                (f"/odoo/hr.employee/{employee.id}", admin, "mango_phone_buttons_tour")
            )
        for url, user, tour in cases:
            with self.subTest(url=url, login=user.login):
                self.start_tour(url, tour, login=user.login)

    def test_call_log_reads_for_people(self):
        """The call list and form: the employee and line instead of a SIP device,
        numbers formatted, durations as mm:ss."""
        self.env["mango.call"].sudo().create(
            {
                "account_id": self.mango_account.id,
                "company_id": self.env.company.id,
                "entry_id": "tour-log-outgoing",
                "status": "answered",
                "direction": "outgoing",
                "start_time": datetime.now() - timedelta(minutes=5),
                "employee_user_id": self.agent_101.id,
                "employee_extension": "101",
                "caller_number": "sip:agent101@vpbx400012345.mangosip.ru",
                "caller_number_e164": "sip:agent101@vpbx400012345.mangosip.ru",
                "called_number": CUSTOMER,
                "called_number_e164": "+" + CUSTOMER,
                "customer_number_e164": "+" + CUSTOMER,
                "line_number": "74951234567",
                "wait_duration": 12,
                "talk_duration": 65,
            }
        )
        self.start_tour(
            "/odoo/action-mango_telephony.mango_call_action",
            "mango_call_log_tour",
            login=self.agent_101.login,
        )
