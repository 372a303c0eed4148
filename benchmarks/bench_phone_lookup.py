#!/usr/bin/env python3
"""Caller identification benchmark: our indexed lookup against Odoo's and OCA's, in one run.

The script makes its own database (``odoo-bin -i contacts,mango_telephony``, which
pulls in phone_validation, sms and crm), fills ``res_partner`` with SQL ``COPY``
up to each size (10k, 100k, 1M by default) and, at every size, times three
lookups of the same callers through the ORM, as the admin user (record rules
apply):

* ``ours``: ``res.partner._mango_find_by_phone(number)``, the method the
  call worker uses: normalisation + exact match on the btree-indexed
  ``mango_phone_e164`` / ``mango_mobile_e164`` + company preference.
* ``odoo``: Odoo's best built-in search, ``phone_mobile_search ilike`` with the
  national number (sms' ``mail.thread.phone`` on res.partner; phone_validation
  gives it btree and, with pg_trgm, trigram indexes on the stripped numbers).
* ``oca``: OCA base_phone's matching (``get_record_from_phone_number``): the
  last 8 digits as a suffix pattern, emulated as
  ``phone_sanitized =like %<last 8>`` — the sanitized column stands for the
  E.164 numbers base_phone keeps in phone/mobile.

Stored numbers use three spellings (``8 (9xx) xxx-xx-xx``, ``+7 9xx xxx xx
xx``, ``79xxxxxxxxx``); callers are looked up as Mango sends them
(``79xxxxxxxxx``), 90 % known, 10 % unknown. Times are per call, warm cache,
p50/p95 in milliseconds. Target: ours p95 ≤ 0.5 ms at 1M partners.

Usage::

    python3 benchmarks/bench_phone_lookup.py [--sizes 10000,100000,1000000]
        [--samples 1000] [--baseline-samples 100] [--db mango_bench_phone]
        [--odoo /opt/odoo18/odoo-bin] [--keep-db]
"""

import argparse
import io
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mango_office import phones

TARGET_P95_MS = 0.5
COPY_CHUNK = 100_000


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def odoo_addons_path(odoo_bin):
    return f"{Path(odoo_bin).resolve().parent / 'addons'},{ROOT}"


def create_database(args):
    subprocess.run(["dropdb", "--if-exists", args.db], check=True)
    log(f"creating {args.db} (contacts + mango_telephony, no demo data)")
    subprocess.run(
        [
            sys.executable,
            args.odoo,
            f"--addons-path={odoo_addons_path(args.odoo)}",
            "-d",
            args.db,
            "-i",
            "contacts,mango_telephony",
            "--without-demo=all",
            "--stop-after-init",
            "--log-level=warn",
            "--http-port=0",
        ],
        check=True,
        cwd=ROOT,
    )


def national(index):
    """The 10-digit Russian mobile number of partner ``index`` (unique)."""
    return f"9{(index * 7919) % 1_000_000_000:09d}"


def spelled(digits, variant):
    if variant == 0:
        return f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    if variant == 1:
        return f"+7 {digits[:3]} {digits[3:6]} {digits[6:8]} {digits[8:]}"
    return f"7{digits}"


def copy_partners(conn, start, stop):
    """Partners ``start`` … ``stop - 1``: one number each, in phone or mobile."""
    with conn.cursor() as cr:
        for chunk_start in range(start, stop, COPY_CHUNK):
            buffer = io.StringIO()
            for index in range(chunk_start, min(stop, chunk_start + COPY_CHUNK)):
                digits = national(index)
                text = spelled(digits, index % 3)
                e164 = f"+7{digits}"
                name = f"Partner {index}"
                if index % 2:
                    row = (name, name, text, r"\N", e164, r"\N", e164)
                else:
                    row = (name, name, r"\N", text, r"\N", e164, e164)
                buffer.write("\t".join(row) + "\tt\tcontact\tf\ten_US\t1\t1\n")
            buffer.seek(0)
            cr.copy_expert(
                """COPY res_partner (name, complete_name, phone, mobile,
                       mango_phone_e164, mango_mobile_e164, phone_sanitized,
                       active, type, is_company, lang, create_uid, write_uid)
                   FROM STDIN""",
                buffer,
            )
        cr.execute(
            """UPDATE res_partner SET commercial_partner_id = id,
                      create_date = now() at time zone 'UTC',
                      write_date = now() at time zone 'UTC'
                WHERE commercial_partner_id IS NULL"""
        )
    conn.commit()
    with conn.cursor() as cr:
        conn.autocommit = True
        cr.execute("VACUUM ANALYZE res_partner")
        conn.autocommit = False


def percentiles(samples):
    ordered = sorted(samples)

    def pick(q):
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return statistics.median(ordered), pick(0.95)


