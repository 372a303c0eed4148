"""Test fixtures shared by the pure test suite (``tests/``) and the addons' Odoo
tests: throw-away LDAP servers (:mod:`mango_office.testing.ldap_servers`).

Imported only by tests; the product never needs it.
"""
