"""Every translatable term an addon exports must be translated in each shipped
language: our users read Russian and Finnish, and an untranslated label shows up
in English in the middle of their screens."""

import os

import polib

from odoo.modules.module import get_module_path
from odoo.tools.translate import TranslationModuleReader

SHIPPED_LANGUAGES = ("ru", "fi")


def exported_terms(cr, module):
    """The source terms Odoo would put in the module's .pot (code, views, data)."""
    reader = TranslationModuleReader(cr, modules=[module])
    return {row[4] for row in reader if row[0] == module and row[4]}


def missing_translations(cr, module):
    """``{lang: [term, …]}`` of exported terms without a usable translation."""
    i18n = os.path.join(get_module_path(module), "i18n")
    terms = exported_terms(cr, module)
    missing = {}
    for lang in SHIPPED_LANGUAGES:
        path = os.path.join(i18n, f"{lang}.po")
        if not os.path.exists(path):
            missing[lang] = sorted(terms)
            continue
        translated = {
            entry.msgid
            for entry in polib.pofile(path)
            if entry.msgstr and not entry.obsolete and "fuzzy" not in entry.flags
        }
        absent = sorted(terms - translated)
        if absent:
            missing[lang] = absent
    return missing


def untemplated_terms(cr, module):
    """Exported terms absent from the module's .pot (the template is stale)."""
    path = os.path.join(get_module_path(module), "i18n", f"{module}.pot")
    if not os.path.exists(path):
        return sorted(exported_terms(cr, module))
    templated = {entry.msgid for entry in polib.pofile(path)}
    return sorted(exported_terms(cr, module) - templated)


class TranslationCompletenessMixin:
    """Use in a TransactionCase with ``translated_module = "<addon>"``."""

    translated_module = None
    # Odoo 18 collects only the test methods a class defines itself, unless told.
    allow_inherited_tests_method = True

    def test_every_term_translated(self):
        missing = missing_translations(self.env.cr, self.translated_module)
        report = "\n".join(
            f"{lang}: {len(terms)} untranslated, e.g. {terms[:5]}"
            for lang, terms in missing.items()
        )
        self.assertFalse(missing, f"{self.translated_module}:\n{report}")

    def test_template_is_current(self):
        stale = untemplated_terms(self.env.cr, self.translated_module)
        self.assertFalse(
            stale,
            f"{self.translated_module}/i18n/{self.translated_module}.pot lacks "
            f"{len(stale)} terms, e.g. {stale[:5]}: re-export it",
        )
