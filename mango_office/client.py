"""HTTP client of the Mango Office VPBX API (reference §1, §3, §4).

Every request is a signed form POST. Answers are turned into Python values or
into the typed errors of :mod:`mango_office.errors`:

* 2xx with a ``result`` outside 1xxx, any non-2xx, a 401 lockout, a malformed
  body: each has its exception, with the code, its meaning and the HTTP status;
* 429, 503 and the slow-down results (4290, 5008) are retried with backoff,
  honouring ``Retry-After``, a bounded number of times;
* a 3xxx is never retried: Mango locks the whole API for 2 minutes after a
  second invalid request within 2 minutes (§1.4), so inputs are validated here
  before anything is sent.

The client never writes the key, the salt, the signed form or a recording URL
to the log.
"""

import calendar
import collections
import datetime
import email.utils
import logging
import os
import re
import threading
import time
import uuid
import warnings
from urllib.parse import quote, urljoin

import requests
from urllib3.exceptions import InsecureRequestWarning

from . import codes, phones, signing
from .errors import (
    MangoCertificateError,
    MangoDeferred,
    MangoError,
    MangoLockedOut,
    MangoProtocolError,
    MangoRateLimited,
    MangoReportFailed,
    MangoReportLate,
    MangoRequestError,
    MangoServerError,
    MangoTransportError,
    error_for_code,
)
from .ratelimit import (
    LOCKOUT_SECONDS,
    RateLimiter,
    method_class,
    shared_rate_limiter,
)
from .reconcile import iter_stats_items, stats_status
from .rules import MOSCOW, is_valid_mango_password, sip_login_problem

__all__ = [
    "DEFAULT_BASE_URL",
    "MangoClient",
    "RateLimiter",
    "method_class",
    "parse_stats_csv",
]

_logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://app.mango-office.ru/vpbx"
# Basic statistics accept "up to one month"; 30 days is a month under any reading.
STATS_MAX_SPAN = 30 * 86400
STATS_DEFAULT_FIELDS = (
    "records",
    "start",
    "finish",
    "answer",
    "from_extension",
    "from_number",
    "to_extension",
    "to_number",
    "disconnect_reason",
    "line_number",
    "location",
)
STATS_FIELDS = STATS_DEFAULT_FIELDS + ("entry_id", "create")
_STATS_INT_FIELDS = frozenset(
    {"start", "finish", "answer", "create", "disconnect_reason"}
)
STATS_CALLS_LIMITS = (1, 5, 10, 20, 50, 100, 500, 1000, 2000, 5000)
STATS_CALLS_OPTIONS = frozenset(
    {
        "user_ids",
        "group_ids",
        "context_type",
        "context_status",
        "recall_status",
        "search_string",
        "ext_params",
        "ext_fields",
    }
)
USER_EXT_FIELDS = frozenset(
    {
        "general.user_id",
        "general.sips",
        "groups",
        "general.access_role_id",
        "telephony.dial_alg",
        "telephony.numbers.schedule",
        "telephony.line_id",
        "telephony.trunk_number_id",
        "general.mobile",
        "general.login",
        "general.use_status",
        "general.use_cc_numbers",
    }
)
MEMBER_FIELDS = frozenset(
    {
        "name",
        "email",
        "mobile",
        "department",
        "position",
        "access_role_id",
        "extension",
        "login",
        "password",
        "use_status",
        "use_cc_numbers",
        "line_id",
        "trunk_number_id",
        "dial_alg",
        "numbers",
    }
)
MEMBER_UPDATE_FIELDS = MEMBER_FIELDS | {"outgoingline"}
SIP_UPDATE_FIELDS = frozenset({"user_id", "login", "domain", "password", "description"})
GROUP_QUERY_FIELDS = frozenset(
    {"group_id", "operator_id", "operator_extension", "show_users"}
)
_STATS_CALLS_DATE = re.compile(r"^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}$")

# stats/result answers CSV without names; the requested columns are remembered
# per key so a later client in the same process can still read it.
_stats_fields_by_key = collections.OrderedDict()
_stats_fields_lock = threading.Lock()


def _remember_stats_fields(key, fields):
    with _stats_fields_lock:
        _stats_fields_by_key[key] = tuple(fields)
        while len(_stats_fields_by_key) > 1000:
            _stats_fields_by_key.popitem(last=False)


def _recall_stats_fields(key):
    with _stats_fields_lock:
        return _stats_fields_by_key.get(key)


# --- local validation -------------------------------------------------------


