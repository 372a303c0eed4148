from . import models
from . import wizards
from .sync.registries import drop_table as _drop_run_registry


def uninstall_hook(env):
    """Drop what the module created in SQL rather than through the ORM, which
    removes only its own tables and columns."""
    _drop_run_registry(env.cr)
