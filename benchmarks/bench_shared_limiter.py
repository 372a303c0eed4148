#!/usr/bin/env python3
"""What the limiter shared through PostgreSQL costs each request to Mango.

Every request to Mango now asks the database for its token
(``mango_office/ratelimit_pg.py``): one short transaction to acquire, one to
release, one to check Mango's lockout (plus one for the last refusal before
deferrable work). This script times them through Odoo's own connection pool
(``odoo.sql_db.db_connect(db).cursor()``, what ``mango.rate.limit`` uses), with
buckets that never make a request wait, so only the overhead is measured:

* ``in-process``: the per-process ``RateLimiter`` acquire + release (the baseline:
  what each worker did before, without sharing anything);
* ``SELECT 1``: one transaction on a pooled cursor (borrow, ``SELECT 1``, commit,
  give back): the floor of any database round trip;
* ``shared acquire+release``: the two transactions around every request;
* ``shared per request``: lockout check + acquire + release, what ``_exchange``
  adds to a request that is not deferrable.

Median and p95 in milliseconds over ``--samples`` iterations (after a warm-up),
each with its ratio to the in-process baseline and to ``SELECT 1``, and the
machine's load beside each figure. The database only needs the limiter's two
tables: the script creates them (``--db``, kept with ``--keep-db``, reused as it
is with ``--reuse-db``).

Usage::

    python benchmarks/bench_shared_limiter.py [--db mango_bench_limiter]
        [--samples 500] [--keep-db] [--reuse-db]

Run it with the Python of the Odoo series to measure (it imports ``odoo``).
"""

import argparse
import os
import statistics
import sys
import time

import benchlib

sys.path.insert(0, str(benchlib.ROOT))

from mango_office.ratelimit import RateLimiter  # noqa: E402
from mango_office.ratelimit_pg import (  # noqa: E402
    SCHEMA,
    SharedRateLimiter,
    product_digest,
)

# Buckets that are always free: the figures are the cost, never a wait.
NEVER_WAIT = {"general": (10, 1e-6)}


def timed(step, samples, warmup=20):
    for _ in range(warmup):
        step()
    durations = []
    for _ in range(samples):
        start = time.perf_counter()
        step()
        durations.append((time.perf_counter() - start) * 1000)
    durations.sort()
    median = statistics.median(durations)
    p95 = durations[int(len(durations) * 0.95) - 1]
    return median, p95, os.getloadavg()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="mango_bench_limiter")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse-db", action="store_true")
    args = parser.parse_args()

    import odoo  # noqa: F401 - the Odoo of this Python
    from odoo.sql_db import close_db, db_connect

    exists = benchlib.database_exists(args.db)
    if exists and not args.reuse_db:
        sys.exit(f"{args.db} exists: pass --reuse-db to use it, or drop it")
    if not exists:
        with db_connect("postgres").cursor() as cr:
            cr._cnx.autocommit = True
            cr.execute(f'CREATE DATABASE "{args.db}"')
    try:
        connect = lambda: db_connect(args.db).cursor()  # noqa: E731
        with connect() as cr:
            cr.execute(SCHEMA)
        product = product_digest("http://127.0.0.1/vpbx", f"bench-{os.getpid()}")
        shared = SharedRateLimiter(connect, product, NEVER_WAIT)
        local = RateLimiter(NEVER_WAIT)

        def select_one():
            with connect() as cr:
                cr.execute("SELECT 1")
                cr.fetchone()

        def shared_pair():
            shared.release(shared.acquire("balance-ish"))

        def shared_request():
            if shared.locked_for() <= 0:
                shared_pair()

        rows = [
            ("in-process acquire+release", lambda: local.release(local.acquire("x"))),
            ("SELECT 1 (one transaction)", select_one),
            ("shared acquire+release", shared_pair),
            ("shared per request", shared_request),
        ]
        results = []
        for name, step in rows:
            benchlib.log(f"timing {name} ({args.samples} samples)")
            results.append((name, *timed(step, args.samples)))
        shared.forget()
    finally:
        close_db(args.db)
        if not args.keep_db and not exists:
            with db_connect("postgres").cursor() as cr:
                cr._cnx.autocommit = True
                cr.execute(f'DROP DATABASE "{args.db}"')

    baseline = results[0][1]
    floor = results[1][1]
    print(f"\nShared rate limiter overhead, {args.samples} samples each (ms)\n")
    print(
        f"{'':<28} {'median':>8} {'p95':>8} {'× in-process':>13} {'× SELECT 1':>11}"
        f" {'load 1 min':>11}"
    )
    for name, median, p95, load in results:
        print(
            f"{name:<28} {median:>8.3f} {p95:>8.3f} {median / baseline:>13.1f}"
            f" {median / floor:>11.2f} {load:>11.2f}"
        )


if __name__ == "__main__":
    main()
