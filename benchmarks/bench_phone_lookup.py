#!/usr/bin/env python3
"""Caller lookup benchmark: our indexed match against a ``SELECT 1`` round trip,
Odoo and OCA, in one run.

The script makes its own database (``odoo-bin -i contacts,mango_telephony``, which
pulls in phone_validation, sms and crm), or reuses one (``--reuse-db``), and grows
``res_partner`` with one ``INSERT … SELECT FROM generate_series`` up to each size
(10k, 100k, 1M by default; 10M with ``--sizes 10000000``): the rows are exactly
what the ORM stores for such contacts (E.164 keys, ``phone_sanitized``,
``complete_name``, the commercial partner …), which the script checks first by
creating twins of a sample through the ORM and comparing every column.

The partners come in groups of 50: a company and two of its contacts share the
company's number (a switchboard), two unrelated people share one, one belongs
to a second company the salesperson may not see, the rest have their own.
Numbers are stored in three spellings (``8 (9xx) xxx-xx-xx``, ``+7 9xx xxx xx
xx``, ``79xxxxxxxxx``), in ``phone`` or ``mobile`` (only ``phone`` on 19.0).

Callers are looked up as Mango sends them: ``79xxxxxxxxx``, ``+79xxxxxxxxx``,
``89xxxxxxxxx``; known and unknown numbers, and extensions (``101``). At every
size, interleaved on the same cursor, one sample after the other:

* ``SELECT 1``: the round trip of the connection itself, the floor;
* ``res.partner._mango_find_by_phone(number, company)`` as superuser (the
  event worker's caller identification, ``_mango_identify_call``);
* the same call as a salesperson, record rules applied (the incoming-call
  card's ``_mango_card_partner``).

Their p95 is compared with the ``SELECT 1`` p95 (target: within 2×), and the
result of every lookup is checked against the partner it must find. Baselines,
on fewer samples: Odoo's ``phone_mobile_search ilike`` and OCA base_phone's
``ilike '%<last 8 digits>'``. The machine's load (``os.getloadavg()``) is
printed beside every figure, and its speed for pure Python at the end
(``benchlib.cpu_reference_ms``).

Usage::

    python3 benchmarks/bench_phone_lookup.py [--sizes 10000,100000,1000000]
        [--samples 2000] [--baseline-samples 100] [--oca-samples 5]
        [--db mango_bench_phone] [--odoo ODOO_BIN] [--keep-db] [--reuse-db]

``--odoo`` defaults to the ``odoo-bin`` of the Odoo the running Python imports:
run the script with the virtualenv of the series to measure.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

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

from mango_office import phones  # noqa: E402

#: The lookup's p95 may be at most this multiple of the ``SELECT 1`` p95.
TARGET_RATIO = 2.0
GROUP = 50
BENCH_REF = "mango-bench"
SALESPERSON_LOGIN = "mango-bench-salesperson"
OTHER_COMPANY = "Mango bench other company"


def load_average():
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def create_database(args):
    if args.reuse_db and database_exists(args.db):
        log(f"reusing {args.db} and the partners an earlier run loaded")
        update_if_older(args.odoo, args.db)
        return
    subprocess.run(["dropdb", "--if-exists", args.db], check=True)
    log(f"creating {args.db} (contacts + mango_telephony, no demo data)")
    install_without_demo(args.odoo, args.db, "contacts,mango_telephony", http_port=0)


# ----------------------------------------------------------------------
# The partners: partner ``index`` (0-based) is the ``index``-th of the benchmark
# ----------------------------------------------------------------------


def national(index):
    """The 10-digit Russian mobile number owned by partner ``index`` (unique)."""
    return f"9{(index * 7919) % 1_000_000_000:09d}"


def number_owner(index):
    """The partner whose number partner ``index`` carries (itself, or the one it
    shares a number with)."""
    rank = index % GROUP
    if rank in (1, 2):
        return index - rank  # the company's switchboard
    if rank == 4:
        return index - 1  # two people, one number
    return index


def expected_match(index, as_salesperson):
    """The partner index a lookup of partner ``index``'s number returns, or None.

    A company and its contacts on one number: the company. Two unrelated people:
    the older one. The other company's partner: nobody, since the lookup names
    the call's company (and the salesperson may not see it anyway).
    """
    del as_salesperson  # both paths agree; kept to say so at the call site
    rank = index % GROUP
    if rank in (0, 1, 2):
        return index - rank
    if rank in (3, 4):
        return index - rank + 3
    if rank == 5:
        return None
    return index


def spelled(digits, variant):
    if variant == 0:
        return f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    if variant == 1:
        return f"+7 {digits[:3]} {digits[3:6]} {digits[6:8]} {digits[8:]}"
    return f"7{digits}"


# The same rules in SQL, over ``i`` from generate_series.
SQL_DIGITS = (
    "'9' || lpad((((CASE WHEN i %% 50 IN (1, 2) THEN i - i %% 50"
    " WHEN i %% 50 = 4 THEN i - 1 ELSE i END)::bigint * 7919) %% 1000000000)::text,"
    " 9, '0')"
)
SQL_SPELLED = """CASE i %% 3
    WHEN 0 THEN '8 (' || substr(d, 1, 3) || ') ' || substr(d, 4, 3) || '-'
                || substr(d, 7, 2) || '-' || substr(d, 9, 2)
    WHEN 1 THEN '+7 ' || substr(d, 1, 3) || ' ' || substr(d, 4, 3) || ' '
                || substr(d, 7, 2) || ' ' || substr(d, 9, 2)
    ELSE '7' || d END"""


def has_mobile_column(cr):
    """Whether contacts have a mobile number (Odoo 18.0) or only a phone (19.0)."""
    cr.execute(
        "SELECT 1 FROM information_schema.columns"
        " WHERE table_name = 'res_partner' AND column_name = 'mobile'"
    )
    return bool(cr.fetchone())


def first_bench_id(cr):
    cr.execute("SELECT min(id) FROM res_partner WHERE ref = %s", [BENCH_REF])
    first = cr.fetchone()[0]
    if first is None:
        cr.execute("SELECT COALESCE(max(id), 0) + 1 FROM res_partner")
        first = cr.fetchone()[0]
    return first


def insert_partners(conn, start, stop, other_company_id):
    """Partners ``start`` … ``stop - 1`` in one INSERT from generate_series.

    The secondary indexes are dropped first and built again over the whole
    table afterwards (a bulk build instead of 10M inserts into each of them,
    two of them trigram GIN); foreign keys are not re-checked row by row
    (``session_replication_role``): the rows point at partners of the same
    statement or at the company made for them. Ids are given here so that no
    UPDATE follows: an index built over updated rows stays unusable to older
    snapshots (``pg_index.indcheckxmin``).
    """
    conn.autocommit = True
    with conn.cursor() as cr:
        # Old HOT chains (the install updates partners) would flag the
        # rebuilt indexes indcheckxmin.
        cr.execute("VACUUM res_partner")
    conn.autocommit = False
    with conn.cursor() as cr:
        with_mobile = has_mobile_column(cr)
        first = first_bench_id(cr)
        cr.execute(
            """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)
                 FROM pg_index
                WHERE indrelid = 'res_partner'::regclass AND NOT indisprimary"""
        )
        indexes = cr.fetchall()
        for name, _definition in indexes:
            cr.execute(f"DROP INDEX {name}")
        number_columns = "phone, mobile, mango_phone_e164, mango_mobile_e164"
        # On 18.0, odd partners have a phone, even ones a mobile (19.0: phone).
        number_values = """
            CASE WHEN i %% 2 = 1 THEN text END,
            CASE WHEN i %% 2 = 0 THEN text END,
            CASE WHEN i %% 2 = 1 THEN '+7' || d END,
            CASE WHEN i %% 2 = 0 THEN '+7' || d END"""
        if not with_mobile:
            number_columns = "phone, mango_phone_e164"
            number_values = "text, '+7' || d"
        cr.execute("SET LOCAL session_replication_role = replica")
        cr.execute(
            f"""
            INSERT INTO res_partner (
                id, name, complete_name, commercial_company_name,
                commercial_partner_id, parent_id, is_company, company_id,
                {number_columns}, phone_sanitized,
                ref, type, active, lang, color, message_bounce, partner_share,
                calendar_last_notif_ack, create_uid, write_uid,
                create_date, write_date)
            SELECT %(first)s + i, name,
                   CASE WHEN i %% 50 IN (1, 2) THEN company || ', ' || name
                        ELSE name END,
                   CASE WHEN i %% 50 IN (0, 1, 2) THEN company END,
                   %(first)s + CASE WHEN i %% 50 IN (1, 2) THEN i - i %% 50 ELSE i END,
                   CASE WHEN i %% 50 IN (1, 2) THEN %(first)s + i - i %% 50 END,
                   i %% 50 = 0,
                   CASE WHEN i %% 50 = 5 THEN %(other_company)s END,
                   {number_values},
                   -- phone_validation without a country parses only "+…"
                   CASE WHEN i %% 3 = 1 THEN '+7' || d END,
                   %(ref)s, 'contact', true, 'en_US', 0, 0, true,
                   now() at time zone 'UTC', 1, 1,
                   now() at time zone 'UTC', now() at time zone 'UTC'
              FROM generate_series(%(start)s, %(stop)s - 1) AS i,
                   LATERAL (SELECT {SQL_DIGITS} AS d,
                                   'Company ' || (i / 50) AS company,
                                   CASE WHEN i %% 50 = 0 THEN 'Company ' || (i / 50)
                                        ELSE 'Partner ' || i END AS name) AS parts,
                   LATERAL (SELECT {SQL_SPELLED} AS text) AS spelling
            """,
            {
                "first": first,
                "start": start,
                "stop": stop,
                "ref": BENCH_REF,
                "other_company": other_company_id,
            },
        )
        cr.execute(
            "SELECT setval('res_partner_id_seq', (SELECT max(id) FROM res_partner))"
        )
        cr.execute("SET LOCAL maintenance_work_mem = '1GB'")
        for name, definition in indexes:
            log(f"building {name}")
            cr.execute(definition)
        # Replica mode skipped the triggers that keep the phone keys: all of
        # them again, in one INSERT … SELECT and a bulk index build.
        log("filling the phone keys (mango_partner_phone_refill)")
        cr.execute("SELECT mango_partner_phone_refill()")
    conn.commit()
    conn.autocommit = True
    with conn.cursor() as cr:
        # The visibility map lets index-only scans skip the heap.
        cr.execute("VACUUM ANALYZE res_partner")
        cr.execute("VACUUM ANALYZE mango_partner_phone")
    conn.autocommit = False


def check_rows_as_the_orm_stores_them(env, cr, first):
    """Create through the ORM a twin of a sample of generated partners (same
    input: name, number, company, parent) and compare every stored column.

    Only ids, dates and what points at a partner by id (compared through the
    twins) may differ.
    """
    Partner = env["res.partner"]
    with_mobile = "mobile" in Partner._fields
    cr.execute("SAVEPOINT mango_twins")
    sample = [*range(GROUP, 2 * GROUP), 3 * GROUP + 17, 3 * GROUP + 18]
    twins = {}
    for index in sample:
        cr.execute("SELECT * FROM res_partner WHERE id = %s", [first + index])
        stored = dict(zip([c[0] for c in cr.description], cr.fetchone(), strict=True))
        owner = index - index % GROUP
        values = {
            "name": stored["name"],
            "ref": stored["ref"],
            "is_company": stored["is_company"],
            "company_id": stored["company_id"],
            "phone": stored["phone"],
        }
        if with_mobile:
            values["mobile"] = stored["mobile"]
        if stored["parent_id"]:
            values["parent_id"] = twins[owner]
        twin = Partner.create(values)
        twins[index] = twin.id
        env.flush_all()
        cr.execute("SELECT * FROM res_partner WHERE id = %s", [twin.id])
        made = dict(zip([c[0] for c in cr.description], cr.fetchone(), strict=True))
        ids = {first + i: t for i, t in twins.items()}
        for column, value in stored.items():
            if column in ("id", "create_date", "write_date", "calendar_last_notif_ack"):
                continue
            if column in ("parent_id", "commercial_partner_id"):
                value = ids.get(value, value)
            if made[column] != value:
                raise SystemExit(
                    f"partner {index}: {column} is {value!r} in the generated row, "
                    f"{made[column]!r} where the ORM stores it"
                )
    cr.execute("ROLLBACK TO SAVEPOINT mango_twins")
    env.invalidate_all()
    # And the keys the lookup matches are the normaliser's, for every spelling.
    for variant in range(3):
        digits = national(variant)
        assert phones.normalize(spelled(digits, variant), "RU") == f"+7{digits}"
    return len(sample)


def wait_for_indexes(conn, timeout=900):
    """Wait until the planner may use the E.164 indexes (see insert_partners)."""
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        with conn.cursor() as cr:
            cr.execute("SET LOCAL enable_seqscan = off")
            cr.execute(
                "EXPLAIN SELECT id FROM res_partner WHERE mango_phone_e164 = %s",
                ["+70000000000"],
            )
            plan = " ".join(row[0] for row in cr.fetchall())
        conn.rollback()
        if "mango_phone_e164" in plan and "Seq Scan" not in plan:
            return waited
        if time.monotonic() > deadline:
            raise SystemExit("the E.164 index never became usable: " + plan)
        if not waited:
            log("indexes not yet usable (an older transaction runs elsewhere): waiting")
        waited = True
        time.sleep(5)


# ----------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------


def callers(size, count, rng):
    """``count`` numbers as Mango sends them, each with the partner index it must
    find (None: nobody) and its kind."""
    samples = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.10:
            samples.append((str(rng.choice((101, 102, 205, 2001))), None, "extension"))
            continue
        if roll < 0.30:
            digits = f"8{rng.randrange(10**9):09d}"  # nobody has an 8xx mobile
            index, kind = None, "unknown"
        else:
            index = rng.randrange(size)
            digits = national(number_owner(index))
            kind = "known"
        form = rng.choice(("7…", "+7…", "8…"))
        spelling = {"7…": f"7{digits}", "+7…": f"+7{digits}", "8…": f"8{digits}"}[form]
        samples.append((spelling, index, f"{kind} {form}"))
    return samples


def salesperson(env):
    """A salesperson (CRM user, telephony user) of the main company, made once."""
    Users = env["res.users"].with_context(no_reset_password=True)
    user = Users.search([("login", "=", SALESPERSON_LOGIN)])
    if user:
        return user
    groups = "group_ids" if "group_ids" in Users._fields else "groups_id"
    return Users.create(
        {
            "name": "Bench salesperson",
            "login": SALESPERSON_LOGIN,
            groups: [
                (4, env.ref("sales_team.group_sale_salesman").id),
                (4, env.ref("mango_telephony.group_mango_user").id),
            ],
        }
    )


def other_company(env):
    Company = env["res.company"]
    return Company.search([("name", "=", OTHER_COMPANY)]) or Company.create(
        {"name": OTHER_COMPANY}
    )


def percentiles(samples):
    ordered = sorted(samples)

    def pick(q):
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return statistics.median(ordered), pick(0.95)


def check_answers(answers, first):
    """What each timed lookup returned is the partner it had to find."""
    for key, number, index, found in answers:
        if key == "select1":
            continue
        match = None if index is None else expected_match(index, True)
        wanted = None if match is None else first + match
        if (found or None) != wanted:
            raise SystemExit(f"{number} ({key}): found {found}, expected {wanted}")


def check_lookups(samples, first, company, lookups):
    """Every lookup finds what it must, on every path, before anything is timed."""
    for number, index, _kind in samples:
        match = None if index is None else expected_match(index, True)
        wanted = None if match is None else first + match
        for lookup in lookups:
            found = lookup._mango_find_by_phone(number, company)
            if (found.id or None) != wanted:
                raise SystemExit(
                    f"{number}: {lookup.env.user.login} found {found.ids}, "
                    f"expected {wanted}"
                )


def time_interleaved(samples, series):
    """The series in turn, one sample each: the same moment for all.

    Each series takes its callers from its own stretch of ``samples``: a
    lookup right after another of the same number would find its index pages
    warm and look faster than it is.
    """
    timings = {key: [] for key in series}
    by_kind = {}
    answers = []
    for number, _index, _kind in samples[-50:]:  # warm up plans and caches
        for function in series.values():
            function(number)
    count = len(samples) // len(series)
    for position in range(count):
        for offset, (key, function) in enumerate(series.items()):
            number, index, kind = samples[offset * count + position]
            begin = time.perf_counter()
            found = function(number)
            elapsed = (time.perf_counter() - begin) * 1000
            answers.append((key, number, index, getattr(found, "id", None)))
            timings[key].append(elapsed)
            by_kind.setdefault((key, kind), []).append(elapsed)
    results = {key: (values, load_average()) for key, values in timings.items()}
    return results, by_kind, answers


def time_baselines(args, samples, Partner, cr):
    """Odoo's built-in search and OCA's suffix match, on fewer callers."""
    numbers = [number for number, _index, kind in samples if kind != "extension"]
    numbers = numbers[: args.baseline_samples]
    with_mobile = "mobile" in Partner._fields

    def odoo_builtin(number):
        return Partner.search([("phone_mobile_search", "ilike", number[-10:])])

    def oca_suffix(number):
        # base_phone's get_record_from_phone_number (OCA connector-telephony),
        # default number_of_digits_to_match_from_end = 8: raw SQL, then the
        # first row's display name.
        pattern = f"%{number[-8:]}"
        if with_mobile:
            cr.execute(
                "SELECT id FROM res_partner WHERE replace(phone, ' ', '') ilike %s"
                " or replace(mobile, ' ', '') ilike %s",
                [pattern, pattern],
            )
        else:
            cr.execute(
                "SELECT id FROM res_partner WHERE replace(phone, ' ', '') ilike %s",
                [pattern],
            )
        rows = cr.fetchall()
        if not rows:
            return Partner.browse()
        partner = Partner.browse(rows[0][0])
        partner.fetch(["display_name"])
        return partner

    results = {}
    for key, function, chosen in (
        ("odoo", odoo_builtin, numbers),
        ("oca", oca_suffix, numbers[: args.oca_samples]),
    ):
        values = []
        for number in chosen:
            begin = time.perf_counter()
            function(number)
            values.append((time.perf_counter() - begin) * 1000)
        results[key] = (values, load_average())
    return results


def measure(args, size, first, env, cr):
    Partner = env["res.partner"]
    company = env.company
    as_user = Partner.with_user(salesperson(env))
    as_root = Partner.sudo()
    # Checked first on other callers: the timed ones must not be warmed up.
    check_lookups(
        callers(size, 300, random.Random(-size)), first, company, (as_root, as_user)
    )
    samples = callers(size, 3 * args.samples, random.Random(size))  # 3 series
    results = {"memory": read_phone_index(cr)}
    env.invalidate_all()

    def select_one(number):
        cr.execute("SELECT 1")
        return cr.fetchall()

    def superuser(number):
        return as_root._mango_find_by_phone(number, company)

    def user(number):
        return as_user._mango_find_by_phone(number, company)

    timed, by_kind, answers = time_interleaved(
        samples, {"select1": select_one, "superuser": superuser, "user": user}
    )
    results.update(timed)
    check_answers(answers, first)
    results.update(time_baselines(args, samples, Partner, cr))
    known = next(number for number, index, _kind in samples if index is not None)
    results["plans"] = explain(cr, phones.normalize(known, "RU"), company.id)
    results["phases"] = time_phases(
        callers(size, args.samples, random.Random(size + 1)), company, as_root, as_user
    )
    results["server"] = time_server(
        cr, callers(size, args.samples, random.Random(size + 2)), company.id
    )
    cr.rollback()
    return results, by_kind


def read_phone_index(cr):
    """Read the phone keys' index once from end to end (an index-only count)
    before timing, and say how it compares with ``shared_buffers``.

    A live server's index stays in memory through its own traffic; a database
    just loaded, or idle for a day, has it on disk, and the first lookups then
    time the disk (seen on the same database, minutes apart: the card's p95
    0.82 ms, then 0.47 ms). What does not fit in ``shared_buffers`` is then read from the
    operating system's cache, as on a server that has not sized them for it.

    :return: a line for the report
    """
    begin = time.perf_counter()
    cr.execute("SET LOCAL enable_seqscan = off")
    cr.execute("SELECT count(*) FROM mango_partner_phone WHERE number > 0")
    keys = cr.fetchone()[0]
    cr.execute("SET LOCAL enable_seqscan = on")
    elapsed = time.perf_counter() - begin
    cr.execute(
        "SELECT pg_size_pretty(pg_relation_size('mango_partner_phone_number')), "
        "current_setting('shared_buffers')"
    )
    index_size, shared_buffers = cr.fetchone()
    return (
        f"phone keys' index ({keys:,} keys, {index_size}) read once before timing "
        f"in {elapsed:.1f} s; shared_buffers {shared_buffers}"
    )


def time_phases(samples, company, as_root, as_user):
    """Where a lookup's time goes, phase by phase, on callers of their own.

    The steps of ``res.partner._mango_find_by_phone``, one by one with a clock
    between them (kept in step with it by hand: a profile, not a second
    implementation; its answers are not checked here but in the timed series),
    and a ``SELECT 1`` before each caller.
    """
    from odoo.tools import SQL

    from odoo.addons.mango_telephony.models.caller_identification import pick_caller

    timings = {}

    def clock(key, begin):
        now = time.perf_counter()
        timings.setdefault(key, []).append((now - begin) * 1000)
        return now

    columns = as_root._mango_lookup_columns
    for position, (number, _index, _kind) in enumerate(samples):
        Partner = as_user if position % 2 else as_root
        path = "card" if position % 2 else "fold"
        cr = Partner.env.cr
        begin = time.perf_counter()
        cr.execute("SELECT 1")
        cr.fetchall()
        begin = clock("SELECT 1 round trip", begin)
        key = phones.e164_key(Partner._mango_normalize(number, company))
        begin = clock(f"{path}: normalise (+ key)", begin)
        if key is None:
            continue
        Partner.flush_model(
            ["mango_phone_e164", "mango_mobile_e164", "active", *columns]
        )
        begin = clock(f"{path}: flush_model", begin)
        cr.execute(
            SQL("SELECT * FROM mango_partners_by_phone(%s, %s)", key, company.id)
        )
        begin = clock(f"{path}: execute (round trip + server)", begin)
        rows = cr.fetchall()
        begin = clock(f"{path}: fetchall", begin)
        if not rows:
            continue
        ids, *values = zip(*rows, strict=True)
        if Partner.env.su:
            Partner.browse(pick_caller(list(zip(ids, values[0], strict=True))))
            clock(f"{path}: pick", begin)
            continue
        readable = Partner._mango_readable_ids(ids, values)
        begin = clock(f"{path}: record rules (_mango_readable_ids)", begin)
        commercial_of = dict(zip(ids, values[0], strict=True))
        Partner.browse(pick_caller([(i, commercial_of[i]) for i in readable]))
        clock(f"{path}: pick", begin)
    return {key: (values, load_average()) for key, values in timings.items()}


def time_server(cr, samples, company_id):
    """The lookup's time inside PostgreSQL, from EXPLAIN (ANALYZE, BUFFERS) of
    the call and of the statement it runs, and the pages each one touched
    (shared hits, and reads: pages found outside shared_buffers)."""
    statements = {
        "server: mango_partners_by_phone() call": (
            "SELECT * FROM mango_partners_by_phone(%(key)s, %(company)s)"
        ),
        "server: its statement (index-only scan)": """
            SELECT partner_id, commercial_partner_id, company_id, partner_share
              FROM mango_partner_phone
             WHERE number = %(key)s AND (company_id IS NULL OR company_id = %(company)s)
             ORDER BY partner_id LIMIT 20""",
    }
    timings = {}
    pages = {}
    for position, (number, _index, _kind) in enumerate(samples):
        key = phones.e164_key(phones.normalize(number, "RU"))
        if key is None:
            continue
        label, statement = list(statements.items())[position % 2]
        cr.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement,
            {"key": key, "company": company_id},
        )
        plan = cr.fetchone()[0][0]
        timings.setdefault(label, []).append(plan["Execution Time"])
        node = plan["Plan"]
        pages.setdefault(label, []).append(
            (node.get("Shared Hit Blocks", 0), node.get("Shared Read Blocks", 0))
        )
    return {
        label: (values, load_average(), pages[label])
        for label, values in timings.items()
    }


def explain(cr, number, company_id):
    """The lookup's plan at this size, as PostgreSQL runs it: the statement of
    ``mango_partners_by_phone`` with the caller's number, then the call itself."""
    query = """
        SELECT keys.partner_id, keys.commercial_partner_id,
               keys.company_id, keys.partner_share
          FROM mango_partner_phone keys
         WHERE keys.number = %(key)s
           AND (keys.company_id IS NULL OR keys.company_id = %(company)s)
         ORDER BY keys.partner_id
         LIMIT 20"""
    plans = []
    for statement in (
        query,
        "SELECT * FROM mango_partners_by_phone(%(key)s, %(company)s)",
    ):
        cr.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement,
            {"key": phones.e164_key(number), "company": company_id},
        )
        plans.append("\n".join(row[0] for row in cr.fetchall()))
    return plans


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--samples", type=int, default=2000, help="callers timed per series"
    )
    parser.add_argument("--baseline-samples", type=int, default=100)
    parser.add_argument(
        "--oca-samples",
        type=int,
        default=5,
        help="OCA's unanchored ilike reads the whole table: fewer samples",
    )
    parser.add_argument("--db", default="mango_bench_phone")
    add_odoo_argument(parser)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="use the database of an earlier --keep-db run instead of installing "
        "anew (implies --keep-db)",
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if any(size % GROUP for size in sizes):
        raise SystemExit(f"sizes are multiples of {GROUP} (whole groups of partners)")

    create_database(args)
    sys.path.insert(0, str(Path(args.odoo).resolve().parent))
    import odoo
    from odoo import api as odoo_api
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        [
            f"--addons-path={addons_path(args.odoo)}",
            "-d",
            args.db,
            "--log-level=warn",
        ]
    )
    registry = Registry(args.db)
    conn = psycopg2.connect(dbname=args.db)
    with conn.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM res_partner WHERE ref IS DISTINCT FROM %s",
            [BENCH_REF],
        )
        existing = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM res_partner WHERE ref = %s", [BENCH_REF])
        already = cr.fetchone()[0]
    conn.rollback()
    if already and already not in sizes:
        raise SystemExit(
            f"{args.db} holds {already:,} benchmark partners: measure at that size "
            "(--sizes) or drop it"
        )
    with registry.cursor() as cr:
        env = odoo_api.Environment(cr, odoo.SUPERUSER_ID, {})
        salesperson(env)
        other_company_id = other_company(env).id
        cr.commit()
    rows = []
    loaded = already
    try:
        for size in sizes:
            if size < loaded:
                continue
            if size > loaded:
                log(f"loading partners up to {size:,} (INSERT … generate_series)")
                begin = time.monotonic()
                insert_partners(conn, loaded, size, other_company_id)
                log(
                    f"loaded in {time.monotonic() - begin:.0f} s (load {load_average()})"
                )
                loaded = size
            wait_for_indexes(conn)
            with registry.cursor() as cr:
                env = odoo_api.Environment(cr, odoo.SUPERUSER_ID, {})
                first = first_bench_id(cr)
                checked = check_rows_as_the_orm_stores_them(env, cr, first)
                log(f"{checked} generated rows equal their ORM-made twins")
                log(f"measuring at {size:,} partners")
                rows.append((size, *measure(args, size, first, env, cr)))
    finally:
        conn.close()
        if not args.keep_db and not args.reuse_db:
            Registry.delete(args.db)
            odoo.sql_db.close_db(args.db)  # the pool's connections, or dropdb fails
            subprocess.run(["dropdb", "--if-exists", args.db], check=False)

    print()
    print(
        f"Caller lookup on Odoo {odoo.release.version}: {args.samples} callers per "
        f"size (70 % known, 20 % unknown, 10 % extensions; 7…/+7…/8… spellings), "
        f"interleaved on one cursor; baselines on {args.baseline_samples} (OCA "
        f"{args.oca_samples}); {existing} partners preinstalled; load = 1/5/15 min"
    )
    header = (
        f"{'partners':>10} | {'lookup':<44} | {'p50 ms':>8} | {'p95 ms':>8} | "
        f"{'p50 / SELECT 1':>14} | {'p95 / SELECT 1':>14} | {'load':>14}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "select1": "floor: SELECT 1 round trip, same cursor",
        "superuser": "_mango_find_by_phone, superuser (fold)",
        "user": "_mango_find_by_phone, salesperson (card)",
        "odoo": "odoo: phone_mobile_search ilike",
        "oca": "oca base_phone: ilike %last8",
    }
    verdicts = []
    for size, results, by_kind in rows:
        print(f"{size:>10,} | {results['memory']}")
        floor_p50, floor_p95 = percentiles(results["select1"][0])
        for key, label in labels.items():
            timings, load = results[key]
            p50, p95 = percentiles(timings)
            print(
                f"{size:>10,} | {label:<44} | {p50:>8.3f} | {p95:>8.3f} | "
                f"{p50 / floor_p50:>13.2f}x | {p95 / floor_p95:>13.2f}x | {load:>14}"
            )
        for key in ("superuser", "user"):
            for kind in sorted({kind for _key, kind in by_kind}):
                p50, p95 = percentiles(by_kind[(key, kind)])
                label = f"  {key}, {kind} callers"
                print(
                    f"{size:>10,} | {label:<44} | {p50:>8.3f} | {p95:>8.3f} | "
                    f"{p50 / floor_p50:>13.2f}x | {p95 / floor_p95:>13.2f}x | "
                    f"{results[key][1]:>14}"
                )
        verdicts.append((size, floor_p95, results))
        print()
        print(
            f"Phases at {size:,} partners (ms; fold = superuser, card = "
            "salesperson; ratios against the SELECT 1 of this table)"
        )
        phases = results["phases"]
        floor_p50, floor_p95 = percentiles(phases["SELECT 1 round trip"][0])
        # The floor, then each path's steps in the order they run (a stable
        # sort keeps the steps of a path in their order).
        order = {"SELECT 1 round trip": 0, "fold": 1, "card": 2}
        for label in sorted(phases, key=lambda label: order[label.split(":")[0]]):
            timings, load = phases[label]
            p50, p95 = percentiles(timings)
            print(
                f"{size:>10,} | {label:<44} | {p50:>8.3f} | {p95:>8.3f} | "
                f"{p50 / floor_p50:>13.2f}x | {p95 / floor_p95:>13.2f}x | {load:>14}"
            )
        for label, (timings, load, pages) in results["server"].items():
            p50, p95 = percentiles(timings)
            hits = statistics.mean(hit for hit, _read in pages)
            reads = statistics.mean(read for _hit, read in pages)
            print(
                f"{size:>10,} | {label:<44} | {p50:>8.3f} | {p95:>8.3f} | "
                f"{p50 / floor_p50:>13.2f}x | {p95 / floor_p95:>13.2f}x | {load:>14}"
                f" | pages: {hits:.1f} hit, {reads:.2f} read"
            )
    size, _floor_p95, results = verdicts[-1]
    for plan in results["plans"]:
        print()
        print(f"EXPLAIN (ANALYZE, BUFFERS) at {size:,} partners, a known caller:")
        print(plan)
    print()
    print(
        "Python speed reference (5,000,000 additions, best of 3): "
        f"{cpu_reference_ms()} ms (load {load_average()})"
    )
    status = 0
    size, floor_p95, results = verdicts[-1]
    for key in ("superuser", "user"):
        p95 = percentiles(results[key][0])[1]
        met = p95 <= TARGET_RATIO * floor_p95
        status |= not met
        print(
            f"Target p95 <= {TARGET_RATIO:g} x SELECT 1 p95 at {size:,} partners, "
            f"{labels[key]}: {'MET' if met else 'MISSED'} ({p95:.3f} ms vs "
            f"{floor_p95:.3f} ms = {p95 / floor_p95:.2f}x; load {results[key][1]})"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
