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
  (``user_id`` × ``date:week``) with answered rate and averages, for the
  admin's en_US, whose Sunday weeks only the day rows answer;
* ``pivot``: the four read_groups of the "Call analysis" pivot (totals,
  employees, periods, cells) by week for a language with Monday weeks
  (answered from the weekly totals) and en_US (day rows), and by month; on
  19.0, whose pivot asks the four groupings in one
  ``formatted_read_grouping_sets`` call instead, that call too (extra rows);
* ``dashboard RPC <period>/<group>/<interval>``: ``mango.call.stat.
  mango_dashboard_data`` called the way the web client's RPC calls it
  (``odoo.api.call_kw`` then the JSON encoding of the answer), with every
  combination the dashboard asks for: today / this week / this month with a
  daily series, all time with a monthly series, per employee and per line;
  plus all time with a weekly series (the heaviest bucket the method accepts
  that the dashboard could ask for). Each answer carries the rows, series and
  totals: calls per direction, answered rate, average wait and talk, missed
  calls not called back and the exact median time to call back;
* ``refresh one day``: the incremental upkeep run by the fold hook when a call
  of one (account, day) finishes (day rows, call-back delays, its week and
  month).

Prints medians (ms) and the baseline/dashboard ratio. Target: the slowest
dashboard RPC median ≤ 150 ms. The run ends with a check of the figures
against the call log itself: call count, and the exact median time to call
back computed from ``mango_call`` by ``percentile_cont``.

The HTTP layer (werkzeug, session) is not timed: it is the same for every
RPC and not the subject of the target.

Usage::

    python3 benchmarks/bench_stats.py [--calls 1000000] [--runs 7]
        [--db browser_bench_stats] [--template browser_main] [--reuse-db]
        [--keep-db] [--odoo ODOO_BIN]

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

import psycopg2
from benchlib import (
    add_odoo_argument,
    addons_path,
    database_exists,
    install_without_demo,
    log,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 150.0
GENERATE_CHUNK = 1_000_000
EMPLOYEES = 30
LINES = ("74951234567", "74957654321", "78001234567")
DAYS = 730
BENCH_REF = "mango-bench-stats"
PIVOT_MEASURES = [
    "call_count:sum",
    "answered_rate:avg",
    "avg_wait:avg",
    "missed_pending_count:sum",
]
# A language whose weeks start on Monday, like the weekly totals.
MONDAY_LANG = "ru_RU"
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
                "VACUUM ANALYZE mango_call_stat, mango_call_stat_period, "
                "mango_call_stat_callback"
            )
    finally:
        conn.close()


def load_average():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def timed(function, runs):
    function()  # warm-up: plans, caches, translations
    samples = []
    for _ in range(runs):
        begin = time.perf_counter()
        function()
        samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples), min(samples), max(samples)


