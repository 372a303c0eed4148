"""Replay: 1,000 simulated calls (about 10,000 events) delivered in order, then
shuffled with 20 % duplicates, fold into the same call log."""

import random
from unittest.mock import patch

from odoo.tests import TransactionCase, tagged

from mango_office import signing
from mango_office.simulator import SCENARIOS

from .calls_common import MangoCallsMixin

CALLS = 1000
DUPLICATE_RATIO = 0.2


@tagged("post_install", "-at_install")
class TestReplay(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()

    def generate(self):
        rng = random.Random(2026)
        events = []
        for index in range(CALLS):
            scenario = SCENARIOS[index % len(SCENARIOS)]
            options = {"seed": index, "extension": rng.choice(["101", "102", "103"])}
            if scenario in ("incoming_answered", "incoming_missed_queue"):
                options["from_number"] = f"7903{rng.randrange(10**7):07d}"
            events.extend(self.mango_play(scenario, **options))
        return events

    def ingest(self, events, chunk, batch):
        """Store events ``chunk`` at a time, processing ``batch`` at a time in
        between, as webhooks and the worker interleave in production."""
        Event = self.env["mango.event"].sudo()
        account = self.mango_account
        for start in range(0, len(events), chunk):
            for path, payload in events[start : start + chunk]:
                Event._mango_ingest(account, path, signing.dumps(payload), "127.0.0.1")
            while Event._mango_process_pending(limit=batch):
                pass
        self.env.invalidate_all()

    def snapshot(self):
        calls = self.env["mango.call"].sudo().search([])
        return {call.entry_id: self.mango_snapshot(call) for call in calls}

    def test_shuffled_duplicated_delivery_equals_in_order(self):
        # Only the call log is compared here; the side effects run from the hook
        # (chatter, activities, mail) have their own tests and would make 20,000
        # folds take most of an hour on a busy 2-core machine.
        with patch.object(
            type(self.env["mango.call"]), "_mango_on_call_updated", lambda *a: True
        ):
            self._replay()

    def _replay(self):
        events = self.generate()
        self.assertGreaterEqual(len(events), 10_000)
        entry_ids = {p["entry_id"] for _path, p in events if p.get("entry_id")}
        self.assertEqual(len(entry_ids), CALLS)

        self.ingest(events, chunk=1000, batch=200)
        in_order = self.snapshot()
        self.assertEqual(set(in_order), entry_ids)
        stored = self.env["mango.event"].sudo().search_count([])
        self.assertEqual(
            self.env["mango.event"].sudo().search_count([("state", "!=", "done")]), 0
        )
        statuses = {snap["status"] for snap in in_order.values()}
        self.assertLessEqual(statuses, {"answered", "missed", "failed"}, "all ended")
        self.assertIn("answered", statuses)
        self.assertIn("missed", statuses)

        self.env["mango.call"].sudo().search([]).unlink()
        self.env["mango.event"].sudo().search([]).unlink()

        delivered = self.mango_shuffled_with_duplicates(
            events, DUPLICATE_RATIO, seed=11
        )
        self.assertEqual(
            len(delivered), len(events) + int(len(events) * DUPLICATE_RATIO)
        )
        self.ingest(delivered, chunk=4000, batch=4000)
        self.assertEqual(self.env["mango.event"].sudo().search_count([]), stored)
        replayed = self.snapshot()
        self.assertEqual(set(replayed), set(in_order))
        different = [e for e in in_order if in_order[e] != replayed[e]]
        self.assertFalse(
            different,
            f"{len(different)} calls differ, e.g. {different[:1]}: "
            f"{in_order[different[0]] if different else ''} != "
            f"{replayed[different[0]] if different else ''}",
        )
