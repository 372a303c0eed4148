"""Helpers of the call-log tests: signed webhook bodies, direct ingestion and the
comparable shape of a folded call."""

import random

from odoo import Command

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from mango_office import signing

from ..models.webhook_health import refusal_throttle
from .common import MangoSimulatorMixin

# Fields that describe a call the same way whatever order its events came in.
CALL_FIELDS = (
    "entry_id",
    "direction",
    "status",
    "caller_number",
    "caller_number_e164",
    "called_number",
    "called_number_e164",
    "customer_number_e164",
    "line_number",
    "answered_extension",
    "employee_extension",
    "group_extension",
    "start_time",
    "answer_time",
    "end_time",
    "wait_duration",
    "talk_duration",
    "disconnect_reason",
    "disconnect_reason_code",
    "disconnect_reason_text",
    "command_id",
    "fold_state",
)
LEG_FIELDS = (
    "mango_call_id",
    "seq",
    "state",
    "location",
    "from_number",
    "from_extension",
    "to_number",
    "to_extension",
    "appeared_at",
    "connected_at",
    "disconnected_at",
    "disconnect_reason",
)


class MangoCallsMixin(MangoSimulatorMixin):
    @classmethod
    def mango_setup_calls(cls):
        """A simulator (no webhook), its account, and users for extensions 101-104."""
        refusal_throttle.clear()
        cls.mango_sim = cls.mango_start_class_simulator()
        cls.mango_account = cls.mango_create_account(cls.mango_sim)
        Users = cls.env["res.users"].with_context(no_reset_password=True)
        group_user = cls.env.ref("mango_telephony.group_mango_user")
        cls.agent_101 = Users.create(
            {
                "name": "Agent 101",
                "login": "agent101@example.com",
                "mango_extension": "101",
                USER_GROUPS: [Command.link(group_user.id)],
            }
        )
        cls.agent_102 = Users.create(
            {
                "name": "Agent 102",
                "login": "agent102@example.com",
                USER_GROUPS: [Command.link(group_user.id)],
            }
        )
        # 102 is known only through the account's own extension list.
        cls.env["mango.account.user"].create(
            {
                "account_id": cls.mango_account.id,
                "user_id": cls.agent_102.id,
                "extension": "102",
            }
        )

    @classmethod
    def mango_fold_scenario(cls, scenario, account=None, **options):
        """Play a scenario straight into the event store, process it and return
        the call (usable in setUpClass)."""
        account = account or cls.mango_account
        result = cls.mango_sim.play(scenario, wait=False, **options)
        Event = cls.env["mango.event"].sudo()
        for item in result["planned"]:
            Event._mango_ingest(account, item["path"], signing.dumps(item["payload"]))
        while Event._mango_process_pending():
            pass
        return (
            cls.env["mango.call"]
            .sudo()
            .search(
                [("account_id", "=", account.id), ("entry_id", "=", result["entry_id"])]
            )
        )

    def mango_play(self, scenario, **options):
        """The events a real scenario produces, as ``[(path, payload)]`` in order."""
        result = self.mango_sim.play(scenario, wait=False, **options)
        return [(e["path"], e["payload"]) for e in result["planned"]]

    def mango_ingest(self, events, account=None):
        Event = self.env["mango.event"].sudo()
        account = account or self.mango_account
        return [
            Event._mango_ingest(account, path, signing.dumps(payload), "127.0.0.1")
            for path, payload in events
        ]

    def mango_process_all(self):
        Event = self.env["mango.event"].sudo()
        rounds = 0
        while Event._mango_process_pending():
            rounds += 1
            self.assertLess(rounds, 10_000, "the worker never runs out of events")
        self.env.invalidate_all()

    def mango_call(self, entry_id, account=None):
        account = account or self.mango_account
        return (
            self.env["mango.call"]
            .sudo()
            .search([("account_id", "=", account.id), ("entry_id", "=", entry_id)])
        )

    @staticmethod
    def mango_snapshot(call):
        """What a user sees of a call, comparable between two accounts."""
        data = {name: call[name] for name in CALL_FIELDS}
        data["user"] = call.user_id.login
        data["employee"] = call.employee_user_id.login
        data["legs"] = sorted(
            tuple(leg[name] for name in LEG_FIELDS) + (leg.user_id.login,)
            for leg in call.leg_ids
        )
        return data

    @staticmethod
    def mango_shuffled_with_duplicates(events, ratio=0.2, seed=7):
        rng = random.Random(seed)
        delivered = list(events)
        delivered += [rng.choice(events) for _ in range(int(len(events) * ratio))]
        rng.shuffle(delivered)
        return delivered

    def mango_form(self, payload, key=None, salt=None):
        return signing.build_form(
            key or self.mango_api_key, salt or self.mango_api_salt, payload
        )
