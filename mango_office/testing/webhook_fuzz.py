"""Signed hostile webhook requests for fuzz tests, each labelled valid or not.

Test fixture, not product code. A :class:`HostileWebhooks` generator (seeded, so a
failure can be replayed) makes requests for every route the webhook controller
serves: well-formed events of the documented shapes, with Mango's documented
quirks (``seq``/``result`` as strings, integer extensions, string timestamps, a
byte-order mark, spaced JSON), mixed with garbage signed with the right key and
salt: NUL characters, lone surrogates, control characters, huge identifiers,
numbers where Mango sends strings and the other way round, ``1e999``, ``NaN``,
``-1``, ``2**64``, ``null``/lists/objects in every field, duplicate keys, JSON
nested thousands of levels deep, events with nothing but an ``entry_id``,
out-of-range integers and timestamps, duplicate ``json``/``sign``/``vpbx_api_key``
form fields, bodies that are not JSON or not a form, and hostile paths.

The label is the documented contract (reference §2.4–2.9, and
:mod:`mango_office.event_validation`), written down here independently of the
validator: a ``valid`` case must be accepted, and one on a call route must fold
into exactly one call with its ``entry_id``; any other case must be refused (with
a 4xx; ``ping`` answers 200 whatever it gets) and must create nothing.
"""

import json
import random
import string
from dataclasses import dataclass
from urllib.parse import urlencode

from .. import signing

# Every route the controller serves, with one payload family each. The last
# ``events/…`` stands for the paths Mango may add later (any subpath is served).
CALL_ROUTES = (
    "events/call",
    "events/summary",
    "events/recording",
    "events/record/added",
)
IGNORED_ROUTES = (
    "events/dtmf",
    "events/sms",
    "events/ab",
    "events/record/tagged",
    "events/user/status_changed",
    "events/user/session_end",
    "events/recognized/offline",
    "events/some/future/kind",
)
COMMAND_ROUTES = (
    "result/callback",
    "result/callback_group",
    "result/call/hangup",
    "result/sms",
    "result/recording/start",
    "result/route",
    "result/transfer",
    "result/calls_connect",
    "result/transfer_cancel",
    "result/call/hold/on",
)
STATS_ROUTES = ("result/stat", "result/stats")
ROUTES = CALL_ROUTES + IGNORED_ROUTES + COMMAND_ROUTES + STATS_ROUTES + ("ping",)
# The routes grouped by what the controller does with them: a fuzz run sends
# the same number of requests to each group, spread over the group's paths.
ROUTE_GROUPS = {
    **{route: (route,) for route in CALL_ROUTES},
    "events/dtmf": ("events/dtmf",),
    "events/sms": ("events/sms",),
    "events/…": tuple(
        r for r in IGNORED_ROUTES if r not in ("events/dtmf", "events/sms")
    ),
    "result/<command>": COMMAND_ROUTES,
    "result/stat(s)": STATS_ROUTES,
    "ping": ("ping",),
}

FORM = "application/x-www-form-urlencoded"


class Raw(str):
    """A JSON fragment written as is (``1e999``, ``NaN``, 3,000 nested lists)."""


class Pairs(list):
    """A JSON object as ``[(key, value)]``: keys may repeat."""


def dumps(value, ensure_ascii=False):
    """JSON text of ``value``, with :class:`Raw` fragments and :class:`Pairs`.

    Strings holding a lone surrogate are always escaped (``\\ud800``): a request
    body is UTF-8, which cannot carry one.
    """
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str):
        lone = any("\ud800" <= ch <= "\udfff" for ch in value)
        return json.dumps(value, ensure_ascii=ensure_ascii or lone)
    if isinstance(value, Pairs):
        items = value
    elif isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v, ensure_ascii) for v in value) + "]"
    else:
        return json.dumps(value)
    return (
        "{"
        + ",".join(
            f"{dumps(k, ensure_ascii)}:{dumps(v, ensure_ascii)}" for k, v in items
        )
        + "}"
    )


@dataclass
class Case:
    path: str
    body: bytes
    content_type: str
    valid: bool
    note: str
    json: str = None
    entry_id: str = None
    payload: dict = None

    @property
    def builds_call(self):
        """A valid event of a call route: exactly one call must come of it."""
        return self.valid and self.path in CALL_ROUTES


