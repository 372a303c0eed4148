import importlib.util
import os
import sys

# The shared core `mango_office` ships beside the addons. `pip install .` puts it on
# the path; when the repository is only on Odoo's addons path, expose it from there
# so both ways of installing work. It must be imported under this one name only, or
# its exception classes would exist twice and never match.
if importlib.util.find_spec("mango_office") is None:
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from . import models  # noqa: E402
from . import controllers  # noqa: E402


def uninstall_hook(env):
    """Drop what the module created in SQL rather than through the ORM, which
    removes only its own tables and columns."""
    # The caller lookup's keys, their triggers and functions read columns
    # that uninstalling drops: they must not outlive them.
    from .models.partner_phone_keys import drop_partner_phone_keys

    drop_partner_phone_keys(env.cr)
    env["mango.call"]._mango_drop_number_table()
    env["mango.rate.limit"]._mango_drop_tables()
