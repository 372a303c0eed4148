"""What the benchmark scripts share: progress lines, which Odoo to run (its
``odoo-bin``, addons path, version and demo-data switch), databases.

The scripts run as ``python3 benchmarks/<name>.py``, which puts this folder on the
path, so they import it as ``benchlib``.
"""

import ast
import importlib.util
import runpy
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def default_odoo_bin():
    """``odoo-bin`` of the Odoo this Python imports, the default of ``--odoo``.

    Found without importing Odoo: the root of the source tree that holds the
    ``odoo`` package (``odoo.__file__``'s parent's parent on 18.0; 19.0's
    ``odoo`` is a namespace package, without ``__file__``, hence its search
    location). None when this Python has no Odoo.
    """
    spec = importlib.util.find_spec("odoo")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    return str(package.parent / "odoo-bin")


def add_odoo_argument(parser):
    """``--odoo``, by default the ``odoo-bin`` of the Odoo this Python imports."""
    default = default_odoo_bin()
    parser.add_argument(
        "--odoo",
        default=default,
        required=default is None,
        help="odoo-bin to run (default: the one of the Odoo this Python imports, "
        f"{default})",
    )


def odoo_addons(odoo_bin):
    """Odoo's own addons folder, next to ``odoo-bin``."""
    return str(Path(odoo_bin).resolve().parent / "addons")


def addons_path(odoo_bin):
    """Odoo's own addons next to ``odoo-bin``, then this repository."""
    return f"{odoo_addons(odoo_bin)},{ROOT}"


def odoo_release(odoo_bin):
    """The ``odoo/release.py`` of the Odoo whose ``odoo-bin`` this is, read (plain
    assignments) without importing Odoo."""
    release = Path(odoo_bin).resolve().parent / "odoo" / "release.py"
    return runpy.run_path(str(release))


def odoo_version(odoo_bin):
    """Version of the Odoo whose ``odoo-bin`` this is (e.g. ``19.0``)."""
    return odoo_release(odoo_bin)["version"]


def without_demo_options(odoo_bin):
    """Options that install without demo data: 18.0 loads it unless told
    ``--without-demo=all``; 19.0 loads it only ``--with-demo`` and warns about
    ``--without-demo``."""
    major = odoo_release(odoo_bin)["version_info"][0]  # 18, or "saas~18"
    return ["--without-demo=all"] if int(str(major).rpartition("~")[2]) < 19 else []


def database_exists(name):
    import psycopg2  # not needed by the scripts that make no database

    conn = psycopg2.connect(dbname="postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return bool(cr.fetchone())
    finally:
        conn.close()


def install_without_demo(odoo_bin, db, modules, http_port=0):
    """Install ``modules`` (comma-separated) into a new database, no demo data."""
    subprocess.run(
        [
            sys.executable,
            odoo_bin,
            f"--addons-path={addons_path(odoo_bin)}",
            "-d",
            db,
            "-i",
            modules,
            *without_demo_options(odoo_bin),
            "--stop-after-init",
            "--log-level=warn",
            f"--http-port={http_port}",
        ],
        check=True,
        cwd=ROOT,
    )


def update_if_older(odoo_bin, db, module="mango_telephony"):
    """Update ``module`` in a database an earlier run kept (``--reuse-db``)
    when it was made by an older version: the update builds what the newer
    code reads (a table, an index, rows derived from the old ones)."""
    import psycopg2

    manifest = ROOT / module / "__manifest__.py"
    wanted = ast.literal_eval(manifest.read_text())["version"]
    conn = psycopg2.connect(dbname=db)
    try:
        with conn.cursor() as cr:
            cr.execute(
                "SELECT latest_version FROM ir_module_module WHERE name = %s", [module]
            )
            installed = cr.fetchone()[0]
    finally:
        conn.close()
    if installed.split(".", 2)[-1] == wanted:
        return
    log(f"updating {module} {installed} -> {wanted} in {db}")
    begin = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            odoo_bin,
            f"--addons-path={addons_path(odoo_bin)}",
            "-d",
            db,
            "-u",
            module,
            "--stop-after-init",
            "--log-level=warn",
            "--http-port=0",
        ],
        check=True,
        cwd=ROOT,
    )
    log(f"updated in {time.monotonic() - begin:.0f} s")


def cpu_reference_ms(rounds=3):
    """The machine's speed for pure Python at this moment: the best of
    ``rounds`` timings of a fixed loop (five million additions), in ms.

    Printed beside the figures, as the load is: the same code measures very
    differently on a slower or busier machine (a shared virtual machine's
    speed was seen to vary by a third within minutes), and figures from two
    machines compare only together with it.
    """
    best = None
    for _round in range(rounds):
        begin = time.perf_counter()
        total = 0
        for number in range(5_000_000):
            total += number
        elapsed = (time.perf_counter() - begin) * 1000
        best = elapsed if best is None else min(best, elapsed)
    return round(best)
