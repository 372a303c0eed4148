#!/usr/bin/env python3
"""Scale-out benchmark: two Odoo instances on one database take one webhook stream.

Two Odoo processes (``--workers 2`` and ``--max-cron-threads`` each, separate ports,
the same database) receive 20,000 signed simulator events (``mango_office.simulator``
scenarios, shuffled, 20 % of them duplicates) from 8-16 senders split between the
two ports, while their cron workers fold them. Printed, each with the machine's
load beside it:

- intake: events/s and the webhook's p50/p95 latency;
- folding while the stream comes: the backlog's peak and how long it takes to
  drain after the last event;
- folding alone, the same queue re-folded from scratch by 1 and by 2 instances:
  events folded per second, and its ratio to the intake rate (the issue's goal:
  at least half of it with two instances);
- correctness: every event stored once and done, every call once, each call's
  folded fields (``fold_state``, status, legs) equal to the pure fold of the same
  events in order (``mango_office.calls``), i.e. what an in-order delivery to one
  instance builds; the statistics equal to a full rebuild
  (``mango.call.stat._mango_rebuild`` on a copy of the database);
- the PBX: click-to-calls fired from every worker of both instances at once at a
  simulator running as its own process; its busiest second of ``commands/callback``
  requests must stay within Mango's 4/s. The clicks go through the product's own
  path (``res.users.mango_click_to_call`` → ``mango.account._mango_client()``), so
  the figure is that of whatever rate limiter the code has.

Usage::

    flock /work/bench.lock python3 benchmarks/bench_scale_out.py \\
        [--events 20000] [--duplicates 0.2] [--senders 8] [--cron-threads 1] \\
        [--clicks 48] [--db NAME] [--reuse-db] [--keep-db] [--odoo ODOO_BIN]

``--reuse-db`` skips the install (the events, calls and statistics of the
previous run are emptied first); ``--keep-db`` keeps the database afterwards.
"""

