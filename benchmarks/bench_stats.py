#!/usr/bin/env python3
"""Call statistics benchmark: Odoo's read_group on the call log against the
pre-aggregated statistics, over millions of calls, in one run.

The script makes (or reuses) its own database with ``mango_telephony``
installed (``odoo-bin -i mango_telephony --stop-after-init``, or a fast copy
of an existing database with ``--template``), writes ``--calls`` calls
(1,000,000 by default) into ``mango_call`` with ``INSERT … SELECT`` over
``generate_series`` — 2 years, 30 employees, 3 lines, 60 % incoming / 35 %
outgoing / 5 % internal, 75 % answered / 20 % missed / 5 % failed, 60 % of
missed incoming calls called back — rebuilds the statistics from them and
times, as the admin user (record rules apply, Moscow time like the company),
warm, ``--runs`` times each, printing the 1/5/15-minute load beside each
figure (and the machine's speed for pure Python at start and end,
``benchlib.cpu_reference_ms``):

* ``baseline``: Odoo's own ``read_group`` on ``mango.call`` grouped by
  employee × week (count, talk time), as without the statistics;
* ``dashboard RPC <period>/<group>/<interval>``: ``mango.call.stat.
  mango_dashboard_data`` called the way the web client's RPC calls it
  (``call_kw`` then the JSON encoding of the answer), with every combination
  the dashboard asks for, plus all time with a weekly series. Target: each
  median ≤ 50 ms;
* the pivot and graph groupings the menus offer, on "Call analysis"
  (``mango.call.stat``) and on the call log (``mango.call``): by week in a
  language of each first day Odoo's languages use (en_US Sunday, ru_RU
  Monday, ar_001 Saturday), by month and by employee; a pivot is its
  read_groups (totals, rows, columns, cells), the call log's default one by
  employee × week × status too; on 19.0, the pivots as one
  ``formatted_read_grouping_sets`` call as well (the call log's default one
  too). Target: each ≤ 150 ms;
* ``refresh per finished call``: what the fold of one finished call costs the
  statistics (its marker, then its day, weeks and month recomputed), on this
  database and, with ``--compare-calls N``, on a second one of N calls
  (``<db>_small``): flat with the table size.

The run ends with a check of the figures against the call log itself: call
count, and the exact median time to call back computed from ``mango_call`` by
``percentile_cont``.

The HTTP layer (werkzeug, session) is not timed: it is the same for every
request and not the subject of the targets.

Usage::

    python3 benchmarks/bench_stats.py [--calls 1000000] [--compare-calls N]
        [--runs 7] [--baseline-runs 3] [--db browser_bench_stats]
        [--template browser_main] [--reuse-db] [--keep-db] [--skip-rebuild]
        [--prepare-only] [--only refresh] [--odoo ODOO_BIN]

``--odoo`` defaults to the ``odoo-bin`` of the Odoo the running Python imports:
run the script with the virtualenv of the series to measure.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import psycopg2
from benchlib import (
    add_odoo_argument,
    addons_path,
    cpu_reference_ms,
    database_exists,
    install_without_demo,
    log,
    update_if_older,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGURED = []  # Odoo's configuration is parsed once per process
DASHBOARD_TARGET_MS = 50.0
VIEW_TARGET_MS = 150.0
# Users read the statistics in the company's time zone (the day rows' days).
TZ = "Europe/Moscow"
# A language per first day of the week Odoo's languages use: Sunday, Monday,
# Saturday.
WEEK_LANGS = ("en_US", "ru_RU", "ar_001")
CALL_MEASURES = ["__count", "talk_duration:sum"]
# The call log's default pivot: employees in rows, weeks × statuses in columns.
CALL_LOG_DEFAULT_PIVOT = [
    [],
    ["employee_user_id"],
    ["start_time:week"],
    ["start_time:week", "status"],
    ["employee_user_id", "start_time:week"],
    ["employee_user_id", "start_time:week", "status"],
]
GENERATE_CHUNK = 1_000_000
EMPLOYEES = 30
LINES = ("74951234567", "74957654321", "78001234567")
DAYS = 730
BENCH_REF = "mango-bench-stats"
# The reporting tables (the ledger of each call's contribution from 1.4.0 on).
STAT_TABLES = (
    "mango_call_stat",
    "mango_call_stat_period",
    "mango_call_stat_callback",
    "mango_call_stat_callback_bucket",
    "mango_call_stat_contribution",
)
PIVOT_MEASURES = [
    "call_count:sum",
    "answered_rate:avg",
    "avg_wait:avg",
    "missed_pending_count:sum",
]
# (period, group_by, interval) as the dashboard asks them (call_dashboard.esm.js:
# a monthly series for all time, a daily one otherwise), then the weekly series.
DASHBOARD_CALLS = [
    (period, group_by, "month" if period == "all" else "day")
    for period in ("day", "week", "month", "all")
    for group_by in ("user", "line")
] + [("all", "user", "week"), ("all", "line", "week")]


def drop_database(name):
    conn = psycopg2.connect(dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cr:
            cr.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()


def prepare_database(args, db):
    if args.reuse_db and database_exists(db):
        log(f"reusing database {db}")
        update_if_older(args.odoo, db)
        return
    drop_database(db)
    if args.template:
        log(f"copying {args.template} into {db}")
        conn = psycopg2.connect(dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute(f'CREATE DATABASE "{db}" TEMPLATE "{args.template}"')
        conn.close()
        return
    log(f"installing mango_telephony into {db} (a few minutes)")
    install_without_demo(args.odoo, db, "mango_telephony", http_port=18670)


def open_env(args, db):
    import odoo
    from odoo import SUPERUSER_ID, api

    if not CONFIGURED:
        odoo.tools.config.parse_config(
            [f"--addons-path={addons_path(args.odoo)}", "-d", db, "--log-level=warn"]
        )
        CONFIGURED.append(db)
    registry = odoo.modules.registry.Registry(db)
    cr = registry.cursor()
    return cr, api.Environment(cr, SUPERUSER_ID, {})


def rpc_call_kw():
    """``call_kw``, through which the web client's RPC calls model methods."""
    try:
        from odoo.service.model import call_kw  # 19.0
    except ImportError:
        from odoo.api import call_kw  # 18.0
    return call_kw


