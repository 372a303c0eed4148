#!/usr/bin/env python3
"""Directory sync benchmark: mango_ldap on a real slapd, bare-ORM baseline in the same run.

The script starts a throw-away OpenLDAP on 127.0.0.1 (``scripts/ldap/slapd.sh --users N
--bulk``: sample people in ``ou=people``, nested groups, loaded offline by one ``slapadd``),
makes private copies of a template database that has
``mango_ldap`` installed (built on first use with ``odoo-bin -i mango_ldap``, brought up to
the current code with ``-u`` on later runs) and runs each measurement in its own Python
process, so peak memory is per scenario:

* **import**: first full import of N entries into users + employees (+ links, group grants),
  the way the cron runs it (a commit per batch), with the worker's resident memory after
  10 %, 50 % and 100 % of the pages (flat: the planner's registries are rows of the run,
  not the worker's memory); then, in the same process, the bare-ORM baseline
  (``res.users`` + ``hr.employee`` pairs created in batches of 250 with the same context,
  no directory, rolled back), a re-sync with nothing changed, and a delta run after
  ``--changes`` entries changed in the directory.
* **memory**: the same first import with 1,000 entries (``(uid=user0*)``), for the peak
  memory comparison with the N-entry import.
* **pbx**: provisioning of 100 people on the Mango simulator (``member/create`` + ``sip/create``
  each) through the account's client and its rate limiter, against the simulator's limit.

Targets (issue 17): import of 100,000 ≤ 30 min with memory flat, unchanged re-sync ≤ 60 s,
1,000 changes in a delta run ≤ 30 s (import and re-sync targets scale with ``--users``);
the bare ORM's pairs/s of the same run beside the import's; PBX at the documented rate (10
requests/s per product). Every figure has the load average (1 min) measured with it.

Usage::

    python3 benchmarks/bench_ldap_sync.py [--users 100000] [--changes 1000] [--resyncs 3]
        [--template ldap_bench_tpl_19_0] [--odoo ODOO_BIN] [--keep-db]
        [--ldap-env-file /tmp/mango-slapd.X/env.sh]

``--keep-db`` keeps the databases and the slapd (its env.sh is printed): pass it back
with ``--ldap-env-file`` to skip building the directory next time.

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
# issue 17, for 100,000 people (import and re-sync scale with the size) and 1,000 changes
TARGETS = {"import": 1800.0, "resync": 60.0, "delta": 30.0}
TARGET_USERS = 100000
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
    # A template left by an earlier checkout is brought up to this code's
    # schema: updating only mango_ldap would leave the models its dependency
    # gained since then without their tables.
    if db_exists(name):
        action, modules = "-u", "mango_telephony,mango_ldap"
    else:
        action, modules = "-i", "mango_ldap"
    log(
        f"{'updating' if action == '-u' else 'building'} template database {name}"
        f" (odoo-bin {action} {modules})"
    )
    subprocess.run(
        [
            sys.executable,
            odoo_bin,
            f"--addons-path={addons_path(odoo_bin)}",
            "-d",
            name,
            action,
            modules,
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
        [
            "bash",
            str(ROOT / "scripts/ldap/slapd.sh"),
            "start",
            "--users",
            str(users),
            "--bulk",
        ],
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


def current_rss_mb():
    """Resident set size of this process now (MB)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def load1():
    return os.getloadavg()[0]


def watch_memory(samples):
    """Record (entries read, RSS now, peak RSS, load) at every page of the runs."""
    from odoo.addons.mango_ldap.sync import DirectorySync

    original = DirectorySync._on_page

    def on_page(self_sync, callback):
        inner = original(self_sync, callback)

        def recorded(pages, entries):
            inner(pages, entries)
            samples.append((entries, current_rss_mb(), rss_mb(), load1()))

        return recorded

    DirectorySync._on_page = on_page


