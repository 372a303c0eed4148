#!/usr/bin/env python3
"""Call statistics benchmark: Odoo's read_group on the call log against the
pre-aggregated reporting table, over one million calls, in one run.

The script makes (or reuses) its own database with ``mango_telephony``
installed (``odoo-bin -i mango_telephony --stop-after-init``, or a fast copy
of an existing database with ``--template``), writes ``--calls`` calls
(1,000,000 by default) into ``mango_call`` with SQL ``COPY`` — 2 years, 30
employees, 3 lines, 60 % incoming / 35 % outgoing / 5 % internal, 75 %
answered / 20 % missed / 5 % failed, 60 % of missed incoming calls called back
— rebuilds ``mango_call_stat`` from them and times, as the admin user (record
rules apply), warm, ``--runs`` times each:

* ``baseline``: ``mango.call.read_group`` grouped by employee × week with
  average wait and total talk: what a pivot on the call log does;
* ``stat read_group``: the same grouping on ``mango.call.stat``
  (``user_id`` × ``date:week``) with answered rate and averages;
* ``dashboard``: ``mango.call.stat.mango_dashboard_data(period="all",
  group_by="user", interval="week")``, the dashboard's grouped figures
  (per employee × week × direction, answered rate, average wait and talk,
  missed calls not called back, exact median time to call back);
* ``refresh one day``: the incremental upkeep run by the fold hook when a call
  of one (account, day) finishes.

Prints medians (ms) and the baseline/dashboard ratio. Target: dashboard median
≤ 150 ms.

Usage::

    python3 benchmarks/bench_stats.py [--calls 1000000] [--runs 7]
        [--db browser_bench_stats] [--template browser_main] [--reuse-db]
        [--keep-db] [--odoo /opt/odoo18/odoo-bin]
"""

import argparse
import io
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
from benchlib import addons_path, database_exists, install_without_demo, log

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 150.0
COPY_CHUNK = 100_000
EMPLOYEES = 30
LINES = ("74951234567", "74957654321", "78001234567")
DAYS = 730
BENCH_REF = "mango-bench-stats"


