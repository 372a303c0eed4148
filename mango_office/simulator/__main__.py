"""``python -m mango_office.simulator``: run the VPBX simulator until interrupted."""

import argparse
import logging
import os
import signal
import sys
import threading

from . import load_seed
from .autoplay import AutoPlayer
from .core import Simulator
from .scenarios import SCENARIOS
from .server import CONTROL_ENDPOINTS

DESCRIPTION = """\
A Mango Office VPBX ("API ВАТС") on loopback that behaves as documented in
mango-vpbx-api.md: signed form POSTs to /vpbx/<method>, result codes, the 3xxx lockout,
per-method rate limits, 302 recording downloads of real MP3 files, async stats, and
signed webhook events posted to --webhook-url exactly as Mango posts them.
"""

EPILOG = (
    """\
API (signed like Mango: form fields vpbx_api_key, sign=sha256(key+json+salt), json):
  POST /vpbx/<method>        with or without a trailing slash
  Request bodies, as Mango reads them (mango_office/simulator/forms.py says why):
    application/x-www-form-urlencoded and multipart/form-data (file parts too,
    base64/quoted-printable undone), Content-Length or chunked; no or another
    Content-Type: read as urlencoded; a charset parameter changes nothing.
    JSON body: not read -> 3103 naming all three fields. Query string of a POST:
    not read -> 3103 if the fields are only there. Repeated field: the last one
    counts (PHP). Missing or empty field: 3103, each named in "fields".
    The sign is checked over the json field's bytes as sent (hex in any case);
    json that is not UTF-8, has NaN/Infinity, nests deeper than 512 or is not an
    object: 3400. command_id over 128 bytes: 3104. Numbers in to_number/from/to
    may be spelled with blanks, dashes, dots, brackets and "+" (the PBX
    normalises them); an extension of any length is a valid destination.
  GET  /vpbx/queries/recording/link/<id>/<action>/<key>/<expires>/<sign>
             sign = sha256(key + expires + id + salt)
  GET  /files/<token>        single-use recording URL (queries/recording/post -> 302)
  Methods: commands/callback, commands/callback_group, commands/call/hangup,
  commands/route, commands/transfer, commands/recording/start,
  queries/recording/post, stats/request, stats/result, stats/calls/request,
  stats/calls/result, config/users/request, roles,
  member/create|update|delete, sips, domains, sip/create|update|delete, incominglines,
  account/balance, groups, group/create|update|delete. Anything else: HTTP 404,
  including documented methods the addons do not use (commands/sms,
  commands/play/start, commands/calls_connect, commands/transfer_cancel,
  commands/call/hold/on, queries/recording/issa, dct queries, bwlists, ab, schemas,
  audiofiles, trunks, autosecretary, forwarding, v2/campaign/tasks, speech
  analytics).

Answers:
  success    HTTP 200 JSON {"result":1000,...}
             (config/users/request: {"users":[...]} only)
  error      HTTP 200 JSON {"result":N,"description":"...","fields":{...}}
             (--legacy-errors: HTTP 420 {"code":N}, the 2017 behaviour)
  lockout    a second 3xxx answer within 2 minutes of the first -> HTTP 401 for every
             request until 2 minutes after the first one
  rate limit HTTP 429 {"name":"Service Unavailable","message":"Rate limit exceeded.",
             "code":0,"status":429}: general 10/s; callback, hangup,
             recording/start 4/s; recordings 10/s; users/request, transfer,
             route, stats launch 1 per 2 s;
             account/balance 2/s (token buckets on the simulator clock)

Webhook events (POSTed to <webhook-url>/<path>, signed with the same key and salt):
  events/call, events/recording, events/summary, events/record/added, result/<command>,
  result/stat (when a stats report is ready), ping.

The default PBX (without --seed):
  employees 101-104 (one administrator), groups (queues) 900 "Отдел продаж" and
  901 "Поддержка", lines 74951234567 and 78001234567, roles 10453/10451/3, SIP domain
  vpbx400012345.mangosip.ru, a tariff for 500 employees. The group numbers sit at
  the top of the three-digit plan, away from staff numbers: a directory sync with
  ipPhone values or an extension range (100-999, filled from the bottom) provisions
  the 250 people of the sample directory without meeting them.

Your own PBX (--seed FILE, or POST /_sim/seed with the same JSON at run time):
  curl -s localhost:8765/_sim/state > my_pbx.json   # the running PBX, as a seed
  # edit it: "employee_limit" (null or left out: no limit), "users" (user_id,
  # name, extension, email, access_role_id, sips [{login, domain}]), "groups"
  # (name, extension, operators: user ids or extensions), "lines", "roles",
  # "domains", "pbx_services_enabled" (false: member/* answers 5201). Users,
  # groups and lines left out mean none; roles and domains left out take the
  # defaults; "calls" and "recordings" are ignored.
  python -m mango_office.simulator --seed my_pbx.json ...
  e.g. set "employee_limit" to 20 in the dump to see Mango's 5228 once a sync
  has provisioned 16 more people.

Control API (JSON in and out, no signing, loopback only):
"""
    + "\n".join(
        f"  {endpoint:<44} {text}" for endpoint, text in CONTROL_ENDPOINTS.items()
    )
    + """

Scenarios ("""
    + ", ".join(SCENARIOS)
    + """):
  options: from_number, to_number, line_number, extension, to_extension, group,
  command_id, ivr_seconds, queue_seconds, ring_seconds, talk_seconds, answered,
  employee_answers, record, disconnect_reason, start_time, live (incoming_answered:
  stop while ringing), pace ("realtime", the control API's default: the call happens
  in real time, each of its seconds lasting a second, and the answer comes at once;
  "instant": every event at once, as tests and history loading want), shuffle
  (out-of-order delivery), duplicates (N extra copies), delay_ms (between
  deliveries), seed (repeatable shuffle/duplicates/quirks), quirks (seq/result sometimes
  strings), wait (instant: answer after delivery, default true).
  commands/callback and commands/callback_group received on the API play click_to_call
  and callback_group by themselves.

Protocol choices where the reference is silent (UNCONFIRMED at Mango):
  - Errors are HTTP 200 + {"result","description","fields"}; no Retry-After on 401/429.
  - Unknown method: HTTP 404 (Yii-style body), which does not count towards the lockout.
  - Lockout is per simulator (one product); 401 body {"name":"Unauthorized",...}.
  - Structural problems (missing/malformed params) are answered synchronously (3xxx);
    an unknown extension/line, a finished call etc. come back in result/<command>
    (3100, 4101, 4102, 3330...). Sync answer of commands: {"result":1000,"command_id"}.
  - IVR/queue leg keeps its call_id while location goes ivr -> queue; operator legs
    are new call_ids with from.taken_from_call_id; the handed-over leg ends with
    reason 1000; other ringing operators end with 1182; commands/call/hangup ends
    legs with 1181.
  - Missed summary: forward_time 0, to = first link (group extension, no number).
  - callback_group summary: call_direction 2, from.extension = group extension.
  - Stats-ready event goes to result/stat (DOC2026); setting stats_callback_path
    switches to result/stats. One CSV row per call; records as [id1,id2].
  - stats/calls/result for an unknown key: {"result":1000,"status":"not-found"}.
  - Recording not (yet) available: result 3320 -- a 3xxx, so it feeds the lockout.
  - Recording link timestamp is a Unix epoch (UTC); expired link: result 3100.
  - Webhook deliveries are sequential per batch, never retried; quirks: seq/result
    sometimes strings, extension sometimes an int, recording timestamps strings.

Examples:
  python -m mango_office.simulator --port 8765 --api-key k --api-salt s \\
      --webhook-url http://127.0.0.1:8069/mango
  curl -s -XPOST localhost:8765/_sim/scenarios/incoming_answered \\
       -d '{"from_number":"79031234567"}'  # IVR 4 s, queue 3 s, rings 5 s, talk 42 s
  curl -s -XPOST localhost:8765/_sim/scenarios/incoming_missed_queue \\
       -d '{"pace":"instant"}'
  curl -s -XPOST localhost:8765/_sim/clock -d '{"freeze":true,"advance":121}'
  curl -s -XPOST localhost:8765/_sim/faults -d '{"kind":"http_503","count":2}'
"""
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mango_office.simulator",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8765,
        help="TCP port (0 picks a free one; default 8765)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to bind (default 127.0.0.1)",
    )
    # From the environment as well: a key on the command line is visible to every
    # user of the machine in `ps`.
    parser.add_argument(
        "--api-key",
        default=os.environ.get("MANGO_SIM_API_KEY"),
        required=not os.environ.get("MANGO_SIM_API_KEY"),
        help="vpbx_api_key the simulator accepts and signs with (or $MANGO_SIM_API_KEY)",
    )
    parser.add_argument(
        "--api-salt",
        default=os.environ.get("MANGO_SIM_API_SALT"),
        required=not os.environ.get("MANGO_SIM_API_SALT"),
        help="vpbx_api_salt for signatures in both directions (or $MANGO_SIM_API_SALT)",
    )
    parser.add_argument(
        "--webhook-url",
        help="base URL of the external system, e.g. http://127.0.0.1:8069/mango",
    )
    parser.add_argument(
        "--seed",
        metavar="FILE",
        help="JSON file describing the PBX instead of the default office (same "
        "shape as GET /_sim/state; see 'Your own PBX' below)",
    )
    parser.add_argument(
        "--certfile",
        help="serve HTTPS (TLS 1.2 only, like Mango) with this certificate",
    )
    parser.add_argument("--keyfile", help="private key for --certfile")
    parser.add_argument(
        "--legacy-errors",
        action="store_true",
        help='answer errors with HTTP 420 {"code":N}',
    )
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="disable the per-method rate limits",
    )
    parser.add_argument(
        "--no-lockout", action="store_true", help="disable the 3xxx two-minute lockout"
    )
    parser.add_argument(
        "--stats-delay",
        type=float,
        default=2.0,
        help="seconds until a stats report is ready",
    )
    parser.add_argument(
        "--no-verify-webhook",
        action="store_true",
        help="do not verify the webhook's TLS certificate",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--allow-any-host",
        action="store_true",
        help="allow --host beyond loopback (e.g. 0.0.0.0) and the control API from "
        "private addresses: for containers only, never on a shared network",
    )
    parser.add_argument(
        "--play-every",
        type=float,
        metavar="SECONDS",
        help="demo traffic: play a call every SECONDS (incoming calls ring live)",
    )
    parser.add_argument(
        "--play-numbers",
        help="comma-separated customer numbers (7XXXXXXXXXX) for --play-every",
    )
    parser.add_argument(
        "--play-extensions",
        help="comma-separated extensions taking --play-every calls; the first gets "
        "a third of them (default: every employee)",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if bool(args.certfile) != bool(args.keyfile):
        sys.exit("--certfile and --keyfile go together")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
    )
    seed = load_seed(args.seed) if args.seed else None
    sim = Simulator(
        args.api_key,
        args.api_salt,
        webhook_url=args.webhook_url,
        seed=seed,
        port=args.port,
        host=args.host,
        certfile=args.certfile,
        keyfile=args.keyfile,
        legacy_errors=args.legacy_errors,
        rate_limits=not args.no_rate_limits,
        stats_delay=args.stats_delay,
        log_requests=args.verbose,
        allow_any_host=args.allow_any_host,
    )
    if args.no_lockout:
        sim.configure(lockout=False)
    if args.no_verify_webhook:
        sim.configure(webhook_verify=False)
    sim.start()
    print(
        f"Mango VPBX simulator: API {sim.base_url}  control {sim.control_url}",
        flush=True,
    )
    player = None
    if args.play_every:
        player = AutoPlayer(
            sim,
            args.play_every,
            numbers=_split(args.play_numbers),
            extensions=_split(args.play_extensions),
        ).start()
        print(f"Playing a call every {args.play_every:g} s", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    if player:
        player.stop()
    sim.stop()


def _split(text):
    return [part.strip() for part in (text or "").split(",") if part.strip()]


if __name__ == "__main__":
    main()
