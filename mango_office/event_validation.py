"""The webhook boundary: what Mango may post, per event kind, checked once.

A body signed with the right key and salt can still be garbage: a leaked key, a
buggy proxy, a fuzzer. Whatever passes here is stored, folded into calls and
written to database columns, so this is the one place that says what a Mango
event is (reference §2.3–2.9) and refuses everything else with a reason:

* the JSON itself: UTF-8, at most :data:`MAX_JSON_CHARS`, nested at most
  :data:`MAX_DEPTH` levels (counted before parsing, so a body nested thousands
  of levels deep never reaches a recursive parser), no duplicate keys, no
  ``NaN``/``Infinity``, no number beyond a signed 64-bit integer or a finite float;
* text: no NUL, no lone surrogate (``\\ud800``), no control character where Mango
  sends none (:mod:`mango_office.safe_text`); identifiers at most 128 bytes, as
  documented for ``entry_id``, ``call_id``, ``recording_id`` and ``command_id``;
* each documented field: its type, its range, and the required fields of its
  kind. Numbers where Mango sends numbers, strings where it sends strings, with
  the documented quirks accepted: ``seq``, ``result``, codes and timestamps as
  numeric strings, timestamps with a fraction, ``extension`` as an integer,
  ``""`` or ``null`` for an empty optional field, a byte-order mark before the JSON, and
  spaced or ``\\u``-escaped JSON (the signature covers the text as sent).

Fields Mango documents but we do not read, and fields Mango may add later, are
accepted when they are sane JSON (the text and number rules above): Mango lists
more fields every year and refusing them would gain nothing. Unknown paths below
``events/`` are accepted the same way; ``ping`` takes any body, even no JSON.

Every refusal is an :class:`EventParseError` carrying a short, stable ``reason``
code (:data:`REASONS`) and the ``field`` it is about; callers show and store
those, never a traceback.
"""

import json
import math
import re

from . import safe_text

MAX_JSON_CHARS = 64 * 1024
# The root object is level 1, ``from``/``to``/``dct`` level 2; Mango's own bodies
# never go deeper than 3. The margin is for fields Mango may add.
MAX_DEPTH = 8
MAX_PATH_CHARS = 100
# "string ≤128 B" for every identifier Mango documents (reference §2.4, §2.6, §3.1).
ID_MAX_BYTES = 128
TEXT_MAX_CHARS = 256
FREE_TEXT_MAX_CHARS = 4096
KEY_MAX_CHARS = 128
INT64_MAX = 2**63 - 1
# The columns the worker writes: seq and codes are PostgreSQL integers.
INT32_MAX = 2**31 - 1
# Unix seconds up to 2100-01-01: a millisecond timestamp (13 digits) or any
# later date is not Mango's, and would not fit a Python or PostgreSQL datetime.
TIMESTAMP_MAX = 4_102_444_800
# Result and disconnect codes are four digits, their class first (reference §5).
CODE_MAX = 9999
EXTENSION_MAX_DIGITS = 16

CALL_STATES = ("Appeared", "Connected", "OnHold", "Disconnected")
RECORDING_STATES = ("Started", "Continued", "Completed")

REASONS = {
    "not_json": "not JSON",
    "not_object": "not a JSON object",
    "too_large": "too large",
    "too_deep": "nested too deep",
    "duplicate_key": "duplicate key",
    "unknown_path": "not a Mango webhook path",
    "missing_field": "required field missing",
    "wrong_type": "wrong type",
    "out_of_range": "value out of range",
    "bad_characters": "forbidden characters",
    "too_long": "text too long",
    "unknown_value": "unknown value",
}


class EventParseError(ValueError):
    """A webhook body that is not a Mango event of its path.

    :ivar str reason: a key of :data:`REASONS`
    :ivar str field: the field concerned (``to.extension``), safe to show and
        store, or ``None`` for the body as a whole
    """

    def __init__(self, reason, message, field=None):
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


def _fail(reason, message, where=None):
    raise EventParseError(reason, message, where)


# --- paths ---------------------------------------------------------------------

# Documented paths (reference §2.3) that this integration stores but does not act on.
DOCUMENTED_IGNORED_PATHS = frozenset(
    {
        "events/dtmf",
        "events/sms",
        "events/ab",
        "events/record/tagged",
        "events/user/status_changed",
        "events/user/session_end",
        "events/recognized/offline",
    }
)
STATS_READY_PATHS = frozenset({"result/stat", "result/stats"})

_PATH_RE = re.compile(r"(?:^|/)((?:events|result)(?:/[A-Za-z0-9_.-]+)+|ping)$")


