"""The VPBX API methods: validation, PBX state changes and answers (reference §3, §4).

Structural problems (a missing or malformed parameter) are answered synchronously with a
3xxx result, exactly the answers that feed the two-minute lockout. Problems Mango can
only find while executing a command (an unknown extension, a finished call) come back
asynchronously in ``result/<command>``, as reference §2.9/§3 describe.
"""

import datetime
import re
import secrets

MSK = datetime.timezone(datetime.timedelta(hours=3))
STATS_FIELDS = (
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
    "entry_id",
    "create",
)
DEFAULT_STATS_FIELDS = STATS_FIELDS[:11]
USER_EXT_FIELDS = (
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
)
STATS_CALLS_LIMITS = (1, 5, 10, 20, 50, 100, 500, 1000, 2000, 5000)
MONTH = 31 * 86400
SIP_LOGIN_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A destination: an extension (any length), a group extension, a phone number or a
# SIP URI (reference §3.1). People's spellings are normalised as the PBX does with
# every number (§6): blanks, dashes, dots, brackets and a leading "+" go.
NUMBER = re.compile(r"^(\+?\d{1,15}|sip:[^@\s]+@[^@\s]+)$")
NUMBER_SEPARATORS = re.compile(r"[\s\-().]")
MAX_COMMAND_ID_BYTES = 128


class ApiError(Exception):
    def __init__(self, code, description=None, fields=None):
        super().__init__(code)
        self.code = code
        self.description = description
        self.fields = fields or {}


class Response:
    """A non-JSON or non-200 answer (302, 204, 404, CSV)."""

    def __init__(self, status, body=b"", content_type=None, headers=None, result=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.result = result


# ---- validation helpers --------------------------------------------------------------
def require(payload, *names):
    missing = {n: 3103 for n in names if payload.get(n) in (None, "")}
    if missing:
        raise ApiError(
            3103, "Required parameter is missing: " + ", ".join(missing), missing
        )


def integer(payload, name, required=False):
    value = payload.get(name)
    if value in (None, ""):
        if required:
            raise ApiError(3103, f"Required parameter is missing: {name}", {name: 3103})
        return None
    if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)):
        raise ApiError(3104, f"Parameter {name} must be an integer", {name: 3104})
    return int(value)


def extension_value(payload, name, required=False):
    value = payload.get(name)
    if value in (None, ""):
        if required:
            raise ApiError(3103, f"Required parameter is missing: {name}", {name: 3103})
        return None
    if isinstance(value, bool) or not re.fullmatch(r"\d{1,8}", str(value)):
        raise ApiError(3104, f"Parameter {name} must be digits", {name: 3104})
    return str(value)


def number_value(payload, name, required=True):
    value = payload.get(name)
    if value in (None, ""):
        if required:
            raise ApiError(3103, f"Required parameter is missing: {name}", {name: 3103})
        return None
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if not text.lower().startswith("sip:"):
        text = NUMBER_SEPARATORS.sub("", text)
    if isinstance(value, bool) or not NUMBER.match(text):
        raise ApiError(
            3104,
            f"Parameter {name} is not a phone number, extension or SIP URI",
            {name: 3104},
        )
    return text if text.lower().startswith("sip:") else text.lstrip("+")


def command_id_value(payload):
    """The caller's ``command_id`` as given (it is echoed back), at most 128 bytes
    (reference §3.1)."""
    value = payload.get("command_id")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ApiError(3104, "command_id must be a string", {"command_id": 3104})
    if len(str(value).encode("utf-8", "surrogateescape")) > MAX_COMMAND_ID_BYTES:
        raise ApiError(
            3104,
            f"command_id is longer than {MAX_COMMAND_ID_BYTES} bytes",
            {"command_id": 3104},
        )
    return value


def check_password(password, name="password"):
    if (
        not isinstance(password, str)
        or len(password) < 8
        or not re.search(r"[a-z]", password)
        or not re.search(r"[A-Z]", password)
        or not re.search(r"\d", password)
    ):
        raise ApiError(
            3120,
            "Password must have 8+ characters with lower case, upper case and digits",
            {name: 3120},
        )


def sip_login_ok(login):
    """Reference §4.4 rule 3121.

    A Latin letter first; or a digit first and a letter somewhere; or all digits
    starting with "000". At least four characters.
    """
    if not isinstance(login, str) or len(login) < 4 or not SIP_LOGIN_CHARS.match(login):
        return False
    if login[0].isascii() and login[0].isalpha():
        return True
    if login[0].isdigit():
        if any(c.isascii() and c.isalpha() for c in login):
            return True
        return login.isdigit() and login.startswith("000")
    return False


