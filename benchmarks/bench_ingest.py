#!/usr/bin/env python3
"""Webhook ingest benchmark: the real route against a bare baseline, in one run.

Odoo runs with ``--workers=2`` on a private database of the dev PostgreSQL
cluster (default unix socket), with the test-only addon
``benchmarks/bench_addons/mango_bench_ingest`` providing the baseline route
``/mango_bench/bare/…`` (key → salt lookup, signature check, one INSERT). The
real route ``/mango/events/…`` does the product's full work: constant-time key
match, signature, address allowlist, parsing, deduplicated INSERT and the
processing trigger; the cron worker folds events into calls meanwhile.

8 concurrent senders post signed simulator events (``mango_office.simulator``
scenarios) in rounds that alternate baseline and real route; medians are
compared. Target: real ≥ 70 % of the baseline. Afterwards every accepted event
must have been folded into its call exactly once.

Usage::

    python3 benchmarks/bench_ingest.py [--calls-per-round 250] [--rounds 3]
        [--senders 8] [--odoo ODOO_BIN] [--odoo-addons ADDONS] [--keep-db]

``--odoo`` defaults to the ``odoo-bin`` of the Odoo the running Python imports
(run the script with the virtualenv of the series to measure), ``--odoo-addons``
to the ``addons`` folder next to it.
"""

import argparse
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections import Counter
from pathlib import Path

