"""End to end: MangoClient, the event parser and the fold against the Mango simulator.

The simulator is an independent implementation of the reference; these tests
check that our side and it agree on the wire: signatures both ways, answers,
errors, lockout, rate limits, 302 recordings, CSV statistics and the events of
every call scenario, shuffled and duplicated.
"""

import datetime
import http.server
import ipaddress
import threading
import time
import urllib.parse

import pytest
import requests

from mango_office import errors, signing
from mango_office.calls import fold
from mango_office.client import MangoClient
from mango_office.events import parse_event
from mango_office.ratelimit import RateLimiter
from mango_office.simulator import run_simulator

KEY = "simkey9ipl5monmwkkyg3adfx2s6frz7b"
SALT = "simsaltcv3z37sqp6kvsjs4i7vd3lf6r5rw"


class WebhookSink:
    """What Odoo's controller does, minus the database: verify, parse, keep."""

    def __init__(self):
        self.received = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(
                    int(self.headers.get("Content-Length") or 0)
                ).decode()
                form = {
                    k: v[0]
                    for k, v in urllib.parse.parse_qs(
                        body, keep_blank_values=True
                    ).items()
                }
                valid = signing.verify_form(form, KEY, SALT)
                with outer.lock:
                    outer.received.append((self.path, form, valid))
                self.send_response(200 if valid else 403)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mango"
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        ).start()

    def events(self):
        with self.lock:
            items = list(self.received)
        return [parse_event(path, form["json"]) for path, form, _ in items]

    def wait_for(self, predicate, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if predicate(events):
                return events
            time.sleep(0.05)
        raise AssertionError(
            f"webhooks not received in time: {[e.kind for e in self.events()]}"
        )

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    hook = WebhookSink()
    yield hook
    hook.close()


@pytest.fixture
def sim(sink):
    with run_simulator(
        api_key=KEY, api_salt=SALT, webhook_url=sink.url, stats_delay=0.3
    ) as simulator:
        yield simulator


@pytest.fixture
def client(sim):
    return MangoClient(
        KEY, SALT, base_url=sim.base_url, rate_limiter=RateLimiter(), timeout=10
    )


def summary_for(entry_id):
    return lambda events: any(
        e.kind == "summary" and e.entry_id == entry_id for e in events
    )


def test_reference_data(client):
    assert client.balance()["currency"] == "RUB"
    lines = client.incoming_lines()
    assert lines and all("number" in line and "line_id" in line for line in lines)
    roles = client.roles()
    assert any(role["role_id"] == 3 for role in roles)
    assert client.domains()
    users = client.users()
    assert users and all("user_id" in u["general"] for u in users)
    one = client.users(extension=users[0]["telephony"]["extension"])
    assert [u["general"]["user_id"] for u in one] == [users[0]["general"]["user_id"]]
    assert client.users(extension="98765") == []
    assert isinstance(client.groups(), list)
    assert isinstance(client.sips(), list)


def test_employee_lifecycle(client):
    domain = client.domains()[0]
    user_id = client.member_create(
        name="Пётр Тестов",
        access_role_id=3,
        extension="4567",
        email="petr@example.com",
        department="QA",
    )
    created = client.users(extension="4567")
    assert (
        created[0]["general"]["user_id"] == user_id
        and created[0]["general"]["name"] == "Пётр Тестов"
    )
    client.member_update(user_id, position="Tester")
    sip_id = client.sip_create(user_id, "petr4567", "Secr3tPass", domain, "desk phone")
    assert any(s["id"] == sip_id for entry in client.sips() for s in entry["sips"])
    client.sip_update(sip_id, password="N3wSecretPass")
    client.sip_delete(sip_id)
    client.member_delete(user_id)
    assert client.users(extension="4567") == []


def test_click_to_call_end_to_end(client, sim, sink):
    extension = client.users()[0]["telephony"]["extension"]
    command_id = client.callback(
        extension, "+7 (903) 765-43-21", command_id="odoo-test-1"
    )
    assert command_id == "odoo-test-1"
    sent = sim.commands("commands/callback")[-1]
    assert sent["payload"]["to_number"] == "79037654321"
    events = sink.wait_for(
        lambda evs: (
            any(e.kind == "summary" for e in evs)
            and any(e.kind == "command_result" for e in evs)
        )
    )
    assert all(valid for _, _, valid in sink.received)
    calls = fold(events)
    (call,) = [c for c in calls.values() if "odoo-test-1" in c.command_ids]
    assert call.direction == "outgoing" and call.status == "answered"
    assert call.customer_number == "79037654321"
    assert call.employee_extension == extension
    assert call.command_results == {"odoo-test-1": 1000}
    assert call.talk_seconds > 0


SCENARIO_OUTCOMES = {
    "incoming_answered": ("incoming", "answered"),
    "incoming_missed_queue": ("incoming", "missed"),
    "incoming_missed_no_operator": ("incoming", "missed"),
    "click_to_call": ("outgoing", "answered"),
    "callback_group": ("outgoing", "answered"),
    "transfer": ("incoming", "answered"),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIO_OUTCOMES))