import argparse
import json
import os
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg2
import requests
from bench_ingest import Odoo, free_port
from benchlib import (
    add_odoo_argument,
    database_exists,
    log,
    odoo_addons,
    odoo_version,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mango_office import calls as mango_calls  # noqa: E402
from mango_office import events as mango_events  # noqa: E402
from mango_office import signing  # noqa: E402
from mango_office.simulator import SCENARIOS, run_simulator  # noqa: E402

API_KEY = "benchkey4mango0scale0out0route"
API_SALT = "benchsalt4mango0scale0out0route0signs"
CALLBACK_LIMIT_PER_SECOND = 4  # Mango's limit for commands/callback
FOLD_GOAL = 0.5  # folding with two instances ≥ half of the intake rate
STAT_TABLES = (
    "mango_call_stat",
    "mango_call_stat_callback",
    "mango_call_stat_callback_bucket",
    "mango_call_stat_period",
    "mango_call_stat_contribution",
)
CLICK_USERS = ("101", "102", "103", "104")  # extensions of the simulator's seed


def load():
    return f"{os.getloadavg()[0]:.1f}"


def generate_events(total, duplicate_ratio, seed=17):
    """``total`` signed-ready events ``[(path, json_str)]``: the events of whole
    simulator calls, ``duplicate_ratio`` of them repeated, shuffled."""
    unique_wanted = round(total / (1 + duplicate_ratio))
    unique = []
    with run_simulator(api_key=API_KEY, api_salt=API_SALT) as sim:
        serial = 0
        while len(unique) < unique_wanted:
            scenario = SCENARIOS[serial % len(SCENARIOS)]
            played = sim.play(scenario, wait=False, seed=serial)
            serial += 1
            unique.extend(
                (e["path"], signing.dumps(e["payload"])) for e in played["planned"]
            )
    rng = random.Random(seed)
    stream = unique + [rng.choice(unique) for _ in range(total - len(unique))]
    rng.shuffle(stream)
    return stream, serial


def send_split(ports, events, senders):
    """Post every event, sender ``i`` to ``ports[i % len(ports)]``.

    :return: (seconds, Counter of statuses, latencies in seconds, accepted events)
    """
    work = queue.Queue()
    for item in events:
        work.put(item)
    statuses = Counter()
    latencies = []
    accepted = []
    lock = threading.Lock()

    def sender(port):
        session = requests.Session()
        base = f"http://127.0.0.1:{port}/mango"
        while True:
            try:
                path, json_str = work.get_nowait()
            except queue.Empty:
                return
            form = signing.build_form(API_KEY, API_SALT, json_str)
            started = time.perf_counter()
            try:
                status = session.post(f"{base}/{path}", data=form, timeout=60)
                status = status.status_code
            except requests.RequestException as error:
                status = type(error).__name__
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] += 1
                latencies.append(elapsed)
                if status == 200:
                    accepted.append((path, json_str))

    threads = [
        threading.Thread(target=sender, args=(ports[i % len(ports)],))
        for i in range(senders)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, statuses, latencies, accepted


class Backlog:
    """Samples the queue (pending/failed events) every ``period`` seconds."""

    def __init__(self, db, period=0.25):
        self.db, self.period = db, period
        self.samples = []  # (monotonic time, backlog, done)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        connection = psycopg2.connect(dbname=self.db)
        connection.autocommit = True
        with connection.cursor() as cursor:
            while not self._stop.is_set():
                cursor.execute(
                    "SELECT count(*) FILTER (WHERE state IN ('pending', 'failed') "
                    "AND attempts < 8), "
                    "count(*) FILTER (WHERE state = 'done') FROM mango_event"
                )
                backlog, done = cursor.fetchone()
                self.samples.append((time.monotonic(), backlog, done))
                self._stop.wait(self.period)
        connection.close()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def peak(self):
        return max((b for _t, b, _d in self.samples), default=0)

    def drained_at(self, after, timeout, filled_first=False):
        """The time the backlog was first seen empty at or after ``after``
        (and, with ``filled_first``, after it was seen not empty)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            filled = not filled_first
            for t, backlog, _done in list(self.samples):
                if t < after:
                    continue
                if backlog:
                    filled = True
                elif filled:
                    return t
            time.sleep(self.period)
        return None


def psql(db, query, params=None, fetch=True):
    connection = psycopg2.connect(dbname=db)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if fetch and cursor.description else None
    finally:
        connection.close()


def empty_results(db):
    """Forget every call, statistic and activity the folds made (events kept)."""
    psql(
        db,
        """
        DELETE FROM mail_activity WHERE res_model = 'mango.call';
        DELETE FROM mail_message WHERE model = 'mango.call';
        DELETE FROM mango_call_recording;
        DELETE FROM mango_call;
        DELETE FROM mango_call_stat;
        DELETE FROM mango_call_stat_callback;
        DELETE FROM mango_call_stat_callback_bucket;
        DELETE FROM mango_call_stat_period;
        DELETE FROM mango_call_stat_contribution;
        DELETE FROM mango_call_stat_dirty;
        """,
        fetch=False,
    )


def requeue(db):
    """Put every stored call event back in the queue, as if just received, and
    wake the first folding lane (the others are woken by it)."""
    empty_results(db)
    psql(
        db,
        """
        UPDATE mango_event SET state = 'pending', attempts = 0, call_id = NULL,
               next_attempt_at = NULL, processed_at = NULL, last_error = NULL
         WHERE state != 'ignored';
        INSERT INTO ir_cron_trigger (cron_id, call_at)
        SELECT res_id, now() AT TIME ZONE 'UTC' FROM ir_model_data
         WHERE module = 'mango_telephony' AND name = 'ir_cron_mango_event_process';
        """,
        fetch=False,
    )
    psql("postgres", "SELECT pg_notify('cron_trigger', %s)", [db], fetch=False)


def check_call_log(db, accepted):
    """The call log against the pure fold of the accepted events (in order, one
    instance). :return: (problems, calls, unique events)"""
    problems = []
    parsed = {}
    for path, json_str in accepted:
        event = mango_events.parse_event(path, json_str)
        parsed[event.dedup_key] = event
    rows = psql(db, "SELECT dedup_key, state, call_id, entry_id FROM mango_event")
    stored = Counter(key for key, *_rest in rows)
    doubled = sum(1 for n in stored.values() if n > 1)
    lost = len(set(parsed) - set(stored))
    states = Counter(state for _key, state, *_rest in rows)
    if set(states) - {"done", "ignored"}:
        problems.append(f"events not processed: {dict(states)}")
    unlinked = sum(1 for _k, state, call, entry in rows if entry and not call)
    if unlinked:
        problems.append(f"{unlinked} call events not linked to their call")
    expected = {
        entry: json.loads(json.dumps(call.to_dict()))
        for entry, call in mango_calls.fold(parsed.values()).items()
    }
    legs = {
        entry: len(call.legs)
        for entry, call in mango_calls.fold(parsed.values()).items()
    }
    calls = psql(
        db,
        """
        SELECT c.entry_id, count(DISTINCT c.id), max(c.fold_state::text),
               max(c.status), count(l.id) / greatest(count(DISTINCT c.id), 1)
          FROM mango_call c LEFT JOIN mango_call_leg l ON l.call_id = c.id
         GROUP BY c.entry_id
        """,
    )
    found = {
        entry: (n, json.loads(state), status, n_legs)
        for entry, n, state, status, n_legs in calls
    }
    lost_calls = len(set(expected) - set(found))
    extra_calls = len(set(found) - set(expected))
    doubled_calls = sum(1 for n, *_rest in found.values() if n > 1)
    differ = sum(
        1
        for entry, (_n, state, status, n_legs) in found.items()
        if entry in expected
        and (
            state != expected[entry]
            or status != expected[entry].get("status", status)
            or n_legs != legs[entry]
        )
    )
    if differ:
        problems.append(f"{differ} calls differ from the in-order fold")
    if extra_calls:
        problems.append(f"{extra_calls} calls nobody made")
    return {
        "problems": problems,
        "events_lost": lost,
        "events_doubled": doubled,
        "calls_lost": lost_calls,
        "calls_doubled": doubled_calls,
        "calls": len(expected),
        "unique_events": len(parsed),
    }


def stat_rows(db):
    """Every statistics row, without ids and audit columns, as a multiset."""
    result = {}
    for table in STAT_TABLES:
        columns = [
            name
            for (name,) in psql(
                db,
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                [table],
            )
            if name
            not in ("id", "create_uid", "create_date", "write_uid", "write_date")
        ]
        rows = psql(db, f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608
        result[table] = Counter(tuple(_comparable(v) for v in row) for row in rows)
    return result


def _comparable(value):
    """A value as psql printed it, numbers by their value: a sum built by
    adding and subtracting (the per-call refresh) prints ``3036.0`` where the
    rebuild's prints ``3036`` in the same numeric column."""
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)