def drop_database(name):
    conn = psycopg2.connect(dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cr:
            cr.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()


def prepare_database(args):
    if args.reuse_db and database_exists(args.db):
        log(f"reusing database {args.db}")
        return
    drop_database(args.db)
    if args.template:
        log(f"copying {args.template} into {args.db}")
        conn = psycopg2.connect(dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute(f'CREATE DATABASE "{args.db}" TEMPLATE "{args.template}"')
        conn.close()
        return
    log(f"installing mango_telephony into {args.db} (a few minutes)")
    install_without_demo(args.odoo, args.db, "mango_telephony", http_port=18670)


def open_env(args):
    import odoo
    from odoo import SUPERUSER_ID, api

    odoo.tools.config.parse_config(
        [f"--addons-path={addons_path(args.odoo)}", "-d", args.db, "--log-level=warn"]
    )
    registry = odoo.modules.registry.Registry(args.db)
    cr = registry.cursor()
    return cr, api.Environment(cr, SUPERUSER_ID, {})


def ensure_fixtures(env):
    """The account, employees and lines the generated calls refer to."""
    Account = env["mango.account"].with_context(active_test=False)
    account = Account.search([("name", "=", BENCH_REF)], limit=1)
    if not account:
        Account.search([("company_id", "=", env.company.id)]).write({"active": False})
        account = Account.create(
            {
                "name": BENCH_REF,
                "company_id": env.company.id,
                "api_key": "benchkey" + "0" * 20,
                "api_salt": "benchsalt" + "0" * 20,
            }
        )
    Users = env["res.users"].with_context(no_reset_password=True, active_test=False)
    users = Users.search([("login", "like", "bench.stats.%")], order="id")
    for index in range(len(users), EMPLOYEES):
        users |= Users.create(
            {
                "name": f"Bench employee {index + 1:02d}",
                "login": f"bench.stats.{index + 1:02d}@example.com",
                "groups_id": [(4, env.ref("mango_telephony.group_mango_user").id)],
            }
        )
    env.cr.commit()
    return account, users


def generate_calls(env, account, users, count, seed=20261125):
    cr = env.cr
    cr.execute("SELECT count(*) FROM mango_call WHERE entry_id LIKE 'bench-%%'")
    existing = cr.fetchone()[0]
    if existing >= count:
        log(f"{existing} generated calls already there")
        return existing
    cr.execute("DELETE FROM mango_call WHERE entry_id LIKE 'bench-%%'")
    rng = random.Random(seed)
    user_ids = users.ids
    end = datetime(2026, 11, 24, 21, 0)
    start = end - timedelta(days=DAYS)
    span = int((end - start).total_seconds())
    columns = (
        "account_id, company_id, entry_id, direction, status, caller_number, "
        "customer_number_e164, line_number, user_id, employee_user_id, start_time, "
        "answer_time, end_time, wait_duration, talk_duration, disconnect_reason, "
        "time_to_callback, caller_identified"
    )
    company_id = account.company_id.id
    written = 0
    first_id = None
    log(f"writing {count} calls with COPY")
    while written < count:
        buffer = io.StringIO()
        for index in range(written, min(count, written + COPY_CHUNK)):
            roll = rng.random()
            direction = (
                "incoming" if roll < 0.60 else "outgoing" if roll < 0.95 else "internal"
            )
            roll = rng.random()
            status = (
                "answered" if roll < 0.75 else "missed" if roll < 0.95 else "failed"
            )
            begin = start + timedelta(seconds=rng.randrange(span))
            employee = rng.choice(user_ids)
            wait = rng.randint(2, 60)
            talk = rng.randint(10, 900) if status == "answered" else 0
            answer = begin + timedelta(seconds=wait) if status == "answered" else None
            finish = begin + timedelta(seconds=wait + talk)
            number = f"+79{rng.randrange(10**9):09d}"
            callback = (
                rng.randint(60, 86400)
                if status == "missed" and direction == "incoming" and rng.random() < 0.6
                else None
            )
            buffer.write(
                "\t".join(
                    (
                        str(account.id),
                        str(company_id),
                        f"bench-{index}",
                        direction,
                        status,
                        number[1:],
                        number,
                        rng.choice(LINES),
                        str(employee) if status == "answered" else r"\N",
                        str(employee),
                        begin.isoformat(sep=" "),
                        answer.isoformat(sep=" ") if answer else r"\N",
                        finish.isoformat(sep=" "),
                        str(wait),
                        str(talk),
                        "1110",
                        str(callback) if callback is not None else r"\N",
                        "t",
                    )
                )
                + "\n"
            )
        buffer.seek(0)
        cr.copy_expert(f"COPY mango_call ({columns}) FROM STDIN", buffer)
        written = min(count, written + COPY_CHUNK)
        log(f"  {written} calls")
    # A called-back missed call points at the call that reached the customer;
    # any existing call keeps the foreign key valid for the figures.
    cr.execute("SELECT min(id) FROM mango_call WHERE entry_id LIKE 'bench-%%'")
    first_id = cr.fetchone()[0]
    cr.execute(
        "UPDATE mango_call SET callback_call_id = %s "
        "WHERE entry_id LIKE 'bench-%%' AND time_to_callback IS NOT NULL",
        [first_id],
    )
    cr.execute("ANALYZE mango_call")
    cr.commit()
    return count


def timed(function, runs):
    function()  # warm-up: plans, caches, translations
    samples = []
    for _ in range(runs):
        begin = time.perf_counter()
        function()
        samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples), min(samples), max(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", default="browser_bench_stats")
    parser.add_argument("--template", help="copy this database instead of installing")
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--skip-rebuild",
        action="store_true",
        help="with --reuse-db: keep the reporting table of the earlier run",
    )
    parser.add_argument("--odoo", default="/opt/odoo18/odoo-bin")
    args = parser.parse_args()

    prepare_database(args)
    cr, env = open_env(args)
    try:
        account, users = ensure_fixtures(env)
        generate_calls(env, account, users, args.calls)
        Stat = env["mango.call.stat"]
        rebuild_s = 0.0
        if not args.skip_rebuild:
            log("rebuilding mango_call_stat")
            begin = time.perf_counter()
            Stat._mango_rebuild()
            cr.commit()
            rebuild_s = time.perf_counter() - begin
        cr.execute("ANALYZE mango_call_stat")
        cr.execute("SELECT count(*) FROM mango_call_stat")
        stat_rows = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM mango_call")
        call_rows = cr.fetchone()[0]

        admin = env.ref("base.user_admin")
        as_admin = env(user=admin)
        Call = as_admin["mango.call"]
        StatAdmin = as_admin["mango.call.stat"]

        def baseline():
            as_admin.invalidate_all()
            return Call.read_group(
                [],
                ["wait_duration:avg", "talk_duration:sum"],
                ["employee_user_id", "start_time:week"],
                lazy=False,
            )

        def stat_read_group():
            as_admin.invalidate_all()
            return StatAdmin.read_group(
                [],
                ["call_count:sum", "answered_rate:avg", "avg_wait:avg", "avg_talk:avg"],
                ["user_id", "date:week"],
                lazy=False,
            )

        def dashboard():
            as_admin.invalidate_all()
            return StatAdmin.mango_dashboard_data(
                period="all", group_by="user", interval="week"
            )

        day_keys = {(account.id, (datetime(2026, 11, 20)).date())}

        def refresh_day():
            Stat._mango_refresh(day_keys)

        log(f"timing, {args.runs} runs each")
        results = [
            (
                "baseline: mango.call read_group employee × week",
                timed(baseline, args.runs),
            ),
            ("stat read_group user × week", timed(stat_read_group, args.runs)),
            ("dashboard grouped figures", timed(dashboard, args.runs)),
            ("refresh one (account, day)", timed(refresh_day, args.runs)),
        ]
        cr.rollback()
        groups = len(baseline())
        figures = dashboard()
        print()
        print(
            f"calls: {call_rows:,}   stat rows: {stat_rows:,}   "
            f"employee × week groups: {groups:,}   "
            f"rebuild: {f'{rebuild_s:.1f} s' if rebuild_s else 'skipped'}"
        )
        print(f"{'measure':52} {'median ms':>10} {'min':>9} {'max':>9}")
        for name, (median, low, high) in results:
            print(f"{name:52} {median:10.1f} {low:9.1f} {high:9.1f}")
        base, dash = results[0][1][0], results[2][1][0]
        print(f"ratio baseline / dashboard: {base / dash:.1f}×")
        verdict = "OK" if dash <= TARGET_MS else "ABOVE TARGET"
        print(f"target dashboard median ≤ {TARGET_MS:.0f} ms: {verdict}")
        totals = figures["totals"]
        print(
            f"check: {totals['calls']:,} calls, answered {totals['answered_rate']} %, "
            f"median call-back {totals['median_callback_time']} s"
        )
        if totals["calls"] != call_rows:
            print("MISMATCH: the reporting table does not count every call")
            return 1
        return 0 if dash <= TARGET_MS else 2
    finally:
        cr.close()
        if not args.keep_db and not args.reuse_db:
            drop_database(args.db)


if __name__ == "__main__":
    sys.exit(main())
