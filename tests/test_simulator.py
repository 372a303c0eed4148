"""End-to-end tests of the Mango VPBX simulator over HTTP on loopback."""

import collections
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from mango_office import signing
from mango_office.simulator import DEFAULT_SEED, SimClock, run_simulator
from mango_office.simulator.mp3 import FRAME_SIZE

KEY, SALT = "sim-test-key", "sim-test-salt"


class Receiver:
    """A stand-in for the external system: records every signed POST Mango sends."""

    def __init__(self, status=200):
        self.status = status
        self.received = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
                with receiver.lock:
                    receiver.received.append(
                        (self.path, form, self.headers.get("Content-Type"))
                    )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mango"
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        )
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def events(self, prefix="/mango/"):
        with self.lock:
            return [
                (p[len(prefix) :], json.loads(f["json"]), f)
                for p, f, _ in self.received
            ]

    def wait_for(self, predicate, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate(self.events()):
                return self.events()
            time.sleep(0.05)
        raise AssertionError(
            f"condition not met; received {[e[0] for e in self.events()]}"
        )


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def sim(receiver):
    clock = SimClock(frozen=True)
    with run_simulator(KEY, SALT, webhook_url=receiver.url, clock=clock) as simulator:
        simulator.configure(command_events_delay_ms=0)
        yield simulator


def post(sim, method, payload=None, key=KEY, salt=SALT, **kwargs):
    form = signing.build_form(key, salt, {} if payload is None else payload)
    return requests.post(f"{sim.base_url}/{method}", data=form, timeout=10, **kwargs)


def call(sim, method, payload=None):
    """A request whose 3xxx answer must not lock the next one: step past the window."""
    response = post(sim, method, payload)
    body = (
        response.json()
        if response.headers.get("Content-Type", "").startswith("application/json")
        else None
    )
    if body and str(body.get("result", "")).startswith("3"):
        sim.advance(121)
    else:
        sim.advance(2.1)  # past the 1-per-2-s buckets (users/request, stats launch)
    return response, body


# ---- transport, signing, errors, lockout ---------------------------------------------
def test_signed_request_accepted_with_and_without_trailing_slash(sim):
    for path in ("account/balance", "account/balance/"):
        body = post(sim, path).json()
        assert body["result"] == 1000
        assert body["currency"] == "RUB" and isinstance(body["balance"], float)


def test_wrong_key_3105_then_bad_sign_3102(sim):
    response = post(sim, "roles", key="other-key")
    assert response.status_code == 200
    assert response.json()["result"] == 3105
    sim.advance(121)
    body = post(sim, "roles", salt="wrong-salt").json()
    assert body["result"] == 3102
    assert "description" in body


def test_request_format_errors(sim):
    response = requests.get(f"{sim.base_url}/roles", timeout=5)
    assert response.json()["result"] == 3101
    sim.advance(121)
    response = requests.post(
        f"{sim.base_url}/roles", data={"vpbx_api_key": KEY}, timeout=5
    )
    body = response.json()
    assert body["result"] == 3103 and set(body["fields"]) == {"sign", "json"}
    sim.advance(121)
    bad_json = "{not json"
    form = {
        "vpbx_api_key": KEY,
        "sign": signing.sign(KEY, bad_json, SALT),
        "json": bad_json,
    }
    assert (
        requests.post(f"{sim.base_url}/roles", data=form, timeout=5).json()["result"]
        == 3400
    )
    sim.advance(121)
    unknown = post(sim, "config/roles")
    assert unknown.status_code == 404
    # A 404 is not a 3xxx answer: it does not count towards the lockout.
    assert post(sim, "roles").json()["result"] == 1000


def test_second_invalid_request_locks_out_until_two_minutes_after_the_first(sim):
    assert post(sim, "roles", salt="bad").json()["result"] == 3102
    sim.advance(30)
    locked = post(sim, "roles", salt="bad")
    assert locked.status_code == 401
    assert post(sim, "roles").status_code == 401  # even a valid request
    control = requests.post(
        f"{sim.control_url}/clock", json={"advance": 89}, timeout=5
    ).json()
    assert control["lockout"]["locked"] is True
    assert post(sim, "roles").status_code == 401  # 119 s after the first
    requests.post(f"{sim.control_url}/clock", json={"advance": 1.5}, timeout=5)
    assert post(sim, "roles").json()["result"] == 1000
    # A fresh window: one invalid request is tolerated again.
    assert post(sim, "roles", salt="bad").json()["result"] == 3102


def test_legacy_errors_answer_420_with_code():
    with run_simulator(KEY, SALT, legacy_errors=True) as simulator:
        response = post(simulator, "roles", salt="bad")
        assert response.status_code == 420
        assert response.json()["code"] == 3102


def test_fifth_callback_in_one_second_is_rate_limited(sim):
    payload = {"from": {"extension": "101"}, "to_number": "79031234567"}
    for index in range(4):
        assert (
            post(
                sim, "commands/callback", dict(payload, command_id=f"c{index}")
            ).json()["result"]
            == 1000
        )
    limited = post(sim, "commands/callback", dict(payload, command_id="c4"))
    assert limited.status_code == 429
    assert limited.json() == {
        "name": "Service Unavailable",
        "message": "Rate limit exceeded.",
        "code": 0,
        "status": 429,
    }
    sim.advance(1)
    assert (
        post(sim, "commands/callback", dict(payload, command_id="c5")).json()["result"]
        == 1000
    )


def test_users_request_is_one_per_two_seconds(sim):
    assert post(sim, "config/users/request").status_code == 200
    assert post(sim, "config/users/request").status_code == 429
    sim.advance(2)
    assert post(sim, "config/users/request").status_code == 200


def test_faults_force_503_and_result_codes(sim):
    sim.add_fault("http_503", count=2, methods=["roles"])
    sim.add_fault("result", count=1, code=5008, methods=["account/balance"])
    assert post(sim, "roles").status_code == 503
    assert post(sim, "roles").status_code == 503
    assert post(sim, "roles").json()["result"] == 1000
    assert post(sim, "account/balance").json()["result"] == 5008
    assert post(sim, "account/balance").json()["result"] == 1000


def test_timeout_fault_drops_the_connection(sim):
    sim.add_fault("timeout", count=1, seconds=0.5)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(sim, "roles")
    assert post(sim, "roles").json()["result"] == 1000


def test_commands_log_records_requests_with_masked_passwords(sim):
    call(
        sim,
        "member/create",
        {
            "name": "A",
            "access_role_id": 3,
            "extension": "150",
            "login": "a@example.com",
            "password": "Secret123",
        },
    )
    log = requests.get(
        f"{sim.control_url}/commands", params={"method": "member/create"}, timeout=5
    ).json()["commands"]
    assert log[-1]["payload"]["password"] == "***"
    assert log[-1]["result"] == 1000 and log[-1]["http_status"] == 200


# ---- directory -----------------------------------------------------------------------
def test_users_request_shape_and_filters(sim):
    _, body = call(
        sim,
        "config/users/request",
        {"ext_fields": ["general.user_id", "general.sips", "groups"]},
    )
    assert set(body) == {"users"}
    anna = next(u for u in body["users"] if u["telephony"]["extension"] == "101")
    assert anna["general"]["user_id"] == 400100101
    assert anna["general"]["sips"] == [{"number": "anna@vpbx400012345.mangosip.ru"}]
    assert anna["groups"] == [400200001]
    assert {"number", "protocol", "order", "wait_sec", "status"} <= set(
        anna["telephony"]["numbers"][0]
    )
    _, plain = call(sim, "config/users/request", {"extension": "102"})
    assert len(plain["users"]) == 1
    assert (
        "user_id" not in plain["users"][0]["general"]
        and "groups" not in plain["users"][0]
    )
    _, none = call(sim, "config/users/request", {"extension": "999"})
    assert none == {"users": []}


def test_reference_lists(sim):
    _, roles = call(sim, "roles")
    assert {"role_id": 3, "name": "Нет доступа", "permissions": []} in roles["roles"]
    _, lines = call(sim, "incominglines")
    assert {
        "line_id",
        "number",
        "name",
        "comment",
        "region",
        "schema_id",
        "schema_name",
    } <= set(lines["lines"][0])
    _, domains = call(sim, "domains")
    assert "vpbx400012345.mangosip.ru" in domains["domains"]
    _, groups = call(sim, "groups", {"show_users": 1, "operator_extension": "102"})
    assert [g["extension"] for g in groups["groups"]] == ["900"]
    assert [o["extension"] for o in groups["groups"][0]["operators"]] == [
        "101",
        "102",
        "103",
    ]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"access_role_id": 3, "extension": "150"}, 3103),
        ({"name": "N", "extension": "150"}, 3103),
        ({"name": "N", "access_role_id": 3}, 3103),
        ({"name": "N", "access_role_id": 3, "extension": "101"}, 3106),
        ({"name": "N", "access_role_id": 3, "extension": "900"}, 3106),
        ({"name": "N", "access_role_id": 3, "extension": "1a"}, 3104),
        (
            {
                "name": "N",
                "access_role_id": 3,
                "extension": "150",
                "login": "n@example.com",
            },
            3125,
        ),
        (
            {
                "name": "N",
                "access_role_id": 3,
                "extension": "150",
                "login": "n@x.ru",
                "password": "short1A",
            },
            3120,
        ),
        (
            {
                "name": "N",
                "access_role_id": 3,
                "extension": "150",
                "login": "n@x.ru",
                "password": "alllower123",
            },
            3120,
        ),
        (
            {
                "name": "N",
                "access_role_id": 3,
                "extension": "150",
                "line_id": 400300001,
                "trunk_number_id": 5,
            },
            3123,
        ),
        ({"name": "N", "access_role_id": 999, "extension": "150"}, 3300),
        ({"name": "N", "access_role_id": 3, "extension": "150", "email": "nope"}, 3112),
    ],
)
def test_member_create_validation(sim, payload, code):
    _, body = call(sim, "member/create", payload)
    assert body["result"] == code


