"""What differs between Odoo 18.0 and Odoo 19.0, absorbed in one place per concern.

The addons are one codebase for both series. Models, controllers and tests never
compare version numbers: they call the helper of this package that names the
concern (a table constraint, a group's membership, a contact's phone fields, the
progress of a cron…), and only that helper knows how each series spells it.
``docs/architecture.md`` lists every difference and where it is handled.
"""

from odoo.release import version_info

#: The major version of the running Odoo (18 or 19).
ODOO_MAJOR = version_info[0]
#: True on Odoo 19.0 and later.
ODOO_19 = ODOO_MAJOR >= 19