def ensure_fixtures(env):
    """The account, employees and lines the generated calls refer to."""
    from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

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
                USER_GROUPS: [(4, env.ref("mango_telephony.group_mango_user").id)],
            }
        )
    env.cr.commit()
    return account, users


def generate_calls(env, account, users, count, seed=0.20261125):
    """Write ``count`` calls with one ``INSERT … SELECT`` over
    ``generate_series`` per million (random but repeatable: ``setseed``)."""
    cr = env.cr
    cr.execute("SELECT count(*) FROM mango_call WHERE entry_id LIKE 'bench-%%'")
    existing = cr.fetchone()[0]
    if existing >= count:
        log(f"{existing} generated calls already there")
        return existing
    cr.execute("DELETE FROM mango_call WHERE entry_id LIKE 'bench-%%'")
    end = datetime(2026, 11, 24, 21, 0)
    start = end - timedelta(days=DAYS)
    span = int((end - start).total_seconds())
    columns = (
        "account_id, company_id, entry_id, direction, status, caller_number, "
        "customer_number_e164, line_number, user_id, employee_user_id, start_time, "
        "answer_time, end_time, wait_duration, talk_duration, disconnect_reason, "
        "time_to_callback, caller_identified"
    )
    log(f"writing {count} calls with generate_series")
    cr.execute("SELECT setseed(%s)", [seed])
    written = 0
    while written < count:
        upto = min(count, written + GENERATE_CHUNK)
        cr.execute(
            f"""
            INSERT INTO mango_call ({columns})
            SELECT %(account)s, %(company)s, 'bench-' || g,
                   CASE WHEN r_dir < 0.60 THEN 'incoming'
                        WHEN r_dir < 0.95 THEN 'outgoing' ELSE 'internal' END,
                   status, substr(number, 2), number,
                   (%(lines)s::varchar[])[1 + floor(r_line * %(line_count)s)::int],
                   CASE WHEN status = 'answered' THEN employee END,
                   employee, begin_at,
                   CASE WHEN status = 'answered'
                        THEN begin_at + make_interval(secs => wait) END,
                   begin_at + make_interval(secs => wait + talk),
                   wait, talk, '1110',
                   CASE WHEN status = 'missed' AND r_dir < 0.60 AND r_back < 0.6
                        THEN 60 + floor(r_delay * 86341)::int END,
                   TRUE
              FROM (
                SELECT g, r_dir, r_line, r_back, r_delay, employee, wait,
                       begin_at, number, status,
                       CASE WHEN status = 'answered'
                            THEN 10 + floor(r_talk * 891)::int ELSE 0 END AS talk
                  FROM (
                    SELECT g, random() AS r_dir, random() AS r_line,
                           random() AS r_back, random() AS r_delay,
                           random() AS r_talk,
                           (%(users)s::int[])[1 + floor(random() * %(user_count)s)::int]
                               AS employee,
                           2 + floor(random() * 59)::int AS wait,
                           %(start)s::timestamp
                               + make_interval(secs => floor(random() * %(span)s))
                               AS begin_at,
                           '+79' || lpad(floor(random() * 1e9)::bigint::text, 9, '0')
                               AS number,
                           CASE WHEN r < 0.75 THEN 'answered'
                                WHEN r < 0.95 THEN 'missed' ELSE 'failed' END
                               AS status
                      FROM (SELECT g, random() AS r
                              FROM generate_series(%(low)s, %(high)s) g
                            OFFSET 0) draws
                    OFFSET 0) picked
                OFFSET 0) calls
            """,
            {
                "account": account.id,
                "company": account.company_id.id,
                "lines": list(LINES),
                "line_count": len(LINES),
                "users": users.ids,
                "user_count": len(users.ids),
                "start": start,
                "span": span,
                "low": written,
                "high": upto - 1,
            },
        )
        cr.commit()
        written = upto
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