def _require_text(value, name, max_bytes=128):
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} is required")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is required")
    value = value.strip()
    if max_bytes and len(value.encode("utf-8")) > max_bytes:
        raise ValueError(f"{name} is longer than {max_bytes} bytes")
    return value


def _extension(value, name="extension"):
    text = _require_text(value, name, max_bytes=32)
    if not text.isdigit():
        raise ValueError(f"{name} must be digits, got {text!r}")
    return text


def _dial_target(value, name):
    """A number for the PBX: bare digits as given (extensions, 7XXX…)."""
    text = _require_text(value, name, max_bytes=256)
    if text.lower().startswith(("sip:", "sips:")):
        return text
    if text.isdigit():
        return text
    mango = phones.to_mango(text)
    if mango is None:
        raise ValueError(
            f"{name} is not a phone number, extension or SIP URI: {text!r}"
        )
    return mango


def _command_id(command_id):
    if command_id is None:
        return f"odoo-{uuid.uuid4().hex}"
    return _require_text(command_id, "command_id")


def _check_password(password, name="password"):
    if not isinstance(password, str) or not password:
        raise ValueError(f"{name} is required")
    if not is_valid_mango_password(password):
        raise ValueError(
            f"{name} needs at least 8 characters with lower case, upper case and digits"
        )


def _check_sip_login(login):
    problem = sip_login_problem(login)
    if problem:
        raise ValueError(problem)


def _member_name(value):
    return _require_text(value, "name", max_bytes=None)


def _check_member_fields(fields, allowed, creating):
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"Unknown member fields: {', '.join(sorted(unknown))}")
    if creating:
        for required in ("name", "access_role_id", "extension"):
            if fields.get(required) in (None, ""):
                raise ValueError(f"{required} is required to create a PBX user")
    for name, check in (("extension", _extension), ("name", _member_name)):
        if name in fields:
            fields[name] = check(fields[name])
    if ("login" in fields) != ("password" in fields):
        raise ValueError("login and password are sent together")
    if "password" in fields:
        _check_password(fields["password"])
    if fields.get("line_id") not in (None, "") and fields.get(
        "trunk_number_id"
    ) not in (None, ""):
        raise ValueError("line_id and trunk_number_id cannot both be set")
    if "dial_alg" in fields and str(fields["dial_alg"]) not in ("0", "1", "2"):
        raise ValueError("dial_alg is 0, 1 or 2")
    email_value = fields.get("email")
    if email_value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(email_value)):
        raise ValueError(f"Invalid e-mail address {email_value!r}")
    if "numbers" in fields:
        _check_member_numbers(fields["numbers"])
    return fields


def _check_member_numbers(numbers):
    # Bad input from the caller is a ValueError throughout, whatever its type.
    items = numbers if isinstance(numbers, list) else None
    if items is None:
        raise ValueError("numbers is a list")
    for item in items:
        if not isinstance(item, dict) or not item.get("number"):
            raise ValueError("each number needs a 'number'")
        if item.get("protocol", "tel") not in ("tel", "sip", "fmc"):
            raise ValueError("number protocol is tel, sip or fmc")
        if item.get("status", "on") not in ("on", "off"):
            raise ValueError("number status is on or off")


def _epoch(value, name):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            # Odoo keeps naive datetimes in UTC. Mango's own times are epochs; the
            # "UTC+3" of DOC2026 is UNCONFIRMED (§8.1) and not applied.
            return calendar.timegm(value.timetuple())
        return int(value.timestamp())
    if isinstance(value, datetime.date):
        return calendar.timegm(value.timetuple())
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"{name} is not a time: {value!r}")


def _moscow_wall_time(value, name):
    if isinstance(value, str) and _STATS_CALLS_DATE.match(value.strip()):
        return value.strip()
    epoch = _epoch(value, name)
    return datetime.datetime.fromtimestamp(epoch, MOSCOW).strftime("%d.%m.%Y %H:%M:%S")


def _moscow_epoch(text):
    return int(
        datetime.datetime.strptime(text, "%d.%m.%Y %H:%M:%S")
        .replace(tzinfo=MOSCOW)
        .timestamp()
    )


def _stats_fields(fields):
    if fields is None:
        return STATS_DEFAULT_FIELDS
    if isinstance(fields, str):
        fields = [f for f in fields.split(",")]
    fields = tuple(f.strip() for f in fields if f and f.strip())
    if not fields:
        raise ValueError("No statistics fields requested")
    unknown = [f for f in fields if f not in STATS_FIELDS]
    if unknown:
        raise ValueError(f"Unknown statistics fields: {', '.join(unknown)}")
    return fields