def check_statistics(args, db, workdir):
    """Statistics as the folds left them == a full rebuild on a copy."""
    copy = f"{db}_rebuild"
    subprocess.run(["dropdb", "--if-exists", copy], check=True)
    subprocess.run(["createdb", "-T", db, copy], check=True)
    try:
        script = "env['mango.call.stat'].sudo()._mango_rebuild()\nenv.cr.commit()\n"
        subprocess.run(
            [
                sys.executable,
                args.odoo,
                "shell",
                f"--addons-path={args.addons_path}",
                "-d",
                copy,
                "--no-http",
                "--log-level=warn",
                f"--logfile={workdir / 'rebuild.log'}",
            ],
            input=script,
            text=True,
            check=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        folded, rebuilt = stat_rows(db), stat_rows(copy)
    finally:
        subprocess.run(["dropdb", "--if-exists", copy], check=False)
    differences = {
        table: sum(
            (
                (folded[table] - rebuilt[table]) + (rebuilt[table] - folded[table])
            ).values()
        )
        for table in STAT_TABLES
    }
    rows = {table: sum(rebuilt[table].values()) for table in STAT_TABLES}
    return differences, rows


class Instance(Odoo):
    """One Odoo instance of the pair: its own HTTP and websocket (gevent) ports."""

    def __init__(self, *args, gevent_port, **kwargs):
        super().__init__(*args, **kwargs)
        self.gevent_port = gevent_port

    def command(self, *extra):
        return super().command(f"--gevent-port={self.gevent_port}", *extra)

    def update(self):
        """Bring a reused database to the code being measured."""
        log(f"updating mango_telephony in {self.db}")
        subprocess.run(
            self.command(
                "-u", "mango_telephony", "--stop-after-init", f"--http-port={self.port}"
            ),
            env=self.env(),
            check=True,
        )


class Simulator:
    """The PBX as its own process, reachable by every Odoo worker."""

    def __init__(self, workdir, port=0):
        self.port = port or free_port()
        self.logfile = open(workdir / "simulator.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mango_office.simulator",
                "--port",
                str(self.port),
                "--api-key",
                API_KEY,
                "--api-salt",
                API_SALT,
            ],
            cwd=ROOT,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                requests.get(self.control("scenarios"), timeout=1).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("the simulator did not start")

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/vpbx"

    def control(self, path):
        return f"http://127.0.0.1:{self.port}/_sim/{path}"

    def commands(self, method):
        response = requests.get(
            self.control("commands"), params={"method": method}, timeout=30
        )
        response.raise_for_status()
        return response.json()

    def clear_commands(self):
        requests.delete(self.control("commands"), timeout=10).raise_for_status()

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        self.logfile.close()


class Rpc:
    def __init__(self, db, port, login, password):
        self.db, self.password = db, password
        url = f"http://127.0.0.1:{port}/xmlrpc/2"
        self.uid = xmlrpc.client.ServerProxy(f"{url}/common").authenticate(
            db, login, password, {}
        )
        self.url = f"{url}/object"

    def __call__(self, model, method, *args, **kw):
        proxy = xmlrpc.client.ServerProxy(self.url, allow_none=True)
        return proxy.execute_kw(
            self.db, self.uid, self.password, model, method, list(args), kw
        )


def set_up_account(db, port, simulator, series):
    """The account the events are signed for, talking to the simulator process,
    and one telephony user per extension of the simulator's PBX."""
    admin = Rpc(db, port, "admin", "admin")
    old = admin("mango.account", "search", [])
    if old:
        admin("mango.account", "write", old, {"active": False})
    admin(
        "mango.account",
        "create",
        {
            "name": "Scale-out benchmark",
            "api_key": API_KEY,
            "api_salt": API_SALT,
            "api_base_url": simulator.base_url,
            "ip_filter_mode": "list",
            "allowed_ips": "81.88.80.132\n127.0.0.1",
        },
    )
    group = admin(
        "ir.model.data",
        "check_object_reference",
        "mango_telephony",
        "group_mango_user",
    )[1]
    members = "user_ids" if series.startswith("19") else "users"
    for extension in CLICK_USERS:
        login = f"scale{extension}@example.com"
        found = admin("res.users", "search", [("login", "=", login)])
        values = {"mango_extension": extension}
        if found:
            admin("res.users", "write", found, values)
            user = found[0]
        else:
            user = admin(
                "res.users",
                "create",
                {"name": f"Agent {extension}", "login": login, "password": login},
            )
            admin("res.users", "write", [user], values)
        admin("res.groups", "write", [group], {members: [(4, user)]})


def click_burst(db, ports, clicks, simulator):
    """Fire ``clicks`` click-to-calls at once from every worker of both
    instances; :return: (busiest second, requests, answers Counter)."""
    simulator.clear_commands()
    sessions = [
        Rpc(db, ports[i % len(ports)], login, login)
        for i, login in enumerate(f"scale{e}@example.com" for e in CLICK_USERS * 2)
    ]
    answers = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(len(sessions))

    def clicker(rpc, count):
        barrier.wait()
        for n in range(count):
            try:
                answer = rpc("res.users", "mango_click_to_call", f"+7903555{n:04d}")
                status = answer.get("status")
            except (xmlrpc.client.Error, OSError) as error:
                status = type(error).__name__
            with lock:
                answers[status] += 1

    per_session = max(1, clicks // len(sessions))
    threads = [
        threading.Thread(target=clicker, args=(rpc, per_session)) for rpc in sessions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    received = simulator.commands("commands/callback")["commands"]
    per_second = Counter(int(entry["time"]) for entry in received)
    statuses = Counter(entry.get("http_status") for entry in received)
    return max(per_second.values(), default=0), len(received), answers, statuses


def fold_alone(db, start, stop_all, figure):
    """Re-fold the stored queue from scratch with 1, then 2 instances.

    :return: ``{instances: events folded per second}``
    """
    fold_rates = {}
    for count in (1, 2):
        stop_all()
        start(count)
        backlog = Backlog(db).start()
        queued = psql(db, "SELECT count(*) FROM mango_event WHERE state != 'ignored'")[
            0
        ][0]
        started = time.monotonic()
        requeue(db)
        drained = backlog.drained_at(started, timeout=1800, filled_first=True)
        backlog.stop()
        if drained is None:
            figure(f"folding alone, {count} instance(s) (events/s)", "timeout")
            continue
        fold_rates[count] = queued / (drained - started)
        figure(
            f"folding alone, {count} instance(s) (events/s)",
            f"{fold_rates[count]:.0f}",
            f"{queued} events in {drained - started:.1f} s",
        )
    return fold_rates


def report(
    args,
    series,
    stream,
    call_count,
    figures,
    checks,
    stats,
    intake,
    fold_rates,
    busiest,
):
    """Print the table and the verdicts; :return: the exit status."""
    stream_check, refold_check = checks
    differences, stat_counts = stats
    print()
    print(
        f"Scale-out, Odoo {series}: 2 instances × --workers 2 "
        f"--max-cron-threads {args.cron_threads}, one database, {args.senders} "
        f"senders split between the ports, {len(stream)} events "
        f"({args.duplicates:.0%} duplicates, shuffled) of {call_count} calls"
    )
    print("| figure                                         | value  | load | note")
    print("|------------------------------------------------|-------:|-----:|-----")
    for name, value, at, note in figures:
        print(f"| {name:46} | {value!s:>6} | {at:>4} | {note}")
    print()
    verdicts = []
    for label, check in (
        ("stream at 2 instances", stream_check),
        ("re-fold by 2 instances", refold_check),
    ):
        ok = not check["problems"] and not any(
            check[k]
            for k in (
                "events_lost",
                "events_doubled",
                "calls_lost",
                "calls_doubled",
            )
        )
        verdicts.append(ok)
        print(
            f"call log, {label}: {check['calls']} calls, {check['unique_events']} "
            f"distinct events; lost {check['events_lost']} events / "
            f"{check['calls_lost']} calls, doubled {check['events_doubled']} "
            f"events / {check['calls_doubled']} calls; "
            + ("equal to the in-order fold" if ok else "; ".join(check["problems"]))
        )
    stats_ok = not any(differences.values())
    verdicts.append(stats_ok)
    print(
        "statistics vs a full rebuild: "
        + ", ".join(
            f"{table} {stat_counts[table]} rows, {differences[table]} differ"
            for table in STAT_TABLES
        )
    )
    fold_ok = 2 in fold_rates and fold_rates[2] >= FOLD_GOAL * intake
    limit_ok = busiest <= CALLBACK_LIMIT_PER_SECOND
    print(
        f"folding goal (2 instances ≥ {FOLD_GOAL:.2f} × intake): "
        + ("met" if fold_ok else "NOT met")
    )
    print(
        f"PBX limit ({CALLBACK_LIMIT_PER_SECOND}/s for commands/callback): "
        + ("held" if limit_ok else f"EXCEEDED ({busiest} in one second)")
    )
    verdict = all(verdicts) and fold_ok and limit_ok
    print("RESULT: " + ("PASS" if verdict else "FAIL"))
    return 0 if verdict else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_odoo_argument(parser)
    parser.add_argument("--odoo-addons")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--cron-threads", type=int, default=1)
    parser.add_argument("--clicks", type=int, default=48)
    parser.add_argument(
        "--port-base",
        type=int,
        default=0,
        help="the instances listen on PORT and PORT+1 (websockets on PORT+11 and "
        "PORT+12), the simulator on PORT+2 (default: free ports)",
    )
    parser.add_argument("--db", default="sco_scale_out")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse-db", action="store_true", help="skip the install")
    args = parser.parse_args()
    if not 8 <= args.senders <= 16:
        parser.error("--senders: 8 to 16")
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    series = odoo_version(args.odoo)
    args.addons_path = ",".join(
        [
            args.odoo_addons or odoo_addons(args.odoo),
            str(ROOT),
            str(ROOT / "benchmarks" / "bench_addons"),
        ]
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench_scale_out_"))
    if args.port_base:
        ports = (args.port_base, args.port_base + 1)
    else:
        ports = (free_port(), free_port())
    instances = [
        Instance(
            args,
            args.db,
            port,
            args.addons_path,
            workdir / f"odoo{n}.log",
            gevent_port=args.port_base + 10 + n if args.port_base else free_port(),
        )
        for n, port in enumerate(ports, 1)
    ]
    simulator = None
    figures = []
    status = 1

    def figure(name, value, note=""):
        figures.append((name, value, load(), note))
        log(f"{name}: {value} (load {load()}) {note}")

    def start(count):
        for odoo in instances[:count]:
            odoo.start(cron_threads=args.cron_threads)

    def stop_all():
        for odoo in instances:
            odoo.stop()

    try:
        if not (args.reuse_db and database_exists(args.db)):
            subprocess.run(["dropdb", "--if-exists", args.db], check=True)
            instances[0].install()
        else:
            instances[0].update()
        empty_results(args.db)
        psql(args.db, "DELETE FROM mango_event", fetch=False)
        log("generating simulator events")
        stream, call_count = generate_events(args.events, args.duplicates)
        log(f"{len(stream)} events of {call_count} calls; starting the PBX and Odoo")
        simulator = Simulator(workdir, args.port_base and args.port_base + 2)
        start(2)
        set_up_account(args.db, ports[0], simulator, series)
        for port in ports:  # warm both (registry, routing map)
            send_split([port], [("ping", "{}")], 1)

        # 1. The stream at both instances, folded while it comes.
        backlog = Backlog(args.db).start()
        sent_from = time.monotonic()
        seconds, statuses, latencies, accepted = send_split(ports, stream, args.senders)
        sent_until = time.monotonic()
        intake = len(stream) / seconds
        figure("intake, 2 instances (events/s)", f"{intake:.0f}", f"{dict(statuses)}")
        cuts = statistics.quantiles(latencies, n=100)
        figure("webhook latency p50 (ms)", f"{cuts[49] * 1000:.1f}")
        figure("webhook latency p95 (ms)", f"{cuts[94] * 1000:.1f}")
        drained = backlog.drained_at(sent_until, timeout=1800)
        backlog.stop()
        figure("backlog peak while the stream came (events)", backlog.peak())
        if drained is None:
            figure("drain after the last event (s)", "not drained in 30 min")
        else:
            figure("drain after the last event (s)", f"{drained - sent_until:.1f}")
            stored = psql(
                args.db, "SELECT count(*) FROM mango_event WHERE state = 'done'"
            )[0][0]
            figure(
                "folded during the stream (events/s)",
                f"{stored / (drained - sent_from):.0f}",
                "stream start → queue empty",
            )
        stream_check = check_call_log(args.db, accepted)

        # 2. Folding alone: the same queue, re-folded by 1, then 2 instances.
        fold_rates = fold_alone(args.db, start, stop_all, figure)
        if 2 in fold_rates:
            figure(
                "folding 2 instances / intake",
                f"{fold_rates[2] / intake:.2f}",
                f"goal ≥ {FOLD_GOAL:.2f}",
            )
        if 1 in fold_rates and 2 in fold_rates:
            figure(
                "folding 2 instances / 1 instance",
                f"{fold_rates[2] / fold_rates[1]:.2f}",
            )
        refold_check = check_call_log(args.db, accepted)

        # 3. Click-to-calls from every worker at once.
        busiest, received, answers, statuses = click_burst(
            args.db, ports, args.clicks, simulator
        )
        figure(
            "PBX commands/callback, busiest second",
            busiest,
            f"limit {CALLBACK_LIMIT_PER_SECOND}/s; {received} requests, "
            f"HTTP {dict(statuses)}; answers {dict(answers)}",
        )

        # 4. Statistics against a full rebuild (Odoo stopped: a copy needs it).
        stop_all()
        differences, stat_counts = check_statistics(args, args.db, workdir)

        status = report(
            args,
            series,
            stream,
            call_count,
            figures,
            (stream_check, refold_check),
            (differences, stat_counts),
            intake,
            fold_rates,
            busiest,
        )
        return status
    finally:
        stop_all()
        if simulator:
            simulator.stop()
        if not args.keep_db and not args.reuse_db:
            subprocess.run(["dropdb", "--if-exists", args.db], check=False)
        if status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