def vacuum_analyze(db):
    """Statistics and visibility maps as autovacuum keeps them on a live
    database: the medians walk index-only scans."""
    conn = psycopg2.connect(dbname=db)
    conn.autocommit = True
    try:
        with conn.cursor() as cr:
            cr.execute(
                "SELECT string_agg(quote_ident(name), ', ') FROM unnest(%s) AS name "
                "WHERE to_regclass(name) IS NOT NULL",
                [list(STAT_TABLES)],
            )
            cr.execute(f"VACUUM ANALYZE {cr.fetchone()[0]}")
    finally:
        conn.close()


def load_average():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def print_machine(args, load_at_start):
    """The load and the speed for pure Python at the start and now."""
    print(f"load average at start/end: {load_at_start} / {load_average()}")
    print(
        "Python speed reference (5,000,000 additions, best of 3) at start/end: "
        f"{args.cpu_reference_at_start} / {cpu_reference_ms()} ms"
    )


def timed(function, runs):
    function()  # warm-up: plans, caches, translations
    samples = []
    for _ in range(runs):
        begin = time.perf_counter()
        function()
        samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples), min(samples), max(samples)


def pivot_grouping_sets_results(as_admin, runs):
    """The pivots as 19.0's web client asks them: the four groupings of each
    in one ``formatted_read_grouping_sets`` call (18.0 has no such method)."""
    if not hasattr(as_admin["mango.call.stat"], "formatted_read_grouping_sets"):
        return []

    def pivot(model, rows, column, measures, lang, grouping_sets=None):
        pivot_env = as_admin(context=dict(as_admin.context, lang=lang, tz=TZ))
        records = pivot_env[model]
        grouping_sets = grouping_sets or [[], [rows], [column], [rows, column]]

        def run():
            pivot_env.invalidate_all()
            records.formatted_read_grouping_sets([], grouping_sets, measures)

        return run

    results = []
    for lang in WEEK_LANGS:
        results.append(
            (
                f"19.0 stat pivot sets user × week, {lang}",
                timed(
                    pivot(
                        "mango.call.stat", "user_id", "date:week", PIVOT_MEASURES, lang
                    ),
                    runs,
                ),
            )
        )
        results.append(
            (
                f"19.0 call log pivot sets employee × week, {lang}",
                timed(
                    pivot(
                        "mango.call",
                        "employee_user_id",
                        "start_time:week",
                        CALL_MEASURES,
                        lang,
                    ),
                    runs,
                ),
            )
        )
        results.append(
            (
                f"19.0 call log pivot sets employee × week × status, {lang}",
                timed(
                    pivot(
                        "mango.call",
                        None,
                        None,
                        CALL_MEASURES,
                        lang,
                        grouping_sets=CALL_LOG_DEFAULT_PIVOT,
                    ),
                    runs,
                ),
            )
        )
    return results


