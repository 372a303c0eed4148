"""Hostile visitors at the widget's public routes: never a 5xx, a traceback or an
ERROR line, and nothing but a refusal stored from garbage.

A seeded generator sends well-formed requests mixed with garbage to
``/mango_callback/request``, ``/check`` and ``/slots``: NUL and control
characters, text that arrives as U+FFFD, huge values, numbers out of every range,
forged CSRF tokens with non-ASCII characters, impossible slot dates, files where
text is expected, a JSON body, hundreds of fields, a hostile User-Agent. The
calling hours are closed, so accepted requests are scheduled rather than dialled
(the PBX path has its own tests); the anti-abuse limits are lifted so that every
valid request is accepted.
"""

import logging
import random
from collections import Counter

from odoo.tests import tagged

from odoo.addons.mango_telephony.tests.common import MangoHttpCase

from mango_office import safe_text

from .common import MangoCallbackMixin

SEED = 20260514
REQUESTS = 1500


class _ErrorLines(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []

    def emit(self, record):
        self.lines.append(f"{record.name}: {record.getMessage()[:300]}")


HOSTILE = {
    "widget_id": [
        "9" * 30,
        "-1",
        "0",
        "1e3",
        " {id}",
        "{id}\x00",
        "١",
        "",
        "abc",
        str(2**31),
        str(2**63),
    ],
    "csrf_token": [
        "éo9999999999",
        "\x00",
        "x" * 10_000,
        "",
        "o",
        "o" + "9" * 400,
        "{token}\x00",
        "ыo1",
        "\x00o\x00",
    ],
    "phone": [
        "\x00916 555-12-34",
        "916\x00555 12 34",
        "9" * 5000,
        "+7 916 555 12 34\u202e",
        "\x85916 555 12 34",
        "<script>alert(1)</script>",
        "😀" * 20,
        "\ufffd",
        "+7 916 555\x1b12 34",
    ],
    "country": ["\x00\x00", "ЫЫ", "R\x00", "\x1b[", "😀", "x" * 3000],
    "name": [
        "Вера\x00",
        "\x1b[31mred",
        "a\x85b",
        "a\x7f",
        "\x00" * 10,
        "n\x00" * 50_000,
    ],
    "consent": ["\x00", "x" * 5000],
    "slot": [
        "2026-13-45T00:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01",
        "0001-01-01T00:00:00+14:00",
        "\x00",
        "x" * 5000,
        "2026-01-01T00:00:00+99:00",
        "nan",
        "1e999",
    ],
    "company_website": ["http://spam.example", "\x00"],
}


@tagged("post_install", "-at_install")
class TestCallbackFuzz(MangoCallbackMixin, MangoHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_callback_setup()

    def setUp(self):
        super().setUp()
        self.mango_sim.reset()
        self.mango_sim.set_webhook(None)

    def _valid(self, rng, token, slots):
        fields = {
            "widget_id": str(self.widget.id),
            "csrf_token": token,
            "phone": f"+7 916 {rng.randint(100, 999)} {rng.randint(10, 99)} "
            f"{rng.randint(10, 99)}",
            "country": rng.choice(["RU", "ru", ""]),
            "name": rng.choice(["Вера", "Jean-Luc O'Neill", "", "李"]),
            "consent": "on",
        }
        if slots and rng.random() < 0.3:
            fields["slot"] = rng.choice(slots)
        return fields

    def _hostile(self, rng, fields, token):
        names = rng.sample(sorted(HOSTILE), rng.randint(1, 3))
        for name in names:
            value = rng.choice(HOSTILE[name])
            fields[name] = value.replace("{id}", str(self.widget.id)).replace(
                "{token}", token
            )
        return fields, names

    def test_hostile_visitors(self):
        self.close_now()
        self.widget.write(
            {
                "allow_slot_choice": True,
                "create_lead": True,
                "require_consent": True,
                "limit_ip_short": 10**6,
                "limit_ip_long": 10**6,
                "limit_number_short": 10**6,
                "limit_number_long": 10**6,
            }
        )
        token = self.page_token()
        base = self.base_url()
        slots = [
            s["value"]
            for s in self.url_open(
                f"/mango_callback/slots?widget_id={self.widget.id}"
            ).json()["slots"]
        ]
        self.assertTrue(slots)
        errors = _ErrorLines()
        logging.getLogger().addHandler(errors)
        self.addCleanup(logging.getLogger().removeHandler, errors)
        rng = random.Random(SEED)
        statuses = Counter()
        problems = []
        valid_phones = []
        hostile_notes = {}
        Leads = self.env["crm.lead"].sudo()
        leads_before = Leads.search_count([])
        for _attempt in range(REQUESTS):
            route = rng.choice(["request", "request", "request", "check", "slots"])
            fields = self._valid(rng, token, slots)
            valid = rng.random() < 0.25
            note = "valid"
            if not valid:
                fields, names = self._hostile(rng, fields, token)
                note = ",".join(names)
            kwargs = {"timeout": 60, "allow_redirects": False}
            shape = rng.random()
            if not valid and shape < 0.08:
                # A file where text is expected.
                kwargs["files"] = {"phone": ("phone.txt", b"916 555 12 34\x00")}
                fields.pop("phone", None)
                note += ",file"
            elif not valid and shape < 0.12:
                kwargs["json"] = fields
                fields = None
                note += ",json"
            elif not valid and shape < 0.15:
                fields.update({f"extra{i}": "\x00" for i in range(500)})
                note += ",many"
            if not valid and rng.random() < 0.1:
                kwargs["headers"] = {"User-Agent": "Mozilla\x00\x01\x7f" + "u" * 3000}
                note += ",agent"
            if route == "slots":
                response = self.opener.get(
                    f"{base}/mango_callback/slots",
                    params={"widget_id": (fields or {}).get("widget_id", "")},
                    **{k: v for k, v in kwargs.items() if k in ("timeout", "headers")},
                )
            else:
                response = self.opener.post(
                    f"{base}/mango_callback/{route}", data=fields, **kwargs
                )
            statuses[response.status_code] += 1
            if response.status_code >= 500 or "Traceback" in response.text:
                problems.append(f"{response.status_code} {route} {note}")
                continue
            try:
                answer = response.json()
            except ValueError:
                problems.append(f"not JSON: {route} {note} {response.text[:80]!r}")
                continue
            if valid and route == "request":
                if not answer.get("ok"):
                    problems.append(f"valid refused: {answer} {fields}")
                valid_phones.append(fields["phone"])
            elif route == "request" and fields:
                hostile_notes[str(fields.get("phone"))[:64]] = (note, fields)
        Request = self.env["mango.callback.request"].sudo()
        stored = Request.search([("widget_id", "=", self.widget.id)])
        accepted = stored.filtered(lambda r: r.state != "refused")
        for record in stored:
            for name in ("phone", "phone_e164", "name", "user_agent", "refuse_message"):
                text = record[name] or ""
                if safe_text.problem(text, multiline=True):
                    problems.append(f"unsafe {name} stored: {text[:40]!r}")
        summary = (
            f"{REQUESTS} requests; answers {dict(sorted(statuses.items()))}; "
            f"problems: {len(problems)}; ERROR lines: {len(errors.lines)}; "
            f"stored {len(stored)} ({len(accepted)} accepted, "
            f"{len(valid_phones)} valid sent)"
        )
        logging.getLogger(__name__).info("Widget fuzz: %s", summary)
        self.assertFalse(
            problems or errors.lines,
            "\n".join([summary, *problems[:20], *errors.lines[:10]]),
        )
        # Nothing but refusals from garbage: the accepted requests are exactly
        # the valid ones, and so are the leads.
        unexpected = accepted.filtered(lambda r: r.phone not in valid_phones)
        self.assertFalse(
            unexpected,
            "\n".join(
                f"accepted garbage: {hostile_notes.get(r.phone, ('?', r.phone))}"
                for r in unexpected[:10]
            ),
        )
        self.assertEqual(len(accepted), len(valid_phones), summary)
        self.assertEqual(Leads.search_count([]) - leads_before, len(valid_phones))
        self.assertFalse(self.mango_sim.commands("commands/callback_group"))
