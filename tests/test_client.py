"""MangoClient over real HTTP on 127.0.0.1: protocol edge cases, scripted server.

The end-to-end tests against the simulator live in test_client_simulator.py; this
module pins the quirks the simulator might not reproduce on demand (420 bodies,
Retry-After, malformed JSON, TLS, a dead port).
"""

import datetime
import email.utils
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
import warnings

import pytest
from urllib3.exceptions import InsecureRequestWarning

from mango_office import errors, signing
from mango_office.client import DEFAULT_BASE_URL, MangoClient, parse_stats_csv
from mango_office.ratelimit import (
    RateLimiter,
    method_class,
    reset_shared_rate_limiters,
)

KEY = "testkey9ipl5monmwkkyg3adfx2s6frz7b"
SALT = "testsaltcv3z37sqp6kvsjs4i7vd3lf6r5rw"


class FakeMango:
    """A scripted Mango: per path, a queue of answers; records what it received."""

    def __init__(self, ssl_context=None):
        self.routes = {}
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                form = {
                    k: v[0]
                    for k, v in urllib.parse.parse_qs(
                        body.decode(), keep_blank_values=True
                    ).items()
                }
                request = {
                    "method": self.command,
                    "path": path,
                    "form": form,
                    "headers": dict(self.headers),
                }
                if "json" in form:
                    request["payload"] = json.loads(form["json"])
                    request["signed"] = signing.verify_form(form, KEY, SALT)
                outer.requests.append(request)
                status, payload, headers = outer._answer(path, request)
                if isinstance(payload, (dict, list)):
                    payload = json.dumps(payload).encode()
                    headers = {"Content-Type": "application/json", **headers}
                elif isinstance(payload, str):
                    payload = payload.encode()
                payload = payload or b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(
                self.server.socket, server_side=True
            )
            scheme = "https"
        self.root = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.base_url = f"{self.root}/vpbx"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self.thread.start()

    def on(self, path, *answers):
        """Answers for a path, in order; the last one repeats. An answer is
        ``(status, body[, headers])`` or a callable taking the request."""
        self.routes[path] = list(answers)

    def _answer(self, path, request):
        answers = self.routes.get(path)
        if not answers:
            return 404, "<html>not found</html>", {"Content-Type": "text/html"}
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            answer = answer(request)
        status, body, *rest = answer
        return status, body, (rest[0] if rest else {})

    def posts(self, path):
        return [r for r in self.requests if r["path"] == path and r["method"] == "POST"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Sleeper:
    """Injected sleep: records delays instead of waiting."""

    def __init__(self):
        self.delays = []
        self.now = 0.0

    def __call__(self, seconds):
        self.delays.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


@pytest.fixture
def mango():
    server = FakeMango()
    yield server
    server.close()


@pytest.fixture
def sleeper():
    return Sleeper()


def make_client(server, sleeper=None, **kw):
    sleeper = sleeper or Sleeper()
    kw.setdefault("rate_limiter", RateLimiter(clock=sleeper.clock, sleep=sleeper))
    kw.setdefault("timeout", 5)
    return MangoClient(
        KEY, SALT, base_url=server.base_url, sleep=sleeper, clock=sleeper.clock, **kw
    )


# --- envelope and signing ---------------------------------------------------


def test_signed_compact_form(mango):
    mango.on(
        "/vpbx/account/balance",
        (200, {"result": 1000, "balance": 963592.45, "currency": "RUB"}),
    )
    client = make_client(mango)
    assert client.balance()["balance"] == 963592.45
    request = mango.requests[0]
    assert request["signed"]
    assert request["form"]["vpbx_api_key"] == KEY
    assert request["form"]["json"] == "{}"
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert SALT not in json.dumps(request)


def test_payload_is_compact_utf8_json(mango):
    mango.on("/vpbx/member/create", (200, {"result": 1000, "user_id": 1234567}))
    client = make_client(mango)
    user_id = client.member_create(
        name="Иван Петров", access_role_id=3, extension=30052, email="ivan@example.com"
    )
    assert user_id == 1234567
    form = mango.requests[0]["form"]
    assert (
        form["json"] == '{"name":"Иван Петров","access_role_id":3,"extension":"30052",'
        '"email":"ivan@example.com"}'
    )
    assert mango.requests[0]["signed"]


def test_users_answer_has_no_result(mango):
    users = [
        {"general": {"name": "A", "user_id": 1}, "telephony": {"extension": "101"}}
    ]
    mango.on("/vpbx/config/users/request", (200, {"users": users}))
    client = make_client(mango)
    assert client.users() == users
    assert mango.requests[0]["payload"] == {
        "ext_fields": ["general.user_id", "general.sips"]
    }
    mango.on("/vpbx/config/users/request", (200, {"users": []}))
    assert client.users(extension="999") == []
    assert mango.requests[-1]["payload"]["extension"] == "999"


def test_users_answer_without_users_is_a_protocol_error(mango):
    # Taken as "no employees", it would make a directory sync recreate everyone.
    mango.on("/vpbx/config/users/request", (200, {}))
    with pytest.raises(errors.MangoProtocolError):
        make_client(mango).users()


def test_default_base_url_and_url_join():
    assert DEFAULT_BASE_URL == "https://app.mango-office.ru/vpbx"
    client = MangoClient("k", "s", rate_limiter=False)
    assert (
        client.url("commands/callback")
        == "https://app.mango-office.ru/vpbx/commands/callback"
    )
    assert MangoClient("k", "s", base_url="http://h/vpbx/", rate_limiter=False).url(
        "/stats/result/"
    ) == ("http://h/vpbx/stats/result")
    assert client.verify is True and client.timeout == 15
    assert "s" not in repr(client).replace("https", "")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": "", "api_salt": "s"},
        {"api_key": "k", "api_salt": ""},
        {"api_key": "k", "api_salt": "s", "base_url": "ftp://x"},
        {"api_key": "k", "api_salt": "s", "verify": "/nonexistent/ca.pem"},
        {"api_key": "k", "api_salt": "s", "timeout": 0},
        {"api_key": "k", "api_salt": "s", "timeout": None},
        {"api_key": "k", "api_salt": "s", "timeout": (5, -1)},
    ],
)
def test_constructor_validation(kwargs):
    with pytest.raises(ValueError):
        MangoClient(**kwargs)


