#!/usr/bin/env python3
"""Directory sync benchmark: mango_ldap on a real slapd, bare-ORM baseline in the same run.

The script starts a throw-away OpenLDAP (``scripts/ldap/slapd.sh --users N``, sample people in
``ou=people``, nested groups), makes private copies of a template database that has
``mango_ldap`` installed (built on first use with ``odoo-bin -i mango_ldap``, brought up to
the current code with ``-u`` on later runs) and runs each measurement in its own Python
process, so peak memory is per scenario:

* **import**: first full import of N entries into users + employees (+ links, group grants),
  the way the cron runs it (a commit per batch); then, in the same process, the bare-ORM
  baseline (``res.users`` + ``hr.employee`` pairs created in batches of 250 with the same
  context, no directory, rolled back), a re-sync with nothing changed, and a delta run after
  100 entries changed in the directory.
* **memory**: the same first import with 1,000 entries (``(uid=user0*)``), for the peak
  memory comparison with the N-entry import.
* **pbx**: provisioning of 100 people on the Mango simulator (``member/create`` + ``sip/create``
  each) through the account's client and its rate limiter, against the simulator's limit.

Targets (issue): import of 10,000 ≤ 180 s (on a machine whose bare ORM makes about 80
pairs/s: the table also gives the import's rate as a share of this run's own baseline, where
the target is ≥ 69 %), unchanged re-sync ≤ 15 s, 100 changes ≤ 10 s, memory
flat between 1,000 and 10,000, PBX at the documented rate (10 requests/s per product).

Usage::

    python3 benchmarks/bench_ldap_sync.py [--users 10000] [--template ldap_bench_tpl_19_0]
        [--odoo ODOO_BIN] [--keep-db]

``--odoo`` defaults to the ``odoo-bin`` of the Odoo the running Python imports:
run the script with the virtualenv of the series to measure. The template is kept for
later runs, one per series (default ``ldap_bench_tpl_<series>``): a database of one
series cannot be updated by the other.
"""