def services_enabled(sim):
    if not sim.state.pbx_services_enabled:
        raise ApiError(5201, "Enable «Услуги ВАТС» in the API connector")


def ok(**data):
    return {"result": 1000, **data}


# ---- commands ------------------------------------------------------------------------
def commands_callback(sim, p):
    from_ = p.get("from")
    if not isinstance(from_, dict) or from_.get("extension") in (None, ""):
        raise ApiError(
            3103,
            "Required parameter is missing: from.extension",
            {"from.extension": 3103},
        )
    extension = extension_value(from_, "extension", required=True)
    to_number = number_value(p, "to_number")
    device = from_.get("number") or None
    if device and not NUMBER.match(str(device)):
        raise ApiError(3104, "from.number is not a number", {"from.number": 3104})
    line_number = p.get("line_number") or None
    command_id = command_id_value(p)
    state = sim.state
    result = 1000
    if (
        state.user_by_extension(extension) is None
        or line_number
        and state.line_by_number(line_number) is None
        or device
        and (state.user_by_extension(device) or state.group_by_extension(device))
    ):
        result = 3100
    options = dict(
        sim.settings["callback_options"],
        extension=extension,
        to_number=to_number,
        command_id=command_id,
        device_number=device,
    )
    if line_number:
        options["line_number"] = line_number
    sim.after_command("callback", command_id, result, "click_to_call", options)
    return ok(command_id=command_id) if command_id is not None else ok()


def commands_callback_group(sim, p):
    require(p, "from", "to", "line_number")
    source, target = number_value(p, "from"), number_value(p, "to")
    command_id = command_id_value(p)
    state = sim.state
    result, scenario, options = (
        1000,
        None,
        dict(sim.settings["callback_options"], command_id=command_id),
    )
    if state.line_by_number(p["line_number"]) is None:
        result = 3100
    elif state.group_by_extension(target):
        scenario = "callback_group"
        options.update(
            from_number=source, group=target, line_number=str(p["line_number"])
        )
    elif state.group_by_extension(source):
        group = state.group_by_extension(source)
        operators = [state.users[u] for u in group["operators"] if u in state.users]
        if not operators:
            result = 1164
        else:
            scenario = "click_to_call"
            options.update(
                extension=operators[0]["extension"],
                to_number=target,
                line_number=str(p["line_number"]),
            )
    else:
        result = 3100
    sim.after_command(
        "callback_group", command_id, result, scenario or "callback_group", options
    )
    return ok(command_id=command_id) if command_id is not None else ok()


def _live_action(sim, command, p, action):
    command_id = command_id_value(p)
    call = sim.live_call_for(p["call_id"])
    if call is None:
        sim.command_result_only(command, command_id, 4101)
    else:
        sim.act_on_live_call(
            call, command, command_id, lambda: action(call, call.legs[p["call_id"]])
        )
    return ok(command_id=command_id) if command_id is not None else ok()


def commands_hangup(sim, p):
    require(p, "call_id")

    def action(call, leg):
        call.hangup(1181)
        return 1000

    return _live_action(sim, "call/hangup", p, action)


def commands_route(sim, p):
    require(p, "call_id", "to_number")
    to_number = number_value(p, "to_number")

    def action(call, leg):
        if leg["state"] == "Disconnected":
            return 4101
        if leg["state"] == "Connected" and leg["location"] == "abonent":
            return 4100
        for ringing in call.ringing_legs():
            call.disconnect(ringing, 1183)
        state = sim.state
        user, group = (
            state.user_by_extension(to_number),
            state.group_by_extension(to_number),
        )
        if group:
            call.to_queue(group)
            for uid in group["operators"]:
                if uid in state.users:
                    call.ring(state.users[uid])
        elif user:
            call.ring(user)
        else:
            source = call.caller_leg or leg
            call.new_leg(
                "abonent",
                {"number": source["from"].get("number")},
                {"number": to_number},
                taken_from=source,
            )
        return 1000

    return _live_action(sim, "route", p, action)


def commands_transfer(sim, p):
    require(p, "call_id", "method", "to_number", "initiator")
    if p["method"] not in ("blind", "hold"):
        raise ApiError(3104, "method must be blind or hold", {"method": 3104})
    to_number = number_value(p, "to_number")

    def action(call, leg):
        if leg["state"] != "Connected":
            return 4101
        parties = {
            str(v)
            for side in ("from", "to")
            for k, v in leg[side].items()
            if k in ("extension", "number")
        }
        initiator = str(p["initiator"])
        if (
            initiator not in parties
            or not sim.state.user_by_extension(initiator)
            and not any(
                sim.state.sip_uri(u) == initiator for u in sim.state.users.values()
            )
        ):
            return 3100
        target = sim.state.user_by_extension(to_number)
        if target is None:
            return 3200
        if p["method"] == "hold":
            call.emit(leg, "OnHold")
        call.blind_transfer(target, command_id=p.get("command_id"))
        return 1000

    return _live_action(sim, "transfer", p, action)