# --- errors -------------------------------------------------------------------


def test_result_error_in_a_200(mango):
    mango.on("/vpbx/commands/call/hangup", (200, {"result": 4101}))
    with pytest.raises(errors.MangoCannotPerformError) as info:
        make_client(mango).hangup("call-1")
    assert info.value.code == 4101 and info.value.http_status == 200
    assert "The call has ended" in str(info.value)


def test_http_420_with_code_is_a_request_error_and_never_retried(mango, sleeper):
    mango.on("/vpbx/commands/callback", (420, {"code": 3104}))
    client = make_client(mango, sleeper)
    with pytest.raises(errors.MangoRequestError) as info:
        client.callback("101", "74951234567")
    assert info.value.code == 3104 and info.value.http_status == 420
    assert len(mango.posts("/vpbx/commands/callback")) == 1
    assert sleeper.delays == []


def test_result_description_fields_form(mango):
    body = {
        "result": 3100,
        "description": "Invalid period",
        "fields": {"date_to": 3111},
    }
    mango.on("/vpbx/stats/calls/request", (400, body))
    with pytest.raises(errors.MangoRequestError) as info:
        make_client(mango).stats_calls_request(1700000000, 1700086400)
    assert info.value.code == 3100 and info.value.fields == {"date_to": 3111}
    assert info.value.description == "Invalid period" and info.value.http_status == 400
    assert len(mango.requests) == 1


def test_wrong_salt_is_an_auth_error(mango):
    mango.on("/vpbx/incominglines", (200, {"result": 3102}))
    with pytest.raises(errors.MangoAuthError) as info:
        make_client(mango).incoming_lines()
    assert "salt" in str(info.value)


def test_401_locks_out_every_client_of_the_product(mango, sleeper):
    mango.on("/vpbx/account/balance", (401, ""))
    limiter = RateLimiter(clock=sleeper.clock, sleep=sleeper)
    client = make_client(mango, sleeper, rate_limiter=limiter)
    with pytest.raises(errors.MangoLockedOut) as info:
        client.balance()
    assert info.value.http_status == 401
    other = make_client(mango, sleeper, rate_limiter=limiter)
    with pytest.raises(errors.MangoLockedOut) as info:
        other.balance()
    assert 0 < info.value.retry_after <= 120
    assert len(mango.requests) == 1  # the second one never left
    sleeper.now += 121
    mango.on("/vpbx/account/balance", (200, {"result": 1000, "balance": 1}))
    assert other.balance()["balance"] == 1


def test_429_honours_retry_after(mango, sleeper):
    mango.on(
        "/vpbx/account/balance",
        (
            429,
            {
                "name": "Service Unavailable",
                "message": "Rate limit exceeded.",
                "code": 0,
                "status": 429,
            },
            {"Retry-After": "3"},
        ),
        (200, {"result": 1000, "balance": 5}),
    )
    assert make_client(mango, sleeper).balance()["balance"] == 5
    assert sleeper.delays == [3.0]
    assert len(mango.requests) == 2