import argparse
import bisect
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import (
    add_odoo_argument,
    addons_path,
    log,
    odoo_version,
    without_demo_options,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mango_office.ratelimit import DEFAULT_LIMITS, method_class  # noqa: E402

PEOPLE = "ou=people,dc=example,dc=test"
API_KEY = "benchkey4mango0ldap0sync"
API_SALT = "benchsalt4mango0ldap0sync0signs"
TARGETS = {"import": 180.0, "resync": 15.0, "delta100": 10.0}
# The issue's machine creates about 80 bare-ORM user+employee pairs per second; its
# 10,000 in 180 s (55.6 pairs/s) is this share of that baseline.
ISSUE_BASELINE_PAIRS_S = 80.0
ISSUE_TARGET_RATIO = 10000 / TARGETS["import"] / ISSUE_BASELINE_PAIRS_S
# member/create, member/update and sip/create are "general" methods: 10 per second
# per product (reference §6).
PBX_LIMIT = DEFAULT_LIMITS["general"][0]


def psql(*args, check=True):
    return subprocess.run(
        ["psql", "-d", "postgres", "-Atc", *args],
        check=check,
        capture_output=True,
        text=True,
    )


def db_exists(name):
    return (
        psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").stdout.strip()
        == "1"
    )


def ensure_template(name, odoo_bin):
    # A template left by an earlier checkout is brought up to this code's schema.
    action = "-u" if db_exists(name) else "-i"
    log(
        f"{'updating' if action == '-u' else 'building'} template database {name}"
        f" (odoo-bin {action} mango_ldap)"
    )
    subprocess.run(
        [
            sys.executable,
            odoo_bin,
            f"--addons-path={addons_path(odoo_bin)}",
            "-d",
            name,
            action,
            "mango_ldap",
            *without_demo_options(odoo_bin),
            "--stop-after-init",
            "--log-level=warn",
            "--http-port=18399",
        ],
        check=True,
    )


def copy_db(template, name):
    subprocess.run(["dropdb", "--if-exists", name], check=True)
    subprocess.run(["createdb", "-T", template, name], check=True)


def drop_db(name):
    subprocess.run(["dropdb", "--if-exists", name], check=False)


def start_slapd(users):
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/ldap/slapd.sh"), "start", "--users", str(users)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, value = line[len("export ") :].split("=", 1)
            env[key] = value.strip("'\"")
    return env


def stop_slapd(env):
    subprocess.run(
        ["bash", str(ROOT / "scripts/ldap/slapd.sh"), "stop", env["SLAPD_TEST_DIR"]],
        check=False,
    )


def run_worker(phase, db, ldap_env, odoo_bin, **extra):
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        phase,
        "--db",
        db,
        "--odoo",
        odoo_bin,
        "--ldap-env",
        json.dumps(ldap_env),
        "--extra",
        json.dumps(extra),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise RuntimeError(f"worker {phase} failed ({done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"{phase}: {json.dumps(result)}")
    return result


# ----------------------------------------------------------------------------------------
# worker side (one scenario per process)
# ----------------------------------------------------------------------------------------


def rss_mb():
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_env(args):
    import odoo
    from odoo import SUPERUSER_ID, api

    odoo.tools.config.parse_config(
        [f"--addons-path={addons_path(args.odoo)}", "-d", args.db, "--log-level=warn"]
    )
    registry = odoo.modules.registry.Registry(args.db)
    cr = registry.cursor()
    return api.Environment(cr, SUPERUSER_ID, {})


def make_directory(env, ldap_env, user_filter=None, account=None, pbx=False):
    from odoo import Command

    host, port = ldap_env["LDAPS_URI"].split("://", 1)[1].rsplit(":", 1)
    with open(ldap_env["LDAP_CA_FILE"], encoding="ascii") as handle:
        ca_pem = handle.read()
    directory = env["mango.ldap.directory"].create(
        {
            "name": "Benchmark slapd",
            "directory_type": "openldap",
            "transport": "ldaps",
            "server_ids": [Command.create({"host": host, "port": int(port)})],
            "ca_certificate": ca_pem,
            "bind_dn": ldap_env["LDAP_BIND_DN"],
            "bind_password_input": ldap_env["LDAP_BIND_PW"],
            "base_dn_ids": [Command.create({"dn": PEOPLE, "scope": "subtree"})],
            "login_attribute": "uid",
            "user_filter": user_filter or False,
            "account_id": account.id if account else False,
            "create_pbx_users": pbx,
            "max_removals": 0,
            "max_removals_percent": 0,
        }
    )
    directory.action_preset_openldap()
    directory.write(
        {
            "extension_policy": "range",
            "extension_range_from": 1000,
            "extension_range_to": 99999,
            "role_mapping_ids": [
                Command.create(
                    {
                        "group_dn": "cn=pbx-operators,ou=groups,dc=example,dc=test",
                        "group_ids": [
                            Command.set(env.ref("mango_telephony.group_mango_user").ids)
                        ],
                    }
                )
            ],
        }
    )
    if account:
        directory.action_fetch_pbx_options()
    env.cr.commit()
    return directory


def timed_run(directory, mode="full"):
    start = time.perf_counter()
    run = directory._mango_run(mode=mode, dry_run=False, trigger="cron", commit=True)
    elapsed = time.perf_counter() - start
    return run, elapsed


def baseline_pairs(env, count=1000, batch=250):
    """Bare ORM: the same user + employee pairs the sync writes (same context, same
    fields: name, login, e-mail, groups; job title, department, phones, work e-mail),
    without any directory work, links or run log; rolled back afterwards."""
    from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

    Users = env["res.users"].with_context(
        no_reset_password=True,
        tracking_disable=True,
        mail_create_nolog=True,
        mail_create_nosubscribe=True,
        mail_notrack=True,
    )
    Employees = env["hr.employee"].with_context(
        tracking_disable=True,
        mail_create_nolog=True,
        mail_create_nosubscribe=True,
        mail_notrack=True,
    )
    company = env.company
    group = env.ref("base.group_user")
    env.cr.execute("SAVEPOINT bench_baseline")
    department = env["hr.department"].create({"name": "Baseline R&D"})
    start = time.perf_counter()
    for offset in range(0, count, batch):
        numbers = range(offset, min(offset + batch, count))
        users = Users.create(
            [
                {
                    "name": f"Baseline {i}",
                    "login": f"baseline{i}",
                    "email": f"baseline{i}@example.test",
                    "company_id": company.id,
                    "company_ids": [(6, 0, [company.id])],
                    USER_GROUPS: [(6, 0, [group.id])],
                }
                for i in numbers
            ]
        )
        Employees.create(
            [
                {
                    "name": u.name,
                    "user_id": u.id,
                    "company_id": company.id,
                    "job_title": "Engineer",
                    "department_id": department.id,
                    "work_email": u.email,
                    "work_phone": f"+7495100{i:04d}",
                    "mobile_phone": f"+7916200{i:04d}",
                }
                for u, i in zip(users, numbers, strict=True)
            ]
        )
        env.flush_all()
    elapsed = time.perf_counter() - start
    env.cr.execute("ROLLBACK TO SAVEPOINT bench_baseline")
    env.invalidate_all()
    return count / elapsed


def admin_connection(ldap_env):
    import ssl

    import ldap3

    host, port = ldap_env["LDAPS_URI"].split("://", 1)[1].rsplit(":", 1)
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ldap_env["LDAP_CA_FILE"])
    server = ldap3.Server(host, port=int(port), use_ssl=True, tls=tls)
    return ldap3.Connection(
        server,
        ldap_env["LDAP_ROOT_DN"],
        ldap_env["LDAP_ROOT_PW"],
        auto_bind=True,
        raise_exceptions=True,
    )


def wait_until_groups_settled(ldap_env):
    """A delta read escalates to a full one when a mapped group changed since the
    watermark minus the clock-skew margin (groups carry membership that the users'
    own timestamps do not show). The throw-away server's groups were written when
    it started, a few minutes before the delta scenario: wait until they are older
    than the margin before the run whose watermark the delta starts from, so that
    the scenario measures a delta read as in production."""
    import datetime as dt

    from mango_office.directory import DirectoryConfig

    conn = admin_connection(ldap_env)
    conn.search(
        ldap_env["LDAP_BASE_DN"],
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        attributes=["modifyTimestamp"],
    )
    stamps = [e.modifyTimestamp.value for e in conn.entries if e.modifyTimestamp]
    conn.unbind()
    if not stamps:
        return 0.0
    settled = max(stamps) + dt.timedelta(seconds=DirectoryConfig.clock_skew + 2)
    wait = (settled - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if wait > 0:
        log(
            f"waiting {wait:.0f} s until the directory's groups are older than the"
            " delta's clock-skew margin"
        )
        time.sleep(wait)
    return max(wait, 0.0)


def change_entries(ldap_env, count, shift=0):
    stamp = time.strftime("%H%M%S")
    import ldap3

    conn = admin_connection(ldap_env)
    for i in range(1, count + 1):
        number = i * 7 + shift
        uid = f"user{number:04d}"
        dn = (
            f"uid={uid},ou=sales,{PEOPLE}" if number % 5 == 0 else f"uid={uid},{PEOPLE}"
        )
        # unique per run: a value the directory already holds is no change
        conn.modify(
            dn, {"title": [(ldap3.MODIFY_REPLACE, [f"Bench {stamp} {i}.{shift}"])]}
        )
    conn.unbind()


def worker_import(args, ldap_env, extra):
    env = worker_env(args)
    directory = make_directory(env, ldap_env, user_filter=extra.get("user_filter"))
    rss_before = rss_mb()
    run, import_s = timed_run(directory)
    result = {
        "entries": run.entries_seen,
        "created": run.created_count,
        "errors": run.error_count,
        "state": run.state,
        "import_s": import_s,
        "rss_before_mb": rss_before,
        "rss_peak_mb": rss_mb(),
    }
    if extra.get("full"):
        result["baseline_pairs_s"] = baseline_pairs(
            env, extra.get("baseline_pairs") or 1000
        )
        # the last re-sync's watermark is the delta's starting point
        result["delta_waited_s"] = wait_until_groups_settled(ldap_env)
        runs = []
        for _ in range(3):
            rerun, seconds = timed_run(directory)
            runs.append(seconds)
            result["resync_changes"] = rerun.updated_count + rerun.created_count
        result["resync_s"] = statistics.median(runs)
        change_entries(ldap_env, 100)
        delta, delta_s = timed_run(directory, mode="delta")
        result.update(
            delta_s=delta_s,
            delta_updated=delta.updated_count,
            delta_mode=delta.mode,
            delta_state=delta.state,
        )
        # 100 other changes picked up by a full run, for comparison
        change_entries(ldap_env, 100, shift=3)
        full, full_s = timed_run(directory)
        result.update(full_after_delta_s=full_s, full_updated=full.updated_count)
    env.cr.close()
    return result


def worker_pbx(args, ldap_env, extra):
    import copy

    from mango_office.simulator import run_simulator
    from mango_office.simulator.state import DEFAULT_SEED

    env = worker_env(args)
    seed = copy.deepcopy(DEFAULT_SEED)
    seed["employee_limit"] = 100000
    with run_simulator(api_key=API_KEY, api_salt=API_SALT, seed=seed) as sim:
        account = env["mango.account"].create(
            {
                "name": "Benchmark simulator",
                "api_base_url": sim.base_url,
                "api_key": API_KEY,
                "api_salt": API_SALT,
                "ip_filter_mode": "any",
            }
        )
        directory = make_directory(
            env, ldap_env, user_filter=extra["user_filter"], account=account, pbx=False
        )
        timed_run(directory)  # users and employees first: the next run is PBX work only
        directory.create_pbx_users = True
        env.cr.commit()
        before = len(sim.state.users)
        sim.clear_commands()
        run, seconds = timed_run(directory)
        ops = run.pbx_count
        created = len(sim.state.users) - before
        # What the PBX saw, from the simulator's own request log: the busiest
        # second (must never exceed the limit) and the rate kept up in full
        # seconds after the first (the limiter may spend its whole first
        # second's allowance at once, which is within the limit).
        general = sorted(
            command["time"]
            for command in sim.commands()
            if method_class(command["method"]) == "general"
        )
        busiest = max(
            (bisect.bisect_left(general, t + 1.0) - i for i, t in enumerate(general)),
            default=0,
        )
        whole_seconds = int(general[-1] - general[0]) if general else 0
        per_second = [
            bisect.bisect_left(general, general[0] + k + 1.0)
            - bisect.bisect_left(general, general[0] + k)
            for k in range(1, whole_seconds)
        ]
        result = {
            "people": len(directory.link_ids),
            "pbx_ops": ops,
            "pbx_users": created,
            "seconds": seconds,
            "ops_s": ops / seconds if seconds else 0.0,
            "general_requests": len(general),
            "busiest_second": busiest,
            "sustained_per_s": statistics.median(per_second) if per_second else 0.0,
            "rejected": sum(
                1
                for command in sim.commands()
                if command["http_status"] == 429 or command["result"] in (4290, 5008)
            ),
            "errors": run.error_count,
            "state": run.state,
        }
    env.cr.close()
    return result


def worker_main(args):
    ldap_env = json.loads(args.ldap_env)
    extra = json.loads(args.extra or "{}")
    if args.worker == "import":
        result = worker_import(args, ldap_env, extra)
    elif args.worker == "pbx":
        result = worker_pbx(args, ldap_env, extra)
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    print(json.dumps(result))


# ----------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------


def verdict(value, target, lower_is_better=True):
    ok = value <= target if lower_is_better else value >= target
    return "OK" if ok else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument(
        "--template", help="template database (default: ldap_bench_tpl_<series>)"
    )
    add_odoo_argument(parser)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--ldap-env-file", help="reuse a running slapd.sh server (its env.sh)"
    )
    parser.add_argument(
        "--big-filter",
        default=None,
        help="user filter of the big import (default: every entry)",
    )
    parser.add_argument(
        "--small-filter",
        default="(uid=user0*)",
        help="user filter of the memory-comparison import (1,000 entries)",
    )
    parser.add_argument("--baseline-pairs", type=int, default=1000)
    parser.add_argument("--worker")
    parser.add_argument("--db")
    parser.add_argument("--ldap-env")
    parser.add_argument("--extra")
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)

    if not args.template:
        args.template = "ldap_bench_tpl_" + odoo_version(args.odoo).replace(".", "_")
    ensure_template(args.template, args.odoo)
    if args.ldap_env_file:
        with open(args.ldap_env_file, encoding="utf-8") as handle:
            ldap_env = {}
            for line in handle:
                if line.startswith("export "):
                    key, value = line[len("export ") :].strip().split("=", 1)
                    ldap_env[key] = value.strip("'\"")
    else:
        log(f"starting slapd with {args.users} people")
        t0 = time.perf_counter()
        ldap_env = start_slapd(args.users)
        log(f"slapd ready in {time.perf_counter() - t0:.0f} s")
    # the machine is shared: the verdicts only mean something next to its load
    load_before = os.getloadavg()
    dbs = {
        name: f"{args.template}_{name}_{os.getpid()}"
        for name in ("big", "small", "pbx")
    }
    try:
        for db in dbs.values():
            copy_db(args.template, db)
        log("scenario: import of every entry + baseline + re-sync + 100 changes")
        big = run_worker(
            "import",
            dbs["big"],
            ldap_env,
            args.odoo,
            full=True,
            user_filter=args.big_filter,
            baseline_pairs=args.baseline_pairs,
        )
        log("scenario: import of 1,000 entries (memory comparison)")
        small = run_worker(
            "import", dbs["small"], ldap_env, args.odoo, user_filter=args.small_filter
        )
        log("scenario: PBX provisioning of 100 people on the simulator")
        pbx = run_worker(
            "pbx", dbs["pbx"], ldap_env, args.odoo, user_filter="(uid=user01*)"
        )
    finally:
        if not args.ldap_env_file:
            stop_slapd(ldap_env)
        if not args.keep_db:
            for db in dbs.values():
                drop_db(db)

    load_after = os.getloadavg()
    pairs_s = big["created"] / big["import_s"]
    small_growth = small["rss_peak_mb"] - small["rss_before_mb"]
    big_growth = big["rss_peak_mb"] - big["rss_before_mb"]
    extra_per_1k = (big_growth - small_growth) / max(
        (big["entries"] - small["entries"]) / 1000, 1
    )
    rows = [
        (
            "first import",
            f"{big['entries']} entries → {big['created']} users+employees",
            f"{big['import_s']:.1f} s",
            f"≤ {TARGETS['import'] * big['entries'] / 10000:.0f} s (180 s / 10k)",
            verdict(big["import_s"], TARGETS["import"] * big["entries"] / 10000),
        ),
        (
            "  sync pairs/s vs bare ORM",
            f"{pairs_s:.0f} /s vs {big['baseline_pairs_s']:.0f} /s",
            f"{pairs_s / big['baseline_pairs_s']:.0%}",
            f"≥ {ISSUE_TARGET_RATIO:.0%} of bare ORM",
            # The issue's 180 s assumes a machine whose bare ORM makes 80 pairs/s:
            # the same target, measured against this machine's own baseline.
            "OK"
            if pairs_s >= ISSUE_TARGET_RATIO * big["baseline_pairs_s"]
            else "MISSED",
        ),
        (
            "re-sync, nothing changed",
            f"median of 3, {big['resync_changes']} writes",
            f"{big['resync_s']:.1f} s",
            f"≤ {TARGETS['resync']:.0f} s",
            verdict(big["resync_s"], TARGETS["resync"]),
        ),
        (
            "100 changed entries",
            f"{big['delta_mode']} run, {big['delta_updated']} updated"
            + (
                f" (groups settled {big['delta_waited_s']:.0f} s first)"
                if big.get("delta_waited_s")
                else ""
            ),
            f"{big['delta_s']:.1f} s",
            f"≤ {TARGETS['delta100']:.0f} s",
            verdict(big["delta_s"], TARGETS["delta100"]),
        ),
        (
            "100 other changes, full run",
            f"{big['full_updated']} updated",
            f"{big['full_after_delta_s']:.1f} s",
            "",
            "",
        ),
        (
            "peak RSS growth, small import",
            f"{small['entries']} entries",
            f"{small_growth:.0f} MB",
            "",
            "",
        ),
        (
            "peak RSS growth, big import",
            f"{big['entries']} entries: {extra_per_1k:+.1f} MB per 1,000 more",
            f"{big_growth:.0f} MB",
            f"ratio {big_growth / max(small_growth, 1):.1f}×",
            "flat" if big_growth <= 2 * max(small_growth, 1) else "GROWS",
        ),
        (
            "PBX provisioning",
            f"{pbx['people']} people, {pbx['general_requests']} member/sip requests,"
            f" {pbx['rejected']} refused",
            f"busiest second {pbx['busiest_second']},"
            f" sustained {pbx['sustained_per_s']:.1f}/s",
            f"never > {PBX_LIMIT}/s, sustained ≥ {0.9 * PBX_LIMIT:.0f}/s",
            "OK"
            if pbx["busiest_second"] <= PBX_LIMIT
            and pbx["sustained_per_s"] >= 0.9 * PBX_LIMIT
            and not pbx["rejected"]
            and not pbx["errors"]
            else "MISSED",
        ),
    ]
    width = [max(len(str(r[i])) for r in rows) for i in range(5)]
    header = ("scenario", "detail", "measured", "target", "verdict")
    width = [max(w, len(h)) for w, h in zip(width, header, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, width, strict=True))
    print(
        f"Directory sync on Odoo {odoo_version(args.odoo)}; "
        "load average (1/5/15 min): before "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.2f}" for x in load_after)
        + f" on {os.cpu_count()} CPUs"
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, width, strict=True)))
    print()
    print(
        json.dumps(
            {
                "import": big,
                "memory_1k": small,
                "pbx": pbx,
                "load_before": load_before,
                "load_after": load_after,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
