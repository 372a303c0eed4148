"""Signed garbage at every webhook route: never a 5xx, an ERROR line or a call.

Thousands of requests signed with the account's real key and salt, of every kind
the outside-in fuzzing found (see ``mango_office.testing.webhook_fuzz``), go to
every route the controller serves, mixed with well-formed events and whole
simulator calls. Afterwards the worker processes everything that was accepted.

Asserted: no answer is a 5xx or carries a traceback; no ERROR line is logged;
each hostile request is refused with a 4xx (``ping`` always answers 200) and
kept as a refused event, each valid one is accepted; the calls in the database
are exactly those of the valid events, each equal to the pure core's fold of its
events; no accepted event fails in the worker.

A seeded generator (not hypothesis) keeps the run repeatable; set
``MANGO_FUZZ_SEED`` to try other seeds and ``MANGO_FUZZ_PER_GROUP`` to change the
number of requests per group of routes (2,000 each by default: every
``events/…`` kind, the command results, the stats results and ``ping``).
"""

import json
import logging
import os
import time
from collections import Counter
from unittest.mock import patch

from odoo.tests import tagged

from mango_office import calls as mango_calls
from mango_office import safe_text, signing
from mango_office.events import parse_event
from mango_office.testing.webhook_fuzz import ROUTE_GROUPS, ROUTES, HostileWebhooks

from .calls_common import MangoCallsMixin
from .common import MangoHttpCase

_logger = logging.getLogger(__name__)

SEED = int(os.environ.get("MANGO_FUZZ_SEED", "20260514"))
# Requests per group of routes (mango_office.testing.webhook_fuzz.ROUTE_GROUPS).
PER_GROUP = int(os.environ.get("MANGO_FUZZ_PER_GROUP", "2000"))
# One whole simulator call (shuffled, with duplicates) after this many requests.
SCENARIO_EVERY = 250
SCENARIOS = ("incoming_answered", "incoming_missed_queue", "click_to_call", "transfer")