def test_retry_after_as_http_date(mango, sleeper):
    when = email.utils.format_datetime(
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=4),
        usegmt=True,
    )
    mango.on(
        "/vpbx/account/balance",
        (429, "", {"Retry-After": when}),
        (200, {"result": 1000}),
    )
    make_client(mango, sleeper).balance()
    assert 2 <= sleeper.delays[0] <= 4


@pytest.mark.parametrize(
    "slow_down",
    [
        (503, "<html>busy</html>", {"Content-Type": "text/html"}),
        (200, {"result": 5008}),
        (200, {"result": "4290"}),
        (503, {"result": 5003}),
    ],
)
def test_slow_down_answers_are_retried_with_backoff(mango, sleeper, slow_down):
    mango.on(
        "/vpbx/groups",
        slow_down,
        slow_down,
        (200, {"result": 1000, "groups": [{"id": 1}]}),
    )
    assert make_client(mango, sleeper, backoff=0.5).groups() == [{"id": 1}]
    assert sleeper.delays == [0.5, 1.0]


def test_retries_are_bounded(mango, sleeper):
    mango.on("/vpbx/roles", (429, ""))
    with pytest.raises(errors.MangoRateLimited) as info:
        make_client(mango, sleeper, max_retries=2, backoff=1).roles()
    assert info.value.http_status == 429 and info.value.code == 4290
    assert len(mango.requests) == 3 and sleeper.delays == [1, 2]


def test_retry_after_beyond_the_cap_gives_up_at_once(mango, sleeper):
    mango.on("/vpbx/roles", (429, "", {"Retry-After": "600"}))
    with pytest.raises(errors.MangoRateLimited) as info:
        make_client(mango, sleeper, max_retry_wait=30).roles()
    assert (
        info.value.retry_after == 600
        and sleeper.delays == []
        and len(mango.requests) == 1
    )


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            (200, "{not json", {"Content-Type": "application/json"}),
            errors.MangoProtocolError,
        ),
        (
            (200, "[1, 2]", {"Content-Type": "application/json"}),
            errors.MangoProtocolError,
        ),
        (
            (502, "<html>bad gateway</html>", {"Content-Type": "text/html"}),
            errors.MangoServerError,
        ),
        (
            (500, "{broken", {"Content-Type": "application/json"}),
            errors.MangoServerError,
        ),
        ((404, "<html>nope</html>"), errors.MangoProtocolError),
        ((403, {"result": 2110}), errors.MangoBillingError),
    ],
)
def test_malformed_and_unexpected_answers(mango, sleeper, answer, error):
    mango.on("/vpbx/domains", answer)
    with pytest.raises(error) as info:
        make_client(mango, sleeper).domains()
    assert info.value.http_status == answer[0]
    assert len(mango.requests) == 1


def test_empty_2xx_means_accepted(mango):
    mango.on("/vpbx/commands/route", (200, ""))
    assert make_client(mango).route("call-1", "101", command_id="r1") == "r1"


def test_unreachable_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = MangoClient(
        KEY,
        SALT,
        base_url=f"http://127.0.0.1:{port}/vpbx",
        rate_limiter=False,
        timeout=2,
    )
    with pytest.raises(errors.MangoTransportError) as info:
        client.balance()
    assert not isinstance(info.value, errors.MangoCertificateError)


def test_timeout_is_a_transport_error(mango):
    def slow(request):
        time.sleep(1.5)
        return 200, {"result": 1000}

    mango.on("/vpbx/account/balance", slow)
    client = MangoClient(
        KEY, SALT, base_url=mango.base_url, rate_limiter=False, timeout=0.3
    )
    with pytest.raises(errors.MangoTransportError):
        client.balance()


# --- TLS ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
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
    folder = tmp_path_factory.mktemp("tls")
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


@pytest.fixture
def tls_mango(self_signed):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    server = FakeMango(ssl_context=context)
    server.on("/vpbx/account/balance", (200, {"result": 1000, "balance": 7}))
    yield server
    server.close()


def test_tls_verification_is_on_by_default(tls_mango):
    client = MangoClient(
        KEY, SALT, base_url=tls_mango.base_url, rate_limiter=False, timeout=5
    )
    with pytest.raises(errors.MangoCertificateError):
        client.balance()


def test_tls_with_a_ca_bundle(tls_mango, self_signed):
    client = MangoClient(
        KEY,
        SALT,
        base_url=tls_mango.base_url,
        rate_limiter=False,
        timeout=5,
        verify=self_signed[0],
    )
    assert client.balance()["balance"] == 7
    assert tls_mango.requests[-1]["signed"]