def normalize_path(path):
    """``events/call`` from ``/mango/<token>/events/call/`` or ``events/call``.

    Segments are ASCII words (Mango's paths are): no empty or dot-only segment,
    nothing longer than :data:`MAX_PATH_CHARS`.
    """
    text = (path if isinstance(path, str) else "").strip().strip("/")
    match = _PATH_RE.search(text) if len(text) <= 4 * MAX_PATH_CHARS else None
    found = match.group(1) if match else None
    if (
        found is None
        or len(found) > MAX_PATH_CHARS
        or any(part.strip(".") == "" for part in found.split("/"))
    ):
        shown = safe_text.storable(path, 60, multiline=False)
        _fail("unknown_path", f"Not a Mango webhook path: {shown}")
    return found.lower()


# --- strict JSON ----------------------------------------------------------------

# A string token (escapes included, possibly unterminated) or a bracket.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def _check_depth(text):
    """Refuse nesting beyond MAX_DEPTH by scanning the text, before any parser
    recurses into it."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                _fail("too_deep", f"Nested deeper than {MAX_DEPTH} levels")
        elif token in "]}":
            depth -= 1


def _object_without_duplicates(pairs):
    data = {}
    for key, value in pairs:
        if key in data:
            _fail("duplicate_key", "The same key appears twice", _where(None, key))
        data[key] = value
    return data


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        _fail("out_of_range", f"Number {text[:20]} is not finite")
    return value


def _no_constant(name):
    _fail("not_json", f"{name} is not JSON")


def load_json_text(body):
    """The JSON value of ``body`` (text or bytes), parsed strictly.

    :raise EventParseError: not UTF-8, too large, too deep, not JSON, a
        duplicate key, ``NaN``/``Infinity`` or a non-finite number
    """
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            _fail("not_json", "The payload is not UTF-8")
    if not isinstance(body, str):
        _fail("not_json", f"Unsupported payload type {type(body).__name__}")
    if len(body) > MAX_JSON_CHARS:
        _fail("too_large", f"The payload is longer than {MAX_JSON_CHARS} characters")
    # A byte-order mark is not JSON, yet some senders put one in front.
    text = body.lstrip("\ufeff")
    _check_depth(text)
    try:
        return json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except EventParseError:
        raise
    except (ValueError, RecursionError) as exc:
        # ValueError also covers integers of more than 4,300 digits.
        _fail("not_json", f"The payload is not JSON: {str(exc)[:120]}")


# --- field checkers -------------------------------------------------------------
# Each takes (value, where) and raises EventParseError, or returns None.


def _where(parent, key):
    name = (
        safe_text.storable(key, 40, multiline=False)
        if isinstance(key, str)
        else str(key)
    )
    return f"{parent}.{name}" if parent else name


def _type_name(value):
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _clean(text, where, limit, multiline=False):
    problem = safe_text.problem(text, multiline=multiline)
    if problem:
        _fail("bad_characters", f"Contains a {problem} character", where)
    if len(text) > limit:
        _fail("too_long", f"Longer than {limit} characters", where)


def _expect_str(value, where, what="a string"):
    if not isinstance(value, str):
        _fail("wrong_type", f"Expected {what}, got {_type_name(value)}", where)


def identifier(value, where):
    """An opaque identifier: a non-blank string of at most 128 UTF-8 bytes."""
    optional_identifier(value, where)
    if not value.strip():
        _fail("missing_field", "Empty identifier", where)


def optional_identifier(value, where):
    """An identifier, or ``""`` for none."""
    _expect_str(value, where)
    _clean(value, where, ID_MAX_BYTES)
    if len(value.encode("utf-8")) > ID_MAX_BYTES:
        _fail("too_long", f"Longer than {ID_MAX_BYTES} bytes", where)


def text(value, where):
    """A phone number, SIP address, location or other short word; may be ``""``."""
    _expect_str(value, where)
    _clean(value, where, TEXT_MAX_CHARS)


_DIGITS = re.compile(r"[0-9]*")


def extension(value, where):
    """An extension: digits, as a string or (DOC2026's type) an integer; ``""``
    when there is none (``acd_group`` of a group without an extension)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        _fail("wrong_type", f"Expected digits, got {_type_name(value)}", where)
    if isinstance(value, int):
        if not 0 <= value < 10**EXTENSION_MAX_DIGITS:
            _fail("out_of_range", "Not an extension number", where)
        return
    if not _DIGITS.fullmatch(value) or len(value) > EXTENSION_MAX_DIGITS:
        _clean(value, where, EXTENSION_MAX_DIGITS)
        _fail("wrong_type", "An extension is digits only", where)


_INTEGER_TEXT = re.compile(r"-?[0-9]{1,20}")
_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{0,9})?")