def test_scenarios_fold_the_same_in_any_order(sim, sink, scenario):
    played = sim.play(
        scenario, shuffle=True, duplicates=3, seed=7, from_number="79031112233"
    )
    entry_id = played["entry_id"]
    events = sink.wait_for(
        lambda evs: len([e for e in evs if e.entry_id == entry_id]) >= played["events"]
    )
    assert all(valid for _, _, valid in sink.received)
    ordered = [
        parse_event(p["path"], signing.dumps(p["payload"])) for p in played["planned"]
    ]
    expected = fold(ordered)[entry_id]
    call = fold(events)[entry_id]
    assert call.to_dict() == expected.to_dict()
    assert (call.direction, call.status) == SCENARIO_OUTCOMES[scenario]
    assert call.has_summary
    if call.direction == "incoming":
        assert call.customer_number == "79031112233"
    if scenario == "incoming_missed_queue":
        assert call.disconnect_reason == 1164 and call.answered_extension is None
    if call.status == "answered" and call.direction == "incoming":
        assert (
            call.answered_extension and call.wait_seconds >= 0 and call.talk_seconds > 0
        )


def test_recording_download_and_link(client, sim, sink):
    played = sim.play("incoming_answered", record=True)
    events = sink.wait_for(summary_for(played["entry_id"]))
    added = [e for e in events if e.kind == "record_added"]
    assert added
    recording_id = added[0].recording_id
    audio, content_type = client.recording(recording_id)
    assert content_type.startswith("audio/") and len(audio) > 1000
    again, _ = client.recording(recording_id, action="play")
    assert again == audio
    link = client.recording_link(recording_id, expires_at=int(time.time()) + 300)
    response = requests.get(link, timeout=10)
    assert response.status_code == 200 and response.content == audio
    with pytest.raises(errors.MangoRequestError) as info:
        client.recording("no-such-recording")
    assert info.value.code == 3320


def test_statistics(client, sim, sink):
    played = sim.play("incoming_answered")
    sink.wait_for(summary_for(played["entry_id"]))
    now = int(time.time())
    rows = client.stats(
        now - 86400,
        now + 86400,
        fields=["entry_id", "records", "start", "answer", "disconnect_reason"],
        poll_interval=0.2,
        timeout=30,
    )
    row = next(r for r in rows if r["entry_id"] == played["entry_id"])
    assert row["answer"] and row["start"] and isinstance(row["records"], list)
    default_rows = client.stats(now - 86400, now + 86400, poll_interval=0.2, timeout=30)
    assert default_rows and set(default_rows[0]) == {
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
    }
    items = client.stats_calls(
        now - 86400, now + 86400, limit=100, poll_interval=0.2, timeout=30
    )
    assert any(item["entry_id"] == played["entry_id"] for item in items)


