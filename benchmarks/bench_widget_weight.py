"""Weight of the website callback widget's own JS and CSS, against its 8 KB budget.

The widget ships one ES module and one SCSS file in ``web.assets_frontend``. Odoo
minifies JS with rjsmin and compiles SCSS with libsass, then serves the bundle
gzip-compressed; this script does the same to our two files alone and prints the
bytes a visitor downloads for them (the rest of the bundle is Odoo's and cached).

    python3 benchmarks/bench_widget_weight.py

Run with the virtualenv of an Odoo series, it names that Odoo and uses its
rjsmin and libsass; the two files are the same on every series.
"""

import gzip
import pathlib
import sys
from importlib import metadata

from benchlib import default_odoo_bin, odoo_version

ROOT = pathlib.Path(__file__).resolve().parents[1]
JS = ROOT / "mango_callback/static/src/js/mango_callback.esm.js"
SCSS = ROOT / "mango_callback/static/src/scss/mango_callback.scss"
BUDGET = 8 * 1024
# Bootstrap variables the SCSS relies on; Odoo provides them in the real bundle.
SCSS_PRELUDE = "$zindex-fixed: 1030;\n"


def minified_js(source):
    try:
        import rjsmin
    except ImportError:
        sys.exit("rjsmin (an Odoo requirement) is needed: pip install rjsmin")
    return rjsmin.jsmin(source).encode()


def compiled_css(source):
    try:
        import sass
    except ImportError:
        sys.exit("libsass (an Odoo requirement) is needed: pip install libsass")
    return sass.compile(
        string=SCSS_PRELUDE + source, output_style="compressed"
    ).encode()


def tools_header():
    odoo_bin = default_odoo_bin()
    odoo = f"Odoo {odoo_version(odoo_bin)}" if odoo_bin else "no Odoo in this Python"
    versions = []
    for name in ("rjsmin", "libsass"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} ?")
    return f"Callback widget weight, {odoo} ({', '.join(versions)})"


def main():
    js = minified_js(JS.read_text())
    css = compiled_css(SCSS.read_text())
    print(tools_header())
    rows = [
        ("JS (rjsmin)", len(JS.read_bytes()), len(js), len(gzip.compress(js, 9))),
        ("CSS (libsass)", len(SCSS.read_bytes()), len(css), len(gzip.compress(css, 9))),
    ]
    total_gzip = len(gzip.compress(js, 9)) + len(gzip.compress(css, 9))
    print(f"{'asset':<16}{'source B':>10}{'minified B':>12}{'gzip B':>9}")
    for name, source, mini, gz in rows:
        print(f"{name:<16}{source:>10}{mini:>12}{gz:>9}")
    print(f"{'total':<16}{'':>10}{'':>12}{total_gzip:>9}")
    verdict = "within" if total_gzip <= BUDGET else "OVER"
    print(
        f"budget {BUDGET} B gzip: {verdict} ({total_gzip / BUDGET:.0%} of the budget)"
    )
    return 0 if total_gzip <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