def at_share(samples, total, share):
    """The first sample at or past ``share`` of ``total`` entries."""
    for sample in samples:
        if sample[0] >= share * total:
            return sample
    return samples[-1] if samples else (0, 0.0, 0.0, 0.0)


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
            # room for 100,000 people and more (1000-99999 left 1,000 without one)
            "extension_range_from": 10000,
            "extension_range_to": 299999,
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


def change_entries(ldap_env, count, shift=0, users=None):
    stamp = time.strftime("%H%M%S")
    import ldap3

    conn = admin_connection(ldap_env)
    # spread over the directory (every 7th person while there are enough)
    step = 7 if not users or users >= 7 * count + shift else 1
    for i in range(1, count + 1):
        number = i * step + shift
        uid = f"user{number:04d}"
        dn = (
            f"uid={uid},ou=sales,{PEOPLE}" if number % 5 == 0 else f"uid={uid},{PEOPLE}"
        )
        # unique per run: a value the directory already holds is no change
        conn.modify(
            dn, {"title": [(ldap3.MODIFY_REPLACE, [f"Bench {stamp} {i}.{shift}"])]}
        )
    conn.unbind()


def earlier_import(env):
    """The first run of a database kept by an earlier benchmark (``--reuse-db``):
    its directory and the import's figures as that run recorded them."""
    run = env["mango.ldap.sync.run"].search([], order="id", limit=1)
    seconds = (run.finished_at - run.started_at).total_seconds()
    result = {
        "entries": run.entries_seen,
        "created": run.created_count,
        "errors": run.error_count,
        "state": run.state,
        "import_s": seconds,
        "import_load": float("nan"),
        "rss_before_mb": 0.0,
        "rss_peak_mb": 0.0,
        "rss_at": None,
        "reused": True,
    }
    return run.directory_id, result


def worker_import(args, ldap_env, extra):
    env = worker_env(args)
    if extra.get("reuse"):
        directory, result = earlier_import(env)
        run = directory.env["mango.ldap.sync.run"].search([], order="id", limit=1)
        return worker_runs(env, directory, run, result, ldap_env, extra)
    directory = make_directory(env, ldap_env, user_filter=extra.get("user_filter"))
    samples = []
    watch_memory(samples)
    rss_before = rss_mb()
    load = load1()
    run, import_s = timed_run(directory)
    result = {
        "entries": run.entries_seen,
        "created": run.created_count,
        "errors": run.error_count,
        "state": run.state,
        "import_s": import_s,
        "import_load": max(load, load1()),
        "rss_before_mb": rss_before,
        "rss_peak_mb": rss_mb(),
        # RSS now / peak RSS / load after 10 %, 50 % and 100 % of the pages
        "rss_at": {
            str(share): at_share(samples, run.entries_seen, share)
            for share in (0.1, 0.5, 1.0)
        },
    }
    samples.clear()
    return worker_runs(env, directory, run, result, ldap_env, extra)