def test_member_lifecycle(sim):
    payload = {
        "name": "Ольга Новикова",
        "access_role_id": "3",
        "extension": "150",
        "email": "olga@example.com",
        "login": "olga@example.com",
        "password": "Str0ngPass",
    }
    _, created = call(sim, "member/create", payload)
    assert created["result"] == 1000 and isinstance(created["user_id"], int)
    user_id = created["user_id"]
    _, updated = call(
        sim,
        "member/update",
        {"user_id": user_id, "position": "Менеджер", "extension": "151"},
    )
    assert updated["result"] == 1000
    _, users = call(
        sim,
        "config/users/request",
        {"extension": "151", "ext_fields": ["general.user_id"]},
    )
    assert users["users"][0]["general"]["position"] == "Менеджер"
    assert call(sim, "member/delete", {"user_id": user_id})[1]["result"] == 1000
    assert call(sim, "member/delete", {"user_id": user_id})[1]["result"] == 3300
    assert (
        call(sim, "member/delete", {"user_id": 400100101})[1]["result"] == 5210
    )  # the administrator


def test_employee_limit_5228_and_services_switch():
    seed = dict(DEFAULT_SEED, employee_limit=4)
    with run_simulator(KEY, SALT, seed=seed, clock=SimClock(frozen=True)) as simulator:
        _, body = call(
            simulator,
            "member/create",
            {"name": "N", "access_role_id": 3, "extension": "150"},
        )
        assert body["result"] == 5228
        simulator.seed(dict(DEFAULT_SEED, pbx_services_enabled=False))
        _, body = call(
            simulator,
            "sip/create",
            {
                "user_id": 400100104,
                "login": "petr",
                "password": "Passw0rdX",
                "domain": "office.mangosip.ru",
            },
        )
        assert body["result"] == 5201


