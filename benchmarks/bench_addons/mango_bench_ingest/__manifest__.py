{
    "name": "Mango ingest benchmark baseline (test only)",
    "summary": "A bare webhook route for benchmarks/bench_ingest.py; never install "
    "in production",
    "version": "1.0.0",
    "category": "Hidden",
    "website": "https://github.com/mango-odoo/mango-odoo",
    "author": "Mango Odoo Telephony contributors",
    "license": "LGPL-3",
    "depends": ["mango_telephony"],
    "data": ["security/ir.model.access.csv"],
    "installable": True,
}