def _stats_party(filters, name):
    party = filters.pop(name, None)
    extension = filters.pop(f"{name}_extension", None)
    number = filters.pop(f"{name}_number", None)
    if party is None and extension is None and number is None:
        return None
    party = dict(party or {})
    if set(party) - {"extension", "number"}:
        raise ValueError(f"{name} takes extension and number only")
    if extension is not None:
        party["extension"] = extension
    if number is not None:
        party["number"] = number
    if party.get("extension") not in (None, ""):
        party["extension"] = _extension(party["extension"], f"{name}.extension")
    if party.get("number") not in (None, ""):
        party["number"] = _dial_target(party["number"], f"{name}.number")
    return {k: v for k, v in party.items() if v not in (None, "")}


# --- CSV of stats/result ------------------------------------------------------


def _split_records(value):
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_stats_csv(text, fields=STATS_DEFAULT_FIELDS):
    """Rows of a ``stats/result`` body: ``;`` between fields, no quoting (§4.2).

    The body has no header; the columns are the requested ``fields`` in order.
    Whether Mango ever adds a header is UNCONFIRMED: a first row made only of
    field names is taken as one. ``records`` becomes a list of recording ids;
    times and the disconnect reason become ints.
    """
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    fields = tuple(fields)
    if lines:
        first = [cell.strip() for cell in lines[0].split(";")]
        if all(cell in STATS_FIELDS for cell in first) and len(set(first)) == len(
            first
        ):
            fields = tuple(first)
            lines = lines[1:]
    rows = []
    for line in lines:
        cells = line.split(";")
        row = {}
        for index, name in enumerate(fields):
            cell = cells[index].strip() if index < len(cells) else ""
            if name == "records":
                row[name] = _split_records(cell)
            elif name in _STATS_INT_FIELDS:
                row[name] = int(cell) if re.fullmatch(r"-?\d+", cell) else None
            else:
                row[name] = cell or None
        rows.append(row)
    return rows


def _retry_after(response):
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - time.time())


def _result_code(data):
    """``result`` (current API) or ``code`` (HTTP 420 form of 2017); 0 means "none"."""
    if not isinstance(data, dict):
        return None
    for name in ("result", "code"):
        value = data.get(name)
        if value is None or isinstance(value, bool):
            continue
        try:
            code = int(value)
        except (TypeError, ValueError):
            continue
        if code:
            return code
    return None