@pytest.mark.parametrize(
    ("login", "code"),
    [
        ("petr", 1000),
        ("p.sokolov", 1000),
        ("1abc", 1000),
        ("12a4", 1000),
        ("0001234", 1000),
        ("0001", 1000),
        ("abc", 3121),
        ("1234", 3121),
        ("0012345", 3121),
        ("_petr", 3121),
        ("пётр", 3121),
        ("petr sokolov", 3121),
        ("ivan.petrov", 3106),
    ],
)
def test_sip_login_rule(sim, login, code):
    payload = {
        "user_id": 400100104,
        "login": login,
        "password": "Passw0rdX",
        "domain": "vpbx400012345.mangosip.ru",
    }
    _, body = call(sim, "sip/create", payload)
    assert body["result"] == code, body


def test_sip_domain_password_and_lifecycle(sim):
    base = {"user_id": 400100104, "login": "petr", "password": "Passw0rdX"}
    assert call(sim, "sip/create", base)[1]["result"] == 3103  # the domain is required
    assert (
        call(sim, "sip/create", dict(base, domain="evil.example.com"))[1]["result"]
        == 3122
    )
    assert (
        call(
            sim, "sip/create", dict(base, domain="office.mangosip.ru", password="weak")
        )[1]["result"]
        == 3120
    )
    _, created = call(
        sim, "sip/create", dict(base, domain="office.mangosip.ru", description="desk")
    )
    sip_id = created["sip_id"]
    _, listing = call(sim, "sips")
    entry = next(d for d in listing["data"] if d["user_id"] == 400100104)
    assert entry["sips"] == [
        {"id": sip_id, "login": "petr", "domain": "office.mangosip.ru"}
    ]
    assert (
        call(sim, "sip/update", {"sip_id": sip_id, "login": "petr2"})[1]["result"]
        == 3125
    )
    assert (
        call(
            sim,
            "sip/update",
            {"sip_id": sip_id, "login": "petr2", "domain": "office.mangosip.ru"},
        )[1]["result"]
        == 1000
    )
    assert call(sim, "sip/delete", {"sip_id": sip_id})[1]["result"] == 1000
    assert call(sim, "sip/delete", {"sip_id": sip_id})[1]["result"] == 3300


# ---- recordings ----------------------------------------------------------------------
def _recording_id(result):
    return next(
        e["payload"]["recording_id"]
        for e in result["planned"]
        if e["path"] == "events/record/added"
    )


def _mp3_frame_offset(data):
    offset = 0
    if data[:3] == b"ID3":
        size = 0
        for byte in data[6:10]:
            size = (size << 7) | byte
        offset = 10 + size
    return offset


