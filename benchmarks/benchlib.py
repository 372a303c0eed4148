"""What the benchmark scripts share: progress lines, Odoo's addons path, databases.

The scripts run as ``python3 benchmarks/<name>.py``, which puts this folder on the
path, so they import it as ``benchlib``.
"""

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


def database_exists(name):
    conn = psycopg2.connect(dbname="postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return bool(cr.fetchone())
    finally:
        conn.close()