class MangoClient:
    """Signed access to one Mango product (one ``vpbx_api_key``)."""

    def __init__(
        self,
        api_key,
        api_salt,
        base_url=DEFAULT_BASE_URL,
        verify=True,
        timeout=15,
        session=None,
        max_retries=3,
        backoff=0.5,
        rate_limiter=None,
        max_retry_wait=30,
        sleep=time.sleep,
        clock=time.monotonic,
    ):
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("The Mango API key is required")
        if not isinstance(api_salt, str) or not api_salt.strip():
            raise ValueError("The Mango API salt is required")
        if not base_url or not re.match(r"^https?://", base_url):
            raise ValueError(
                f"The Mango API address must be an http(s) URL, got {base_url!r}"
            )
        if isinstance(verify, str) and not os.path.exists(verify):
            raise ValueError(f"CA bundle {verify!r} does not exist")
        # A number, or requests' (connect, read) pair; never None (no timeout).
        parts = timeout if isinstance(timeout, tuple) else (timeout,)
        if not parts or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0
            for t in parts
        ):
            raise ValueError("A positive timeout is required")
        self.api_key = api_key.strip()
        self._api_salt = api_salt.strip()
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        self.timeout = timeout
        self.session = session or requests.Session()
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        # None: the limiter shared by every client of this product; False: none (tests).
        if rate_limiter is None:
            rate_limiter = shared_rate_limiter((self.base_url, self.api_key))
        self.rate_limiter = rate_limiter or None
        self._sleep = sleep
        self._clock = clock

    def __repr__(self):
        return f"<MangoClient {self.base_url}>"

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def url(self, path):
        return f"{self.base_url}/{path.strip('/')}"

    # -- transport ------------------------------------------------------------

    def _send(self, path, payload):
        form = signing.build_form(
            self.api_key, self._api_salt, {} if payload is None else payload
        )
        try:
            with warnings.catch_warnings():
                if self.verify is False:
                    # Turning the check off is the admin's explicit choice, shown
                    # on the settings page; urllib3 would repeat it on every call.
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                return self.session.post(
                    self.url(path),
                    data=form,
                    timeout=self.timeout,
                    verify=self.verify,
                    allow_redirects=False,
                    headers={"Accept": "application/json"},
                )
        except requests.exceptions.SSLError as exc:
            raise MangoCertificateError(
                f"TLS with Mango failed for {path}: {exc}"
            ) from exc
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
        ) as exc:
            raise MangoTransportError(f"Mango is unreachable ({path}): {exc}") from exc
        except OSError as exc:
            # requests raises a bare OSError for an unreadable CA bundle.
            raise MangoCertificateError(f"TLS setup failed for {path}: {exc}") from exc
        except requests.exceptions.RequestException as exc:
            raise MangoTransportError(
                f"Request to Mango failed ({path}): {exc}"
            ) from exc

    def _exchange(self, path, payload, handler, deferrable=False):
        """Send, rate limited, with bounded retries; ``handler`` reads the response.

        ``deferrable`` work (that Mango may refuse and that can wait) is held back
        while an invalid request of the last 2 minutes is on record: sending it
        could be the second 3xxx, which locks the whole API.
        """
        attempt = 0
        while True:
            if deferrable and self.rate_limiter is not None:
                strike = self.rate_limiter.invalid_strike_for()
                if strike > 0:
                    exc = MangoDeferred(
                        f"{path} postponed for {int(strike) + 1} s: Mango refused a "
                        "request moments ago and a second refusal would lock the API"
                    )
                    exc.retry_after = strike
                    raise exc
            if self.rate_limiter is not None:
                locked = self.rate_limiter.locked_for()
                if locked > 0:
                    exc = MangoLockedOut(
                        f"Mango's API is locked for another {int(locked) + 1} s "
                        "after repeated invalid requests",
                        http_status=401,
                    )
                    exc.retry_after = locked
                    raise exc
                ticket = self.rate_limiter.acquire(path)
                try:
                    response = self._send(path, payload)
                finally:
                    self.rate_limiter.release(ticket)
            else:
                response = self._send(path, payload)
            try:
                return handler(path, response)
            except MangoError as exc:
                if not self._retryable(exc) or attempt >= self.max_retries:
                    raise
                delay = max(
                    getattr(exc, "retry_after", None) or 0, self.backoff * (2**attempt)
                )
                if delay > self.max_retry_wait:
                    raise
                _logger.info(
                    "Mango asked to slow down on %s (%s); retrying in %.1f s",
                    path,
                    exc.code,
                    delay,
                )
                self._sleep(delay)
                attempt += 1

    @staticmethod
    def _retryable(exc):
        if isinstance(exc, (MangoRequestError, MangoLockedOut)):
            return False
        return isinstance(exc, MangoRateLimited) or exc.http_status in (429, 503)

    def _error(self, path, response, data):
        status = response.status_code
        code = _result_code(data)
        description = fields = None
        if isinstance(data, dict):
            description = data.get("description") or data.get("message")
            fields = data.get("fields")
            if fields is not None and not isinstance(fields, dict):
                fields = {"value": fields}
        if status == 401:
            seconds = _retry_after(response) or LOCKOUT_SECONDS
            if self.rate_limiter is not None:
                self.rate_limiter.lock_out(seconds)
            exc = MangoLockedOut(
                "Mango locked the API for 2 minutes after repeated invalid requests",
                code=code,
                description=description,
                fields=fields,
                http_status=401,
            )
        elif code is not None and not codes.is_success(code):
            exc = error_for_code(code, description, fields, status)
        elif status == 429:
            exc = MangoRateLimited(
                4290, description or "Rate limit exceeded", fields, status
            )
        elif status == 503:
            # JS maps 503 to "too many requests" and DOC2026 lists it with 5008
            # as "slow down"; its body is UNCONFIRMED, so it is retried as such.
            exc = MangoRateLimited(5008, description, fields, status)
        elif status >= 500:
            exc = MangoServerError(
                5000, description or f"HTTP {status}", fields, status
            )
        else:
            exc = MangoProtocolError(
                f"Mango answered HTTP {status} to {path}",
                code,
                description,
                fields,
                status,
            )
        exc.retry_after = _retry_after(response)
        if isinstance(exc, MangoRequestError) and self.rate_limiter is not None:
            self.rate_limiter.note_invalid()
        if isinstance(exc, MangoRequestError):
            _logger.warning(
                "Mango refused %s with %s; not retried (a second one locks the API)",
                path,
                exc.code,
            )
        return exc

    @staticmethod
    def _json(response):
        text = response.content
        if not text or not text.strip():
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise MangoProtocolError(
                f"Mango's answer is not JSON (HTTP {response.status_code})",
                http_status=response.status_code,
            ) from exc

    def _read_json(self, path, response):
        status = response.status_code
        if not 200 <= status < 300:
            try:
                data = self._json(response)
            except MangoProtocolError:
                data = None
            raise self._error(path, response, data)
        data = self._json(response)
        if data is None:
            # An empty 2xx still means "accepted": treating it as a failure would
            # make a caller repeat a command that Mango is already carrying out.
            return {}
        if not isinstance(data, dict):
            raise MangoProtocolError(
                f"Mango's answer to {path} is not a JSON object", http_status=status
            )
        code = _result_code(data)
        if code is not None and not codes.is_success(code):
            raise self._error(path, response, data)
        return data

    def call(self, path, payload=None):
        """POST a signed request and return the JSON answer (typed errors otherwise)."""
        return self._exchange(path, payload, self._read_json)

    @staticmethod
    def _field(data, name, path):
        if name not in data:
            raise MangoProtocolError(f"Mango's answer to {path} has no {name!r}")
        return data[name]

    # -- commands --------------------------------------------------------------

    def callback(
        self,
        extension,
        to_number,
        line_number=None,
        from_number=None,
        command_id=None,
        sip_headers=None,
    ):
        """Click-to-call: ring the employee, then ``to_number`` (§3.1)."""
        command_id = _command_id(command_id)
        party = {"extension": _extension(extension)}
        if from_number not in (None, ""):
            party["number"] = _dial_target(from_number, "from_number")
        payload = {
            "command_id": command_id,
            "from": party,
            "to_number": _dial_target(to_number, "to_number"),
        }
        if line_number not in (None, ""):
            payload["line_number"] = _require_text(line_number, "line_number")
        if sip_headers:
            if not isinstance(sip_headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str)
                for k, v in sip_headers.items()
            ):
                raise ValueError("sip_headers maps header names to text")
            payload["sip_headers"] = dict(sip_headers)
        self.call("commands/callback", payload)
        return command_id

    def callback_group(self, from_, to, line_number, command_id=None):
        """Call on behalf of a group (§3.2): one side is a group extension."""
        command_id = _command_id(command_id)
        payload = {
            "command_id": command_id,
            "from": _dial_target(from_, "from"),
            "to": _dial_target(to, "to"),
            "line_number": _require_text(line_number, "line_number"),
        }
        self.call("commands/callback_group", payload)
        return command_id

    def hangup(self, call_id, command_id=None):
        command_id = _command_id(command_id)
        self.call(
            "commands/call/hangup",
            {"command_id": command_id, "call_id": _require_text(call_id, "call_id")},
        )
        return command_id

    def route(self, call_id, to_number, command_id=None, display_name=None):
        command_id = _command_id(command_id)
        payload = {
            "command_id": command_id,
            "call_id": _require_text(call_id, "call_id"),
            "to_number": _dial_target(to_number, "to_number"),
        }
        if display_name:
            payload["sip_headers"] = {"From/display-name": str(display_name)}
        self.call("commands/route", payload)
        return command_id

    def transfer(self, call_id, to_number, initiator, method="blind", command_id=None):
        if method not in ("blind", "hold"):
            raise ValueError("method is 'blind' or 'hold'")
        command_id = _command_id(command_id)
        payload = {
            "command_id": command_id,
            "call_id": _require_text(call_id, "call_id"),
            "method": method,
            "to_number": _dial_target(to_number, "to_number"),
            "initiator": _dial_target(initiator, "initiator"),
        }
        self.call("commands/transfer", payload)
        return command_id

    def recording_start(self, call_id, call_party_number, command_id=None):
        command_id = _command_id(command_id)
        payload = {
            "command_id": command_id,
            "call_id": _require_text(call_id, "call_id"),
            "call_party_number": _dial_target(call_party_number, "call_party_number"),
        }
        self.call("commands/recording/start", payload)
        return command_id

    # -- recordings ---------------------------------------------------------------

    def recording(self, recording_id, action="download", deferrable=True):
        """The audio of a recording as ``(bytes, content_type)``.

        ``queries/recording/post`` answers 302 to a single-use URL (§4.1.1); it is
        fetched at once and never kept or logged. A recording asked for too early
        is refused with 3320, a 3xxx: by default the request is therefore
        ``deferrable`` and raises :class:`MangoDeferred` instead of being sent
        while another refusal of the last 2 minutes is on record.
        """
        if action not in ("download", "play"):
            raise ValueError("action is 'download' or 'play'")
        payload = {
            "recording_id": _require_text(recording_id, "recording_id"),
            "action": action,
        }
        return self._exchange(
            "queries/recording/post",
            payload,
            self._read_recording,
            deferrable=deferrable,
        )

    def _read_recording(self, path, response):
        status = response.status_code
        if status in (301, 302, 303, 307, 308):
            location = response.headers.get("Location")
            if not location:
                raise MangoProtocolError(
                    "Mango's recording redirect has no Location", http_status=status
                )
            return self._download(urljoin(response.url or self.url(path), location))
        content_type = response.headers.get("Content-Type", "")
        if (
            200 <= status < 300
            and response.content
            and "json" not in content_type.lower()
        ):
            # A proxy in between may already have followed the redirect.
            return response.content, content_type.split(";")[0].strip() or "audio/mpeg"
        self._read_json(path, response)
        raise MangoProtocolError(
            "Mango answered the recording request without a file", http_status=status
        )

    def _download(self, url):
        # The single-use file URL is a credential until fetched: no message,
        # log line or chained exception may carry it.
        failure = None
        try:
            with warnings.catch_warnings():
                if self.verify is False:
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                response = self.session.get(
                    url, timeout=self.timeout, verify=self.verify, allow_redirects=True
                )
        except requests.exceptions.SSLError as exc:
            failure = MangoCertificateError(
                f"TLS failed while downloading a recording ({type(exc).__name__})"
            )
        except requests.exceptions.RequestException as exc:
            failure = MangoTransportError(
                f"Recording download failed ({type(exc).__name__})"
            )
        if failure is not None:
            raise failure
        if response.status_code != 200:
            data = None
            if "json" in response.headers.get("Content-Type", "").lower():
                try:
                    data = self._json(response)
                except MangoProtocolError:
                    data = None
            raise self._error("recording file", response, data)
        content_type = (
            response.headers.get("Content-Type", "").split(";")[0].strip()
            or "audio/mpeg"
        )
        return response.content, content_type

    def recording_link(self, recording_id, action="play", expires_at=None, ttl=3600):
        """Unauthenticated GET link valid until ``expires_at`` (§4.1.2, enabled in LK).

        Anyone holding it can fetch the recording until it expires: prefer short
        lifetimes, and never log it.
        """
        if action not in ("download", "play"):
            raise ValueError("action is 'download' or 'play'")
        recording_id = _require_text(recording_id, "recording_id")
        timestamp = (
            int(expires_at) if expires_at is not None else int(time.time()) + int(ttl)
        )
        sign = signing.recording_link_sign(
            self.api_key, timestamp, recording_id, self._api_salt
        )
        # The id is base64-like: '/' and '+' are escaped so the path keeps its
        # segments whatever decoder the server uses; '=' is legal as it is. How
        # Mango decodes the segment is UNCONFIRMED (its examples have neither).
        return (
            f"{self.base_url}/queries/recording/link/"
            f"{quote(recording_id, safe='=')}/{action}/"
            f"{quote(self.api_key, safe='')}/{timestamp}/{sign}"
        )

    # -- statistics -------------------------------------------------------------

    def stats_request(
        self, date_from, date_to, fields=None, request_id=None, **filters
    ):
        """Start a basic statistics report (§4.2); the key for :meth:`stats_result`.

        Filters: ``from_extension``, ``from_number``, ``to_extension``,
        ``to_number``, ``call_party_extension``, ``call_party_number`` (or the
        ``from``/``to``/``call_party`` dicts).
        """
        start, end = _epoch(date_from, "date_from"), _epoch(date_to, "date_to")
        if end <= start:
            raise ValueError("date_to must be after date_from")
        if end - start > STATS_MAX_SPAN:
            raise ValueError(
                "A statistics period is at most 30 days; "
                "use stats() to split longer ones"
            )
        columns = _stats_fields(fields)
        filters = dict(filters)
        payload = {"date_from": str(start), "date_to": str(end)}
        parties = {
            name: _stats_party(filters, name) for name in ("from", "to", "call_party")
        }
        if filters:
            raise ValueError(
                f"Unknown statistics filters: {', '.join(sorted(filters))}"
            )
        if parties["call_party"] and (parties["from"] or parties["to"]):
            raise ValueError("call_party cannot be combined with from/to")
        for name, party in parties.items():
            if party:
                payload[name] = party
        if fields is not None:
            payload["fields"] = ",".join(columns)
        if request_id is not None:
            payload["request_id"] = _require_text(request_id, "request_id")
        data = self.call("stats/request", payload)
        key = self._field(data, "key", "stats/request")
        _remember_stats_fields(key, columns)
        return key

    def stats_result(self, key, fields=None):
        """Rows of a ready report, or None while it is being built (HTTP 204)."""
        key = _require_text(key, "key", max_bytes=None)
        if fields is not None:
            columns = _stats_fields(fields)
        else:
            columns = _recall_stats_fields(key) or STATS_DEFAULT_FIELDS
        return self._exchange(
            "stats/result",
            {"key": key},
            lambda path, resp: self._read_stats(path, resp, columns),
        )

    def _read_stats(self, path, response, columns):
        status = response.status_code
        if status == 204:
            return None
        if status == 404:
            data = None
            try:
                data = self._json(response)
            except MangoProtocolError:
                pass
            if _result_code(data):
                raise self._error(path, response, data)
            # A bare 404 carries no code (reference §4.2); 3300 "object does
            # not exist" names it, so callers handle it like any 3xxx.
            raise MangoRequestError(
                3300, "Unknown or expired statistics key", http_status=404
            )
        if not 200 <= status < 300:
            self._read_json(path, response)
        body = response.content or b""
        if body.lstrip().startswith(b"{"):
            # A JSON envelope instead of CSV: an error code, or an empty report.
            self._read_json(path, response)
            return []
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("cp1251", "replace")
        return parse_stats_csv(text, columns)

    def stats(
        self,
        date_from,
        date_to,
        fields=None,
        request_id=None,
        poll_interval=5,
        timeout=120,
        **filters,
    ):
        """All rows of a period, split into 30-day reports and polled until ready."""
        start, end = _epoch(date_from, "date_from"), _epoch(date_to, "date_to")
        if end <= start:
            raise ValueError("date_to must be after date_from")
        rows = []
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(end, chunk_start + STATS_MAX_SPAN)
            key = self.stats_request(
                chunk_start, chunk_end, fields=fields, request_id=request_id, **filters
            )
            rows.extend(
                self._poll(
                    lambda key=key: self.stats_result(key, fields),
                    poll_interval,
                    timeout,
                )
            )
            chunk_start = chunk_end
        return rows

    def _poll(self, fetch, poll_interval, timeout):
        deadline = self._clock() + timeout
        while True:
            result = fetch()
            if result is not None:
                return result
            if self._clock() + poll_interval > deadline:
                raise MangoReportLate(timeout)
            self._sleep(poll_interval)

    def stats_calls_request(self, start_date, end_date, limit=1000, offset=0, **kw):
        """Start an extended statistics report (§4.2); dates become Moscow wall time."""
        start = _moscow_wall_time(start_date, "start_date")
        end = _moscow_wall_time(end_date, "end_date")
        span = _moscow_epoch(end) - _moscow_epoch(start)
        if span <= 0:
            raise ValueError("end_date must be after start_date")
        # Exactly 30 days is refused with 3100/3111 (seen by N8N): stay strictly below.
        if span >= STATS_MAX_SPAN:
            raise ValueError(
                "An extended statistics period must be shorter than 30 days"
            )
        if int(limit) not in STATS_CALLS_LIMITS:
            raise ValueError(f"limit is one of {STATS_CALLS_LIMITS}")
        if int(offset) < 0:
            raise ValueError("offset cannot be negative")
        unknown = set(kw) - STATS_CALLS_OPTIONS
        if unknown:
            raise ValueError(
                f"Unknown extended statistics options: {', '.join(sorted(unknown))}"
            )
        payload = {
            "start_date": start,
            "end_date": end,
            "limit": str(int(limit)),
            "offset": str(int(offset)),
        }
        for name, value in kw.items():
            if value is None:
                continue
            if name in ("user_ids", "group_ids", "ext_fields") and not isinstance(
                value, (list, tuple)
            ):
                raise ValueError(f"{name} is a list")
            payload[name] = list(value) if isinstance(value, tuple) else value
        data = self.call("stats/calls/request", payload)
        return self._field(data, "key", "stats/calls/request")

    def stats_calls_result(self, key):
        """Extended report JSON; ``status``: request/work/complete/cancel/error."""
        return self.call(
            "stats/calls/result", {"key": _require_text(key, "key", max_bytes=None)}
        )

    def stats_calls(
        self, start_date, end_date, limit=1000, poll_interval=5, timeout=120, **kw
    ):
        """Every call of the period from extended statistics, page after page.

        Each page is polled until Mango says ``complete`` (an answer without a
        status counts as the report itself); its rows are unwrapped by
        :func:`mango_office.reconcile.iter_stats_items`, which skips what is not a
        row, so that a page is full only when it holds ``limit`` calls."""
        items = []
        offset = 0
        while True:
            key = self.stats_calls_request(
                start_date, end_date, limit=limit, offset=offset, **kw
            )

            def fetch(key=key):
                data = self.stats_calls_result(key)
                status = stats_status(data)
                if status in ("cancel", "error", "not-found"):
                    raise MangoReportFailed(status)
                return data if status == "complete" or (status == "" and data) else None

            page = list(iter_stats_items(self._poll(fetch, poll_interval, timeout)))
            items.extend(page)
            if len(page) < int(limit):
                return items
            offset += int(limit)

    # -- configuration --------------------------------------------------------------

    def users(self, extension=None, ext_fields=("general.user_id", "general.sips")):
        """PBX employees (§4.3); the answer has ``users`` and no ``result``."""
        payload = {}
        if extension not in (None, ""):
            payload["extension"] = _extension(extension)
        if ext_fields:
            ext_fields = list(ext_fields)
            unknown = set(ext_fields) - USER_EXT_FIELDS
            if unknown:
                raise ValueError(f"Unknown ext_fields: {', '.join(sorted(unknown))}")
            payload["ext_fields"] = ext_fields
        data = self.call("config/users/request", payload)
        users = self._field(data, "users", "config/users/request")
        if not isinstance(users, list):
            raise MangoProtocolError("Mango's users answer is not a list")
        return users

    def roles(self):
        return self._field(self.call("roles", {}), "roles", "roles")

    def member_create(self, **fields):
        fields = _check_member_fields(dict(fields), MEMBER_FIELDS, creating=True)
        data = self.call("member/create", fields)
        return self._field(data, "user_id", "member/create")

    def member_update(self, user_id, **fields):
        if not fields:
            raise ValueError("Nothing to update")
        fields = _check_member_fields(
            dict(fields), MEMBER_UPDATE_FIELDS, creating=False
        )
        payload = {"user_id": _require_text(user_id, "user_id"), **fields}
        return self.call("member/update", payload)

    def member_delete(self, user_id):
        return self.call(
            "member/delete", {"user_id": _require_text(user_id, "user_id")}
        )

    def sips(self):
        return self._field(self.call("sips", {}), "data", "sips")

    def domains(self):
        return self._field(self.call("domains", {}), "domains", "domains")

    def sip_create(self, user_id, login, password, domain, description=None):
        _check_sip_login(login)
        _check_password(password, "SIP password")
        payload = {
            "user_id": _require_text(user_id, "user_id"),
            "login": login,
            "password": password,
            "domain": _require_text(domain, "domain", max_bytes=255),
        }
        if description:
            payload["description"] = str(description)
        data = self.call("sip/create", payload)
        return self._field(data, "sip_id", "sip/create")

    def sip_update(self, sip_id, **fields):
        unknown = set(fields) - SIP_UPDATE_FIELDS
        if unknown:
            raise ValueError(f"Unknown SIP fields: {', '.join(sorted(unknown))}")
        if not fields:
            raise ValueError("Nothing to update")
        if ("login" in fields) != ("domain" in fields):
            raise ValueError("login and domain are sent together")
        if "login" in fields:
            _check_sip_login(fields["login"])
        if "password" in fields:
            _check_password(fields["password"], "SIP password")
        return self.call(
            "sip/update", {"sip_id": _require_text(sip_id, "sip_id"), **fields}
        )

    def sip_delete(self, sip_id):
        return self.call("sip/delete", {"sip_id": _require_text(sip_id, "sip_id")})

    def incoming_lines(self):
        return self._field(self.call("incominglines", {}), "lines", "incominglines")

    def balance(self):
        return self.call("account/balance", {})

    def groups(self, **kw):
        unknown = set(kw) - GROUP_QUERY_FIELDS
        if unknown:
            raise ValueError(f"Unknown group filters: {', '.join(sorted(unknown))}")
        payload = {k: v for k, v in kw.items() if v is not None}
        return self._field(self.call("groups", payload), "groups", "groups")

    def group_update(self, group_id, **group):
        """Change a group; ``operators`` replaces the whole membership (§4.4)."""
        if "operators" in group and not isinstance(group["operators"], list):
            raise ValueError("operators is the complete list of {id, priority}")
        if not group:
            raise ValueError("Nothing to update")
        return self.call(
            "group/update",
            {"group_id": _require_text(group_id, "group_id"), "group": group},
        )