def pivot_grouping_sets_results(as_admin, runs):
    """The pivot as 19.0's web client asks it: its four groupings in one
    ``formatted_read_grouping_sets`` call (18.0 has no such method: no rows)."""
    if not hasattr(as_admin["mango.call.stat"], "formatted_read_grouping_sets"):
        return []

    def pivot(column, lang):
        pivot_env = as_admin(context=dict(as_admin.context, lang=lang))
        stats = pivot_env["mango.call.stat"]
        grouping_sets = [[], ["user_id"], [column], ["user_id", column]]

        def run():
            pivot_env.invalidate_all()
            stats.formatted_read_grouping_sets([], grouping_sets, PIVOT_MEASURES)

        return run

    label = "19.0 pivot (grouping sets)"
    return [
        (
            f"{label} user × week, {MONDAY_LANG}",
            timed(pivot("date:week", MONDAY_LANG), runs),
        ),
        (f"{label} user × week, en_US", timed(pivot("date:week", "en_US"), runs)),
        (f"{label} user × month", timed(pivot("date:month", "en_US"), runs)),
    ]


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
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="build the database, its calls and statistics, then stop",
    )
    add_odoo_argument(parser)
    args = parser.parse_args()

    load_at_start = load_average()
    prepare_database(args)
    cr, env = open_env(args)
    import odoo
    from odoo.tools import json_default

    call_kw = rpc_call_kw()

    try:
        account, users = ensure_fixtures(env)
        generate_calls(env, account, users, args.calls)
        Stat = env["mango.call.stat"]
        rebuild_s = 0.0
        if not args.skip_rebuild:
            log("rebuilding mango_call_stat and its companions")
            begin = time.perf_counter()
            Stat._mango_rebuild()
            cr.commit()
            rebuild_s = time.perf_counter() - begin
        vacuum_analyze(args.db)
        if args.prepare_only:
            return 0
        cr.execute("SELECT count(*) FROM mango_call_stat")
        stat_rows = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM mango_call_stat_period")
        period_rows = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM mango_call_stat_callback")
        delay_rows = cr.fetchone()[0]
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

        # The pivot of "Call analysis" asks one read_group per combination of
        # its row and column groupings: totals, rows, columns, cells.
        env["res.lang"]._activate_lang(MONDAY_LANG)

        def pivot(column, lang):
            pivot_env = as_admin(context=dict(as_admin.context, lang=lang))
            stats = pivot_env["mango.call.stat"]

            def run():
                pivot_env.invalidate_all()
                for rows in ([], ["user_id"]):
                    for columns in ([], [column]):
                        stats.read_group([], PIVOT_MEASURES, rows + columns, lazy=False)

            return run

        def dashboard_rpc(period, group_by, interval):
            def rpc():
                as_admin.invalidate_all()
                result = call_kw(
                    StatAdmin,
                    "mango_dashboard_data",
                    [],
                    {"period": period, "group_by": group_by, "interval": interval},
                )
                json.dumps(result, ensure_ascii=False, default=json_default)
                return result

            return rpc

        day_keys = {(account.id, (datetime(2026, 11, 20)).date())}

        def refresh_day():
            Stat._mango_refresh(day_keys)

        log(f"timing, {args.runs} runs each")
        results = [
            (
                "baseline: mango.call read_group employee × week",
                timed(baseline, args.runs),
            ),
            (
                "stat read_group user × week (day rows)",
                timed(stat_read_group, args.runs),
            ),
            (
                f"pivot user × week, {MONDAY_LANG} (Monday weeks)",
                timed(pivot("date:week", MONDAY_LANG), args.runs),
            ),
            (
                "pivot user × week, en_US (Sunday weeks: day rows)",
                timed(pivot("date:week", "en_US"), args.runs),
            ),
            ("pivot user × month", timed(pivot("date:month", "en_US"), args.runs)),
            *pivot_grouping_sets_results(as_admin, args.runs),
        ]
        dashboard_names = []
        for period, group_by, interval in DASHBOARD_CALLS:
            name = f"dashboard RPC {period}/{group_by}/{interval}"
            dashboard_names.append(name)
            results.append(
                (name, timed(dashboard_rpc(period, group_by, interval), args.runs))
            )
        results.append(("refresh one (account, day)", timed(refresh_day, args.runs)))
        cr.rollback()
        groups = len(baseline())
        figures = dashboard_rpc("all", "user", "month")()
        cr.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY time_to_callback) "
            "FROM mango_call WHERE status = 'missed' AND callback_call_id IS NOT NULL"
        )
        raw_median = cr.fetchone()[0]
        print()
        print(
            f"Odoo {odoo.release.version}   calls: {call_rows:,}   "
            f"day rows: {stat_rows:,}   week/month rows: "
            f"{period_rows:,}   call-back delays: {delay_rows:,}   "
            f"employee × week groups: {groups:,}   "
            f"rebuild: {f'{rebuild_s:.1f} s' if rebuild_s else 'skipped'}"
        )
        print(f"load average at start/end: {load_at_start} / {load_average()}")
        print(f"{'measure':52} {'median ms':>10} {'min':>9} {'max':>9}")
        for name, (median, low, high) in results:
            print(f"{name:52} {median:10.1f} {low:9.1f} {high:9.1f}")
        medians = dict((name, stats[0]) for name, stats in results)
        base = medians[results[0][0]]
        slowest_name = max(dashboard_names, key=medians.get)
        slowest = medians[slowest_name]
        print(
            f"ratio baseline / slowest dashboard RPC ({slowest_name}): "
            f"{base / slowest:.1f}×"
        )
        verdict = "OK" if slowest <= TARGET_MS else "ABOVE TARGET"
        print(f"target: every dashboard RPC median ≤ {TARGET_MS:.0f} ms: {verdict}")
        totals = figures["totals"]
        print(
            f"check: {totals['calls']:,} calls, answered {totals['answered_rate']} %, "
            f"median call-back {totals['median_callback_time']} s "
            f"(from the call log: {raw_median} s)"
        )
        if totals["calls"] != call_rows:
            print("MISMATCH: the reporting table does not count every call")
            return 1
        if raw_median is not None and totals["median_callback_time"] != round(
            raw_median, 1
        ):
            print("MISMATCH: the median time to call back differs from the call log")
            return 1
        return 0 if slowest <= TARGET_MS else 2
    finally:
        cr.close()
        if not args.keep_db and not args.reuse_db:
            odoo.sql_db.close_db(args.db)  # the pool's connections, or DROP fails
            drop_database(args.db)


if __name__ == "__main__":
    sys.exit(main())