def worker_runs(env, directory, run, result, ldap_env, extra):
    """After the import: the baseline, the re-syncs and the delta."""
    if extra.get("full"):
        load = load1()
        result["baseline_pairs_s"] = baseline_pairs(
            env, extra.get("baseline_pairs") or 1000
        )
        result["baseline_load"] = max(load, load1())
        # the last re-sync's watermark is the delta's starting point
        result["delta_waited_s"] = wait_until_groups_settled(ldap_env)
        runs, loads = [], []
        for _ in range(extra.get("resyncs") or 3):
            loads.append(load1())
            rerun, seconds = timed_run(directory)
            runs.append(seconds)
            result["resync_changes"] = rerun.updated_count + rerun.created_count
        result["resync_s"] = statistics.median(runs)
        result["resync_runs_s"] = runs
        result["resync_load"] = max(loads + [load1()])
        changes = extra.get("changes") or 1000
        change_entries(ldap_env, changes, users=run.entries_seen)
        load = load1()
        delta, delta_s = timed_run(directory, mode="delta")
        result.update(
            changes=changes,
            delta_s=delta_s,
            delta_load=max(load, load1()),
            delta_updated=delta.updated_count,
            delta_mode=delta.mode,
            delta_state=delta.state,
        )
        if extra.get("full_after_delta"):
            # other changes picked up by a full run, for comparison
            change_entries(ldap_env, changes, shift=3, users=run.entries_seen)
            load = load1()
            full, full_s = timed_run(directory)
            result.update(
                full_after_delta_s=full_s,
                full_updated=full.updated_count,
                full_load=max(load, load1()),
            )
        result["rss_peak_end_mb"] = rss_mb()
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
            "load": load1(),
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
    parser.add_argument("--users", type=int, default=TARGET_USERS)
    parser.add_argument(
        "--changes", type=int, default=1000, help="entries changed for the delta run"
    )
    parser.add_argument(
        "--resyncs", type=int, default=3, help="unchanged re-syncs (median)"
    )
    parser.add_argument(
        "--full-after-delta",
        action="store_true",
        help="also time a full run after as many other changes",
    )
    parser.add_argument(
        "--template", help="template database (default: ldap_bench_tpl_<series>)"
    )
    add_odoo_argument(parser)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--reuse-db",
        help="the big database kept by an earlier run (with --ldap-env-file): its"
        " import is reported as recorded, the other runs are measured again",
    )
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
    parser.add_argument("--skip-pbx", action="store_true")
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
        build_s = None
    else:
        log(f"starting slapd with {args.users} people (slapadd)")
        t0 = time.perf_counter()
        ldap_env = start_slapd(args.users)
        build_s = time.perf_counter() - t0
        log(f"slapd ready in {build_s:.0f} s")
    # the machine is shared: the verdicts only mean something next to its load
    load_before = os.getloadavg()
    dbs = {
        name: f"{args.template}_{name}_{os.getpid()}"
        for name in ("big", "small", "pbx")
    }
    pbx = None
    if args.reuse_db:
        dbs["big"] = args.reuse_db
    try:
        for name, db in dbs.items():
            if not (name == "big" and args.reuse_db):
                copy_db(args.template, db)
        log(
            f"scenario: import of every entry + baseline + re-sync + {args.changes}"
            " changes"
        )
        big = run_worker(
            "import",
            dbs["big"],
            ldap_env,
            args.odoo,
            full=True,
            user_filter=args.big_filter,
            baseline_pairs=args.baseline_pairs,
            changes=args.changes,
            resyncs=args.resyncs,
            full_after_delta=args.full_after_delta,
            reuse=bool(args.reuse_db),
        )
        log("scenario: import of 1,000 entries (memory comparison)")
        small = run_worker(
            "import", dbs["small"], ldap_env, args.odoo, user_filter=args.small_filter
        )
        if not args.skip_pbx:
            log("scenario: PBX provisioning of 100 people on the simulator")
            pbx = run_worker(
                "pbx", dbs["pbx"], ldap_env, args.odoo, user_filter="(uid=user01*)"
            )
    finally:
        if args.keep_db:
            log(
                "kept: databases "
                + ", ".join(dbs.values())
                + f"; slapd: --ldap-env-file {ldap_env['SLAPD_TEST_DIR']}/env.sh"
            )
        else:
            if not args.ldap_env_file:
                stop_slapd(ldap_env)
            for name, db in dbs.items():
                if not (name == "big" and args.reuse_db):
                    drop_db(db)

    load_after = os.getloadavg()
    print_report(args, big, small, pbx, build_s, load_before, load_after)
    return 0