def test_recording_download_302_single_use_mp3(sim):
    recording_id = _recording_id(sim.play("incoming_answered", talk_seconds=7))
    response = post(
        sim,
        "queries/recording/post",
        {"recording_id": recording_id, "action": "download"},
        allow_redirects=False,
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(sim.origin + "/files/")
    audio = requests.get(location, timeout=5)
    assert audio.status_code == 200
    assert audio.headers["Content-Type"] == "audio/mpeg"
    data = audio.content
    offset = _mp3_frame_offset(data)
    assert data[offset] == 0xFF and data[offset + 1] & 0xE0 == 0xE0  # MPEG frame sync
    assert (
        data[offset + 1] & 0x18 == 0x18 and data[offset + 1] & 0x06 == 0x02
    )  # MPEG-1, Layer III
    frames = (len(data) - offset) // FRAME_SIZE
    assert all(data[offset + i * FRAME_SIZE] == 0xFF for i in range(frames))
    assert 6 <= frames * 1152 / 48000 <= 8
    assert requests.get(location, timeout=5).status_code == 404  # single use
    followed = post(
        sim, "queries/recording/post", {"recording_id": recording_id, "action": "play"}
    )
    assert followed.status_code == 200 and followed.content[:3] == b"ID3"


def test_recording_not_found_and_not_ready(sim):
    recording_id = _recording_id(sim.play("incoming_answered"))
    _, body = call(
        sim,
        "queries/recording/post",
        {"recording_id": "bm9wZQ==", "action": "download"},
    )
    assert body["result"] == 3320
    sim.add_fault("recording_not_ready", count=1)
    _, body = call(
        sim,
        "queries/recording/post",
        {"recording_id": recording_id, "action": "download"},
    )
    assert body["result"] == 3320
    response = post(
        sim,
        "queries/recording/post",
        {"recording_id": recording_id, "action": "download"},
        allow_redirects=False,
    )
    assert response.status_code == 302


def test_recording_link_signature_and_expiry(sim):
    recording_id = _recording_id(sim.play("incoming_answered"))
    expires = str(int(sim.clock.now()) + 600)
    sign = signing.recording_link_sign(KEY, expires, recording_id, SALT)
    link = f"queries/recording/link/{recording_id}/download/{KEY}/{expires}/{sign}"
    url = f"{sim.base_url}/{link}"
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert (
        requests.get(response.headers["Location"], timeout=5).headers["Content-Type"]
        == "audio/mpeg"
    )
    bad = requests.get(url[:-4] + "0000", timeout=5).json()
    assert bad["result"] == 3102
    sim.advance(700)
    assert requests.get(url, timeout=5).json()["result"] == 3100  # expired


# ---- statistics ----------------------------------------------------------------------
def test_stats_request_204_then_csv_and_ready_event(sim, receiver):
    played = sim.play("incoming_answered", from_number="79035550101")
    sim.play("incoming_missed_queue", from_number="79035550102")
    now = int(sim.clock.now())
    fields = "entry_id,from_number,to_extension,answer,records"
    body = post(
        sim,
        "stats/request",
        {
            "date_from": str(now - 3600),
            "date_to": str(now + 3600),
            "fields": fields,
            "request_id": "r1",
        },
    ).json()
    key = body["key"]
    pending = post(sim, "stats/result", {"key": key})
    assert pending.status_code == 204 and pending.content == b""
    sim.advance(3)
    ready = post(sim, "stats/result", {"key": key})
    assert ready.status_code == 200
    rows = [line.split(";") for line in ready.text.splitlines()]
    assert len(rows) == 2 and all(len(r) == 5 for r in rows)
    assert (
        rows[0][0] == played["entry_id"]
        and rows[0][1] == "79035550101"
        and rows[0][2] == "101"
    )
    assert rows[0][4].startswith("[") and rows[1][3] == "0" and rows[1][4] == ""
    assert post(sim, "stats/result", {"key": "unknown"}).status_code == 404
    events = receiver.wait_for(lambda ev: any(p == "result/stat" for p, _, _ in ev))
    assert next(payload for p, payload, _ in events if p == "result/stat") == {
        "key": key,
        "request_id": "r1",
    }


def test_stats_validation(sim):
    now = int(sim.clock.now())
    assert call(sim, "stats/request", {"date_from": str(now)})[1]["result"] == 3103
    assert (
        call(
            sim,
            "stats/request",
            {"date_from": str(now - 40 * 86400), "date_to": str(now)},
        )[1]["result"]
        == 3111
    )
    assert (
        call(
            sim,
            "stats/request",
            {"date_from": str(now - 60), "date_to": str(now), "fields": "start,bogus"},
        )[1]["result"]
        == 3104
    )


def test_extended_stats(sim):
    played = sim.play("transfer")
    sim.play("incoming_missed_no_operator")
    start = time.strftime(
        "%d.%m.%Y %H:%M:%S", time.gmtime(sim.clock.now() + 3 * 3600 - 3600)
    )
    end = time.strftime(
        "%d.%m.%Y %H:%M:%S", time.gmtime(sim.clock.now() + 3 * 3600 + 3600)
    )
    _, bad = call(
        sim,
        "stats/calls/request",
        {
            "start_date": "2026-01-01T00:00:00",
            "end_date": end,
            "limit": 100,
            "offset": 0,
        },
    )
    assert bad["result"] == 3104
    payload = {
        "start_date": start,
        "end_date": end,
        "limit": 100,
        "offset": 0,
        "context_status": 1,
    }
    body = post(sim, "stats/calls/request", payload).json()
    first = post(sim, "stats/calls/result", {"key": body["key"]}).json()
    assert first["status"] == "request"
    sim.advance(3)
    done = post(sim, "stats/calls/result", {"key": body["key"]}).json()
    assert done["result"] == 1000 and done["status"] == "complete"
    items = done["data"][0]["list"]
    assert [i["entry_id"] for i in items] == [played["entry_id"]]
    contexts = items[0]["context_calls"]
    assert {c["call_abonent_id"] for c in contexts if c["call_type"] == "user"} == {
        400100101,
        400100102,
    }
    assert sum(len(c["recording_id"]) for c in contexts) == 2


# ---- webhook events ------------------------------------------------------------------
EXPECTED_PATHS = {
    "incoming_answered": {
        "events/call",
        "events/recording",
        "events/summary",
        "events/record/added",
    },
    "incoming_missed_queue": {"events/call", "events/summary"},
    "incoming_missed_no_operator": {"events/call", "events/summary"},
    "click_to_call": {
        "events/call",
        "events/recording",
        "events/summary",
        "events/record/added",
        "result/callback",
    },
    "callback_group": {
        "events/call",
        "events/recording",
        "events/summary",
        "events/record/added",
        "result/callback_group",
    },
    "transfer": {
        "events/call",
        "events/recording",
        "events/summary",
        "events/record/added",
    },
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED_PATHS))
def test_scenario_delivers_signed_events(sim, receiver, scenario):
    result = sim.play(scenario, from_number="79035550123")
    assert all(d["status"] == 200 for d in result["deliveries"])
    received = receiver.events()
    assert len(received) == result["events"]
    for path, payload, form in received:
        assert signing.verify_form(form, KEY, SALT)
        assert payload.get("entry_id", result["entry_id"]) == result[
            "entry_id"
        ] or path.startswith("result/")
    assert {p for p, _, _ in received} == EXPECTED_PATHS[scenario]
    calls = [p for path, p, _ in received if path == "events/call"]
    by_leg = collections.defaultdict(list)
    for event in calls:
        by_leg[event["call_id"]].append(int(event["seq"]))
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_leg.values())
    assert all(
        e["call_state"] in {"Appeared", "Connected", "OnHold", "Disconnected"}
        for e in calls
    )
    assert all(
        "disconnect_reason" in e for e in calls if e["call_state"] == "Disconnected"
    )
    summary = next(p for path, p, _ in received if path == "events/summary")
    answered = scenario not in ("incoming_missed_queue", "incoming_missed_no_operator")
    assert summary["entry_result"] == (1 if answered else 0)
    assert (summary["talk_time"] > 0) == answered
    if scenario == "incoming_missed_queue":
        assert summary["disconnect_reason"] == 1164 and summary["to"] == {
            "extension": "900"
        }
    if scenario.startswith("incoming") or scenario == "transfer":
        assert summary["call_direction"] == 1 and summary["from"] == {
            "number": "79035550123"
        }