def commands_recording_start(sim, p):
    require(p, "call_id", "call_party_number")

    def action(call, leg):
        if leg["state"] != "Connected":
            return 4101
        if leg.get("recording"):
            return 4102
        party = str(p["call_party_number"])
        user = sim.state.user_by_extension(party)
        if user is None:
            user = next(
                (u for u in sim.state.users.values() if sim.state.sip_uri(u) == party),
                None,
            )
        if user is None or str(user["extension"]) not in {
            str(leg["to"].get("extension")),
            str(leg["from"].get("extension")),
        }:
            return 3330
        call.start_recording(leg, user, command_id=p.get("command_id"))
        return 1000

    return _live_action(sim, "recording/start", p, action)


# ---- recordings ----------------------------------------------------------------------
def recording_post(sim, p):
    require(p, "recording_id", "action")
    if p["action"] not in ("download", "play"):
        raise ApiError(3104, "action must be download or play", {"action": 3104})
    return sim.recording_redirect(str(p["recording_id"]), p["action"])


# ---- statistics ----------------------------------------------------------------------
def _party(p, name):
    value = p.get(name)
    if value in (None, "", {}):
        return None
    if not isinstance(value, dict):
        raise ApiError(3104, f"{name} must be an object", {name: 3104})
    return {
        k: str(v)
        for k, v in value.items()
        if k in ("extension", "number") and v not in (None, "")
    }


def stats_request(sim, p):
    require(p, "date_from", "date_to")
    date_from, date_to = integer(p, "date_from"), integer(p, "date_to")
    if date_to < date_from or date_to - date_from > MONTH:
        raise ApiError(
            3111,
            "The period must be at most one month",
            {"date_from": 3111, "date_to": 3111},
        )
    fields = p.get("fields")
    if fields in (None, ""):
        fields = list(DEFAULT_STATS_FIELDS)
    elif isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    elif not isinstance(fields, list):
        raise ApiError(
            3104, "fields must be a comma-separated string", {"fields": 3104}
        )
    unknown = [f for f in fields if f not in STATS_FIELDS]
    if unknown or not fields:
        raise ApiError(
            3104,
            "Unknown stats fields: " + ", ".join(map(str, unknown)),
            {"fields": 3104},
        )
    from_, to, party = _party(p, "from"), _party(p, "to"), _party(p, "call_party")
    if party and (from_ or to):
        raise ApiError(
            3123, "call_party cannot be combined with from/to", {"call_party": 3123}
        )
    key = sim.new_stats_request(
        "basic",
        {
            "date_from": date_from,
            "date_to": date_to,
            "fields": fields,
            "from": from_,
            "to": to,
            "call_party": party,
        },
        p.get("request_id"),
    )
    return {"key": key}


def _matches(row_value, wanted):
    return not wanted or str(row_value or "") == wanted


def stats_csv(sim, params):
    lines = []
    for call in sorted(sim.state.calls, key=lambda c: c["create_time"]):
        if not params["date_from"] <= call["create_time"] <= params["date_to"]:
            continue
        row = {
            "records": "[" + ",".join(call["recordings"]) + "]"
            if call["recordings"]
            else "",
            "start": call["create_time"],
            "finish": call["end_time"],
            "answer": call["talk_time"],
            "from_extension": call["from_extension"],
            "from_number": call["from_number"],
            "to_extension": call["to_extension"],
            "to_number": call["to_number"],
            "disconnect_reason": call["disconnect_reason"],
            "line_number": call["line_number"],
            "location": call["location"],
            "entry_id": call["entry_id"],
            "create": call["create_time"],
        }
        checks = []
        if params["from"]:
            checks.append(
                all(_matches(row[f"from_{k}"], v) for k, v in params["from"].items())
            )
        if params["to"]:
            checks.append(
                all(_matches(row[f"to_{k}"], v) for k, v in params["to"].items())
            )
        if params["call_party"]:
            checks.append(
                all(
                    _matches(row[f"from_{k}"], v)
                    for k, v in params["call_party"].items()
                )
                or all(
                    _matches(row[f"to_{k}"], v) for k, v in params["call_party"].items()
                )
            )
        if not all(checks):
            continue
        # Mango's CSV has no quoting or escaping: ';' between fields, '\n' between rows.
        lines.append(
            ";".join("" if row[f] is None else str(row[f]) for f in params["fields"])
        )
    return "".join(line + "\n" for line in lines)