def print_report(args, big, small, pbx, build_s, load_before, load_after):
    """The table: each figure with its target, verdict and the load beside it."""
    scale = big["entries"] / TARGET_USERS
    import_target = TARGETS["import"] * scale
    resync_target = TARGETS["resync"] * scale
    pairs_s = big["created"] / big["import_s"]
    baseline = big["baseline_pairs_s"]
    small_growth = small["rss_peak_mb"] - small["rss_before_mb"]
    big_growth = big["rss_peak_mb"] - big["rss_before_mb"]
    rss = big["rss_at"]
    rows = [
        (
            "build directory (slapadd)",
            f"{args.users} people",
            f"{build_s:.1f} s" if build_s is not None else "reused",
            "",
            "",
            f"{load_before[0]:.2f}",
        ),
        (
            "first import" + (" (as recorded earlier)" if big.get("reused") else ""),
            f"{big['entries']} entries → {big['created']} users+employees",
            f"{big['import_s']:.1f} s",
            f"≤ {import_target:.0f} s",
            verdict(big["import_s"], import_target),
            f"{big['import_load']:.2f}",
        ),
        (
            "  import pairs/s",
            f"{big['errors']} errors, state {big['state']}",
            f"{pairs_s:.1f} /s",
            "",
            "",
            f"{big['import_load']:.2f}",
        ),
        (
            "  bare ORM pairs/s (baseline)",
            f"{args.baseline_pairs} res.users+hr.employee, rolled back",
            f"{baseline:.1f} /s",
            f"import = {pairs_s / baseline:.0%} of it",
            "",
            f"{big['baseline_load']:.2f}",
        ),
    ]
    for share in ("0.1", "0.5", "1.0") if rss else ():
        rss_10, rss_100 = rss["0.1"][1], rss["1.0"][1]
        entries, now, peak, load = rss[share]
        rows.append(
            (
                f"  worker RSS after {float(share):.0%} of pages",
                f"{entries} entries read",
                f"{now:.0f} MB (peak {peak:.0f} MB)",
                "flat" if share == "1.0" else "",
                ("flat" if rss_100 <= 1.25 * rss_10 else "GROWS")
                if share == "1.0"
                else "",
                f"{load:.2f}",
            )
        )
    rows += [
        (
            "  peak RSS growth vs 1,000 import",
            f"{big_growth:.0f} MB vs {small_growth:.0f} MB",
            f"{big_growth / max(small_growth, 1):.1f}×",
            "",
            "",
            "",
        ),
        (
            "re-sync, nothing changed",
            f"median of {len(big['resync_runs_s'])}, {big['resync_changes']} writes",
            f"{big['resync_s']:.1f} s",
            f"≤ {resync_target:.0f} s",
            verdict(big["resync_s"], resync_target),
            f"{big['resync_load']:.2f}",
        ),
        (
            f"{big['changes']} changed entries",
            f"{big['delta_mode']} run, {big['delta_updated']} updated"
            + (
                f" (groups settled {big['delta_waited_s']:.0f} s first)"
                if big.get("delta_waited_s")
                else ""
            ),
            f"{big['delta_s']:.1f} s",
            f"≤ {TARGETS['delta']:.0f} s",
            verdict(big["delta_s"], TARGETS["delta"]),
            f"{big['delta_load']:.2f}",
        ),
    ]
    if "full_after_delta_s" in big:
        rows.append(
            (
                f"{big['changes']} other changes, full run",
                f"{big['full_updated']} updated",
                f"{big['full_after_delta_s']:.1f} s",
                "",
                "",
                f"{big['full_load']:.2f}",
            )
        )
    if pbx is not None:
        rows.append(
            (
                "PBX provisioning",
                f"{pbx['people']} people, {pbx['general_requests']} member/sip"
                f" requests, {pbx['rejected']} refused",
                f"busiest second {pbx['busiest_second']},"
                f" sustained {pbx['sustained_per_s']:.1f}/s",
                f"never > {PBX_LIMIT}/s, sustained ≥ {0.9 * PBX_LIMIT:.0f}/s",
                "OK"
                if pbx["busiest_second"] <= PBX_LIMIT
                and pbx["sustained_per_s"] >= 0.9 * PBX_LIMIT
                and not pbx["rejected"]
                and not pbx["errors"]
                else "MISSED",
                f"{pbx.get('load', 0.0):.2f}",
            )
        )
    header = ("scenario", "detail", "measured", "target", "verdict", "load 1m")
    width = [max(len(h), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
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


if __name__ == "__main__":
    sys.exit(main())