def test_transfer_scenario_hands_the_call_to_the_second_employee(sim, receiver):
    sim.play("transfer", extension="101", to_extension="102")
    calls = [p for path, p, _ in receiver.events() if path == "events/call"]
    legs = {}
    for event in calls:
        legs.setdefault(event["call_id"], event)
    target = next(e for e in legs.values() if str(e["to"].get("extension")) == "102")
    source = next(e for e in legs.values() if str(e["to"].get("extension")) == "101")
    assert target["from"]["taken_from_call_id"] == source["call_id"]
    summary = next(p for path, p, _ in receiver.events() if path == "events/summary")
    assert summary["to"]["extension"] == "102"


def test_shuffle_and_duplicates_keep_the_event_multiset(sim, receiver):
    result = sim.play("incoming_answered", shuffle=True, duplicates=3, seed=7)
    planned = [signing.dumps(e["payload"]) for e in result["planned"]]
    received = [form["json"] for _, _, form in receiver.events()]
    assert len(received) == len(planned) + 3
    assert set(received) == set(planned)
    extra = collections.Counter(received) - collections.Counter(planned)
    assert sum(extra.values()) == 3
    assert (
        collections.Counter(planned) - collections.Counter(received)
        == collections.Counter()
    )
    assert received != planned  # delivered out of order
    assert sum(d["duplicate"] for d in result["deliveries"]) == 3


def test_callback_command_plays_employee_first(sim, receiver):
    body = post(
        sim,
        "commands/callback",
        {
            "command_id": "odoo-1",
            "from": {"extension": "102"},
            "to_number": "79035550199",
            "line_number": "74951234567",
        },
    ).json()
    assert body == {"result": 1000, "command_id": "odoo-1"}
    events = receiver.wait_for(lambda ev: any(p == "events/summary" for p, _, _ in ev))
    calls = [p for path, p, _ in events if path == "events/call"]
    first, customer = (
        calls[0],
        next(c for c in calls if c["to"].get("number") == "79035550199"),
    )
    assert str(first["to"]["extension"]) == "102" and first["command_id"] == "odoo-1"
    assert customer["from"]["taken_from_call_id"] == first["call_id"]
    assert {"command_id": "odoo-1", "result": 1000} in [
        {**p, "result": int(p["result"])}
        for path, p, _ in events
        if path == "result/callback"
    ]
    summary = next(p for path, p, _ in events if path == "events/summary")
    assert summary["call_direction"] == 2 and summary["line_number"] == "74951234567"


def test_callback_to_unknown_extension_fails_asynchronously(sim, receiver):
    body = post(
        sim,
        "commands/callback",
        {
            "command_id": "odoo-2",
            "from": {"extension": "777"},
            "to_number": "79035550199",
        },
    ).json()
    assert body["result"] == 1000
    events = receiver.wait_for(lambda ev: any(p == "result/callback" for p, _, _ in ev))
    assert [int(p["result"]) for path, p, _ in events if path == "result/callback"] == [
        3100
    ]