def stats_result(sim, p):
    require(p, "key")
    report = sim.state.stats_requests.get(str(p["key"]))
    now = sim.clock.now()
    if report is None or report["kind"] != "basic" or now > report["expires_at"]:
        return Response(404, b"", result=404)
    if now < report["ready_at"]:
        return Response(204, b"", result=204)
    body = stats_csv(sim, report["params"]).encode("utf-8")
    return Response(200, body, "text/csv; charset=utf-8", result=1000)


def _msk_date(p, name):
    value = p.get(name)
    try:
        parsed = datetime.datetime.strptime(str(value), "%d.%m.%Y %H:%M:%S")
    except ValueError:
        raise ApiError(
            3104,
            f"{name} must look like 31.10.2019 00:00:00 (Moscow time)",
            {name: 3104},
        ) from None
    return int(parsed.replace(tzinfo=MSK).timestamp())


def stats_calls_request(sim, p):
    require(p, "start_date", "end_date", "limit")
    if p.get("offset") in (None, ""):
        raise ApiError(3103, "Required parameter is missing: offset", {"offset": 3103})
    start, end = _msk_date(p, "start_date"), _msk_date(p, "end_date")
    limit, offset = integer(p, "limit"), integer(p, "offset")
    if limit not in STATS_CALLS_LIMITS:
        raise ApiError(
            3104,
            "limit must be one of " + ", ".join(map(str, STATS_CALLS_LIMITS)),
            {"limit": 3104},
        )
    if offset < 0:
        raise ApiError(3108, "offset must not be negative", {"offset": 3108})
    if end < start or end - start >= 30 * 86400:
        raise ApiError(
            3100,
            "The period must be shorter than 30 days",
            {"start_date": 3111, "end_date": 3111},
        )
    params = {"start": start, "end": end, "limit": limit, "offset": offset}
    for name in ("user_ids", "group_ids"):
        value = p.get(name)
        if value not in (None, "", []):
            if not isinstance(value, list) or not all(
                re.fullmatch(r"\d+", str(v)) for v in value
            ):
                raise ApiError(3104, f"{name} must be a list of ids", {name: 3104})
            params[name] = {int(v) for v in value}
    for name in ("context_type", "context_status"):
        if p.get(name) not in (None, ""):
            params[name] = integer(p, name)
    return {"key": sim.new_stats_request("calls", params, p.get("request_id"))}


def _context(sim, call):
    state = sim.state
    contexts = []
    for leg in call["legs"]:
        user = state.users.get(leg.get("user_id")) or state.removed_users.get(
            leg.get("user_id")
        )
        party = leg["to"]
        if user:
            call_type, abonent_id, number = (
                "user",
                user["user_id"],
                party.get("number", ""),
            )
        elif party.get("acd_group"):
            call_type, abonent_id, number = "group", 0, party.get("number", "")
        else:
            call_type, abonent_id, number = "number", 0, party.get("number", "")
        answered = leg["connected_at"] if leg["location"] == "abonent" else 0
        end = leg["disconnected_at"] or call["end_time"]
        contexts.append(
            {
                "call_type": call_type,
                "call_abonent_id": abonent_id,
                "call_abonent_number": number,
                "call_abonent_extension": party.get("extension", ""),
                "call_start_time": leg["appeared_at"],
                "call_answer_time": answered,
                "call_end_time": end,
                "call_duration": end - leg["appeared_at"],
                "talk_duration": end - answered if answered else 0,
                "dial_duration": (answered or end) - leg["appeared_at"],
                "hold_duration": 0,
                "call_end_reason": leg["disconnect_reason"],
                "recording_id": [
                    r
                    for r in call["recordings"]
                    if call["recording_legs"].get(r) == leg["call_id"]
                ],
                "external_call_id": leg["call_id"],
                "is_transfer": 1
                if leg.get("from", {}).get("taken_from_call_id")
                and leg["location"] == "abonent"
                else 0,
            }
        )
    return contexts


