"""Integers that name something (a port, an extension, a result code, a record id)
are shown as typed: Odoo formats integer fields by the reader's language, so
port 51155 read "51,155" and extension 1000 "1 000". Every such field, in every
view an addon ships or extends, must turn the formatting off."""

import re

from lxml import etree

# Integer fields by name: identifiers, never quantities.
IDENTIFIER_NAME = re.compile(
    r"^(id|seq|port|.*_port|.*_code|.*_reason|.*extension|extension_range_(from|to))$"
)
FORMATTING_OFF = re.compile(r"""['"]enable_formatting['"]\s*:\s*(False|false|0)\b""")


def _root_views(env, module):
    """The primary views the module's views end up in (extensions included)."""
    views = env["ir.ui.view"].browse(
        env["ir.model.data"]
        .search([("module", "=", module), ("model", "=", "ir.ui.view")])
        .mapped("res_id")
    )
    roots = env["ir.ui.view"]
    for view in views.exists():
        root = view
        while root.mode == "extension" and root.inherit_id:
            root = root.inherit_id
        roots |= root
    return roots.filtered(lambda v: v.type in ("list", "form", "kanban", "search"))


def _ours(env, model, field):
    """Fields of the Mango addons (other addons' fields in a view we extend are
    theirs to format)."""
    module = getattr(field, "_module", None) or env[model]._original_module or ""
    return module.startswith("mango_")


def _walk(env, model, node, path, offenders):
    for child in node:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "field":
            name = child.get("name")
            field = env[model]._fields.get(name)
            if (
                field is not None
                and field.type == "integer"
                and _ours(env, model, field)
                and IDENTIFIER_NAME.match(name)
                and child.get("widget") not in ("handle",)
                and not FORMATTING_OFF.search(child.get("options") or "")
            ):
                offenders.append(f"{path}: {model}.{name}")
            if field is not None and field.relational:
                # sub-views of an x2many show the comodel's fields
                _walk(env, field.comodel_name, child, path, offenders)
                continue
        _walk(env, model, child, path, offenders)


def unformatted_identifiers(env, module):
    """``["<view xmlid>: model.field", …]``: identifier integers shown with
    thousands separators in the module's views."""
    offenders = []
    for view in _root_views(env, module):
        arch = env[view.model].get_view(view.id, view.type)["arch"]
        tree = etree.fromstring(arch)
        _walk(env, view.model, [tree], view.xml_id or view.name, offenders)
    return sorted(set(offenders))
