#!/usr/bin/env python3
"""Refresh each addon's translation template and merge it into the shipped languages.

For every addon (default: the three of this repository) the script exports the
template ``i18n/<addon>.pot`` from a database where the addons are installed —
the same export as Odoo's ``--i18n-export`` — and merges it into ``i18n/ru.po``
and ``i18n/fi.po`` the way ``msgmerge`` would: translations of unchanged terms
are kept, new terms are added untranslated, terms no longer exported are dropped
(a translation of a term whose source text changed would be a wrong one).
Then it lists, per language, what still needs a translator; the translation
test of each addon fails until that list is empty.

The addons run on Odoo 18.0 and 19.0, whose exports differ a little (19.0
extracts a few more terms from views and scripts): given one ``--odoo`` per
series, the template is the union of their exports, so that it is current, and
every term translated, on both.

Usage::

    python3 scripts/i18n.py [--db DB] [--addons mango_telephony,mango_callback,mango_ldap]
        [--odoo /path/to/odoo-18.0/odoo-bin --odoo /path/to/odoo-19.0/odoo-bin] [--check]

Each ``odoo-bin`` runs with the project's venv of its series
(``.venv/odoo-<series>/bin/python``) when there is one, else with this Python.
Without ``--db`` a throw-away database is created per series (``-i`` all three
addons, whichever are exported: the terms of one depend on what the others install,
no demo data) and dropped afterwards; ``--db`` takes one Odoo. ``--check``
writes nothing and exits 1 when a template is stale or a term is untranslated.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]
ADDONS = ("mango_telephony", "mango_callback", "mango_ldap")
LANGUAGES = ("ru", "fi")


def find_odoo_bin(explicit):
    if explicit:
        return explicit
    found = shutil.which("odoo-bin") or shutil.which("odoo")
    if found:
        return found
    try:
        import odoo
    except ImportError:
        sys.exit("Odoo is not importable and no --odoo given: nothing to export from.")
    candidate = Path(odoo.__file__).resolve().parents[1] / "odoo-bin"
    if not candidate.exists():
        sys.exit(f"odoo-bin not found next to {odoo.__file__}; pass --odoo.")
    return str(candidate)


def addons_path(odoo_bin):
    paths = [str(Path(odoo_bin).resolve().parent / "addons"), str(ROOT)]
    return ",".join(path for path in paths if Path(path).is_dir())


def series_of(odoo_bin):
    """``(major, minor)`` of the Odoo source tree ``odoo_bin`` belongs to."""
    release = Path(odoo_bin).resolve().parent / "odoo" / "release.py"
    match = re.search(r"version_info = \((\d+), (\d+)", release.read_text())
    if not match:
        sys.exit(f"no Odoo version in {release}")
    return int(match.group(1)), int(match.group(2))


def python_for(odoo_bin):
    major, minor = series_of(odoo_bin)
    venv = ROOT / ".venv" / f"odoo-{major}.{minor}" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def odoo(odoo_bin, *args, server=True):
    """Run ``odoo-bin`` with ``args``: as a server that stops after init, or
    (``server=False``) a subcommand such as 19.0's ``i18n export``."""
    options = ["--stop-after-init", "--log-level=warn", "--http-port=0"]
    command = [
        python_for(odoo_bin),
        odoo_bin,
        f"--addons-path={addons_path(odoo_bin)}",
        *(options if server else []),
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        sys.exit(f"odoo-bin failed: {' '.join(args)}")


def export_template(odoo_bin, db, addon):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"{addon}.pot")
        if series_of(odoo_bin) < (19, 0):
            odoo(odoo_bin, "-d", db, f"--i18n-export={out}", f"--modules={addon}")
        else:  # 19.0 moved the export to a subcommand
            odoo(odoo_bin, "i18n", "export", "-d", db, "-o", out, addon, server=False)
        return Path(out).read_text(encoding="utf-8")