def stats_calls_list(sim, params):
    state = sim.state
    items = []
    for call in sorted(state.calls, key=lambda c: c["create_time"]):
        if not params["start"] <= call["create_time"] <= params["end"]:
            continue
        context_type = {1: 1, 2: 2, 0: 3}[call["direction"]]
        status = 1 if call["talk_time"] else 0
        if params.get("context_type") not in (None, context_type):
            continue
        if params.get("context_status") not in (None, status):
            continue
        user_ids = {leg.get("user_id") for leg in call["legs"] if leg.get("user_id")}
        if params.get("user_ids") and not user_ids & params["user_ids"]:
            continue
        if params.get("group_ids") and not set(call["group_ids"]) & params["group_ids"]:
            continue
        caller = (
            state.users.get(call["caller_user_id"]) if call["caller_user_id"] else None
        )
        items.append(
            {
                "entry_id": call["entry_id"],
                "context_type": context_type,
                "context_status": status,
                "caller_id": call["caller_user_id"] or 0,
                "caller_name": caller["name"] if caller else "",
                "caller_number": call["from_number"],
                "called_number": call["to_number"] or call["line_number"],
                "context_start_time": call["create_time"],
                "duration": call["end_time"] - call["create_time"],
                "talk_duration": call["end_time"] - call["talk_time"]
                if call["talk_time"]
                else 0,
                "context_init_type": 2 if call["command_id"] else 1,
                "recall_status": 0,
                "line_number": call["line_number"],
                "context_calls": _context(sim, call),
            }
        )
    return items[params["offset"] : params["offset"] + params["limit"]]


def stats_calls_result(sim, p):
    require(p, "key")
    report = sim.state.stats_requests.get(str(p["key"]))
    now = sim.clock.now()
    if report is None or report["kind"] != "calls" or now > report["expires_at"]:
        return ok(status="not-found", data=[])
    report["polls"] += 1
    if now < report["ready_at"]:
        return ok(status="request" if report["polls"] == 1 else "work", data=[])
    return ok(
        status="complete", data=[{"list": stats_calls_list(sim, report["params"])}]
    )


# ---- users and configuration ---------------------------------------------------------
def users_request(sim, p):
    extension = extension_value(p, "extension")
    ext_fields = p.get("ext_fields") or []
    if not isinstance(ext_fields, list) or any(
        f not in USER_EXT_FIELDS for f in ext_fields
    ):
        raise ApiError(3104, "Unknown ext_fields value", {"ext_fields": 3104})
    state = sim.state
    users = []
    for user in sorted(
        state.users.values(), key=lambda u: (len(u["extension"]), u["extension"])
    ):
        if extension is not None and user["extension"] != extension:
            continue
        general = {
            "name": user["name"],
            "email": user["email"],
            "department": user["department"],
            "position": user["position"],
        }
        extra = {
            "general.user_id": ("user_id", user["user_id"]),
            "general.access_role_id": ("access_role_id", user["access_role_id"]),
            "general.mobile": ("mobile", user["mobile"]),
            "general.login": ("login", user["login"]),
            "general.use_status": ("use_status", user["use_status"]),
            "general.use_cc_numbers": ("use_cc_numbers", user["use_cc_numbers"]),
        }
        for field, (name, value) in extra.items():
            if field in ext_fields:
                general[name] = value
        if "general.sips" in ext_fields:
            general["sips"] = [
                {"number": f"{s['login']}@{s['domain']}"}
                for s in state.sips_of(user["user_id"])
            ]
        numbers = []
        for number in user["numbers"]:
            item = {
                "number": number["number"],
                "number_normalized": number["number"].removeprefix("sip:"),
                "protocol": number["protocol"],
                "order": number.get("order", 1),
                "wait_sec": number.get("wait_sec", 20),
                "status": number.get("status", "on"),
            }
            if "telephony.numbers.schedule" in ext_fields:
                item["schedule"] = number.get("schedule", [])
            numbers.append(item)
        telephony = {
            "extension": user["extension"],
            "outgoingline": user["outgoingline"],
            "numbers": numbers,
        }
        for field, name in (
            ("telephony.dial_alg", "dial_alg"),
            ("telephony.line_id", "line_id"),
            ("telephony.trunk_number_id", "trunk_number_id"),
        ):
            if field in ext_fields:
                telephony[name] = user[name]
        entry = {"general": general, "telephony": telephony}
        if "groups" in ext_fields:
            entry["groups"] = state.groups_of(user["user_id"])
        users.append(entry)
    return {"users": users}


def roles(sim, p):
    return ok(roles=sim.state.roles)


def _validate_member_fields(sim, p, user_id=None):
    _validate_member_identity(sim, p, user_id)
    _validate_member_login(sim, p, user_id)
    _validate_member_telephony(sim, p)


def _given(p, name):
    return p.get(name) not in (None, "")


