"""HTTP(S) front of the simulator: ``/vpbx/<method>``, ``/files/<token>``, ``/_sim``."""

import ipaddress
import json
import logging
import socket
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .forms import read_form
from .scenarios import SCENARIOS, ScenarioError

_logger = logging.getLogger(__name__)
MAX_BODY = 10 * 1024 * 1024
MAX_LINE = 65536


class BodyError(Exception):
    """A body that cannot be read: ``status`` and a short reason."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, simulator, ssl_context=None):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.simulator = simulator
        self.ssl_context = ssl_context
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # Failed TLS handshakes and clients hanging up are normal here (tests probe
        # TLS 1.3, timeouts drop connections); anything else still gets logged.
        error = sys.exc_info()[1]
        if isinstance(error, (ssl.SSLError, ConnectionError, TimeoutError)):
            _logger.debug("Connection from %s failed: %s", client_address, error)
            return
        _logger.exception("Simulator request from %s failed", client_address)

    def get_request(self):
        sock, address = super().get_request()
        if self.ssl_context is not None:
            # Handshake in the handler thread, so one slow client blocks nobody.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address


def is_private(host):
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def make_server(
    simulator, host, port, certfile=None, keyfile=None, allow_any_host=False
):
    # Binding beyond loopback is for containers only (docker-compose: Odoo reaches
    # the simulator over the compose network); it has to be asked for explicitly.
    if not allow_any_host and not is_loopback(host):
        raise ValueError(
            f"The simulator only listens on loopback, not {host!r} "
            "(--allow-any-host, for containers only, lifts this)"
        )
    context = None
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # Mango offers TLS 1.2 only: neither 1.0/1.1 nor 1.3 (reference §1.1).
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile, keyfile)
    server = SimulatorHTTPServer((host, port), Handler, simulator, context)
    server.allow_any_host = allow_any_host
    return server


class Handler(BaseHTTPRequestHandler):
    server_version = "nginx"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def sim(self):
        return self.server.simulator

    def log_message(self, fmt, *args):
        if self.sim.log_requests:
            _logger.info("%s %s", self.address_string(), fmt % args)

    def setup(self):
        super().setup()
        if self.server.ssl_context is not None:
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(None)

    # ---- plumbing --------------------------------------------------------------------
    def _body(self):
        """The request body: by Content-Length, or chunked (Node's and Go's
        streaming clients send that; Mango's nginx takes it)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._chunked_body()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BodyError(400, "bad Content-Length") from None
        if length < 0:
            raise BodyError(400, "bad Content-Length")
        if length > MAX_BODY:
            raise BodyError(413, "body too large")
        return self.rfile.read(length) if length else b""

    def _chunked_body(self):
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(MAX_LINE)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BodyError(400, "bad chunk size") from None
            if size < 0:
                raise BodyError(400, "bad chunk size")
            if size == 0:
                while self.rfile.readline(MAX_LINE).strip():
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise BodyError(413, "body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(MAX_LINE)

    def _send(self, status, body=b"", content_type=None, headers=None):
        if status is None:
            # Simulated timeout: the gateway never answers and drops the connection.
            self.close_connection = True
            return
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode()
            content_type = content_type or "application/json; charset=utf-8"
        self.send_response(status)
        if content_type and status != 204:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0" if status == 204 else str(len(body)))
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(body)

    def _route(self, http_method):
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        try:
            body = self._body() if http_method in ("POST", "PUT", "DELETE") else b""
        except BodyError as error:
            self.close_connection = True
            return self._send(error.status, {"error": error.reason})
        if path.startswith("/vpbx/"):
            method = path[len("/vpbx/") :].strip("/")
            form = {}
            if http_method == "POST":
                form = read_form(self.headers.get("Content-Type"), body, split.query)
            response = self.sim.handle_api(
                http_method, method, form, self.client_address[0]
            )
            return self._send(
                response.status, response.body, response.content_type, response.headers
            )
        if path.startswith("/files/") and http_method == "GET":
            response = self.sim.file_download(path[len("/files/") :].strip("/"))
            return self._send(
                response.status, response.body, response.content_type, response.headers
            )
        if path == "/_sim" or path.startswith("/_sim/"):
            client = self.client_address[0]
            # In a container network the other services are private addresses.
            allowed = is_loopback(client) or (
                getattr(self.server, "allow_any_host", False) and is_private(client)
            )
            if not allowed:
                return self._send(403, {"error": "the control API is loopback-only"})
            return self._control(
                http_method, path[len("/_sim") :].strip("/"), split.query, body
            )
        return self._send(
            404,
            {
                "name": "Not Found",
                "message": "Page not found.",
                "code": 0,
                "status": 404,
            },
        )

    def do_POST(self):
        self._route("POST")

    def do_GET(self):
        self._route("GET")

    def do_HEAD(self):
        self._route("HEAD")

    def do_PUT(self):
        self._route("PUT")

    def do_DELETE(self):
        self._route("DELETE")

    # ---- control API -----------------------------------------------------------------
    def _control(self, http_method, path, query, body):
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return self._send(400, {"error": "the control API takes JSON"})
        if not isinstance(data, dict):
            return self._send(400, {"error": "the control API takes a JSON object"})
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        try:
            status, result = self._control_dispatch(http_method, path, params, data)
        except (ScenarioError, ValueError, TypeError, KeyError) as error:
            return self._send(400, {"error": str(error)})
        return self._send(status, result)

    def _control_dispatch(self, http_method, path, params, data):
        parts = path.split("/") if path else []
        head = parts[0] if parts else "index"
        handler = getattr(self, f"_sim_{head}", None)
        result = handler(http_method, parts, params, data) if handler else None
        if result is None:
            return 404, {
                "error": f"unknown control endpoint {http_method} /_sim/{path}"
            }
        return result

    def _sim_index(self, http_method, parts, params, data):
        return 200, {"endpoints": CONTROL_ENDPOINTS, "scenarios": list(SCENARIOS)}

    def _sim_reset(self, http_method, parts, params, data):
        if http_method == "POST":
            self.sim.reset()
            return 200, {"ok": True}
        return None

    def _sim_seed(self, http_method, parts, params, data):
        return (200, self.sim.seed(data or None)) if http_method == "POST" else None

    def _sim_state(self, http_method, parts, params, data):
        return 200, self.sim.state.to_dict()

    def _sim_commands(self, http_method, parts, params, data):
        if http_method == "DELETE":
            self.sim.clear_commands()
            return 200, {"ok": True}
        return 200, {"commands": self.sim.commands(params.get("method"))}

    def _sim_webhook(self, http_method, parts, params, data):
        sim = self.sim
        if http_method == "POST":
            return 200, sim.set_webhook(data.get("url"), data.get("verify"))
        return 200, {"url": sim.webhook_url, "verify": sim.settings["webhook_verify"]}

    def _sim_scenarios(self, http_method, parts, params, data):
        if len(parts) == 1:
            return 200, {"scenarios": list(SCENARIOS)}
        if http_method != "POST":
            return 405, {"error": "POST a scenario"}
        # Someone calling the control API by hand watches Odoo: the call plays as
        # it would happen. Tests and scripts that want the events at once say so.
        data.setdefault("pace", "realtime")
        return 200, self.sim.play(parts[1], **data)

    def _sim_events(self, http_method, parts, params, data):
        if http_method == "DELETE":
            self.sim.clear_events()
            return 200, {"ok": True}
        return 200, {
            "events": self.sim.events(params.get("path"), params.get("entry_id"))
        }

    def _sim_clock(self, http_method, parts, params, data):
        sim = self.sim
        if http_method == "POST":
            if "freeze" in data:
                sim.freeze(bool(data["freeze"]))
            if "set" in data:
                sim.clock.set(float(data["set"]))
            if "advance" in data:
                sim.advance(float(data["advance"]))
        return 200, sim.clock_info()

    def _sim_faults(self, http_method, parts, params, data):
        sim = self.sim
        if http_method == "DELETE" or data.get("clear"):
            sim.clear_faults()
        elif http_method == "POST":
            names = ("count", "methods", "code", "seconds", "recording_id")
            sim.add_fault(data.get("kind"), **{k: data[k] for k in names if k in data})
        return 200, {"faults": sim.faults()}

    def _sim_settings(self, http_method, parts, params, data):
        if http_method == "POST":
            return 200, self.sim.configure(**data)
        return 200, self.sim.settings

    def _sim_ping(self, http_method, parts, params, data):
        return (200, {"deliveries": self.sim.ping()}) if http_method == "POST" else None

    def _sim_calls(self, http_method, parts, params, data):
        if len(parts) == 3 and http_method == "POST":
            return 200, self.sim.live_action(parts[1], parts[2], **data)
        return 200, {"calls": list(self.sim.live_calls().values())}


CONTROL_ENDPOINTS = {
    "POST /_sim/reset": "back to the initial seed; clears logs, faults, lockout, "
    "rate buckets and the clock offset",
    "POST /_sim/seed": "replace the PBX (users, groups, lines, roles, domains, "
    "limits) with the JSON body",
    "GET /_sim/state": "the whole PBX, recordings and finished calls",
    "GET|DELETE /_sim/commands[?method=…]": "every API request received: method, "
    "payload (passwords masked), HTTP status, result",
    "GET|POST /_sim/webhook": '{"url": "https://host/mango", '
    '"verify": true|false|"/ca.pem"}',
    "GET /_sim/scenarios": "scenario names",
    "POST /_sim/scenarios/<name>": "play a scenario with the options in the body; "
    'by default in real time ("pace": "realtime": it rings, is talked and ends as '
    "the scenario's seconds say; answers at once with entry_id and the first "
    'events); "pace": "instant" plays it at once and answers entry_id, events, '
    "planned, deliveries",
    "GET|DELETE /_sim/events[?path=…&entry_id=…]": "webhook deliveries with the "
    "receiver's HTTP status",
    "GET|POST /_sim/clock": '{"freeze": true, "advance": 121, "set": 1760000000}; '
    "answers now, frozen, lockout",
    "GET|POST|DELETE /_sim/faults": '{"kind": "http_503|http_500|result|timeout|'
    'recording_not_ready", "count": 1, "methods": [...], "code": 5008, '
    '"seconds": 20}',
    "GET|POST /_sim/settings": "rate_limits, lockout, legacy_errors, quirks, "
    "stats_delay, stats_callback_path, auto_play, command_events_delay_ms, "
    "callback_options, webhook_verify, webhook_timeout",
    "POST /_sim/ping": "POST <webhook>/ping as the LK 'check connection' button does",
    "GET /_sim/calls": "live calls (scenarios played with live=true)",
    "POST /_sim/calls/<entry_id>/answer|hangup": "move a live call on",
}
