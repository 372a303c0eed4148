from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_telephony.tests.view_check import unformatted_identifiers


@tagged("post_install", "-at_install")
class TestIdentifierFields(TransactionCase):
    """Ports, extensions, codes and ids read as typed, never "51,155"."""

    def test_identifiers_are_not_formatted_as_numbers(self):
        self.assertEqual(unformatted_identifiers(self.env, "mango_ldap"), [])