def _validate_member_identity(sim, p, user_id):
    state = sim.state
    if "name" in p and (not isinstance(p["name"], str) or not p["name"].strip()):
        raise ApiError(3104, "name must be a non-empty string", {"name": 3104})
    if p.get("access_role_id") not in (None, ""):
        role = integer(p, "access_role_id")
        if role not in state.role_ids():
            raise ApiError(3300, "No such role", {"access_role_id": 3300})
    extension = extension_value(p, "extension")
    if extension is not None and state.extension_taken(
        extension, except_user_id=user_id
    ):
        raise ApiError(
            3106, f"Extension {extension} is already in use", {"extension": 3106}
        )
    if p.get("email") not in (None, "") and not EMAIL.match(str(p["email"])):
        raise ApiError(3112, "Invalid e-mail", {"email": 3112})
    if p.get("mobile") not in (None, "") and not re.fullmatch(
        r"\d{10,15}", str(p["mobile"])
    ):
        raise ApiError(
            3136, "mobile must be digits in international format", {"mobile": 3136}
        )


def _validate_member_login(sim, p, user_id):
    if _given(p, "login") != _given(p, "password"):
        raise ApiError(
            3125,
            "login and password must be given together",
            {"login": 3125, "password": 3125},
        )
    if p.get("password") not in (None, ""):
        check_password(p["password"])
    if _given(p, "login"):
        for other in sim.state.users.values():
            if other["login"] == p["login"] and other["user_id"] != user_id:
                raise ApiError(3106, "This login is already in use", {"login": 3106})


def _validate_member_telephony(sim, p):
    state = sim.state
    if _given(p, "line_id") and _given(p, "trunk_number_id"):
        raise ApiError(
            3123,
            "Only one of line_id and trunk_number_id",
            {"line_id": 3123, "trunk_number_id": 3123},
        )
    if p.get("line_id") not in (None, ""):
        line = state.line_by_id(p["line_id"])
        if line is None:
            raise ApiError(3300, "No such line", {"line_id": 3300})
        if line["region"] == "sip":
            raise ApiError(
                3124, "A passive SIP line cannot be an outgoing line", {"line_id": 3124}
            )
    if p.get("dial_alg") not in (None, "") and integer(p, "dial_alg") not in (0, 1, 2):
        raise ApiError(3104, "dial_alg must be 0, 1 or 2", {"dial_alg": 3104})
    for flag in ("use_status", "use_cc_numbers"):
        if p.get(flag) not in (None, "") and integer(p, flag) not in (0, 1):
            raise ApiError(3104, f"{flag} must be 0 or 1", {flag: 3104})
    numbers = p.get("numbers")
    if numbers is not None:
        if not isinstance(numbers, list):
            raise ApiError(3104, "numbers must be a list", {"numbers": 3104})
        for number in numbers:
            if not isinstance(number, dict) or not number.get("number"):
                raise ApiError(3103, "Each number needs a number", {"numbers": 3103})
            if number.get("protocol", "tel") not in ("tel", "sip", "fmc"):
                raise ApiError(
                    3104, "protocol must be tel, sip or fmc", {"numbers": 3104}
                )


def _apply_member_fields(sim, user, p):
    for name in ("name", "email", "department", "position", "mobile", "login"):
        if name in p and p[name] is not None:
            user[name] = str(p[name])
    if p.get("extension") not in (None, ""):
        user["extension"] = str(p["extension"])
    for name in ("access_role_id", "use_status", "use_cc_numbers", "dial_alg"):
        if p.get(name) not in (None, ""):
            user[name] = int(p[name])
    for name in ("line_id", "trunk_number_id", "outgoingline"):
        if name in p:
            user[name] = p[name]
    if p.get("numbers") is not None:
        state = sim.state
        wanted = []
        for order, number in enumerate(p["numbers"], 1):
            value = str(number["number"])
            protocol = number.get("protocol", "tel")
            if protocol == "sip" and not value.startswith("sip:"):
                value = "sip:" + value
            wanted.append(
                {
                    "number": value,
                    "protocol": protocol,
                    "order": order,
                    "wait_sec": int(number.get("wait_sec", 20)),
                    "status": number.get("status", "on"),
                    "schedule": number.get("schedule", []),
                }
            )
        kept = {n["number"] for n in wanted}
        # Removing a SIP number from the list deletes that SIP account (reference §4.4).
        for sip in list(state.sips_of(user["user_id"])):
            if f"sip:{sip['login']}@{sip['domain']}" not in kept:
                state.sips.pop(sip["id"])
        user["numbers"] = wanted