def stat_views(as_admin, runs):
    """The "Call analysis" pivot and graph for each grouping its menu offers by
    week (each first day), month and employee: the pivot asks one read_group
    per combination of its rows and columns (totals, rows, columns, cells)."""

    def read_groups(model, groupings, measures, lang):
        view_env = as_admin(context=dict(as_admin.context, lang=lang, tz=TZ))
        records = view_env[model]

        def run():
            view_env.invalidate_all()
            for groupby in groupings:
                records.read_group([], measures, groupby, lazy=False)

        return run

    def pivot(rows, column):
        return [[], [rows], [column], [rows, column]]

    results = []
    for lang in WEEK_LANGS:
        results += [
            (
                f"stat pivot user × week, {lang}",
                timed(
                    read_groups(
                        "mango.call.stat",
                        pivot("user_id", "date:week"),
                        PIVOT_MEASURES,
                        lang,
                    ),
                    runs,
                ),
            ),
            (
                f"stat graph by week, {lang}",
                timed(
                    read_groups(
                        "mango.call.stat", [["date:week"]], ["call_count:sum"], lang
                    ),
                    runs,
                ),
            ),
            (
                f"call log pivot employee × week, {lang}",
                timed(
                    read_groups(
                        "mango.call",
                        pivot("employee_user_id", "start_time:week"),
                        CALL_MEASURES,
                        lang,
                    ),
                    runs,
                ),
            ),
            (
                f"call log pivot employee × week × status, {lang}",
                timed(
                    read_groups(
                        "mango.call",
                        CALL_LOG_DEFAULT_PIVOT,
                        CALL_MEASURES,
                        lang,
                    ),
                    runs,
                ),
            ),
            (
                f"call log graph by week, {lang}",
                timed(
                    read_groups("mango.call", [["start_time:week"]], ["__count"], lang),
                    runs,
                ),
            ),
        ]
    lang = "en_US"
    results += [
        (
            "stat pivot user × month",
            timed(
                read_groups(
                    "mango.call.stat",
                    pivot("user_id", "date:month"),
                    PIVOT_MEASURES,
                    lang,
                ),
                runs,
            ),
        ),
        (
            "stat pivot/graph by employee",
            timed(
                read_groups("mango.call.stat", [[], ["user_id"]], PIVOT_MEASURES, lang),
                runs,
            ),
        ),
        (
            "stat graph by month",
            timed(
                read_groups(
                    "mango.call.stat", [["date:month"]], ["call_count:sum"], lang
                ),
                runs,
            ),
        ),
        (
            "call log pivot employee × month",
            timed(
                read_groups(
                    "mango.call",
                    pivot("employee_user_id", "start_time:month"),
                    CALL_MEASURES,
                    lang,
                ),
                runs,
            ),
        ),
        (
            "call log pivot/graph by employee",
            timed(
                read_groups(
                    "mango.call", [[], ["employee_user_id"]], CALL_MEASURES, lang
                ),
                runs,
            ),
        ),
        (
            "call log graph by month",
            timed(
                read_groups("mango.call", [["start_time:month"]], ["__count"], lang),
                runs,
            ),
        ),
    ]
    return results


def dashboard_results(as_admin, call_kw, runs):
    from odoo.tools import json_default

    stats = as_admin["mango.call.stat"]

    def dashboard_rpc(period, group_by, interval):
        def rpc():
            as_admin.invalidate_all()
            result = call_kw(
                stats,
                "mango_dashboard_data",
                [],
                {"period": period, "group_by": group_by, "interval": interval},
            )
            json.dumps(result, ensure_ascii=False, default=json_default)
            return result

        return rpc

    return [
        (
            f"dashboard RPC {period}/{group_by}/{interval}",
            timed(dashboard_rpc(period, group_by, interval), runs),
        )
        for period, group_by, interval in DASHBOARD_CALLS
    ], dashboard_rpc("all", "user", "month")