def test_callback_group_dials_the_customer_first(sim, receiver):
    body = post(
        sim,
        "commands/callback_group",
        {
            "command_id": "w-1",
            "from": "79035550111",
            "to": "900",
            "line_number": "74951234567",
        },
    ).json()
    assert body["result"] == 1000
    events = receiver.wait_for(lambda ev: any(p == "events/summary" for p, _, _ in ev))
    calls = [p for path, p, _ in events if path == "events/call"]
    assert calls[0]["to"]["number"] == "79035550111" and calls[0]["command_id"] == "w-1"
    operator = next(c for c in calls if c["to"].get("acd_group") == "900")
    assert operator["from"]["taken_from_call_id"] == calls[0]["call_id"]
    _, missing = call(
        sim, "commands/callback_group", {"from": "79035550111", "to": "900"}
    )
    assert missing["result"] == 3103


def test_live_call_hangup_route_and_recording_commands(sim, receiver):
    live = sim.play("incoming_answered", live=True)
    assert live["live"] is True
    ringing = [e["payload"] for e in live["planned"] if e["path"] == "events/call"][-1]
    assert ringing["call_state"] == "Appeared" and ringing["location"] == "abonent"
    assert (
        post(
            sim,
            "commands/route",
            {"command_id": "r1", "call_id": ringing["call_id"], "to_number": "103"},
        ).json()["result"]
        == 1000
    )
    events = receiver.wait_for(lambda ev: any(p == "result/route" for p, _, _ in ev))
    rerouted = [
        p
        for path, p, _ in events
        if path == "events/call" and str(p["to"].get("extension")) == "103"
    ]
    assert rerouted and rerouted[0]["call_state"] == "Appeared"
    sim.live_action(live["entry_id"], "answer")
    connected = next(
        p
        for path, p, _ in receiver.events()
        if path == "events/call"
        and p["call_state"] == "Connected"
        and p["location"] == "abonent"
    )
    sim.advance(1)
    body = post(
        sim,
        "commands/recording/start",
        {
            "command_id": "rec1",
            "call_id": connected["call_id"],
            "call_party_number": "103",
        },
    ).json()
    assert body["result"] == 1000
    events = receiver.wait_for(
        lambda ev: any(p == "result/recording/start" for p, _, _ in ev)
    )
    assert [
        int(p["result"]) for path, p, _ in events if path == "result/recording/start"
    ] == [4102]
    post(
        sim,
        "commands/call/hangup",
        {"command_id": "h1", "call_id": connected["call_id"]},
    )
    events = receiver.wait_for(lambda ev: any(p == "events/summary" for p, _, _ in ev))
    hung = [
        p
        for path, p, _ in events
        if path == "events/call" and p["call_id"] == connected["call_id"]
    ][-1]
    assert hung["call_state"] == "Disconnected" and hung["disconnect_reason"] == 1181
    post(
        sim,
        "commands/call/hangup",
        {"command_id": "h2", "call_id": connected["call_id"]},
    )
    events = receiver.wait_for(
        lambda ev: any(
            p["command_id"] == "h2" for path, p, _ in ev if path.startswith("result/")
        )
    )
    assert [
        int(p["result"])
        for path, p, _ in events
        if path == "result/call/hangup" and p["command_id"] == "h2"
    ] == [4101]


def test_control_api_ping_events_and_webhook(sim, receiver):
    assert (
        requests.post(f"{sim.control_url}/ping", timeout=10).json()["deliveries"][0][
            "status"
        ]
        == 200
    )
    path, _, form = receiver.events()[-1]
    assert path == "ping" and signing.verify_form(form, KEY, SALT)
    played = requests.post(
        f"{sim.control_url}/scenarios/incoming_missed_queue",
        json={"from_number": "79035550000", "pace": "instant"},
        timeout=10,
    ).json()
    assert played["events"] == len(played["planned"])
    listed = requests.get(
        f"{sim.control_url}/events", params={"entry_id": played["entry_id"]}, timeout=5
    ).json()["events"]
    assert len(listed) == played["events"] and {e["status"] for e in listed} == {200}
    requests.post(
        f"{sim.control_url}/webhook", json={"url": "http://127.0.0.1:9/none"}, timeout=5
    )
    failed = sim.play("incoming_missed_no_operator")
    assert all(d["status"] is None and d["error"] for d in failed["deliveries"])
    state = requests.get(f"{sim.control_url}/state", timeout=5).json()
    assert len(state["calls"]) == 2
    assert (
        requests.post(
            f"{sim.control_url}/scenarios/nope", json={}, timeout=5
        ).status_code
        == 400
    )
    requests.post(f"{sim.control_url}/reset", timeout=5)
    assert requests.get(f"{sim.control_url}/state", timeout=5).json()["calls"] == []


def _arrivals(receiver, entry_id):
    """(monotonic arrival, path, payload) of one call's events at the receiver."""
    with receiver.lock:
        received = list(receiver.received)
    result = []
    for path, form, _type in received:
        payload = json.loads(form["json"])
        if payload.get("entry_id") == entry_id:
            result.append((path.removeprefix("/mango/"), payload))
    return result