def member_create(sim, p):
    services_enabled(sim)
    require(p, "name", "access_role_id", "extension")
    _validate_member_fields(sim, p)
    state = sim.state
    if state.employee_limit is not None and len(state.users) >= int(
        state.employee_limit
    ):
        raise ApiError(5228, "The tariff's employee limit is exceeded")
    user_id = state.new_user_id()
    user = state._add_seed_user(
        {
            "user_id": user_id,
            "name": p["name"],
            "extension": p["extension"],
            "access_role_id": p["access_role_id"],
        }
    )
    user["mobile"] = ""
    user["numbers"] = []
    _apply_member_fields(sim, user, p)
    if user["mobile"] and p.get("numbers") is None:
        user["numbers"].append(state._number(user["mobile"], "tel", 1))
    return ok(user_id=user_id)


def _user_for(sim, p):
    user_id = integer(p, "user_id", required=True)
    user = sim.state.users.get(user_id)
    if user is None:
        raise ApiError(3300, f"No employee {user_id}", {"user_id": 3300})
    return user


def member_update(sim, p):
    services_enabled(sim)
    user = _user_for(sim, p)
    if user["is_robot"]:
        raise ApiError(5302, "A robot employee cannot be edited")
    _validate_member_fields(sim, p, user_id=user["user_id"])
    _apply_member_fields(sim, user, p)
    return ok()


def member_delete(sim, p):
    services_enabled(sim)
    user = _user_for(sim, p)
    if user["is_robot"]:
        raise ApiError(5302, "A robot employee cannot be deleted")
    if user["is_admin"]:
        raise ApiError(5210, "An administrator cannot be deleted")
    sim.state.remove_user(user["user_id"])
    return ok()


def sips(sim, p):
    state = sim.state
    data = []
    for user in state.users.values():
        items = [
            {"id": s["id"], "login": s["login"], "domain": s["domain"]}
            for s in state.sips_of(user["user_id"])
        ]
        if items:
            data.append({"user_id": user["user_id"], "sips": items})
    return ok(data=data)


def domains(sim, p):
    return ok(domains=sim.state.domains)


def _check_sip_identity(sim, login, domain, except_sip=None):
    if not sip_login_ok(login):
        raise ApiError(
            3121,
            "SIP login: 4+ characters, a Latin letter first, or digits with a letter, "
            "or digits from 000",
            {"login": 3121},
        )
    if domain not in sim.state.domains:
        raise ApiError(
            3122, "The domain is not one of this PBX's domains", {"domain": 3122}
        )
    for sip in sim.state.sips.values():
        if (
            sip["login"].lower() == login.lower()
            and sip["domain"] == domain
            and sip["id"] != except_sip
        ):
            raise ApiError(3106, "This SIP account already exists", {"login": 3106})


def sip_create(sim, p):
    services_enabled(sim)
    require(p, "user_id", "login", "password", "domain")
    user = _user_for(sim, p)
    login, domain = str(p["login"]), str(p["domain"])
    _check_sip_identity(sim, login, domain)
    check_password(p["password"])
    sip_id = sim.state.add_sip(
        user["user_id"], login, domain, p["password"], p.get("description") or ""
    )
    return ok(sip_id=sip_id)


def _sip_for(sim, p):
    sip_id = integer(p, "sip_id", required=True)
    sip = sim.state.sips.get(sip_id)
    if sip is None:
        raise ApiError(3300, f"No SIP account {sip_id}", {"sip_id": 3300})
    return sip


def sip_update(sim, p):
    services_enabled(sim)
    sip = _sip_for(sim, p)
    state = sim.state
    if (p.get("login") not in (None, "")) != (p.get("domain") not in (None, "")):
        raise ApiError(
            3125,
            "login and domain must be given together",
            {"login": 3125, "domain": 3125},
        )
    if p.get("user_id") not in (None, ""):
        user = _user_for(sim, p)
    else:
        user = None
    if p.get("login"):
        _check_sip_identity(
            sim, str(p["login"]), str(p["domain"]), except_sip=sip["id"]
        )
    if p.get("password") not in (None, ""):
        check_password(p["password"])
    if p.get("login"):
        state.rename_sip(sip["id"], str(p["login"]), str(p["domain"]))
    if p.get("password"):
        sip["password"] = p["password"]
    if "description" in p:
        sip["description"] = p["description"] or ""
    if user and user["user_id"] != sip["user_id"]:
        state.remove_sip(sip["id"])
        state.add_sip(
            user["user_id"],
            sip["login"],
            sip["domain"],
            sip["password"],
            sip["description"],
            sip["id"],
        )
    return ok()


def sip_delete(sim, p):
    services_enabled(sim)
    sip = _sip_for(sim, p)
    sim.state.remove_sip(sip["id"])
    return ok()


