"""The simulator itself: PBX state, API pipeline, webhook delivery and control.

The HTTP layer (:mod:`.server`) only translates requests into calls on
:class:`Simulator`; tests may call the same methods in-process.
"""

import copy
import hashlib
import hmac
import itertools
import json
import logging
import queue
import random
import secrets
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request

from .. import codes, signing
from . import api, forms, mp3
from .clock import SimClock
from .limits import RATE_LIMIT_BODY, Lockout, RateLimiter
from .scenarios import RUNNERS, ScenarioError
from .state import PbxState

_logger = logging.getLogger(__name__)

STATS_TTL = 15 * 60
FILE_TOKEN_TTL = 5 * 60
PACES = ("instant", "realtime")
FAULT_KINDS = ("http_503", "http_500", "result", "timeout", "recording_not_ready")
SECRET_KEYS = ("password",)
DEFAULT_SETTINGS = {
    "rate_limits": True,
    "lockout": True,
    "legacy_errors": False,
    "quirks": True,
    "stats_delay": 2.0,
    "stats_callback_path": "result/stat",
    "auto_play": True,
    "command_events_delay_ms": 200,
    "callback_options": {},
    "webhook_verify": True,
    "webhook_timeout": 10.0,
}


class _PaceStopped(Exception):
    """A real-time scenario's script ends early (stop, reset, or taken over)."""


# PHP's json_decode gives up beyond 512 levels (its default depth).
MAX_JSON_DEPTH = 512


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _json_depth(value):
    depth, level = 0, [(value, 1)]
    while level:
        item, current = level.pop()
        depth = max(depth, current)
        if isinstance(item, dict):
            level.extend((child, current + 1) for child in item.values())
        elif isinstance(item, list):
            level.extend((child, current + 1) for child in item)
    return depth


def _decode_json(text):
    """The object in a request's ``json`` field, or ApiError 3400 as Mango
    answers for what its (PHP) JSON reader refuses: bytes that are not UTF-8,
    NaN/Infinity, nesting deeper than 512, anything but an object."""
    try:
        text.encode("utf-8")
        payload = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise api.ApiError(3400, "The json field is not valid JSON") from None
    if not isinstance(payload, dict):
        raise api.ApiError(3400, "The json field must hold a JSON object")
    if _json_depth(payload) > MAX_JSON_DEPTH:
        raise api.ApiError(3400, "The json field is nested too deeply")
    return payload


