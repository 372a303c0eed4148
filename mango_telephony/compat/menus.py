"""The web client's menu tree (``ir.ui.menu.load_menus``) on each series.

18.0 gives each menu ``action`` as ``"<model>,<id>"``; 19.0 splits it into
``action_model``, ``action_id`` and ``action_path``. The click-everywhere tests
cut the tree down to the addon's menus and move an app's first action up to the
app, as the web client does.
"""

from . import ODOO_19

#: The keys of a menu that name its action, on this series.
ACTION_KEYS = ("action_model", "action_id", "action_path") if ODOO_19 else ("action",)


def menu_action(menu):
    """``(model, id)`` of the action a menu of the tree opens, or None."""
    if ODOO_19:
        return (menu["action_model"], menu["action_id"]) if menu["action_id"] else None
    if not menu["action"]:
        return None
    model, record_id = menu["action"].split(",")
    return model, int(record_id)


def move_menu_action(target, source):
    """Give ``target`` the action of ``source``."""
    for key in ACTION_KEYS:
        target[key] = source[key]