def incominglines(sim, p):
    return ok(lines=sim.state.lines)


def balance(sim, p):
    now = datetime.datetime.fromtimestamp(sim.clock.now(), MSK)
    return ok(
        balance=sim.state.balance,
        currency=sim.state.currency,
        response_at=now.strftime("%Y-%m-%d %H:%M:%S"),
    )


def _group_out(sim, group, show_users):
    out = {k: v for k, v in group.items() if k != "operators"}
    if show_users:
        out["operators"] = [
            {
                "id": uid,
                "name": sim.state.users[uid]["name"],
                "extension": sim.state.users[uid]["extension"],
                "priority": 1,
                "order": order,
            }
            for order, uid in enumerate(group["operators"], 1)
            if uid in sim.state.users
        ]
    return out


def groups(sim, p):
    group_id = integer(p, "group_id")
    operator_id = integer(p, "operator_id")
    operator_extension = extension_value(p, "operator_extension")
    show_users = integer(p, "show_users") or 0
    state = sim.state
    if operator_extension is not None:
        user = state.user_by_extension(operator_extension)
        operator_id = user["user_id"] if user else -1
    result = []
    for group in state.groups.values():
        if group_id is not None and group["id"] != group_id:
            continue
        if operator_id is not None and operator_id not in group["operators"]:
            continue
        result.append(_group_out(sim, group, show_users))
    return ok(groups=result)


def _operators(sim, value):
    if not isinstance(value, list):
        raise ApiError(3104, "operators must be a list", {"operators": 3104})
    ids = []
    for item in value:
        uid = item.get("id") if isinstance(item, dict) else item
        if not re.fullmatch(r"\d+", str(uid)) or int(uid) not in sim.state.users:
            raise ApiError(3300, f"No employee {uid}", {"operators": 3300})
        ids.append(int(uid))
    return ids


def group_create(sim, p):
    services_enabled(sim)
    data = p.get("group") if isinstance(p.get("group"), dict) else p
    require(data, "name")
    extension = extension_value(data, "extension")
    if extension and sim.state.extension_taken(extension):
        raise ApiError(
            3106, f"Extension {extension} is already in use", {"extension": 3106}
        )
    operators = _operators(sim, data.get("operators", []))
    group_id = sim.state.new_group_id()
    sim.state._add_seed_group({**data, "id": group_id, "operators": operators})
    return ok(group_id=group_id)


def group_update(sim, p):
    services_enabled(sim)
    group_id = integer(p, "group_id", required=True)
    group = sim.state.groups.get(group_id)
    if group is None:
        raise ApiError(3300, f"No group {group_id}", {"group_id": 3300})
    data = p.get("group") or {}
    if not isinstance(data, dict):
        raise ApiError(3104, "group must be an object", {"group": 3104})
    extension = extension_value(data, "extension")
    if (
        extension
        and extension != group["extension"]
        and sim.state.extension_taken(extension)
    ):
        raise ApiError(
            3106, f"Extension {extension} is already in use", {"extension": 3106}
        )
    if "operators" in data:
        group["operators"] = _operators(sim, data["operators"])
    for name in ("name", "description", "extension", "line_id"):
        if name in data:
            group[name] = str(data[name]) if name == "extension" else data[name]
    return ok()


def group_delete(sim, p):
    services_enabled(sim)
    group_id = integer(p, "group_id", required=True)
    if sim.state.groups.pop(group_id, None) is None:
        raise ApiError(3300, f"No group {group_id}", {"group_id": 3300})
    return ok()


METHODS = {
    "commands/callback": commands_callback,
    "commands/callback_group": commands_callback_group,
    "commands/call/hangup": commands_hangup,
    "commands/route": commands_route,
    "commands/transfer": commands_transfer,
    "commands/recording/start": commands_recording_start,
    "queries/recording/post": recording_post,
    "stats/request": stats_request,
    "stats/result": stats_result,
    "stats/calls/request": stats_calls_request,
    "stats/calls/result": stats_calls_result,
    "config/users/request": users_request,
    "roles": roles,
    "member/create": member_create,
    "member/update": member_update,
    "member/delete": member_delete,
    "sips": sips,
    "domains": domains,
    "sip/create": sip_create,
    "sip/update": sip_update,
    "sip/delete": sip_delete,
    "incominglines": incominglines,
    "account/balance": balance,
    "groups": groups,
    "group/create": group_create,
    "group/update": group_update,
    "group/delete": group_delete,
}


def new_token():
    return secrets.token_urlsafe(24)
