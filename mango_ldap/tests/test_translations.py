from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_telephony.tests.translation_check import (
    TranslationCompletenessMixin,
)


@tagged("post_install", "-at_install")
class TestTranslations(TranslationCompletenessMixin, TransactionCase):
    translated_module = "mango_ldap"
