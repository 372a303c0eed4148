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

Usage::

    python3 scripts/i18n.py [--db DB] [--addons mango_telephony,mango_callback,mango_ldap]
        [--odoo /path/to/odoo-bin] [--check]

Without ``--db`` a throw-away database is created (``-i`` the addons, no demo
data) and dropped afterwards. ``--check`` writes nothing and exits 1 when a
template is stale or a term is untranslated.
"""

import argparse
import os
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


def odoo(odoo_bin, *args):
    command = [
        sys.executable,
        odoo_bin,
        f"--addons-path={addons_path(odoo_bin)}",
        "--stop-after-init",
        "--log-level=warn",
        "--http-port=0",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        sys.exit(f"odoo-bin failed: {' '.join(args)}")


def export_template(odoo_bin, db, addon):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"{addon}.pot")
        odoo(odoo_bin, "-d", db, f"--i18n-export={out}", f"--modules={addon}")
        return Path(out).read_text(encoding="utf-8")


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
    parser.add_argument("--db", help="database with the addons installed")
    parser.add_argument("--addons", default=",".join(ADDONS))
    parser.add_argument("--odoo", help="path to odoo-bin")
    parser.add_argument("--check", action="store_true", help="report, write nothing")
    args = parser.parse_args()
    addons = [name.strip() for name in args.addons.split(",") if name.strip()]
    odoo_bin = find_odoo_bin(args.odoo)

    db = args.db
    throwaway = db is None
    if throwaway:
        db = f"mango_i18n_{os.getpid()}"
        print(f"installing {', '.join(addons)} into a throw-away database {db}…")
        odoo(odoo_bin, "-d", db, "-i", ",".join(addons), "--without-demo=all")
    problems = 0
    to_translate = 0
    try:
        for addon in addons:
            i18n = ROOT / addon / "i18n"
            template = export_template(odoo_bin, db, addon)
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
    finally:
        if throwaway:
            subprocess.run(["dropdb", "--if-exists", db], check=False)
    if args.check and problems:
        sys.exit(1)
    print(
        f"done; {to_translate} translations to write (listed above)"
        if to_translate
        else "done: every term is translated"
    )


if __name__ == "__main__":
    main()
