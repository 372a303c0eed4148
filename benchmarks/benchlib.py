"""What the benchmark scripts share: progress lines, Odoo's addons path and version,
databases.

The scripts run as ``python3 benchmarks/<name>.py``, which puts this folder on the
path, so they import it as ``benchlib``.
"""

import runpy
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[1]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def addons_path(odoo_bin):
    """Odoo's own addons next to ``odoo-bin``, then this repository."""
    return f"{Path(odoo_bin).resolve().parent / 'addons'},{ROOT}"


def odoo_version(odoo_bin):
    """Version of the Odoo whose ``odoo-bin`` this is (e.g. ``19.0``), read from its
    ``odoo/release.py`` (plain assignments) without importing Odoo."""
    release = Path(odoo_bin).resolve().parent / "odoo" / "release.py"
    return runpy.run_path(str(release))["version"]


def database_exists(name):
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
            "--without-demo=all",
            "--stop-after-init",
            "--log-level=warn",
            f"--http-port={http_port}",
        ],
        check=True,
        cwd=ROOT,
    )