def refresh_per_call(env, account, runs):
    """What one finished call costs the statistics: the fold's marker, then
    the refresh of its day, week and month (``_mango_refresh_marked``, as the
    post-commit runs it), rolled back after each run."""
    cr = env.cr
    Call = env["mango.call"]
    Stat = env["mango.call.stat"]
    samples = []
    for index in range(runs + 1):
        cr.execute(
            "INSERT INTO mango_call (account_id, company_id, entry_id, direction, "
            "status, line_number, user_id, employee_user_id, start_time, "
            "wait_duration, talk_duration) "
            "SELECT account_id, company_id, %s, 'incoming', 'answered', "
            "line_number, employee_user_id, employee_user_id, "
            "'2026-11-20 09:00:00', 5, 60 FROM mango_call "
            "WHERE account_id = %s LIMIT 1 RETURNING id",
            [f"bench-refresh-{index}", account.id],
        )
        call = Call.browse(cr.fetchone()[0])
        begin = time.perf_counter()
        call._mango_step_refresh_statistics({call.id: {"status": False}})
        cr.precommit.run()
        Stat._mango_refresh_marked()
        elapsed = (time.perf_counter() - begin) * 1000
        cr.rollback()
        env.invalidate_all()
        if index:
            samples.append(elapsed)
    return statistics.median(samples), min(samples), max(samples)


def table_sizes(cr):
    sizes = {}
    for table in (
        "mango_call",
        "mango_call_stat",
        "mango_call_stat_period",
        "mango_call_stat_callback",
    ):
        cr.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
        sizes[table] = cr.fetchone()[0]
    return sizes


def build(args, db, calls):
    """Database ``db`` with ``calls`` generated calls and their statistics."""
    prepare_database(args, db)
    cr, env = open_env(args, db)
    account, users = ensure_fixtures(env)
    generate_calls(env, account, users, calls)
    rebuild_s = 0.0
    if not args.skip_rebuild:
        log(f"rebuilding the statistics of {db}")
        begin = time.perf_counter()
        env["mango.call.stat"]._mango_rebuild()
        cr.commit()
        rebuild_s = time.perf_counter() - begin
    vacuum_analyze(db)
    return cr, env, account, rebuild_s


def print_table(title, results, baseline=None):
    print()
    print(title)
    print(
        f"{'measure':58} {'median ms':>10} {'min':>9} {'max':>9} {'ratio':>8}  load 1/5/15 min"
    )
    for name, (median, low, high, load) in results:
        ratio = f"{baseline / median:7.1f}×" if baseline else ""
        print(f"{name:58} {median:10.1f} {low:9.1f} {high:9.1f} {ratio:>8}  {load}")


def with_load(results):
    return [(name, (*figures, load_average())) for name, figures in results]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument(
        "--compare-calls",
        type=int,
        default=0,
        help="also build DB_small with this many calls and print the refresh "
        "cost per call of both (flat with the table size)",
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--db", default="browser_bench_stats")
    parser.add_argument("--template", help="copy this database instead of installing")
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--skip-rebuild",
        action="store_true",
        help="with --reuse-db: keep the reporting table of the earlier run",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="build the database, its calls and statistics, then stop",
    )
    parser.add_argument(
        "--only",
        choices=("refresh",),
        help="time only this part: 'refresh' times the refresh per finished "
        "call (with --compare-calls, on both databases), without the pivots "
        "and dashboards",
    )
    add_odoo_argument(parser)
    args = parser.parse_args()

    load_at_start = load_average()
    args.cpu_reference_at_start = cpu_reference_ms()
    import odoo

    small_db = f"{args.db}_small"
    cursors = []
    try:
        cr, env, account, rebuild_s = build(args, args.db, args.calls)
        cursors.append(cr)
        if args.compare_calls:
            small = build(args, small_db, args.compare_calls)
            cursors.append(small[0])
        if args.prepare_only:
            return 0
        run = measure_refresh_only if args.only == "refresh" else measure
        return run(
            args,
            env,
            account,
            rebuild_s,
            small if args.compare_calls else None,
            load_at_start,
        )
    finally:
        for cr in cursors:
            cr.close()
        if not args.keep_db and not args.reuse_db:
            for db in (args.db, small_db):
                odoo.sql_db.close_db(db)  # the pool's connections, or DROP fails
                drop_database(db)


def refresh_results(args, env, account, small):
    """The refresh per finished call on this database and, with
    ``--compare-calls``, on the small one, each with the load beside it."""
    sizes = table_sizes(env.cr)
    refresh = with_load(
        [
            (
                f"refresh per finished call, {sizes['mango_call']:,} calls",
                refresh_per_call(env, account, args.runs),
            )
        ]
    )
    if small:
        small_env, small_account = small[1], small[2]
        refresh += with_load(
            [
                (
                    f"refresh per finished call, "
                    f"{table_sizes(small_env.cr)['mango_call']:,} calls",
                    refresh_per_call(small_env, small_account, args.runs),
                )
            ]
        )
    return refresh