# Field kinds of the documented shapes: what each field is, so that a mutation
# knows which values break it. ``None`` as the value of a field path marks an
# object (``from``, ``to``, ``dct``).
SHAPES = {
    "events/call": {
        "entry_id": "id",
        "call_id": "id",
        "timestamp": "ts",
        "seq": "counter",
        "call_state": "call_state",
        "location": "word",
        "from": "party",
        "from.number": "number",
        "from.extension": "ext",
        "from.taken_from_call_id": "opt_id",
        "to": "party",
        "to.number": "number",
        "to.extension": "ext",
        "to.line_number": "number",
        "to.acd_group": "ext",
        "dct": "party",
        "dct.number": "number",
        "dct.type": "dct_type",
        "disconnect_reason": "code",
        "command_id": "opt_id",
        "callback_initiator": "word",
        "task_id": "int_id",
        "from.was_transferred": "bool",
        "to.hold_initiator": "bool",
        "transfer": "word",
    },
    "events/summary": {
        "entry_id": "id",
        "call_direction": "direction",
        "from": "party",
        "from.number": "number",
        "from.extension": "ext",
        "to": "party",
        "to.extension": "ext",
        "to.number": "number",
        "line_number": "number",
        "create_time": "ts",
        "forward_time": "ts",
        "talk_time": "ts",
        "end_time": "ts",
        "entry_result": "entry_result",
        "disconnect_reason": "code",
    },
    "events/recording": {
        "recording_id": "id",
        "recording_state": "recording_state",
        "seq": "counter",
        "call_id": "opt_id",
        "entry_id": "id",
        "extension": "ext",
        "timestamp": "ts",
        "completion_code": "code",
        "recipient": "word",
        "command_id": "opt_id",
    },
    "events/record/added": {
        "entry_id": "id",
        "product_id": "int_id",
        "user_id": "user_id",
        "timestamp": "ts",
        "recording_id": "id",
    },
    "events/dtmf": {
        "seq": "counter",
        "dtmf": "word",
        "timestamp": "ts",
        "call_id": "opt_id",
        "entry_id": "opt_id",
        "location": "word",
        "from_number": "number",
        "to_number": "number",
        "line_number": "number",
    },
    "events/sms": {"command_id": "opt_id", "timestamp": "ts", "reason": "code"},
    "result": {"command_id": "id", "result": "code"},
    "stats": {"key": "id", "request_id": "request_id"},
}
REQUIRED = {
    "events/call": (
        "entry_id",
        "call_id",
        "call_state",
        "seq",
        "timestamp",
        "from",
        "to",
    ),
    "events/summary": (
        "entry_id",
        "call_direction",
        "create_time",
        "end_time",
        "from",
        "to",
    ),
    "events/recording": ("entry_id", "recording_id", "recording_state", "timestamp"),
    "events/record/added": ("entry_id", "recording_id", "timestamp"),
    "result": ("command_id", "result"),
    "stats": ("key",),
}

DEEP = 3000
_SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff")


def _shape_name(path):
    if path in COMMAND_ROUTES:
        return "result"
    if path in STATS_ROUTES:
        return "stats"
    return path