def union(templates):
    """One template holding every term of ``templates`` (the first one's order,
    then what only the later ones export, with all their references).

    A record's field is translated by one term: where the series name it
    differently (crm.lead is "Lead/Opportunity" on 18.0, "Lead" on 19.0), the
    first template's term keeps the reference and the later one stays a term
    without it (still in the template, so either series' export is covered).
    """
    merged = polib.pofile(templates[0])
    entries = {(entry.msgctxt, entry.msgid): entry for entry in merged}
    owners = {
        occurrence[0]: entry.msgid
        for entry in merged
        for occurrence in entry.occurrences
        if occurrence[0].startswith("model:")
    }
    for text in templates[1:]:
        for entry in polib.pofile(text):
            entry.occurrences = [
                occurrence
                for occurrence in entry.occurrences
                if owners.setdefault(occurrence[0], entry.msgid) == entry.msgid
                or not occurrence[0].startswith("model:")
            ]
            known = entries.get((entry.msgctxt, entry.msgid))
            if known is None:
                merged.append(entry)
                entries[(entry.msgctxt, entry.msgid)] = entry
                continue
            for occurrence in entry.occurrences:
                if occurrence not in known.occurrences:
                    known.occurrences.append(occurrence)
            for comment in entry.comment.splitlines():
                if comment not in known.comment.splitlines():
                    known.comment = "\n".join(filter(None, [known.comment, comment]))
    return str(merged)


def merge(template, translations):
    """``translations`` brought up to ``template``; returns the new POFile."""
    merged = polib.pofile(template)
    known = {
        (entry.msgctxt, entry.msgid): entry
        for entry in translations
        if not entry.obsolete
    }
    for entry in merged:
        previous = known.get((entry.msgctxt, entry.msgid))
        if previous is not None:
            entry.msgstr = previous.msgstr
            if "fuzzy" in previous.flags:
                entry.flags.append("fuzzy")
    merged.metadata = translations.metadata or merged.metadata
    return merged


def untranslated(po):
    return [
        entry.msgid
        for entry in po
        if not entry.obsolete and (not entry.msgstr or "fuzzy" in entry.flags)
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database with the addons installed (one Odoo)")
    parser.add_argument("--addons", default=",".join(ADDONS))
    parser.add_argument(
        "--odoo", action="append", help="path to odoo-bin; once per Odoo series"
    )
    parser.add_argument("--check", action="store_true", help="report, write nothing")
    args = parser.parse_args()
    addons = [name.strip() for name in args.addons.split(",") if name.strip()]
    odoo_bins = args.odoo or [find_odoo_bin(None)]
    if args.db and len(odoo_bins) > 1:
        sys.exit("--db names one database: give one --odoo with it")

    exports = {addon: [] for addon in addons}
    for odoo_bin in odoo_bins:
        db = args.db
        throwaway = db is None
        if throwaway:
            db = f"mango_i18n_{os.getpid()}_{'_'.join(map(str, series_of(odoo_bin)))}"
            # All of the project's addons, whichever are exported: an addon's
            # terms depend on what else is installed (mango_callback brings
            # website, and with it website_crm's label for leads that
            # mango_telephony's template holds), as in the tests' database.
            installed = [*addons, *(name for name in ADDONS if name not in addons)]
            print(f"installing {', '.join(installed)} into a throw-away database {db}…")
            # 18.0 loads demo data unless told not to; 19.0 only when asked.
            no_demo = ["--without-demo=all"] if series_of(odoo_bin) < (19, 0) else []
            odoo(odoo_bin, "-d", db, "-i", ",".join(installed), *no_demo)
        try:
            for addon in addons:
                exports[addon].append(export_template(odoo_bin, db, addon))
        finally:
            if throwaway:
                subprocess.run(["dropdb", "--if-exists", db], check=False)

    problems = 0
    to_translate = 0
    for addon in addons:
        i18n = ROOT / addon / "i18n"
        template = union(exports[addon])
        pot_path = i18n / f"{addon}.pot"
        current = pot_path.read_text(encoding="utf-8") if pot_path.exists() else ""
        stale = {e.msgid for e in polib.pofile(template)} != {
            e.msgid for e in polib.pofile(current or template)
        } or not current
        if stale:
            problems += 1
            print(f"{addon}: template {'is stale' if args.check else 'refreshed'}")
        if not args.check:
            i18n.mkdir(exist_ok=True)
            pot_path.write_text(template, encoding="utf-8")
        for lang in LANGUAGES:
            po_path = i18n / f"{lang}.po"
            existing = (
                polib.pofile(str(po_path)) if po_path.exists() else polib.POFile()
            )
            merged = merge(template, existing)
            missing = untranslated(merged)
            if missing:
                problems += 1
                to_translate += len(missing)
                print(f"{addon}/{lang}.po: {len(missing)} terms to translate")
                for msgid in missing:
                    print(f"    {msgid[:100]!r}")
            if not args.check:
                po_path.write_text(str(merged), encoding="utf-8")
    if args.check and problems:
        sys.exit(1)
    print(
        f"done; {to_translate} translations to write (listed above)"
        if to_translate
        else "done: every term is translated"
    )


if __name__ == "__main__":
    main()