def measure_refresh_only(args, env, account, rebuild_s, small, load_at_start):
    import odoo

    refresh = refresh_results(args, env, account, small)
    print()
    print(f"Odoo {odoo.release.version}   refresh only")
    if rebuild_s:
        sizes = [(table_sizes(env.cr)["mango_call"], rebuild_s)]
        if small:
            sizes.append((table_sizes(small[1].cr)["mango_call"], small[3]))
        print(
            "rebuild: "
            + ", ".join(
                f"{seconds:.1f} s for {calls:,} calls" for calls, seconds in sizes
            )
        )
    print_machine(args, load_at_start)
    baseline = refresh[-1][1][0] if small else None
    print_table(
        "Upkeep (flat with the table size; ratio: the small database's median "
        "over this one's)",
        refresh,
        baseline,
    )
    return 0


def measure(args, env, account, rebuild_s, small, load_at_start):
    import odoo

    cr = env.cr
    sizes = table_sizes(cr)
    call_kw = rpc_call_kw()
    for lang in WEEK_LANGS:
        env["res.lang"]._activate_lang(lang)
    cr.commit()
    admin = env.ref("base.user_admin")
    admin.tz = TZ
    cr.commit()
    as_admin = env(user=admin, context={"tz": TZ})
    Call = as_admin["mango.call"]

    def baseline():
        as_admin.invalidate_all()
        # Odoo's own read_group on the call log, as before this module read
        # the call log's groupings from the statistics.
        with patch.object(
            type(Call), "_mango_read_group_from_stats", lambda self, *args: None
        ):
            return Call.read_group(
                [], CALL_MEASURES, ["employee_user_id", "start_time:week"], lazy=False
            )

    log(f"timing, {args.runs} runs each ({args.baseline_runs} for the baseline)")
    base = with_load(
        [
            (
                "baseline: Odoo read_group mango.call employee × week",
                timed(baseline, args.baseline_runs),
            )
        ]
    )
    dashboards, dashboard_all = dashboard_results(as_admin, call_kw, args.runs)
    dashboards = with_load(dashboards)
    views = with_load(stat_views(as_admin, args.runs))
    views += with_load(pivot_grouping_sets_results(as_admin, args.runs))
    refresh = refresh_results(args, env, account, small)
    cr.rollback()
    groups = len(baseline())
    figures = dashboard_all()
    cr.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY time_to_callback) "
        "FROM mango_call WHERE status = 'missed' AND callback_call_id IS NOT NULL"
    )
    raw_median = cr.fetchone()[0]
    print()
    print(
        f"Odoo {odoo.release.version}   calls: {sizes['mango_call']:,}   "
        f"day rows: {sizes['mango_call_stat']:,}   week/month rows: "
        f"{sizes['mango_call_stat_period']:,}   call-back delays: "
        f"{sizes['mango_call_stat_callback']:,}   employee × week groups: {groups:,}   "
        f"rebuild: {f'{rebuild_s:.1f} s' if rebuild_s else 'skipped'}"
    )
    print_machine(args, load_at_start)
    baseline_ms = base[0][1][0]
    print_table("Baseline", base)
    print_table(
        f"Dashboard (target ≤ {DASHBOARD_TARGET_MS:.0f} ms each)",
        dashboards,
        baseline_ms,
    )
    print_table(
        f"Pivot and graph views (target ≤ {VIEW_TARGET_MS:.0f} ms each)",
        views,
        baseline_ms,
    )
    print_table("Upkeep (flat with the table size)", refresh)
    over = [
        name
        for results, target in (
            (dashboards, DASHBOARD_TARGET_MS),
            (views, VIEW_TARGET_MS),
        )
        for name, figures in results
        if figures[0] > target
    ]
    print(f"over target: {', '.join(over) if over else 'none'}")
    totals = figures["totals"]
    print(
        f"check: {totals['calls']:,} calls, answered {totals['answered_rate']} %, "
        f"median call-back {totals['median_callback_time']} s "
        f"(from the call log: {raw_median} s)"
    )
    if totals["calls"] != sizes["mango_call"]:
        print("MISMATCH: the reporting table does not count every call")
        return 1
    if raw_median is not None and totals["median_callback_time"] != round(
        raw_median, 1
    ):
        print("MISMATCH: the median time to call back differs from the call log")
        return 1
    return 2 if over else 0


if __name__ == "__main__":
    sys.exit(main())