class HostileWebhooks:
    """Random signed requests for the webhook routes (see the module docstring)."""

    def __init__(self, key, salt, seed=0, valid_share=0.3):
        self.key = key
        self.salt = salt
        self.rng = random.Random(seed)
        self.valid_share = valid_share
        self.serial = 0

    # ------------------------------------------------------------ primitives

    def _next(self, prefix):
        self.serial += 1
        alphabet = string.ascii_letters + string.digits
        tail = "".join(self.rng.choice(alphabet) for _ in range(10))
        return f"{prefix}{self.serial}-{tail}=="

    def _maybe_str(self, value):
        return str(value) if self.rng.random() < 0.3 else value

    def _extension(self):
        extension = str(self.rng.randint(100, 9999))
        return int(extension) if self.rng.random() < 0.2 else extension

    def _time(self):
        return self.rng.randint(1_500_000_000, 1_800_000_000)

    def _number(self):
        if self.rng.random() < 0.2:
            return f"sip:user{self.rng.randint(1, 999)}@vpbx.mangosip.ru"
        return "7" + "".join(self.rng.choice(string.digits) for _ in range(10))

    # ------------------------------------------------------- documented shapes

    def valid_payload(self, path, entry_id=None):
        """A well-formed payload of ``path``, with some of Mango's quirks."""
        rng = self.rng
        entry_id = entry_id or self._next("fz-entry-")
        shape = _shape_name(path)
        if path == "events/call":
            state = rng.choice(["Appeared", "Connected", "OnHold", "Disconnected"])
            payload = {
                "entry_id": entry_id,
                "call_id": self._next("fz-leg-"),
                "timestamp": self._maybe_str(self._time()),
                "seq": self._maybe_str(rng.randint(1, 40)),
                "call_state": state,
                "location": rng.choice(["ivr", "queue", "abonent", "ivr.2"]),
                "from": {"number": self._number()},
                "to": {
                    "extension": self._extension(),
                    "number": self._number(),
                    "line_number": self._number(),
                    "acd_group": rng.choice(["", "300", 301]),
                },
                "dct": {"number": "", "type": 0},
            }
            if state == "Disconnected":
                payload["disconnect_reason"] = self._maybe_str(
                    rng.choice([1000, 1110, 1131, 1164])
                )
                payload["from"]["was_transferred"] = rng.choice([True, False])
            if rng.random() < 0.3:
                payload["command_id"] = self._next("fz-cmd-")
                payload["callback_initiator"] = rng.choice(
                    ["API", "MissGroupСallCallback", "СС", "CallbackWidget"]
                )
                payload["task_id"] = rng.choice([77, "78"])
            return payload
        if path == "events/summary":
            start = self._time()
            answered = rng.random() < 0.6
            return {
                "entry_id": entry_id,
                "call_direction": self._maybe_str(rng.choice([0, 1, 2])),
                "from": {"number": self._number()},
                "to": {"extension": self._extension(), "number": self._number()},
                "line_number": self._number(),
                "create_time": start,
                "forward_time": start + 2 if answered else 0,
                "talk_time": start + 4 if answered else 0,
                "end_time": self._maybe_str(start + 40),
                "entry_result": 1 if answered else 0,
                "disconnect_reason": rng.choice([1100, 1110, 1120]),
            }
        if path == "events/recording":
            state = rng.choice(["Started", "Continued", "Completed"])
            payload = {
                "recording_id": self._next("fz-rec-"),
                "recording_state": state,
                "seq": self._maybe_str(rng.randint(1, 5)),
                "call_id": self._next("fz-leg-"),
                "entry_id": entry_id,
                "extension": self._extension(),
                # DOC2017's example carries the timestamp as a string.
                "timestamp": str(self._time()),
            }
            if state == "Completed":
                payload["completion_code"] = rng.choice([1000, 4002, "1000"])
                payload["recipient"] = rng.choice(["Cloud", "Mail", "CloudAndMail"])
            return payload
        if path == "events/record/added":
            return {
                "entry_id": entry_id,
                "product_id": 300022532,
                # -1: the recording belongs to nobody (reference §2.7).
                "user_id": rng.choice([300049012, -1]),
                "timestamp": self._time(),
                "recording_id": self._next("fz-rec-"),
            }
        if path == "events/dtmf":
            return {
                "seq": rng.randint(1, 9),
                "dtmf": "".join(rng.choice("0123456789*#") for _ in range(4)),
                "timestamp": self._time(),
                "call_id": self._next("fz-leg-"),
                "entry_id": entry_id,
                "location": rng.choice(["ivr", "ivr.2"]),
                "initiator": "79031234567",
                "from_number": self._number(),
                "to_number": self._number(),
                "line_number": self._number(),
            }
        if path == "events/sms":
            return {
                "command_id": self._next("fz-sms-"),
                "timestamp": self._time(),
                "reason": rng.choice([1000, 4300, "4391"]),
            }
        if shape == "result":
            return {
                "command_id": self._next("fz-cmd-"),
                "result": self._maybe_str(rng.choice([1000, 3100, 4101])),
            }
        if shape == "stats":
            payload = {"key": self._next("fz-key-")}
            if rng.random() < 0.5:
                payload["request_id"] = rng.choice([7, "req-7"])
            return payload
        if path == "ping":
            return {}
        # Other documented paths and future ones: fields we do not read.
        return {
            "entry_id": entry_id,
            "user_id": rng.randint(1, 10**9),
            "status": rng.choice(["online", "away", "Не беспокоить"]),
            "topics": [{"name": "price", "score": 0.87}, {"name": "delivery"}],
            "note": None,
        }

    # --------------------------------------------------------------- requests

    def form(self, json_str, extra=(), key=None, sign=None):
        """The urlencoded body of a request signed over ``json_str``."""
        key = self.key if key is None else key
        sign = signing.sign(key, json_str, self.salt) if sign is None else sign
        fields = [("vpbx_api_key", key), ("sign", sign), ("json", json_str)]
        fields += list(extra)
        self.rng.shuffle(fields)
        return urlencode(fields, encoding="utf-8").encode()

    def valid_case(self, path):
        payload = self.valid_payload(path)
        quirk = self.rng.random()
        if quirk < 0.1:
            json_str = "\ufeff" + signing.dumps(payload)  # a byte-order mark
        elif quirk < 0.2:
            json_str = json.dumps(payload, ensure_ascii=True)  # spaced, escaped
        else:
            json_str = signing.dumps(payload)
        return Case(
            path=path,
            body=self.form(json_str),
            content_type=FORM,
            valid=True,
            note="valid",
            json=json_str,
            entry_id=payload.get("entry_id") if path in CALL_ROUTES else None,
            payload=payload,
        )

    def case(self, path):
        """One random request for ``path``: valid or hostile."""
        if self.rng.random() < self.valid_share:
            return self.valid_case(path)
        return self.hostile_case(path)

    def cases(self, path, count):
        return [self.case(path) for _ in range(count)]

    # ---------------------------------------------------------------- hostile

    def _hostile(self, kind):
        """A value that breaks a field of ``kind`` (see :data:`SHAPES`)."""
        rng = self.rng
        common = [None, [], {}, [1, "a"], {"a": 1}, True]
        nul = "ab\x00cd"
        surrogate = "x" + rng.choice(_SURROGATES) + "y"
        control = "ab\x07\x1bcd"
        choices = {
            "id": common
            + [nul, surrogate, control, "i" * 3000, "", "   ", 12345, 0]
            + [Raw("1e999"), -1, 2**64, 1.5, Raw("NaN")],
            "opt_id": [nul, surrogate, control, "i" * 3000, 12345, -1, 2**64]
            + [Raw("1e999"), None, [], {}, True],
            "number": [nul, surrogate, control, "7" * 5000, 79031234567, None]
            + [[], {}, True, Raw("1e999")],
            "ext": [nul, surrogate, "abc", "12 34", "9" * 40, -1, 2**64, 1.5]
            + [Raw("1e999"), None, [], {}, True],
            "counter": [-1, 2**64, 2**31, Raw("1e999"), Raw("NaN"), "abc", ""]
            + [1.5, "1.5", None, [], {}, True, nul],
            "ts": [-1, 10**13, 2**64, Raw("1e999"), Raw("-Infinity"), "abc", ""]
            + [None, [], {}, True, "-5", nul],
            "code": [-1, 10**5, 2**64, Raw("1e999"), "abc", 1.5, None, [], {}]
            + [True, nul],
            "int_id": [-5, 2**64, Raw("1e999"), "abc", 1.5, None, [], {}, True, nul],
            "user_id": [-2, 2**64, Raw("1e999"), "abc", 1.5, None, [], {}, True],
            "request_id": [nul, surrogate, "r" * 3000, -5, 2**64, Raw("1e999")]
            + [None, [], {}, True],
            "direction": [3, -1, 2**64, "x", None, [], {}, 1.5, Raw("NaN")],
            "entry_result": [2, -1, 2**64, "x", None, [], {}, 0.5],
            "dct_type": [3, -1, 2**64, "x", None, [], {}],
            "call_state": ["Ringing", "", 1, None, [], {}, nul, surrogate],
            "recording_state": ["Paused", "", 1, None, [], {}, nul],
            "word": [nul, surrogate, control, "w" * 300, 1, None, [], {}, True],
            "party": [None, [], "79031234567", 1, True, Raw("1e999")],
            "bool": ["maybe", 2, -1, None, [], {}, nul],
        }[kind]
        return rng.choice(choices)

    def _set(self, payload, field, value):
        head, _, tail = field.partition(".")
        if tail:
            part = payload.get(head)
            if not isinstance(part, dict):
                part = payload[head] = {}
            part[tail] = value
        else:
            payload[head] = value

    def hostile_case(self, path):
        """One request for ``path`` broken in one random way (see ``_break_*``)."""
        shape_name = _shape_name(path)
        options = ["nul_anywhere", "surrogate_key", "deep", "nan", "huge_number"]
        options += ["duplicate_key", "not_json", "not_object", "raw_nul"]
        options += ["dup_form_json", "dup_form_sign", "dup_form_key", "not_a_form"]
        if shape_name in SHAPES:
            options += ["field"] * 8
        required = REQUIRED.get(shape_name, ())
        if required:
            options += ["missing"]
        if len(required) > 1:
            options += ["entry_only"]
        if path not in CALL_ROUTES and path != "ping":
            options += ["hostile_path"]
        how = self.rng.choice(options)
        # The three dup_form_* variants share one breaker.
        breaker = getattr(self, "_break_" + ("dup_form" if "dup_form" in how else how))
        return breaker(path, self.valid_payload(path), how)

    # Each _break_* returns a signed Case whose body (or form) breaks the contract.

    def _break_field(self, path, valid, how):
        shape = SHAPES[_shape_name(path)]
        required = REQUIRED.get(_shape_name(path), ())
        field = self.rng.choice(sorted(shape))
        value = self._hostile(shape[field])
        while (value is None or value == "") and field not in required:
            # An empty optional field is an absent one: not hostile.
            value = self._hostile(shape[field])
        data = json.loads(json.dumps(valid))
        self._set(data, field, value)
        return self._signed(path, data, f"field {field}={_short(value)}")

    def _break_missing(self, path, valid, how):
        field = self.rng.choice(REQUIRED[_shape_name(path)])
        payload = Pairs((k, v) for k, v in valid.items() if k != field)
        return self._signed(path, payload, f"missing {field}")

    def _break_entry_only(self, path, valid, how):
        first = REQUIRED[_shape_name(path)][0]
        return self._signed(path, {first: valid[first]}, how)

    def _with(self, path, valid, note, key, value):
        return self._signed(path, Pairs([*valid.items(), (key, value)]), note)

    def _break_nul_anywhere(self, path, valid, how):
        key = self.rng.choice(["x_note", "comment"])
        return self._with(path, valid, how, key, "a\x00b")

    def _break_surrogate_key(self, path, valid, how):
        return self._with(path, valid, how, f"k{self.rng.choice(_SURROGATES)}", 1)

    def _break_deep(self, path, valid, how):
        depth = self.rng.choice([40, 500, DEEP])
        deep = Raw("[" * depth + "]" * depth)
        return self._with(path, valid, f"deep {depth}", "x_deep", deep)

    def _break_nan(self, path, valid, how):
        value = Raw(self.rng.choice(["NaN", "Infinity", "1e999"]))
        return self._with(path, valid, how, "x_value", value)

    def _break_huge_number(self, path, valid, how):
        value = self.rng.choice([2**64, -(2**70), Raw("9" * 400)])
        return self._with(path, valid, how, "x_value", value)

    def _break_duplicate_key(self, path, valid, how):
        key, value = self.rng.choice(list(valid.items()) or [("entry_id", "e")])
        payload = Pairs(valid.items())
        if key not in valid:
            payload.append((key, value))
        payload.append((key, value if self.rng.random() < 0.5 else "other"))
        return self._signed(path, payload, f"duplicate key {key}")

    def _break_not_json(self, path, valid, how):
        texts = ["{", '{"entry_id":', "entry_id=1", "\x00\x01\x02"]
        texts += ["{'single': 'quotes'}", '{"a":1}garbage', "\ud800", ""]
        return self._signed_text(path, self.rng.choice(texts), how)

    def _break_not_object(self, path, valid, how):
        text = self.rng.choice(["[]", "[1,2]", '"text"', "42", "null", "true"])
        return self._signed_text(path, text, how)

    def _break_raw_nul(self, path, valid, how):
        return self._signed_text(path, "{\x00" + dumps(valid)[1:], how)

    def _break_not_a_form(self, path, valid, how):
        text = signing.dumps(valid)
        body = json.dumps({"vpbx_api_key": self.key, "sign": "0", "json": text})
        return Case(path, body.encode(), "application/json", False, how, json=text)

    def _break_hostile_path(self, path, valid, how):
        bad = self.rng.choice(
            [
                "events/" + "a" * 3000,
                "events/%00",
                "events/%ED%A0%80",
                "result/" + "ы" * 50,
                "events/a b",
            ]
        )
        return self._signed(bad, Pairs(valid.items()), f"path {bad[:30]}")

    def _break_dup_form(self, path, valid, how):
        """The first triple valid and signed, a second one appended."""
        text = signing.dumps(valid)
        first = [
            ("vpbx_api_key", self.key),
            ("sign", signing.sign(self.key, text, self.salt)),
            ("json", text),
        ]
        other_text = signing.dumps({"entry_id": "other"})
        second = {
            "dup_form_json": ("json", other_text),
            "dup_form_sign": ("sign", signing.sign(self.key, other_text, self.salt)),
            "dup_form_key": ("vpbx_api_key", "someone-else"),
        }[how]
        body = urlencode(first + [second], encoding="utf-8").encode()
        return Case(path, body, FORM, False, how, json=text)

    def _signed(self, path, payload, note):
        text = dumps(payload, ensure_ascii=self.rng.random() < 0.3)
        return self._signed_text(path, text, note)

    def _signed_text(self, path, text, note):
        # A lone surrogate cannot travel in UTF-8: escape it like a JSON string would.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        return Case(path, self.form(text), FORM, False, note, json=text)


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