def test_tls_verification_can_be_switched_off(tls_mango):
    client = MangoClient(
        KEY,
        SALT,
        base_url=tls_mango.base_url,
        rate_limiter=False,
        timeout=5,
        verify=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert client.balance()["balance"] == 7
    # The admin chose this on the settings page; it is not repeated on every call.
    assert not [w for w in caught if issubclass(w.category, InsecureRequestWarning)]


# --- commands and local validation ------------------------------------------------


def test_callback_payload(mango):
    mango.on(
        "/vpbx/commands/callback", (200, {"result": 1000, "command_id": "ignored"})
    )
    client = make_client(mango)
    command_id = client.callback(
        101,
        "+7 (495) 123-45-67",
        line_number="74950000000",
        from_number="sip:Op@acme.mangosip.ru",
        command_id="odoo-42",
        sip_headers={"Call-Info/answer-after": "0"},
    )
    assert command_id == "odoo-42"
    assert mango.requests[0]["payload"] == {
        "command_id": "odoo-42",
        "from": {"extension": "101", "number": "sip:Op@acme.mangosip.ru"},
        "to_number": "74951234567",
        "line_number": "74950000000",
        "sip_headers": {"Call-Info/answer-after": "0"},
    }
    generated = client.callback("101", "8 (495) 123-45-67")
    assert generated.startswith("odoo-") and len(generated) > 20
    assert mango.requests[1]["payload"]["command_id"] == generated
    assert mango.requests[1]["payload"]["to_number"] == "74951234567"


def test_other_commands(mango):
    for path in (
        "callback_group",
        "call/hangup",
        "route",
        "transfer",
        "recording/start",
    ):
        mango.on(f"/vpbx/commands/{path}", (200, {"result": 1000}))
    client = make_client(mango)
    client.callback_group("79001234567", "300", "74950000000", command_id="g1")
    client.hangup("c-1", command_id="h1")
    client.route("c-1", "102", command_id="r1", display_name="VIP")
    client.transfer("c-1", "103", initiator="101", command_id="t1")
    client.recording_start("c-1", "101", command_id="s1")
    payloads = [r["payload"] for r in mango.requests]
    assert payloads == [
        {
            "command_id": "g1",
            "from": "79001234567",
            "to": "300",
            "line_number": "74950000000",
        },
        {"command_id": "h1", "call_id": "c-1"},
        {
            "command_id": "r1",
            "call_id": "c-1",
            "to_number": "102",
            "sip_headers": {"From/display-name": "VIP"},
        },
        {
            "command_id": "t1",
            "call_id": "c-1",
            "method": "blind",
            "to_number": "103",
            "initiator": "101",
        },
        {"command_id": "s1", "call_id": "c-1", "call_party_number": "101"},
    ]


@pytest.mark.parametrize(
    "action",
    [
        lambda c: c.callback(None, "74951234567"),
        lambda c: c.callback("", "74951234567"),
        lambda c: c.callback("ext-1", "74951234567"),
        lambda c: c.callback("101", ""),
        lambda c: c.callback("101", "call me maybe"),
        lambda c: c.callback("101", "74951234567", command_id="x" * 129),
        lambda c: c.callback("101", "74951234567", sip_headers={"a": 1}),
        lambda c: c.callback_group("79001234567", "300", ""),
        lambda c: c.hangup(""),
        lambda c: c.transfer("c", "101", "102", method="warm"),
        lambda c: c.recording("r", action="stream"),
        lambda c: c.member_create(name="A", extension="101"),
        lambda c: c.member_create(
            name="A", access_role_id=3, extension="101", login="a"
        ),
        lambda c: c.member_create(
            name="A", access_role_id=3, extension="101", login="a", password="weak"
        ),
        lambda c: c.member_create(
            name="A", access_role_id=3, extension="101", line_id=1, trunk_number_id=2
        ),
        lambda c: c.member_create(
            name="A", access_role_id=3, extension="101", dial_alg=5
        ),
        lambda c: c.member_create(
            name="A", access_role_id=3, extension="101", email="nope"
        ),
        lambda c: c.member_create(
            name="A", access_role_id=3, extension="101", colour="red"
        ),
        lambda c: c.member_update(1),
        lambda c: c.sip_create(1, "ab", "Passw0rdX", "x.mangosip.ru"),
        lambda c: c.sip_create(1, "1234", "Passw0rdX", "x.mangosip.ru"),
        lambda c: c.sip_create(1, "user1", "password", "x.mangosip.ru"),
        lambda c: c.sip_update(1, login="user1"),
        lambda c: c.users(ext_fields=["general.secret"]),
        lambda c: c.groups(colour="red"),
        lambda c: c.stats_request(1700000000, 1700000000),
        lambda c: c.stats_request(1700000000, 1700000000 + 31 * 86400),
        lambda c: c.stats_request(1700000000, 1700003600, fields=["start", "price"]),
        lambda c: c.stats_request(1700000000, 1700003600, colour="red"),
        lambda c: c.stats_request(
            1700000000,
            1700003600,
            call_party_number="74951234567",
            from_extension="101",
        ),
        lambda c: c.stats_calls_request(1700000000, 1700000000 + 30 * 86400),
        lambda c: c.stats_calls_request(1700000000, 1700003600, limit=7),
        lambda c: c.stats_calls_request(1700000000, 1700003600, colour="red"),
    ],
)
def test_invalid_input_never_reaches_mango(mango, action):
    # A 3xxx is allowed once per 2 minutes; the second locks the API (reference §1.4).
    client = make_client(mango)
    with pytest.raises(ValueError):
        action(client)
    assert mango.requests == []


def test_member_and_sip_methods(mango):
    mango.on("/vpbx/member/update", (200, {"result": 1000}))
    mango.on("/vpbx/member/delete", (200, {"result": 1000}))
    mango.on("/vpbx/sip/create", (200, {"result": 1000, "sip_id": 100333333}))
    mango.on("/vpbx/sip/update", (200, {"result": 1000}))
    mango.on("/vpbx/sip/delete", (200, {"result": 1000}))
    mango.on(
        "/vpbx/sips", (200, {"result": 1000, "data": [{"user_id": 1, "sips": []}]})
    )
    mango.on(
        "/vpbx/roles",
        (200, {"result": 1000, "roles": [{"role_id": 3, "name": "Нет доступа"}]}),
    )
    mango.on(
        "/vpbx/incominglines",
        (200, {"result": 1000, "lines": [{"line_id": 1, "number": "74950000000"}]}),
    )
    mango.on("/vpbx/group/update", (200, {"result": 1000}))
    client = make_client(mango)
    client.member_update(
        300051452, position="Sales", login="ivan", password="Secr3tPass"
    )
    client.member_delete("300051452")
    assert (
        client.sip_create(300051452, "ivan01", "Secr3tPass", "acme.mangosip.ru", "desk")
        == 100333333
    )
    client.sip_create(300051452, "0001", "Secr3tPass", "acme.mangosip.ru")
    client.sip_update(
        100333333, login="ivan02", domain="acme.mangosip.ru", description="new"
    )
    client.sip_delete(100333333)
    assert client.sips() == [{"user_id": 1, "sips": []}]
    assert client.roles()[0]["role_id"] == 3
    assert client.incoming_lines()[0]["number"] == "74950000000"
    client.group_update(7, operators=[{"id": 1, "priority": 1}])
    assert [r["payload"] for r in mango.requests][:2] == [
        {
            "user_id": "300051452",
            "position": "Sales",
            "login": "ivan",
            "password": "Secr3tPass",
        },
        {"user_id": "300051452"},
    ]
    assert mango.requests[-1]["payload"] == {
        "group_id": "7",
        "group": {"operators": [{"id": 1, "priority": 1}]},
    }
    assert all(r["signed"] for r in mango.requests)


# --- recordings -----------------------------------------------------------------------


def test_recording_follows_the_302_once(mango):
    audio = b"ID3\x03\x00fake-mp3-frames" * 10
    mango.on(
        "/vpbx/queries/recording/post", (302, "", {"Location": "/files/one-time-token"})
    )
    mango.on("/files/one-time-token", (200, audio, {"Content-Type": "audio/mpeg"}))
    data, content_type = make_client(mango).recording(
        "MToxMDAwNjA4NTo1MDA5NDExMDIyOjE="
    )
    assert (data, content_type) == (audio, "audio/mpeg")
    post, get = mango.requests
    assert post["method"] == "POST" and post["signed"]
    assert post["payload"] == {
        "recording_id": "MToxMDAwNjA4NTo1MDA5NDExMDIyOjE=",
        "action": "download",
    }
    assert (
        get["method"] == "GET"
        and get["path"] == "/files/one-time-token"
        and not get["form"]
    )


def test_recording_absolute_location(mango):
    mango.on(
        "/vpbx/queries/recording/post",
        (302, "", {"Location": f"{mango.root}/files/abs"}),
    )
    mango.on("/files/abs", (200, b"mp3", {"Content-Type": "audio/mp3; charset=binary"}))
    assert make_client(mango).recording("r1", action="play") == (b"mp3", "audio/mp3")


@pytest.mark.parametrize(
    ("post", "get", "error"),
    [
        ((200, {"result": 3320}), None, errors.MangoRequestError),
        ((302, ""), None, errors.MangoProtocolError),
        (
            (302, "", {"Location": "/files/gone"}),
            (404, "<html>gone</html>"),
            errors.MangoProtocolError,
        ),
        ((302, "", {"Location": "/files/gone"}), (500, ""), errors.MangoServerError),
        ((200, {"result": 1000}), None, errors.MangoProtocolError),
    ],
)
def test_recording_failures(mango, post, get, error):
    mango.on("/vpbx/queries/recording/post", post)
    if get:
        mango.on("/files/gone", get)
    with pytest.raises(error):
        make_client(mango).recording("r1")


def test_recording_link():
    client = MangoClient(
        "123", "789", base_url="https://app.mango-office.ru/vpbx", rate_limiter=False
    )
    url = client.recording_link(
        "Rofkdgl33fd=", action="download", expires_at=1525597727500
    )
    assert url == (
        "https://app.mango-office.ru/vpbx/queries/recording/link/Rofkdgl33fd=/download/123/1525597727500/"
        "9867bfdc661049959450fbad35c10ef2a41120094bda492dd0f085ba4def7df0"
    )
    slashed = client.recording_link("a/b+c=", expires_at=1)
    assert "/link/a%2Fb%2Bc=/play/" in slashed
    expiring = client.recording_link("r", ttl=600)
    assert abs(int(expiring.split("/")[-2]) - (time.time() + 600)) < 5


# --- statistics ---------------------------------------------------------------


CSV = (
    "[rec1,rec2];1072915314;1072915399;1072915320;;74955404444;101;sip:op@acme.mangosip.ru;1110;74950000000;abonent\n"
    "rec3;1072915400;1072915410;0;102;sip:op2@acme.mangosip.ru;;79001234567;1121;74950000000;\n"
    ";1072915500;1072915501;0;;79001234567;;;1164;74950000000;queue\n"
)


def test_stats_request_and_result(mango, sleeper):
    mango.on("/vpbx/stats/request", (200, {"key": "K-1"}))
    mango.on(
        "/vpbx/stats/result",
        (204, ""),
        (204, ""),
        (200, CSV, {"Content-Type": "text/csv"}),
    )
    client = make_client(mango, sleeper)
    rows = client.stats(
        datetime.datetime(2003, 12, 31, 23, 0),
        1072918800,
        to_extension="101",
        poll_interval=5,
        timeout=60,
    )
    assert mango.posts("/vpbx/stats/request")[0]["payload"] == {
        "date_from": "1072911600",
        "date_to": "1072918800",
        "to": {"extension": "101"},
    }
    assert len(rows) == 3
    assert (
        rows[0]["records"] == ["rec1", "rec2"]
        and rows[1]["records"] == ["rec3"]
        and rows[2]["records"] == []
    )
    assert rows[0]["start"] == 1072915314 and rows[0]["answer"] == 1072915320
    assert rows[0]["from_extension"] is None and rows[0]["to_extension"] == "101"
    assert rows[1]["disconnect_reason"] == 1121 and rows[1]["location"] is None
    assert rows[2]["location"] == "queue"
    assert sleeper.delays.count(5) == 2
    assert all(
        r["payload"] == {"key": "K-1"} for r in mango.posts("/vpbx/stats/result")
    )


def test_stats_with_requested_fields(mango):
    mango.on("/vpbx/stats/request", (200, {"key": "K-2"}))
    mango.on("/vpbx/stats/result", (200, "E1;[r1];1110\r\nE2;;1164\r\n"))
    client = make_client(mango)
    key = client.stats_request(
        1700000000,
        1700003600,
        fields=["entry_id", "records", "disconnect_reason"],
        request_id="req-1",
        call_party_number="+7 495 123-45-67",
    )
    assert mango.requests[0]["payload"] == {
        "date_from": "1700000000",
        "date_to": "1700003600",
        "call_party": {"number": "74951234567"},
        "fields": "entry_id,records,disconnect_reason",
        "request_id": "req-1",
    }
    expected = [
        {"entry_id": "E1", "records": ["r1"], "disconnect_reason": 1110},
        {"entry_id": "E2", "records": [], "disconnect_reason": 1164},
    ]
    assert client.stats_result(key) == expected
    # A later client (another Odoo request) is told the columns explicitly.
    other = make_client(mango)
    assert (
        other.stats_result("K-2", fields="entry_id,records,disconnect_reason")
        == expected
    )


def test_stats_result_states(mango, sleeper):
    mango.on("/vpbx/stats/result", (204, ""))
    client = make_client(mango, sleeper)
    assert client.stats_result("K") is None
    mango.on("/vpbx/stats/result", (404, ""))
    with pytest.raises(errors.MangoRequestError) as info:
        client.stats_result("K")
    assert info.value.http_status == 404
    mango.on("/vpbx/stats/result", (200, ""))
    assert client.stats_result("K") == []
    mango.on("/vpbx/stats/result", (200, {"result": 3300}))
    with pytest.raises(errors.MangoRequestError):
        client.stats_result("K")


def test_stats_gives_up_after_its_timeout(mango, sleeper):
    mango.on("/vpbx/stats/request", (200, {"key": "K"}))
    mango.on("/vpbx/stats/result", (204, ""))
    with pytest.raises(errors.MangoServerError) as info:
        make_client(mango, sleeper).stats(
            1700000000, 1700003600, poll_interval=5, timeout=20
        )
    assert info.value.code == 5011
    assert len(mango.posts("/vpbx/stats/result")) == 5  # at 0, 5, 10, 15 and 20 s


def test_long_period_is_split(mango, sleeper):
    mango.on("/vpbx/stats/request", (200, {"key": "K"}))
    mango.on("/vpbx/stats/result", (200, "r;1;2;3;;;;;1100;;\n"))
    rows = make_client(mango, sleeper).stats(1700000000, 1700000000 + 45 * 86400)
    spans = [
        (int(r["payload"]["date_from"]), int(r["payload"]["date_to"]))
        for r in mango.posts("/vpbx/stats/request")
    ]
    assert spans == [
        (1700000000, 1700000000 + 30 * 86400),
        (1700000000 + 30 * 86400, 1700000000 + 45 * 86400),
    ]
    assert len(rows) == 2


def test_parse_stats_csv_header_row_and_short_rows():
    rows = parse_stats_csv("start;finish\n10;20\n30\n", ("records",))
    assert rows == [{"start": 10, "finish": 20}, {"start": 30, "finish": None}]


def test_stats_calls(mango, sleeper):
    mango.on("/vpbx/stats/calls/request", (200, {"result": 1000, "key": "X"}))
    page = {
        "result": 1000,
        "status": "complete",
        "data": [{"list": [{"entry_id": "E1"}, {"entry_id": "E2"}]}],
    }
    mango.on(
        "/vpbx/stats/calls/result",
        (200, {"result": 1000, "status": "work", "data": []}),
        (200, page),
    )
    client = make_client(mango, sleeper)
    start = datetime.datetime(
        2019, 10, 30, 21, 0
    )  # naive UTC = 31.10.2019 00:00 Moscow
    items = client.stats_calls(
        start, "31.10.2019 12:00:00", limit=1000, context_type=1, user_ids=[5]
    )
    assert items == [{"entry_id": "E1"}, {"entry_id": "E2"}]
    assert mango.posts("/vpbx/stats/calls/request")[0]["payload"] == {
        "start_date": "31.10.2019 00:00:00",
        "end_date": "31.10.2019 12:00:00",
        "limit": "1000",
        "offset": "0",
        "context_type": 1,
        "user_ids": [5],
    }
    assert sleeper.delays == [5]


def test_stats_calls_pages_like_reconciliation(mango, sleeper):
    """Reconciliation reads the call log through this paging: an answer without a
    status is the report itself, what is not a row is skipped and does not make a
    page look full, and a full page asks for the next one."""
    mango.on("/vpbx/stats/calls/request", (200, {"result": 1000, "key": "X"}))
    pages = [
        {"result": 1000, "status": "Complete", "data": [{"list": ["junk"]}, 7]},
        {"result": 1000, "data": [{"list": [{"entry_id": "E1"}]}]},
        {"result": 1000, "status": "complete", "data": [{"list": []}]},
    ]
    mango.on("/vpbx/stats/calls/result", *[(200, page) for page in pages])
    client = make_client(mango, sleeper)
    assert client.stats_calls(1700000000, 1700086400, limit=1) == []
    items = client.stats_calls(1700000000, 1700086400, limit=1)
    assert items == [{"entry_id": "E1"}]
    offsets = [r["payload"]["offset"] for r in mango.posts("/vpbx/stats/calls/request")]
    assert offsets == ["0", "0", "1"]


def test_stats_calls_gives_up_on_a_failed_report(mango, sleeper):
    mango.on("/vpbx/stats/calls/request", (200, {"result": 1000, "key": "X"}))
    mango.on("/vpbx/stats/calls/result", (200, {"result": 1000, "status": "Error"}))
    with pytest.raises(errors.MangoServerError):
        make_client(mango, sleeper).stats_calls(1700000000, 1700086400)


def test_stats_calls_says_how_the_report_failed(mango, sleeper):
    # Reconciliation words these two for the user: the report's status, or lateness.
    mango.on("/vpbx/stats/calls/request", (200, {"result": 1000, "key": "X"}))
    mango.on("/vpbx/stats/calls/result", (200, {"result": 1000, "status": "cancel"}))
    with pytest.raises(errors.MangoReportFailed) as failed:
        make_client(mango, sleeper).stats_calls(1700000000, 1700086400)
    assert failed.value.status == "cancel"
    mango.on("/vpbx/stats/calls/result", (200, {"result": 1000, "status": "work"}))
    with pytest.raises(errors.MangoReportLate) as late:
        make_client(mango, sleeper).stats_calls(
            1700000000, 1700086400, poll_interval=5, timeout=12
        )
    assert late.value.timeout == 12


# --- rate limiting ------------------------------------------------------------


def test_method_classes():
    assert method_class("commands/callback") == "callback"
    assert method_class("/vpbx/config/users/request/") == "users"
    assert method_class("queries/recording/post/") == "recordings"
    assert method_class("stats/calls/result") == "stats_result"
    assert method_class("member/create") == "general"


def test_limiter_window_never_exceeded_on_a_fake_clock(sleeper):
    limiter = RateLimiter(clock=sleeper.clock, sleep=sleeper)
    stamps = []
    for _ in range(10):
        limiter.acquire("commands/callback")
        stamps.append(sleeper.now)
    assert (
        stamps[:4] == [0, 0, 0, 0]
        and stamps[4] == pytest.approx(1.0)
        and stamps[8] == pytest.approx(2.0)
    )
    for i, t in enumerate(stamps):
        assert sum(1 for u in stamps if t <= u < t + 1.0) <= 4, i
    users = []
    for _ in range(3):
        limiter.acquire("config/users/request")
        users.append(sleeper.now)
    assert users[1] - users[0] == pytest.approx(2.0) and users[2] - users[
        1
    ] == pytest.approx(2.0)
    # Classes are independent: a balance request does not wait behind users.
    before = sleeper.now
    limiter.acquire("account/balance")
    assert sleeper.now == before
    assert (
        limiter.try_acquire("account/balance")
        and limiter.try_acquire("account/balance") is None
    )


def test_limiter_is_thread_safe():
    limiter = RateLimiter(limits={"general": (5, 0.2)})
    stamps = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            limiter.acquire("balance-ish/general")
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 20
    for t in stamps:
        assert sum(1 for u in stamps if t <= u < t + 0.2 - 0.01) <= 5
    assert stamps[-1] - stamps[0] >= 0.55


def test_client_waits_for_its_bucket(mango, sleeper):
    mango.on("/vpbx/config/users/request", (200, {"users": []}))
    client = make_client(mango, sleeper)
    client.users()
    client.users()
    assert sleeper.delays == [pytest.approx(2.0)]


def test_clients_of_one_product_share_a_limiter():
    a = MangoClient("product-a", "s")
    b = MangoClient("product-a", "s")
    c = MangoClient("product-b", "s")
    d = MangoClient("product-a", "s", base_url="http://127.0.0.1:9/vpbx")
    assert a.rate_limiter is b.rate_limiter
    assert a.rate_limiter is not c.rate_limiter and a.rate_limiter is not d.rate_limiter
    a.rate_limiter.lock_out(120)
    assert MangoClient("product-a", "s").rate_limiter.locked_for() > 0
    reset_shared_rate_limiters()
    assert MangoClient("product-a", "s").rate_limiter.locked_for() == 0


def test_recording_download_failure_does_not_leak_the_file_url(mango):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/files/secret-token"
    sock.close()
    mango.on("/vpbx/queries/recording/post", (302, "", {"Location": dead}))
    with pytest.raises(errors.MangoTransportError) as info:
        make_client(mango).recording("r1")
    assert "secret-token" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_connect_and_read_timeouts(mango):
    mango.on("/vpbx/account/balance", (200, {"result": 1000}))
    assert make_client(mango, timeout=(2, 5)).balance() == {"result": 1000}


def test_client_as_context_manager(mango):
    mango.on("/vpbx/account/balance", (200, {"result": 1000}))
    with make_client(mango) as client:
        assert client.balance() == {"result": 1000}