def _ringing(events):
    return [
        p
        for path, p in events
        if path == "events/call"
        and p["location"] == "abonent"
        and p["call_state"] == "Appeared"
    ]


def test_control_api_plays_the_readme_call_at_a_human_pace(sim, receiver):
    """The README's command: the call must ring in Odoo for seconds, not be over
    before the page could show a card."""
    started = time.monotonic()
    played = requests.post(
        f"{sim.control_url}/scenarios/incoming_answered", json={}, timeout=10
    ).json()
    assert time.monotonic() - started < 3, "the answer must not wait for the call"
    entry = played["entry_id"]
    time.sleep(1.5)
    early = _arrivals(receiver, entry)
    # The caller is in the IVR: nothing rings an employee, nothing has ended.
    assert not [path for path, _p in early if path == "events/summary"]
    assert early and all(p["location"] == "ivr" for _path, p in early)
    assert played["pace"] == "realtime" and played["live"] is True
    calls = requests.get(f"{sim.control_url}/calls", timeout=5).json()["calls"]
    assert entry in [c["entry_id"] for c in calls]
    assert not [c for c in sim.state.calls if c["entry_id"] == entry]
    # Mango's IVR (4 s) and queue (3 s), then the employee's phone rings.
    receiver.wait_for(lambda ev: _ringing(_arrivals(receiver, entry)), timeout=15)
    assert time.monotonic() - started >= 6.5
    events = _arrivals(receiver, entry)
    assert not [p for path, p in events if p.get("call_state") == "Disconnected"]
    # The user ends it through the control API: the script stops there.
    requests.post(f"{sim.control_url}/calls/{entry}/hangup", json={}, timeout=10)
    receiver.wait_for(
        lambda ev: any(
            path == "events/summary" for path, _p in _arrivals(receiver, entry)
        )
    )
    time.sleep(5.5)  # past the moment the script would have answered
    final = _arrivals(receiver, entry)
    assert [path for path, _p in final].count("events/summary") == 1
    assert not [
        p
        for path, p in final
        if p.get("location") == "abonent" and p.get("call_state") == "Connected"
    ]
    assert [c["entry_result"] for c in sim.state.calls if c["entry_id"] == entry] == [0]


def test_realtime_call_rings_then_is_talked_then_ends(sim, receiver):
    """Each second of the scenario lasts a second; timestamps say the same."""
    started = time.monotonic()
    played = sim.play(
        "incoming_answered",
        pace="realtime",
        ivr_seconds=1,
        queue_seconds=0,
        ring_seconds=1,
        talk_seconds=2,
        record=False,
    )
    entry = played["entry_id"]
    arrived = {}

    def moments(events):
        for path, p in _arrivals(receiver, entry):
            key = (path, p.get("location"), p.get("call_state"), p.get("call_id"))
            arrived.setdefault(key, (time.monotonic() - started, p))
        return any(path == "events/summary" for path, _p in _arrivals(receiver, entry))

    receiver.wait_for(moments, timeout=15)
    moments(None)
    ring = min(
        t
        for (path, loc, state, _c), (t, _p) in arrived.items()
        if loc == "abonent" and state == "Appeared"
    )
    answer = min(
        t
        for (path, loc, state, _c), (t, _p) in arrived.items()
        if loc == "abonent" and state == "Connected"
    )
    end = next(
        t for (path, *_rest), (t, _p) in arrived.items() if path == "events/summary"
    )
    assert ring >= 0.9 and answer - ring >= 0.9 and end - answer >= 1.9
    summary = next(
        p for (path, *_r), (_t, p) in arrived.items() if path == "events/summary"
    )
    assert summary["entry_result"] == 1
    assert summary["end_time"] - summary["create_time"] == 4
    assert not sim.live_calls()


def test_realtime_scenario_stops_on_reset_and_refuses_an_unknown_pace(sim, receiver):
    played = sim.play("incoming_missed_queue", pace="realtime", ivr_seconds=1)
    assert played["live"] is True
    sim.reset()
    time.sleep(2.5)
    assert not [
        path
        for path, _p in _arrivals(receiver, played["entry_id"])
        if path == "events/summary"
    ]
    response = requests.post(
        f"{sim.control_url}/scenarios/incoming_answered",
        json={"pace": "slow"},
        timeout=5,
    )
    assert response.status_code == 400 and "pace" in response.json()["error"]
    # A scenario that cannot start answers its reason, as with instant play.
    response = requests.post(
        f"{sim.control_url}/scenarios/incoming_answered",
        json={"extension": "999"},
        timeout=5,
    )
    assert response.status_code == 400 and "999" in response.json()["error"]


def test_receiver_errors_are_recorded(sim, receiver):
    receiver.status = 500
    result = sim.play("incoming_missed_no_operator")
    assert {d["status"] for d in result["deliveries"]} == {500}