def integer(low, high, fraction=False):
    """A number in ``[low, high]``: an integer, an integral float or a numeric
    string (Mango's quirk); with ``fraction`` also a fractional one (timestamps)."""

    def check(value, where):
        if isinstance(value, bool):
            _fail("wrong_type", "Expected a number, got a boolean", where)
        if isinstance(value, str):
            pattern = _DECIMAL_TEXT if fraction else _INTEGER_TEXT
            if not pattern.fullmatch(value):
                _clean(value, where, 24)
                _fail("wrong_type", "Expected a number", where)
            number = float(value) if "." in value else int(value)
        elif isinstance(value, (int, float)):
            number = value
        else:
            _fail("wrong_type", f"Expected a number, got {_type_name(value)}", where)
        if isinstance(number, float):
            if not math.isfinite(number):
                _fail("out_of_range", "Not a finite number", where)
            if not fraction and not number.is_integer():
                _fail("wrong_type", "Expected a whole number", where)
        if not low <= number <= high:
            _fail("out_of_range", f"Outside {low}…{high}", where)

    return check


counter = integer(0, INT32_MAX)
timestamp = integer(0, TIMESTAMP_MAX, fraction=True)
code = integer(0, CODE_MAX)
numeric_id = integer(0, INT64_MAX)


def flag(value, where):
    """api v2's booleans; 0/1 and their strings too, as Mango writes flags elsewhere."""
    if isinstance(value, bool) or value in (0, 1):
        return
    if isinstance(value, str) and value.lower() in ("0", "1", "true", "false"):
        return
    _fail("wrong_type", f"Expected a boolean, got {_type_name(value)}", where)


def choice(options):
    """One of ``options``, compared case-insensitively."""
    folded = {option.casefold() for option in options}

    def check(value, where):
        _expect_str(value, where)
        _clean(value, where, TEXT_MAX_CHARS)
        if value.strip().casefold() not in folded:
            _fail("unknown_value", f"Not one of {', '.join(options)}", where)

    return check