class _ErrorLines(logging.Handler):
    """Every ERROR (or worse) line logged anywhere while the fuzz runs."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []

    def emit(self, record):
        self.lines.append(f"{record.name}: {record.getMessage()[:300]}")


class _Findings:
    """What the fuzz saw go wrong (all empty when the boundary holds)."""

    def __init__(self):
        self.errors = _ErrorLines()
        self.statuses = Counter()
        self.server_errors = []
        self.leaks = []
        self.wrong_answers = []
        self.garbage = []
        self.missing = set()
        self.misfolded = []
        self.failed = []
        self.expected_kept = 0

    def any(self):
        return bool(
            self.server_errors
            or self.leaks
            or self.wrong_answers
            or self.errors.lines
            or self.garbage
            or self.missing
            or self.misfolded
            or self.failed
        )

    def summary(self):
        return (
            f"answers {dict(sorted(self.statuses.items()))}; "
            f"5xx: {len(self.server_errors)}; tracebacks/long bodies: "
            f"{len(self.leaks)}; wrong answers: {len(self.wrong_answers)}; "
            f"ERROR lines: {len(self.errors.lines)}; garbage calls: "
            f"{len(self.garbage)}; valid calls missing: {len(self.missing)}; "
            f"misfolded: {len(self.misfolded)}; events failed in the worker: "
            f"{len(self.failed)}"
        )

    def details(self, summary):
        return "\n".join(
            [summary]
            + [f"5xx: {x}" for x in self.server_errors[:15]]
            + [f"leak: {x}" for x in self.leaks[:5]]
            + [f"wrong answer: {x}" for x in self.wrong_answers[:15]]
            + [f"ERROR: {x}" for x in self.errors.lines[:10]]
            + [
                f"garbage call: {c.entry_id[:60]!r} ({c.status})"
                for c in self.garbage[:10]
            ]
            + [f"failed event: {e.path} {e.error[:120]}" for e in self.failed[:10]]
        )


@tagged("post_install", "-at_install")
class TestWebhookFuzz(MangoCallsMixin, MangoHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()

    def post_case(self, case):
        return self.opener.post(
            f"{self.base_url()}/mango/{case.path}",
            data=case.body,
            headers={"Content-Type": case.content_type},
            timeout=60,
            allow_redirects=False,
        )

    def post_events(self, events):
        for path, payload in events:
            form = signing.build_form(self.mango_api_key, self.mango_api_salt, payload)
            response = self.post_case(_Plain(path, form))
            self.assertEqual(response.status_code, 200, (path, payload, response.text))

    def send(self, case, findings):
        """Post one case and note what is wrong with the answer."""
        response = self.post_case(case)
        status = response.status_code
        findings.statuses[status] += 1
        if status >= 500:
            findings.server_errors.append(f"{status} {case.path} {case.note}")
        if "Traceback" in response.text or len(response.text) > 200:
            findings.leaks.append(f"{case.path} {case.note}: {response.text[:100]!r}")
        if case.path == "ping" or case.valid:
            wanted = status == 200
        else:
            wanted = 400 <= status < 500
        if not wanted:
            findings.wrong_answers.append(
                f"{status} {case.path} {case.note} {(case.json or '')[:80]!r}"
            )
        if not case.valid and case.path != "ping" and case.note != "not_a_form":
            # Signed with the right key: kept as a refused event.
            findings.expected_kept += 1

    def send_scenario(self, number, expected_calls):
        """A whole simulator call, shuffled with duplicates, among the garbage."""
        scenario = SCENARIOS[number % len(SCENARIOS)]
        events = self.mango_shuffled_with_duplicates(
            self.mango_play(scenario, extension="101"), 0.3
        )
        self.post_events(events)
        entry_id = next(p["entry_id"] for _path, p in events if "entry_id" in p)
        expected_calls[entry_id] = [(path, signing.dumps(p)) for path, p in events]

    def check_calls(self, expected_calls, findings):
        """Process what was accepted; the calls are exactly the valid ones, each
        equal to the pure fold of its events, and no event failed."""
        Event = self.env["mango.event"].sudo()
        while Event._mango_process_pending():
            pass
        self.env.invalidate_all()
        findings.failed = Event.search([("state", "=", "failed")])
        calls = (
            self.env["mango.call"]
            .sudo()
            .search([("account_id", "=", self.mango_account.id)])
        )
        findings.garbage = calls.filtered(lambda c: c.entry_id not in expected_calls)
        findings.missing = set(expected_calls) - set(calls.mapped("entry_id"))
        by_entry = {c.entry_id: c for c in calls}
        for entry_id, events in expected_calls.items():
            call = by_entry.get(entry_id)
            if not call:
                continue
            folded = mango_calls.fold(parse_event(p, j) for p, j in events)[entry_id]
            if call.fold_state != json.loads(json.dumps(folded.to_dict())):
                findings.misfolded.append(entry_id)

    def test_signed_garbage_at_every_route(self):
        from ..models import mango_refused_event

        # Every refused request is checked below: no cap during the flood (the
        # cap has its own test).
        self.startPatcher(patch.object(mango_refused_event, "KEEP_PER_ACCOUNT", 10**6))
        generator = HostileWebhooks(
            self.mango_api_key, self.mango_api_salt, SEED, valid_share=0.2
        )
        findings = _Findings()
        logging.getLogger().addHandler(findings.errors)
        self.addCleanup(logging.getLogger().removeHandler, findings.errors)
        expected_calls = {}
        sent = 0
        started = time.monotonic()
        for routes in ROUTE_GROUPS.values():
            for index in range(PER_GROUP):
                case = generator.case(routes[index % len(routes)])
                self.send(case, findings)
                if case.builds_call:
                    expected_calls[case.entry_id] = [(case.path, case.json)]
                sent += 1
                if sent % SCENARIO_EVERY == 0:
                    self.send_scenario(sent // SCENARIO_EVERY, expected_calls)
        posted_in = time.monotonic() - started
        self.check_calls(expected_calls, findings)
        summary = (
            f"{sent} signed requests to {len(ROUTES)} routes in {posted_in:.0f} s "
            f"(seed {SEED}); {findings.summary()}"
        )
        _logger.info("Webhook fuzz: %s", summary)
        self.assertFalse(findings.any(), findings.details(summary))

        # Nothing Mango (or the key's holder) sent is lost: each refused signed
        # request is kept, safe to store and show.
        Refused = self.env["mango.refused.event"].sudo()
        kept = Refused.search([("account_id", "=", self.mango_account.id)])
        self.assertEqual(
            len(kept.filtered(lambda r: r.path != "ping")), findings.expected_kept
        )
        reasons = dict(Refused._fields["reason"].selection)
        for record in kept:
            self.assertIn(record.reason, reasons)
            for text in (record.payload or "", record.path or "", record.field or ""):
                self.assertIsNone(safe_text.problem(text, multiline=True), record.id)
            self.assertLessEqual(len(record.payload or ""), 4096)
        self.mango_account.invalidate_recordset()
        self.assertEqual(self.mango_account.last_refused_reason, "invalid_event")


class _Plain:
    """A well-formed request (the simulator's events) in the fuzz cases' shape."""

    content_type = "application/x-www-form-urlencoded"

    def __init__(self, path, form):
        from urllib.parse import urlencode

        self.path = path
        self.body = urlencode(form).encode()