def _redact(value):
    if isinstance(value, dict):
        return {
            k: ("***" if k in SECRET_KEYS and v else _redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


class Simulator:
    """A Mango VPBX on loopback. Use :meth:`start`/:meth:`stop` or ``with``."""

    def __init__(
        self,
        api_key,
        api_salt,
        webhook_url=None,
        seed=None,
        port=0,
        host="127.0.0.1",
        certfile=None,
        keyfile=None,
        legacy_errors=False,
        rate_limits=True,
        clock=None,
        stats_delay=2.0,
        log_requests=False,
        allow_any_host=False,
    ):
        if not api_key or not api_salt:
            raise ValueError("api_key and api_salt are required")
        self.api_key = api_key
        self.api_salt = api_salt
        self.webhook_url = webhook_url
        self.initial_seed = copy.deepcopy(seed)
        self.host = host
        self.allow_any_host = allow_any_host
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        self.log_requests = log_requests
        self.clock = clock or SimClock()
        self._clock_frozen_initially = self.clock.frozen
        self.lock = threading.RLock()
        self.state = PbxState(seed)
        self.limiter = RateLimiter(self.clock)
        self.lockout = Lockout(self.clock)
        self.settings = copy.deepcopy(DEFAULT_SETTINGS)
        self.settings.update(
            legacy_errors=legacy_errors,
            rate_limits=rate_limits,
            stats_delay=stats_delay,
        )
        self._apply_settings()
        self._commands = []
        self._deliveries = []
        self._faults = []
        self._legs = {}
        self._batches = itertools.count(1)
        self._players = set()
        self._queue = queue.Queue()
        self._stop = threading.Event()
        self._threads = []
        self._server = None

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def scheme(self):
        return "https" if self.certfile else "http"

    @property
    def origin(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def base_url(self):
        return f"{self.origin}/vpbx"

    @property
    def control_url(self):
        return f"{self.origin}/_sim"

    def start(self):
        from .server import make_server

        self._stop.clear()
        self._server = make_server(
            self,
            self.host,
            self.port,
            self.certfile,
            self.keyfile,
            allow_any_host=self.allow_any_host,
        )
        self.port = self._server.server_address[1]
        targets = (
            (self._server.serve_forever, (0.05,)),
            (self._delivery_loop, ()),
            (self._tick_loop, ()),
        )
        for target, args in targets:
            thread = threading.Thread(
                target=target,
                args=args,
                name=f"mango-sim-{target.__name__}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self):
        self._stop.set()
        self._stop_players()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- control operations ----------------------------------------------------------
    def _apply_settings(self):
        self.limiter.enabled = bool(self.settings["rate_limits"])
        self.lockout.enabled = bool(self.settings["lockout"])

    def configure(self, **settings):
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError("Unknown settings: " + ", ".join(sorted(unknown)))
        with self.lock:
            self.settings.update(settings)
            self._apply_settings()
            return copy.deepcopy(self.settings)

    def reset(self):
        """Back to the initial seed: empty logs, no lockout, full buckets, real time.

        A clock that was frozen when the simulator was built is frozen again (at the
        current real time), so fixtures that rely on a frozen clock keep it.
        Scenarios playing in real time stop where they are.
        """
        self._stop_players()
        with self.lock:
            self.state.load(self.initial_seed)
            self._commands.clear()
            self._deliveries.clear()
            self._faults.clear()
            self._legs.clear()
            self.limiter.clear()
            self.lockout.clear()
            self.clock.reset()
            if self._clock_frozen_initially:
                self.clock.freeze()

    def seed(self, data=None):
        with self.lock:
            self.state.load(data)
            self._legs.clear()
        return self.state.to_dict()

    def wait_idle(self, timeout=30.0):
        """Wait until every event queued so far has been delivered (or ``timeout``).

        Deliveries run one batch after another, so an empty batch queued now is
        done once all earlier ones are: a test ends without events of its calls
        still on their way to the next test.
        """
        marker = self._deliver([], {})
        return marker["done"].wait(timeout)

    def set_webhook(self, url, verify=None):
        if url and urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("The webhook URL must be http(s)")
        self.webhook_url = url or None
        if verify is not None:
            self.settings["webhook_verify"] = verify
        return {"url": self.webhook_url, "verify": self.settings["webhook_verify"]}

    def advance(self, seconds):
        self.clock.advance(float(seconds))
        return self.clock_info()

    def freeze(self, frozen=True):
        if frozen:
            self.clock.freeze()
        else:
            self.clock.unfreeze()
        return self.clock_info()

    def clock_info(self):
        return {**self.clock.to_dict(), "lockout": self.lockout.to_dict()}

    def clear_commands(self):
        with self.lock:
            self._commands.clear()

    def clear_events(self):
        with self.lock:
            self._deliveries.clear()

    def commands(self, method=None):
        with self.lock:
            items = [
                c for c in self._commands if method is None or c["method"] == method
            ]
            return copy.deepcopy(items)

    def events(self, path=None, entry_id=None):
        with self.lock:
            return copy.deepcopy(
                [
                    d
                    for d in self._deliveries
                    if (path is None or d["path"] == path)
                    and (entry_id is None or d["entry_id"] == entry_id)
                ]
            )

    def add_fault(
        self, kind, count=1, methods=None, code=5008, seconds=20.0, recording_id=None
    ):
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"Unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}"
            )
        fault = {
            "kind": kind,
            "remaining": int(count),
            "methods": list(methods) if methods else None,
            "code": int(code),
            "seconds": float(seconds),
            "recording_id": recording_id,
        }
        with self.lock:
            self._faults.append(fault)
        return self.faults()

    def clear_faults(self):
        with self.lock:
            self._faults.clear()

    def faults(self):
        with self.lock:
            return copy.deepcopy(self._faults)

    def _take_fault(self, method, kinds, recording_id=None):
        with self.lock:
            for fault in self._faults:
                if (
                    fault["kind"] in kinds
                    and fault["remaining"] > 0
                    and (not fault["methods"] or method in fault["methods"])
                    and fault["recording_id"] in (None, recording_id)
                ):
                    fault["remaining"] -= 1
                    if fault["remaining"] == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ---- scenarios -------------------------------------------------------------------
    def play(self, scenario, wait=True, pace="instant", **options):
        """Run a scenario and deliver its events.

        :param str pace: ``instant`` plays the whole call at once, its timestamps
            spread as the scenario says (tests, history); ``realtime`` plays it as
            it happens, each wait of the scenario lasting that many real seconds
            (see :meth:`_play_realtime`): what a person watching Odoo expects.
        :param bool wait: (instant) answer once the events are delivered
        :return: entry_id, the planned events and (instant, with ``wait``) the
            deliveries
        """
        runner = RUNNERS.get(scenario)
        if runner is None:
            raise ScenarioError(
                f"Unknown scenario {scenario!r}; known: {', '.join(RUNNERS)}"
            )
        if pace not in PACES:
            raise ScenarioError(f"pace must be one of {', '.join(PACES)}")
        options["_rng"] = random.Random(options.get("seed"))
        if pace == "realtime":
            return self._play_realtime(runner, options)
        with self.lock, self.state.lock:
            call = runner(self, options)
            planned = self._take_new_events(call)
        batch = self._deliver(planned, options)
        result = {
            "entry_id": call.entry_id,
            "events": len(planned),
            "live": not call.finished,
            "planned": planned,
        }
        if wait:
            batch["done"].wait(
                timeout=max(
                    30.0,
                    len(batch["items"])
                    * (batch["delay"] + self.settings["webhook_timeout"]),
                )
            )
            result["deliveries"] = self.events_of_batch(batch["id"])
        result["batch"] = batch["id"]
        return result

    def _play_realtime(self, runner, options):
        """Play a scenario in its own thread, as the call happens.

        Each ``Call.wait`` of the scenario delivers the events so far, then really
        waits (with the locks released, so the API, the control API and other
        calls go on meanwhile); the PBX therefore holds the call as live until it
        ends, and its timestamps are the times its events arrive. Answers once the
        call exists (its first step delivered) with entry_id and those first
        events. The script stops when the simulator stops or is reset, or when
        someone moves the call on through ``/_sim/calls/<entry_id>/...``: from
        then on the call is theirs.
        """
        cancel = threading.Event()
        started = threading.Event()
        progress = {"call": None, "planned": [], "batches": [], "error": None}
        owner = {}

        def flush(call):
            planned = self._take_new_events(call)
            if planned:
                progress["planned"].extend(planned)
                progress["batches"].append(self._deliver(planned, options)["id"])

        def pacer(call, seconds):
            # Only the player's own waits are paced: a control-API action on the
            # call waits for nothing. Compared by thread object, not identifier:
            # a request thread may get the identifier of a player that has ended.
            if threading.current_thread() is not owner.get("thread"):
                return
            if cancel.is_set():
                raise _PaceStopped
            flush(call)
            progress["call"] = call
            started.set()
            before = len(call.events)
            # Locks taken once each by the player thread: release them whole.
            self.state.lock.release()
            self.lock.release()
            try:
                cancel.wait(seconds)
            finally:
                self.lock.acquire()
                self.state.lock.acquire()
            if cancel.is_set() or call.finished or len(call.events) != before:
                raise _PaceStopped

        def run():
            owner["thread"] = threading.current_thread()
            try:
                with self.lock, self.state.lock:
                    call = runner(self, dict(options, _pacer=pacer))
                    progress["call"] = call
                    flush(call)
            except _PaceStopped:
                pass
            except ScenarioError as error:
                progress["error"] = error
                if started.is_set():
                    _logger.warning("Real-time scenario stopped: %s", error)
            except Exception as error:  # the simulator outlives a broken scenario
                progress["error"] = ScenarioError(f"The scenario failed: {error}")
                _logger.exception("Real-time scenario failed")
            finally:
                # The script is over (a live call is now the control API's):
                # later waits on the call are virtual again.
                if progress["call"] is not None:
                    progress["call"].pacer = None
                owner.clear()
                started.set()
                with self.lock:
                    self._players.discard(cancel)

        with self.lock:
            self._players.add(cancel)
        threading.Thread(target=run, name="mango-sim-realtime", daemon=True).start()
        started.wait(60)
        call = progress["call"]
        if call is None:
            raise progress["error"] or ScenarioError("The scenario did not start")
        return {
            "entry_id": call.entry_id,
            "pace": "realtime",
            "events": len(progress["planned"]),
            "live": not call.finished,
            "planned": list(progress["planned"]),
            "batch": progress["batches"][0] if progress["batches"] else None,
        }

    def _stop_players(self):
        """End the scripts of real-time scenarios (their calls stay as they are)."""
        with self.lock:
            players = list(self._players)
        for cancel in players:
            cancel.set()

    def events_of_batch(self, batch_id):
        with self.lock:
            return copy.deepcopy(
                [d for d in self._deliveries if d["batch"] == batch_id]
            )

    def live_calls(self):
        with self.state.lock:
            return {
                entry_id: {
                    "entry_id": entry_id,
                    "legs": [
                        {
                            k: leg[k]
                            for k in (
                                "call_id",
                                "state",
                                "location",
                                "from",
                                "to",
                                "seq",
                            )
                        }
                        for leg in (call.legs[c] for c in call.leg_order)
                    ],
                }
                for entry_id, call in self.state.live_calls.items()
            }

    def live_action(self, entry_id, action, wait=True, **options):
        """answer / hangup / wait on a live call started with ``live=True``."""
        call = self.state.live_calls.get(entry_id)
        if call is None:
            raise ScenarioError(f"No live call {entry_id}")
        with self.lock, self.state.lock:
            if action == "answer":
                call.wait(options.get("after", 3))
                call.answer()
            elif action == "hangup":
                call.wait(options.get("after", 30))
                call.hangup(int(options.get("disconnect_reason", 1110)))
            else:
                raise ScenarioError("action must be answer or hangup")
            planned = self._take_new_events(call)
        options["_rng"] = random.Random(options.get("seed"))
        batch = self._deliver(planned, options)
        if wait:
            batch["done"].wait(timeout=30)
        return {
            "entry_id": entry_id,
            "events": len(planned),
            "planned": planned,
            "live": not call.finished,
        }

    def _take_new_events(self, call):
        done = getattr(call, "delivered_upto", 0)
        call.delivered_upto = len(call.events)
        return [
            {"path": path, "payload": payload} for path, payload in call.events[done:]
        ]

    def register_leg(self, call_id, call):
        self._legs[call_id] = call
        if not call.finished:
            self.state.live_calls[call.entry_id] = call

    def live_call_for(self, call_id):
        call = self._legs.get(str(call_id))
        if call is None or call.finished:
            return None
        return call

    def store_finished_call(self, call, summary, stored_recordings):
        state = self.state
        state.live_calls.pop(call.entry_id, None)
        final = call.legs[call.leg_order[-1]] if call.leg_order else {"location": "ivr"}
        answered_leg = call.operator_leg or final
        legs = [copy.deepcopy(call.legs[c]) for c in call.leg_order]
        caller_user_id = None
        if summary["from"].get("extension"):
            user = state.user_by_extension(summary["from"]["extension"])
            caller_user_id = user["user_id"] if user else None
        state.calls.append(
            {
                "entry_id": call.entry_id,
                "direction": call.direction,
                "from_extension": summary["from"].get("extension", ""),
                "from_number": summary["from"].get("number", ""),
                "to_extension": summary["to"].get("extension", ""),
                "to_number": summary["to"].get("number", ""),
                "line_number": call.line_number,
                "create_time": call.create_time,
                "forward_time": summary["forward_time"],
                "talk_time": call.talk_time,
                "end_time": call.end_time,
                "entry_result": summary["entry_result"],
                "disconnect_reason": call.disconnect_reason,
                "location": answered_leg["location"],
                "recordings": list(stored_recordings),
                "recording_legs": {
                    r["recording_id"]: r["call_id"] for r in call.recordings.values()
                },
                "legs": legs,
                "caller_user_id": caller_user_id,
                "command_id": call.command_id,
                "group_ids": [call.queue_group["id"]] if call.queue_group else [],
            }
        )
        for rec in call.recordings.values():
            state.recordings[rec["recording_id"]] = {
                **copy.deepcopy(rec),
                "duration": max(0, rec["completed_at"] - rec["started_at"]),
                "stored": rec["completion_code"] == 1000,
            }

    # ---- commands triggering calls ---------------------------------------------------
    def after_command(self, command, command_id, result, scenario, options):
        """Schedule what a command does: its async result and the call's events."""
        if result != 1000 or not self.settings["auto_play"]:
            self.command_result_only(command, command_id, result)
            return
        options = dict(options, _rng=random.Random())
        runner = RUNNERS[scenario]
        try:
            with self.lock, self.state.lock:
                call = runner(self, options)
                planned = self._take_new_events(call)
        except ScenarioError:
            self.command_result_only(command, command_id, 3100)
            return
        self._deliver(
            planned, {"initial_delay_ms": self.settings["command_events_delay_ms"]}
        )

    def command_result_only(self, command, command_id, result):
        if command_id is None:
            return
        event = {
            "path": f"result/{command}",
            "payload": {"command_id": command_id, "result": result},
        }
        self._deliver(
            [event], {"initial_delay_ms": self.settings["command_events_delay_ms"]}
        )

    def act_on_live_call(self, call, command, command_id, action):
        with self.lock, self.state.lock:
            try:
                result = action()
            except ScenarioError:
                result = 4100
            call.command_result(command, command_id, result)
            planned = self._take_new_events(call)
        self._deliver(
            planned, {"initial_delay_ms": self.settings["command_events_delay_ms"]}
        )

    # ---- recordings ------------------------------------------------------------------
    def recording_redirect(self, recording_id, action):
        rec = self.state.recordings.get(recording_id)
        if rec is None or not rec["stored"]:
            raise api.ApiError(3320, "Recording not found", {"recording_id": 3320})
        if self._take_fault(
            "queries/recording/post", ("recording_not_ready",), recording_id
        ):
            raise api.ApiError(
                3320,
                "Recording not found (not in the cloud yet)",
                {"recording_id": 3320},
            )
        token = api.new_token()
        with self.lock:
            self.state.file_tokens[token] = {
                "recording_id": recording_id,
                "action": action,
                "expires_at": self.clock.now() + FILE_TOKEN_TTL,
            }
        return api.Response(
            302, b"", headers={"Location": f"{self.origin}/files/{token}"}, result=302
        )

    def recording_link(self, parts):
        """GET queries/recording/link/{id}/{action}/{key}/{timestamp}/{sign}, §4.1.2."""
        if len(parts) < 5:
            raise api.ApiError(
                3103, "The link needs recording_id/action/key/timestamp/sign"
            )
        sign, timestamp, key, action = parts[-1], parts[-2], parts[-3], parts[-4]
        recording_id = urllib.parse.unquote("/".join(parts[:-4]))
        if key != self.api_key:
            raise api.ApiError(3105, "Invalid API key")
        if not timestamp.isdigit():
            raise api.ApiError(
                3104, "timestamp must be a Unix time", {"timestamp": 3104}
            )
        expected = signing.recording_link_sign(
            self.api_key, timestamp, recording_id, self.api_salt
        )
        if not signing.hmac.compare_digest(sign.lower(), expected):
            raise api.ApiError(3102, "Signature mismatch")
        if int(timestamp) < self.clock.now():
            raise api.ApiError(3100, "The link has expired", {"timestamp": 3100})
        if action not in ("download", "play"):
            raise api.ApiError(
                3104, "action must be download or play", {"action": 3104}
            )
        if not self.state.recording_links_enabled:
            raise api.ApiError(
                4500, "Recording links are disabled in the API connector"
            )
        return self.recording_redirect(recording_id, action)

    def file_download(self, token):
        with self.lock:
            entry = self.state.file_tokens.pop(token, None)
        if entry is None or entry["expires_at"] < self.clock.now():
            return api.Response(404, b"Not Found", "text/plain")
        rec = self.state.recordings[entry["recording_id"]]
        body = mp3.silence(
            min(max(rec["duration"], 1), 120), title=f"{rec['recording_id']}"
        )
        disposition = "attachment" if entry["action"] == "download" else "inline"
        name = f"{rec['started_at']}_{rec['extension']}.mp3"
        return api.Response(
            200,
            body,
            "audio/mpeg",
            headers={"Content-Disposition": f'{disposition}; filename="{name}"'},
        )

    # ---- statistics ------------------------------------------------------------------
    def new_stats_request(self, kind, params, request_id):
        key = secrets.token_hex(16)
        now = self.clock.now()
        self.state.stats_requests[key] = {
            "kind": kind,
            "params": params,
            "request_id": request_id,
            "created_at": now,
            "ready_at": now + float(self.settings["stats_delay"]),
            "expires_at": now + float(self.settings["stats_delay"]) + STATS_TTL,
            "notified": False,
            "polls": 0,
        }
        return key

    def _tick(self):
        now = self.clock.now()
        ready = []
        with self.state.lock:
            for key, report in self.state.stats_requests.items():
                if (
                    report["kind"] == "basic"
                    and not report["notified"]
                    and report["ready_at"] <= now
                ):
                    report["notified"] = True
                    payload = {"key": key}
                    if report["request_id"] is not None:
                        payload["request_id"] = report["request_id"]
                    ready.append(
                        {
                            "path": self.settings["stats_callback_path"],
                            "payload": payload,
                        }
                    )
            for token in [
                t for t, e in self.state.file_tokens.items() if e["expires_at"] < now
            ]:
                self.state.file_tokens.pop(token)
        if ready:
            self._deliver(ready, {})

    def _tick_loop(self):
        while not self._stop.wait(0.1):
            try:
                self._tick()
            except (
                Exception
            ):  # the ticker must survive anything a test does to the state
                _logger.exception("Simulator tick failed")

    # ---- webhook delivery ------------------------------------------------------------
    def ping(self, wait=True):
        batch = self._deliver([{"path": "ping", "payload": {}}], {})
        if wait:
            batch["done"].wait(timeout=self.settings["webhook_timeout"] + 5)
        return self.events_of_batch(batch["id"])

    def _deliver(self, planned, options):
        rng = options.get("_rng") or random.Random(options.get("seed"))
        items = [(e["path"], e["payload"], False) for e in planned]
        duplicates = options.get("duplicates") or 0
        if duplicates is True:
            duplicates = 2
        for _ in range(int(duplicates)):
            if planned:
                event = rng.choice(planned)
                items.insert(
                    rng.randrange(len(items) + 1),
                    (event["path"], event["payload"], True),
                )
        if options.get("shuffle"):
            rng.shuffle(items)
        batch = {
            "id": next(self._batches),
            "items": items,
            "delay": float(options.get("delay_ms") or 0) / 1000,
            "initial_delay": float(options.get("initial_delay_ms") or 0) / 1000,
            "done": threading.Event(),
        }
        if not self._threads:
            # Not started (pure in-process use): deliver synchronously.
            self._send_batch(batch)
        else:
            self._queue.put(batch)
        return batch

    def _delivery_loop(self):
        while True:
            batch = self._queue.get()
            if batch is None or self._stop.is_set():
                if batch:
                    batch["done"].set()
                return
            try:
                self._send_batch(batch)
            except Exception:
                _logger.exception("Simulator delivery failed")
                batch["done"].set()

    def _send_batch(self, batch):
        if batch["initial_delay"]:
            self._stop.wait(batch["initial_delay"])
        for index, (path, payload, duplicate) in enumerate(batch["items"]):
            if index and batch["delay"]:
                self._stop.wait(batch["delay"])
            self._send(batch["id"], path, payload, duplicate)
        batch["done"].set()

    def _ssl_context(self):
        verify = self.settings["webhook_verify"]
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(verify, str):
            context = ssl.create_default_context(cafile=verify)
        else:
            context = ssl.create_default_context()
        # Mango speaks TLS 1.2 only (reference §1.1, §6).
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _send(self, batch_id, path, payload, duplicate):
        form = signing.build_form(self.api_key, self.api_salt, payload)
        record = {
            "id": None,
            "batch": batch_id,
            "path": path,
            "entry_id": payload.get("entry_id"),
            "payload": payload,
            "json": form["json"],
            "duplicate": duplicate,
            "url": None,
            "status": None,
            "error": None,
            "sent_at": self.clock.now(),
        }
        base = self.webhook_url
        if not base:
            record["error"] = "no webhook URL configured"
        else:
            url = base.rstrip("/") + "/" + path
            record["url"] = url
            data = urllib.parse.urlencode(form).encode()
            request = urllib.request.Request(
                url,
                data=data,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": "MangoOffice-VPBX-Simulator",
                },
            )
            kwargs = {"timeout": float(self.settings["webhook_timeout"])}
            if url.startswith("https:"):
                kwargs["context"] = self._ssl_context()
            try:
                with urllib.request.urlopen(request, **kwargs) as response:
                    record["status"] = response.status
                    response.read()
            except urllib.error.HTTPError as error:
                record["status"] = error.code
            except (OSError, urllib.error.URLError) as error:
                record["error"] = f"{type(error).__name__}: {error}"
        with self.lock:
            record["id"] = len(self._deliveries) + 1
            self._deliveries.append(record)

    # ---- the API pipeline ------------------------------------------------------------
    def handle_api(self, http_method, method, form, client="127.0.0.1"):
        """Answer one API request with an :class:`api.Response` (JSON or bytes)."""
        entry = {
            "time": self.clock.now(),
            "http_method": http_method,
            "method": method,
            "payload": None,
            "http_status": None,
            "result": None,
        }
        response = self._pipeline(http_method, method, form, entry)
        entry["http_status"] = response.status
        if entry["result"] is None:
            entry["result"] = response.result
        entry["response"] = response.body if isinstance(response.body, dict) else None
        with self.lock:
            self._commands.append(entry)
        return response

    def _error(self, code, description=None, fields=None):
        if self.settings["legacy_errors"]:
            body = {"code": code}
            if description:
                body["message"] = description
            return api.Response(420, body, result=code)
        body = {"result": code, "description": description or codes.describe(code)}
        if fields:
            body["fields"] = fields
        return api.Response(200, body, result=code)

    def _signature_ok(self, json_text, received):
        """``sign`` over the ``json`` field exactly as its bytes arrived (reference
        §1.3); hex digits in either case, as the reference does not say Mango
        refuses upper case."""
        if not isinstance(received, str) or not isinstance(json_text, str):
            return False
        expected = hashlib.sha256(
            self.api_key.encode()
            + json_text.encode("utf-8", "surrogateescape")
            + self.api_salt.encode()
        ).hexdigest()
        return hmac.compare_digest(
            received.lower().encode("utf-8", "surrogateescape"), expected.encode()
        )

    def _locked_response(self):
        body = {
            "name": "Unauthorized",
            "message": "Too many invalid requests: API access is blocked for two "
            "minutes after the first one.",
            "code": 0,
            "status": 401,
        }
        # No Retry-After: nothing documents one, so clients must not rely on it.
        return api.Response(401, body, result=401)

    def _pipeline(self, http_method, method, form, entry):
        remaining = self.lockout.locked()
        if remaining:
            return self._locked_response()
        is_link = method.startswith("queries/recording/link/")
        limit_method = "queries/recording/link" if is_link else method
        if not is_link and method not in api.METHODS:
            return api.Response(
                404,
                {
                    "name": "Not Found",
                    "message": "Page not found.",
                    "code": 0,
                    "status": 404,
                },
                result=404,
            )
        fault = self._take_fault(
            limit_method, ("http_503", "http_500", "result", "timeout")
        )
        if fault:
            return self._fault_response(fault)
        product = form.get("vpbx_api_key") or (
            method.split("/")[-3] if is_link and method.count("/") >= 6 else ""
        )
        wait = self.limiter.acquire(product, limit_method)
        if wait is not None:
            return api.Response(429, dict(RATE_LIMIT_BODY), result=429)
        response = self._dispatch(http_method, method, form, entry, is_link)
        invalid = (
            isinstance(response.result, int)
            and 3000 <= response.result < 4000
            and codes.code_class(response.result) == 3
        )
        if invalid and self.lockout.register_invalid():
            return self._locked_response()
        return response

    def _fault_response(self, fault):
        kind = fault["kind"]
        if kind == "http_503":
            return api.Response(
                503,
                {
                    "name": "Service Unavailable",
                    "message": "Service temporarily unavailable.",
                    "code": 0,
                    "status": 503,
                },
                result=503,
            )
        if kind == "http_500":
            return api.Response(
                500,
                b"<html><body>Internal Server Error</body></html>",
                "text/html",
                result=500,
            )
        if kind == "timeout":
            self._stop.wait(fault["seconds"])
            return api.Response(None, b"", result="timeout")
        return self._error(fault["code"])

    def _dispatch(self, http_method, method, form, entry, is_link):
        try:
            if is_link:
                if http_method != "GET":
                    raise api.ApiError(3101, "Recording links are opened with GET")
                entry["payload"] = {"link": method}
                return self.recording_link(method.split("/")[3:])
            if http_method != "POST":
                raise api.ApiError(3101, "Only POST is accepted")
            missing = {n: 3103 for n in forms.REQUIRED_FIELDS if not form.get(n)}
            if missing:
                why = form.why_missing() if isinstance(form, forms.Form) else ""
                raise api.ApiError(
                    3103,
                    "Required form fields: vpbx_api_key, sign, json"
                    + (f" ({why})" if why else ""),
                    missing,
                )
            if form["vpbx_api_key"] != self.api_key:
                raise api.ApiError(3105, "Invalid API key")
            if not self._signature_ok(form["json"], form["sign"]):
                raise api.ApiError(3102, "Signature mismatch")
            payload = _decode_json(form["json"])
            entry["payload"] = _redact(payload)
            # Same lock order as play(): simulator first, then PBX state.
            with self.lock, self.state.lock:
                result = api.METHODS[method](self, payload)
            if isinstance(result, api.Response):
                return result
            return api.Response(200, result, result=result.get("result", 1000))
        except api.ApiError as error:
            return self._error(error.code, error.description, error.fields)