def identifier_or_number(value, where):
    """``request_id``: whatever our own request carried, a string or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        numeric_id(value, where)
    else:
        optional_identifier(value, where)


def any_value(value, where, depth=1):
    """A field we do not read: any JSON value, with sane text and numbers."""
    if depth > MAX_DEPTH:
        _fail("too_deep", f"Nested deeper than {MAX_DEPTH} levels", where)
    if isinstance(value, dict):
        for key, item in value.items():
            _key(key, where)
            any_value(item, _where(where, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            any_value(item, _where(where, index), depth + 1)
    elif isinstance(value, str):
        _clean(value, where, FREE_TEXT_MAX_CHARS, multiline=True)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > INT64_MAX:
            _fail("out_of_range", "Beyond a 64-bit integer", where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            _fail("out_of_range", "Not a finite number", where)
    else:
        _fail("wrong_type", f"Not a JSON value: {_type_name(value)}", where)


def _key(key, parent):
    if not isinstance(key, str):
        _fail("wrong_type", "A key is not a string", parent)
    problem = safe_text.problem(key)
    if problem:
        _fail(
            "bad_characters",
            f"A key contains a {problem} character",
            _where(parent, key),
        )
    if len(key) > KEY_MAX_CHARS:
        _fail("too_long", f"A key is longer than {KEY_MAX_CHARS} characters", parent)


def obj(fields, required=()):
    """An object: ``fields`` checked by their checker, others by :func:`any_value`."""

    def check(value, where, depth=2):
        if not isinstance(value, dict):
            _fail("wrong_type", f"Expected an object, got {_type_name(value)}", where)
        for name in required:
            if name not in value:
                _fail(
                    "missing_field",
                    "Required by Mango's documentation",
                    _where(where, name),
                )
        for key, item in value.items():
            _key(key, where)
            inner = _where(where, key)
            checker = fields.get(key)
            if item is None or item == "":
                # An empty optional field is an absent one, however it is spelt.
                if key in required:
                    _fail("missing_field", "Required by Mango's documentation", inner)
                continue
            if checker is None:
                any_value(item, inner, depth + 1)
            elif getattr(checker, "nested", False):
                checker(item, inner, depth + 1)
            else:
                checker(item, inner)

    check.nested = True
    return check


# --- the kinds -------------------------------------------------------------------

_CALL_PARTY = obj(
    {
        "extension": extension,
        "number": text,
        "line_number": text,
        "acd_group": extension,
        "taken_from_call_id": optional_identifier,
        "was_transferred": flag,
        "hold_initiator": flag,
    }
)
_SUMMARY_PARTY = obj({"extension": extension, "number": text, "line_number": text})
_DCT = obj({"number": text, "type": integer(0, 2)})

CALL = obj(
    {
        "entry_id": identifier,
        "call_id": identifier,
        "timestamp": timestamp,
        "seq": counter,
        "call_state": choice(CALL_STATES),
        "location": text,
        "from": _CALL_PARTY,
        "to": _CALL_PARTY,
        "line_number": text,
        "dct": _DCT,
        "disconnect_reason": code,
        "transfer": text,
        "sip_call_id": text,
        "command_id": optional_identifier,
        "task_id": numeric_id,
        "callback_initiator": text,
    },
    required=("entry_id", "call_id", "call_state", "seq", "timestamp", "from", "to"),
)
SUMMARY = obj(
    {
        "entry_id": identifier,
        "call_direction": integer(0, 2),
        "from": _SUMMARY_PARTY,
        "to": _SUMMARY_PARTY,
        "line_number": text,
        "create_time": timestamp,
        "forward_time": timestamp,
        "talk_time": timestamp,
        "end_time": timestamp,
        "entry_result": integer(0, 1),
        "disconnect_reason": code,
        "sip_call_id": text,
        "dct": _DCT,
    },
    required=("entry_id", "call_direction", "create_time", "end_time", "from", "to"),
)
RECORDING = obj(
    {
        "recording_id": identifier,
        "recording_state": choice(RECORDING_STATES),
        "seq": counter,
        "entry_id": identifier,
        "call_id": optional_identifier,
        "extension": extension,
        "timestamp": timestamp,
        "completion_code": code,
        "recipient": text,
        "command_id": optional_identifier,
    },
    required=("entry_id", "recording_id", "recording_state", "timestamp"),
)
RECORD_ADDED = obj(
    {
        "entry_id": identifier,
        "recording_id": identifier,
        "product_id": numeric_id,
        # -1: the recording belongs to no employee (reference §2.7).
        "user_id": integer(-1, INT64_MAX),
        "timestamp": timestamp,
    },
    required=("entry_id", "recording_id", "timestamp"),
)
COMMAND_RESULT = obj(
    {"command_id": identifier, "result": code}, required=("command_id", "result")
)
STATS_READY = obj(
    {"key": identifier, "request_id": identifier_or_number}, required=("key",)
)
# Documented paths we store without acting on them: the fields we know are
# typed, nothing is required (refusing them would gain nothing).
DTMF = obj(
    {
        "seq": counter,
        "dtmf": text,
        "timestamp": timestamp,
        "call_id": optional_identifier,
        "entry_id": optional_identifier,
        "location": text,
        "from_number": text,
        "to_number": text,
        "line_number": text,
    }
)
SMS = obj({"command_id": optional_identifier, "timestamp": timestamp, "reason": code})
# Any other events/… path: only the columns the event store indexes are typed.
OTHER = obj({"entry_id": optional_identifier, "command_id": optional_identifier})

SCHEMAS = {
    "events/call": CALL,
    "events/summary": SUMMARY,
    "events/recording": RECORDING,
    "events/record/added": RECORD_ADDED,
    "events/dtmf": DTMF,
    "events/sms": SMS,
}


def schema_of(path):
    """The checker of a normalized path's payload."""
    if path in SCHEMAS:
        return SCHEMAS[path]
    if path in STATS_READY_PATHS:
        return STATS_READY
    if path.startswith("result/"):
        return COMMAND_RESULT
    return OTHER


def validate_event(path, body):
    """``(path, payload)``: the normalized path and the validated JSON object.

    :param path: the path below the webhook base (any prefix is dropped)
    :param body: the ``json`` form field as text or bytes, or a dict already
        parsed (tests, reconciliation)
    :raise EventParseError: with the reason and the field
    """
    path = normalize_path(path)
    if path == "ping":
        return path, _ping_payload(body)
    data = body if isinstance(body, dict) else load_json_text(body)
    if not isinstance(data, dict):
        _fail("not_object", "The payload is not a JSON object")
    schema_of(path)(data, None, 1)
    return path, data


def _ping_payload(body):
    """``ping``'s body is undocumented (reference §8.6): none, JSON or any text.
    Text that is not a JSON object is kept as ``{"body": text}``; it still may
    not carry characters no column can store."""
    if body is None or body in ("", b""):
        return {}
    if isinstance(body, dict):
        any_value(body, None)
        return body
    try:
        data = load_json_text(body)
    except EventParseError as error:
        if error.reason != "not_json":
            raise
        data = None
    if isinstance(data, dict):
        any_value(data, None)
        return data
    text_body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    _clean(text_body, "body", FREE_TEXT_MAX_CHARS, multiline=True)
    return {"body": text_body}