def test_wrong_salt_then_lockout(sim):
    wrong = MangoClient(
        KEY,
        "not-the-salt",
        base_url=sim.base_url,
        rate_limiter=RateLimiter(),
        timeout=10,
    )
    with pytest.raises(errors.MangoAuthError) as info:
        wrong.balance()
    assert info.value.code == 3102
    with pytest.raises(errors.MangoLockedOut):
        wrong.balance()
    calls_seen = len(sim.commands())
    with pytest.raises(errors.MangoLockedOut):
        wrong.balance()
    assert (
        len(sim.commands()) == calls_seen
    )  # refused locally, the lockout is not extended


def test_rate_limit_429_is_retried(sim):
    # No limiter of ours: the simulator's 429 + Retry-After must be honoured instead.
    raw = MangoClient(
        KEY,
        SALT,
        base_url=sim.base_url,
        rate_limiter=False,
        timeout=10,
        max_retry_wait=5,
    )
    raw.users()
    raw.users()
    statuses = [c["http_status"] for c in sim.commands("config/users/request")]
    assert statuses[-1] == 200 and 429 in statuses


def test_our_limiter_keeps_the_simulator_from_saying_429(client, sim):
    client.users()
    client.users()
    assert [c["http_status"] for c in sim.commands("config/users/request")] == [
        200,
        200,
    ]


def test_server_faults_are_retried(client, sim):
    sim.add_fault("http_503", count=1, methods=["account/balance"])
    assert client.balance()["result"] == 1000
    assert [c["http_status"] for c in sim.commands("account/balance")] == [503, 200]


def test_legacy_420_errors(sink):
    with run_simulator(api_key=KEY, api_salt=SALT, legacy_errors=True) as simulator:
        client = MangoClient(
            KEY,
            SALT,
            base_url=simulator.base_url,
            rate_limiter=RateLimiter(),
            timeout=10,
        )
        with pytest.raises(errors.MangoRequestError) as info:
            client.call(
                "commands/callback", {"command_id": "x", "to_number": "79031234567"}
            )
        assert info.value.http_status == 420 and info.value.code // 100 == 31


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("simtls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


def test_tls_simulator(certificate):
    certfile, keyfile = certificate
    with run_simulator(
        api_key=KEY, api_salt=SALT, certfile=certfile, keyfile=keyfile
    ) as simulator:
        assert simulator.base_url.startswith("https://")
        trusted = MangoClient(
            KEY, SALT, base_url=simulator.base_url, verify=certfile, rate_limiter=False
        )
        assert trusted.balance()["result"] == 1000
        default = MangoClient(
            KEY, SALT, base_url=simulator.base_url, rate_limiter=False
        )
        with pytest.raises(errors.MangoCertificateError):
            default.balance()


def test_early_recording_is_held_back_instead_of_risking_a_lockout(client, sim):
    """A recording not stored yet answers 3320 (a 3xxx). A second try within 2
    minutes would be the second invalid request and lock the whole API, so the
    client keeps it local while click-to-call still goes through."""
    sim.add_fault("recording_not_ready", count=5)
    with pytest.raises(errors.MangoRequestError) as refused:
        client.recording("MToxMDAwNjA4NTo1MDA5NDExMDIyOjE=")
    assert refused.value.code == 3320
    sent = len(sim.commands("queries/recording/post"))
    with pytest.raises(errors.MangoDeferred) as deferred:
        client.recording("MToxMDAwNjA4NTo1MDA5NDExMDIyOjE=")
    assert 0 < deferred.value.retry_after <= 120
    assert len(sim.commands("queries/recording/post")) == sent, "nothing was sent"
    # Work that cannot wait is not held back, and the API is not locked.
    assert client.callback("101", "79161234567")
    assert client.rate_limiter.locked_for() == 0