# ---- HTTPS and CLI -------------------------------------------------------------------
@pytest.fixture
def certificate(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_https_with_self_signed_certificate_speaks_tls12_only(certificate):
    cert, key = certificate
    with run_simulator(KEY, SALT, certfile=cert, keyfile=key) as simulator:
        assert simulator.base_url.startswith("https://127.0.0.1:")
        assert post(simulator, "roles", verify=cert).json()["result"] == 1000
        with pytest.raises(requests.exceptions.SSLError):
            post(simulator, "roles", verify=True)
        context = ssl.create_default_context(cafile=cert)
        address = ("127.0.0.1", simulator.port)
        with (
            socket.create_connection(address, timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == "TLSv1.2"
        only13 = ssl.create_default_context(cafile=cert)
        only13.minimum_version = ssl.TLSVersion.TLSv1_3
        with (
            socket.create_connection(address, timeout=5) as raw,
            pytest.raises(ssl.SSLError),
        ):
            only13.wrap_socket(raw, server_hostname="127.0.0.1")


def test_cli_help_and_run(tmp_path):
    help_text = subprocess.run(
        [sys.executable, "-m", "mango_office.simulator", "--help"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for word in (
        "/_sim/scenarios/<name>",
        "/_sim/clock",
        "/_sim/faults",
        "--legacy-errors",
        "incoming_missed_queue",
    ):
        assert word in help_text
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(dict(DEFAULT_SEED, balance=42.0)))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mango_office.simulator",
            "--port",
            "0",
            "--api-key",
            KEY,
            "--api-salt",
            SALT,
            "--seed",
            str(seed),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        base_url = line.split()[4]
        form = signing.build_form(KEY, SALT, {})
        assert (
            requests.post(f"{base_url}/account/balance", data=form, timeout=5).json()[
                "balance"
            ]
            == 42.0
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_simulator_refuses_non_loopback_hosts():
    with pytest.raises(ValueError), run_simulator(KEY, SALT, host="0.0.0.0"):
        pass


def test_click_to_call_to_an_extension_is_internal(sim, receiver):
    result = sim.play("click_to_call", extension="101", to_number="103")
    summary = next(
        e["payload"] for e in result["planned"] if e["path"] == "events/summary"
    )
    assert summary["call_direction"] == 0 and "line_number" not in summary
    assert summary["to"]["extension"] == "103"


def test_reset_keeps_a_frozen_clock_and_restores_the_seed(sim):
    call(sim, "member/create", {"name": "N", "access_role_id": 3, "extension": "150"})
    sim.reset()
    assert sim.clock.frozen
    assert sim.state.user_by_extension("150") is None
    assert sim.commands() == [] and sim.events() == []


def test_seed_through_the_control_api(sim):
    seed = {
        "product_id": 1234,
        "domains": ["acme.mangosip.ru"],
        "lines": [
            {
                "line_id": 1,
                "number": "74950000000",
                "name": "L",
                "comment": "",
                "region": "77",
                "schema_id": 1,
                "schema_name": "S",
            }
        ],
        "users": [
            {
                "user_id": 10,
                "name": "Solo",
                "extension": "11",
                "sips": [
                    {"login": "solo", "domain": "acme.mangosip.ru", "password": "x"}
                ],
            }
        ],
        "groups": [{"id": 20, "name": "G", "extension": "30", "operators": ["11"]}],
    }
    state = requests.post(f"{sim.control_url}/seed", json=seed, timeout=5).json()
    assert [u["extension"] for u in state["users"]] == ["11"]
    assert state["users"][0]["groups"] == [20]
    assert "password" not in state["users"][0]["sips"][0]
    _, users = call(sim, "config/users/request", {"ext_fields": ["general.sips"]})
    assert users["users"][0]["general"]["sips"] == [{"number": "solo@acme.mangosip.ru"}]
    result = sim.play("incoming_answered")
    assert result["planned"][0]["payload"]["to"]["line_number"] == "74950000000"


def test_group_update_replaces_operators(sim):
    _, body = call(
        sim,
        "group/update",
        {
            "group_id": 400200001,
            "group": {"operators": [{"id": 400100104, "priority": 1}]},
        },
    )
    assert body["result"] == 1000
    _, groups = call(sim, "groups", {"group_id": 400200001, "show_users": 1})
    assert [o["extension"] for o in groups["groups"][0]["operators"]] == ["104"]
    _, body = call(
        sim,
        "group/update",
        {"group_id": 400200001, "group": {"operators": [{"id": 1}]}},
    )
    assert body["result"] == 3300


def test_control_actions_on_a_realtime_live_call_answer_at_once(sim, receiver):
    """A live call held ringing (``live``) is the user's to move on: answer and
    hang-up over the control API take effect at once, however long the script
    would have waited, even after the scenario's own thread has ended (a new
    request thread may reuse its identifier)."""
    played = requests.post(
        f"{sim.control_url}/scenarios/incoming_answered",
        json={"live": True, "ivr_seconds": 0, "queue_seconds": 0},
        timeout=10,
    ).json()
    entry = played["entry_id"]
    receiver.wait_for(lambda ev: _ringing(_arrivals(receiver, entry)), timeout=15)
    time.sleep(0.5)  # the scenario's thread has delivered the ring and ended
    for action in ("answer", "hangup"):
        started = time.monotonic()
        response = requests.post(
            f"{sim.control_url}/calls/{entry}/{action}", json={}, timeout=60
        )
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 2, f"{action} waited for the script"
    receiver.wait_for(
        lambda ev: any(
            path == "events/summary" for path, _p in _arrivals(receiver, entry)
        ),
        timeout=10,
    )