def time_lookups(env, numbers, lookup):
    timings = []
    found = 0
    for number in numbers:
        env.invalidate_all()
        start = time.perf_counter()
        result = lookup(number)
        timings.append((time.perf_counter() - start) * 1000)
        found += bool(result)
    return timings, found


def measure(args, size, odoo_api, registry):
    rng = random.Random(size)
    known = [f"7{national(rng.randrange(size))}" for _ in range(args.samples)]
    numbers = [
        number if rng.random() < 0.9 else f"7{8000000000 + rng.randrange(10**9)}"
        for number in known
    ]
    baseline_numbers = numbers[: args.baseline_samples]
    with registry.cursor() as cr:
        env = odoo_api.Environment(cr, 2, {})  # admin: a real user, rules apply
        Partner = env["res.partner"]

        def ours(number):
            return Partner._mango_find_by_phone(number)

        def odoo_builtin(number):
            return Partner.search([("phone_mobile_search", "ilike", number[-10:])])

        def oca_suffix(number):
            return Partner.search([("phone_sanitized", "=like", f"%{number[-8:]}")])

        # Correctness first: the three agree on known callers that have a match.
        for number in baseline_numbers[:20]:
            mine = ours(number)
            theirs = odoo_builtin(number)
            if mine and mine not in theirs:
                raise SystemExit(f"lookup mismatch for {number}: {mine} vs {theirs}")
        sample = phones.normalize(spelled(national(1), 0), "RU")
        assert sample == f"+7{national(1)}", sample

        for lookup in (ours, odoo_builtin, oca_suffix):  # warm up
            for number in numbers[:10]:
                lookup(number)
        results = {}
        results["ours"] = time_lookups(env, numbers, ours)
        results["odoo"] = time_lookups(env, baseline_numbers, odoo_builtin)
        results["oca"] = time_lookups(env, baseline_numbers, oca_suffix)
        cr.rollback()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--baseline-samples", type=int, default=100)
    parser.add_argument("--db", default="mango_bench_phone")
    parser.add_argument("--odoo", default="/opt/odoo18/odoo-bin")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    create_database(args)
    sys.path.insert(0, str(Path(args.odoo).resolve().parent))
    import odoo
    from odoo import api as odoo_api
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        [
            f"--addons-path={odoo_addons_path(args.odoo)}",
            "-d",
            args.db,
            "--log-level=warn",
        ]
    )
    registry = Registry(args.db)
    conn = psycopg2.connect(dbname=args.db)
    with conn.cursor() as cr:
        cr.execute("SELECT count(*) FROM res_partner")
        existing = cr.fetchone()[0]
    rows = []
    loaded = 0
    try:
        for size in sizes:
            log(f"loading partners up to {size:,} (COPY)")
            copy_partners(conn, loaded, size)
            loaded = size
            log(f"measuring at {size:,} partners")
            results = measure(args, size, odoo_api, registry)
            rows.append((size, results))
    finally:
        conn.close()
        if not args.keep_db:
            Registry.delete(args.db)
            subprocess.run(["dropdb", "--if-exists", args.db], check=False)

    print()
    print(
        f"Caller lookup through the ORM, admin user, {args.samples} lookups (ours) / "
        f"{args.baseline_samples} (baselines) per size; {existing} partners preinstalled"
    )
    header = (
        f"{'partners':>10} | {'method':<34} | {'p50 ms':>8} | {'p95 ms':>8} | "
        f"{'found':>7} | {'p95 vs ours':>11}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "ours": "ours: _mango_find_by_phone (btree)",
        "odoo": "odoo: phone_mobile_search ilike",
        "oca": "oca base_phone: =like %last8",
    }
    verdicts = []
    for size, results in rows:
        ours_p95 = percentiles(results["ours"][0])[1]
        for key in ("ours", "odoo", "oca"):
            timings, found = results[key]
            p50, p95 = percentiles(timings)
            ratio = "1.0x" if key == "ours" else f"{p95 / ours_p95:,.0f}x"
            print(
                f"{size:>10,} | {labels[key]:<34} | {p50:>8.3f} | {p95:>8.3f} | "
                f"{found:>3}/{len(timings):<3} | {ratio:>11}"
            )
        verdicts.append((size, ours_p95))
    print()
    largest, p95 = verdicts[-1]
    status = "MET" if p95 <= TARGET_P95_MS else "MISSED"
    print(
        f"Target p95 <= {TARGET_P95_MS} ms at {largest:,} partners: {status} "
        f"(p95 {p95:.3f} ms)"
    )
    return 0 if status == "MET" else 1


if __name__ == "__main__":
    sys.exit(main())