import psycopg2
import requests
from benchlib import (
    add_odoo_argument,
    log,
    odoo_addons,
    odoo_version,
    without_demo_options,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mango_office import calls as mango_calls  # noqa: E402
from mango_office import events as mango_events  # noqa: E402
from mango_office import signing  # noqa: E402
from mango_office.simulator import SCENARIOS, run_simulator  # noqa: E402

API_KEY = "benchkey4mango0ingest0route"
API_SALT = "benchsalt4mango0ingest0route0signs"
TARGET_RATIO = 0.70


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def generate_rounds(rounds, calls_per_round):
    """Distinct simulator events for each round: ``[[(path, json_str)], …]``."""
    result = []
    with run_simulator(api_key=API_KEY, api_salt=API_SALT) as sim:
        serial = 0
        for _round in range(rounds):
            events = []
            for _call in range(calls_per_round):
                scenario = SCENARIOS[serial % len(SCENARIOS)]
                played = sim.play(scenario, wait=False, seed=serial)
                serial += 1
                events.extend(
                    (e["path"], signing.dumps(e["payload"])) for e in played["planned"]
                )
            result.append(events)
    return result


class Odoo:
    def __init__(self, args, db, port, addons_path, logfile):
        self.args, self.db, self.port = args, db, port
        self.addons_path, self.logfile = addons_path, logfile
        self.process = None

    def command(self, *extra):
        return [
            sys.executable,
            self.args.odoo,
            f"--addons-path={self.addons_path}",
            # --database without --db-filter: Mango's requests carry no session,
            # and a db filter makes Odoo list the cluster's databases on each one.
            f"--database={self.db}",
            "--log-level=warn",
            f"--logfile={self.logfile}",
            *extra,
        ]

    def env(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), env.get("PYTHONPATH")])
        )
        return env

    def install(self):
        log(f"installing mango_telephony + the baseline addon into {self.db}")
        subprocess.run(
            self.command(
                "-i",
                "mango_telephony,mango_bench_ingest",
                "--stop-after-init",
                *without_demo_options(self.args.odoo),
                f"--http-port={self.port}",
            ),
            env=self.env(),
            check=True,
        )

    def start(self, cron_threads=1):
        self.process = subprocess.Popen(
            self.command(
                "--workers=2",
                f"--max-cron-threads={cron_threads}",
                f"--http-port={self.port}",
                "--http-interface=127.0.0.1",
                "--limit-time-real=600",
                "--limit-memory-soft=2147483648",
                "--limit-memory-hard=2684354560",
            ),
            env=self.env(),
            start_new_session=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(self.url("/mango/ping"), timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"Odoo exited early, see {self.logfile}")
            time.sleep(0.5)
        raise RuntimeError(f"Odoo did not answer within 2 minutes, see {self.logfile}")

    def ensure_account(self):
        """The account the events are signed for, created through the ORM (as an
        administrator would) so every default and constraint applies. Events are
        accepted from loopback only: the address check is part of the measure."""
        common = xmlrpc.client.ServerProxy(self.url("/xmlrpc/2/common"))
        uid = common.authenticate(self.db, "admin", "admin", {})
        models = xmlrpc.client.ServerProxy(self.url("/xmlrpc/2/object"))

        def call(model, method, *args, **kw):
            return models.execute_kw(
                self.db, uid, "admin", model, method, list(args), kw
            )

        old = call("mango.account", "search", [])
        if old:
            call("mango.account", "write", old, {"active": False})
        call(
            "mango.account",
            "create",
            {
                "name": "Benchmark",
                "api_key": API_KEY,
                "api_salt": API_SALT,
                "api_base_url": "http://127.0.0.1:9/vpbx",
                "ip_filter_mode": "list",
                "allowed_ips": "81.88.80.132\n127.0.0.1",
            },
        )

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def send_all(base_url, events, senders):
    """Post every event with ``senders`` threads; returns (seconds, statuses)."""
    work = queue.Queue()
    for item in events:
        work.put(item)
    statuses = Counter()
    accepted = []
    lock = threading.Lock()

    def sender():
        session = requests.Session()
        while True:
            try:
                path, json_str = work.get_nowait()
            except queue.Empty:
                return
            form = signing.build_form(API_KEY, API_SALT, json_str)
            try:
                status = session.post(
                    f"{base_url}/{path}", data=form, timeout=60
                ).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            with lock:
                statuses[status] += 1
                if status == 200:
                    accepted.append((path, json_str))

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, statuses, accepted


def wait_processed(cursor, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        cursor.execute(
            "SELECT count(*) FROM mango_event WHERE state IN ('pending', 'failed')"
        )
        (left,) = cursor.fetchone()
        if not left:
            return True
        time.sleep(1)
    return False


def check_folded(cursor, accepted):
    """Every accepted event stored once and folded into its one call, which equals
    the pure fold of the same events. Returns a list of problems."""
    problems = []
    parsed = {}
    for path, json_str in accepted:
        event = mango_events.parse_event(path, json_str)
        parsed[event.dedup_key] = event
    cursor.execute("SELECT dedup_key, state, call_id FROM mango_event")
    rows = cursor.fetchall()
    stored = Counter(key for key, _state, _call in rows)
    doubled = [key for key, n in stored.items() if n > 1]
    if doubled:
        problems.append(f"{len(doubled)} events stored twice")
    missing = set(parsed) - set(stored)
    if missing:
        problems.append(f"{len(missing)} accepted events not stored")
    states = Counter(state for _key, state, _call in rows)
    if set(states) - {"done", "ignored"}:
        problems.append(f"events not processed: {dict(states)}")
    expected = mango_calls.fold(parsed.values())
    cursor.execute(
        "SELECT entry_id, count(*), max(status) FROM mango_call GROUP BY entry_id"
    )
    calls = {entry: (n, status) for entry, n, status in cursor.fetchall()}
    if set(calls) != set(expected):
        problems.append(
            f"calls: {len(set(expected) - set(calls))} missing, "
            f"{len(set(calls) - set(expected))} unexpected"
        )
    if any(n != 1 for n, _status in calls.values()):
        problems.append("a call is recorded twice")
    wrong = [
        e for e, call in expected.items() if e in calls and calls[e][1] != call.status
    ]
    if wrong:
        problems.append(f"{len(wrong)} calls differ from the pure fold")
    cursor.execute(
        "SELECT count(*) FROM mango_event WHERE state = 'done' "
        "AND entry_id IS NOT NULL AND call_id IS NULL"
    )
    (unlinked,) = cursor.fetchone()
    if unlinked:
        problems.append(f"{unlinked} call events not linked to their call")
    return problems, len(expected), len(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_odoo_argument(parser)
    parser.add_argument(
        "--odoo-addons", help="Odoo's addons folder (default: the one next to --odoo)"
    )
    parser.add_argument("--calls-per-round", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--db", default=f"callsa_bench_{os.getpid()}")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--fold",
        choices=("after", "during"),
        default="after",
        help="after: no cron worker while the routes are measured (the webhook still "
        "pays for its trigger), then Odoo restarts with one and folds everything; "
        "during: the cron worker folds while events arrive (it competes for the "
        "same 2 cores)",
    )
    parser.add_argument("--reuse-db", action="store_true", help="skip the install")
    args = parser.parse_args()
    # A plain SIGTERM must still stop our Odoo and drop the database.
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    log(f"load average (1 min) at the start: {os.getloadavg()[0]:.1f}")
    addons_path = ",".join(
        [
            args.odoo_addons or odoo_addons(args.odoo),
            str(ROOT),
            str(ROOT / "benchmarks" / "bench_addons"),
        ]
    )
    odoo = Odoo(args, args.db, free_port(), addons_path, workdir / "odoo.log")
    connection = None
    try:
        if not args.reuse_db:
            subprocess.run(["dropdb", "--if-exists", args.db], check=True)
            odoo.install()
        connection = psycopg2.connect(dbname=args.db)
        connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute("TRUNCATE mango_event, mango_call, mango_bench_event CASCADE")
        log("generating simulator events")
        rounds = generate_rounds(args.rounds, args.calls_per_round)
        log(f"{sum(map(len, rounds))} events in {args.rounds} rounds; starting Odoo")
        odoo.start(cron_threads=1 if args.fold == "during" else 0)
        odoo.ensure_account()
        # Warm both routes (registry, routing map, worker imports).
        send_all(odoo.url("/mango_bench/bare"), rounds[0][:50], args.senders)
        send_all(odoo.url("/mango"), [("ping", "{}")], 1)
        results = {"baseline": [], "real": []}
        accepted = []
        refused = Counter()
        for index, events in enumerate(rounds):
            for name, base in (
                ("baseline", odoo.url("/mango_bench/bare")),
                ("real", odoo.url("/mango")),
            ):
                seconds, statuses, ok = send_all(base, events, args.senders)
                rate = len(events) / seconds
                results[name].append(rate)
                log(f"round {index + 1} {name}: {rate:.1f} events/s {dict(statuses)}")
                if name == "real":
                    accepted.extend(ok)
                    refused.update({k: v for k, v in statuses.items() if k != 200})
                elif set(statuses) != {200}:
                    refused.update({f"baseline {k}": v for k, v in statuses.items()})
        if args.fold == "after":
            log("restarting Odoo with a cron worker to fold the events")
            odoo.stop()
            odoo.start(cron_threads=1)
        log("waiting for the worker to fold every event")
        started = time.perf_counter()
        processed = wait_processed(cursor, timeout=900)
        fold_seconds = time.perf_counter() - started
        problems, call_count, stored = check_folded(cursor, accepted)
        if not processed:
            problems.append("events still pending after 10 minutes")
        if refused:
            problems.append(f"refused requests: {dict(refused)}")
        base = statistics.median(results["baseline"])
        real = statistics.median(results["real"])
        ratio = real / base
        print()
        print(f"Load average (1 min) at the end: {os.getloadavg()[0]:.1f} on 2 cores")
        print(
            f"Webhook ingest, Odoo {odoo_version(args.odoo)} --workers=2, "
            f"{args.senders} senders, "
            f"{len(rounds[0])}-{max(map(len, rounds))} events per round, "
            f"{args.rounds} rounds (medians)"
        )
        print("| route                         | events/s | per round              |")
        print("|-------------------------------|---------:|------------------------|")
        for name, label in (
            ("baseline", "bare (verify + 1 INSERT)"),
            ("real", "/mango/events (full)"),
        ):
            rounds_text = ", ".join(f"{r:.0f}" for r in results[name])
            median = statistics.median(results[name])
            print(f"| {label:29} | {median:8.1f} | {rounds_text:22} |")
        target = f"target ≥ {TARGET_RATIO:.2f}"
        print(f"| ratio real / bare             | {ratio:8.2f} | {target:22} |")
        print()
        print(
            f"accepted events: {len(accepted)}, stored: {stored}, calls: {call_count}"
        )
        print(
            f"folding ({args.fold} the rounds): {fold_seconds:.0f} s for what was "
            "left after the last round"
        )
        print(
            "folding check: "
            + ("OK, none lost, none doubled" if not problems else "; ".join(problems))
        )
        verdict = ratio >= TARGET_RATIO and not problems
        print("RESULT: " + ("PASS" if verdict else "FAIL"))
        return 0 if verdict else 1
    finally:
        odoo.stop()
        if connection:
            connection.close()
        if not args.keep_db and not args.reuse_db:
            subprocess.run(["dropdb", "--if-exists", args.db], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
