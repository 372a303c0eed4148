"""Groups, their headings in the user form, and who is in them, on each series.

- Headings. Odoo 18.0 files a group under an ``ir.module.category``; 19.0 under a
  ``res.groups.privilege`` (which sits in a category) and refuses ``category_id``
  on a group. Our XML declares the categories only; ``place_groups`` files each
  group at install: under the category on 18.0, under a privilege named and
  ordered like that category (XML id ``<module>.privilege_<category>``) on 19.0.
- Membership. 18.0 stores every implied group on the user (``groups_id``,
  ``res.groups.users``, ``trans_implied_ids``); 19.0 stores only the assigned
  ones (``group_ids``, ``user_ids``) and computes the rest (``all_group_ids``,
  ``all_user_ids``, ``all_implied_ids``). The names below are the ones to write
  with and the ones to read "everybody who has it" from.
"""

from . import ODOO_19

#: res.users field holding the groups given to the user (write through it).
USER_GROUPS = "group_ids" if ODOO_19 else "groups_id"
#: res.users field with every group the user has, implied ones included.
USER_ALL_GROUPS = "all_group_ids" if ODOO_19 else "groups_id"
#: res.groups field with every user who has the group, through implication too.
GROUP_ALL_USERS = "all_user_ids" if ODOO_19 else "users"
#: ir.ui.menu field with the groups that see the menu.
MENU_GROUPS = "group_ids" if ODOO_19 else "groups_id"
#: res.groups field with every group it implies, transitively.
GROUP_ALL_IMPLIED = "all_implied_ids" if ODOO_19 else "trans_implied_ids"


def users_of(group):
    """Every user who has ``group``, through another group too."""
    return group[GROUP_ALL_USERS]


def groups_of(user):
    """Every group ``user`` has, implied ones included."""
    return user[USER_ALL_GROUPS]


def groups_granting(groups):
    """The groups whose rows in the users-groups table give ``groups``: 18.0
    writes every implied group there, 19.0 only the assigned ones, so on 19.0
    the groups that imply them count too."""
    return groups.all_implied_by_ids if ODOO_19 else groups


def place_groups(env, placements):
    """File groups under their heading in the user form.

    :param placements: ``{group xml id: category xml id}``; the category is the
        18.0 heading; on 19.0 a privilege with the category's name and sequence,
        in the category's parent, is made for it (once) and used instead.
    """
    for group_xmlid, category_xmlid in placements.items():
        group = env.ref(group_xmlid)
        category = env.ref(category_xmlid)
        if not ODOO_19:
            group.category_id = category
            continue
        group.privilege_id = _privilege_for(env, category)


def _privilege_for(env, category):
    module, name = category.get_external_id()[category.id].split(".", 1)
    xmlid = f"{module}.privilege_{name}"
    values = {
        "name": category.name,
        "sequence": category.sequence,
        "category_id": (category.parent_id or category).id,
    }
    # Created or updated as an XML record is, and declared loaded, so that an
    # update does not take it for a leftover and delete it.
    return env["res.groups.privilege"]._load_records(
        [{"xml_id": xmlid, "values": values, "noupdate": False}]
    )


def translate_privileges_as_headings(env):
    """Give the privileges :func:`place_groups` made the name their category has
    in every installed language: the addons' translation files name the 18.0
    category (an entry for the 19.0-only privilege model would be an error on
    18.0), and Odoo loads them after the privileges exist."""
    if not ODOO_19:
        return
    links = env["ir.model.data"].search(
        [
            ("module", "=like", "mango\\_%"),
            ("model", "=", "res.groups.privilege"),
            ("name", "=like", "privilege\\_%"),
        ]
    )
    languages = [code for code, _name in env["res.lang"].get_installed()]
    for link in links:
        category = env.ref(
            f"{link.module}.{link.name.removeprefix('privilege_')}",
            raise_if_not_found=False,
        )
        if not category or category._name != "ir.module.category":
            continue
        env["res.groups.privilege"].browse(link.res_id).update_field_translations(
            "name", {code: category.with_context(lang=code).name for code in languages}
        )


def user_form_headings(env):
    """How the user form offers groups: ``{heading xml id: (kind, groups)}``.

    The heading is named by the category our XML declares, on both series (on
    19.0 through the privilege made for it); ``kind`` is ``"selection"`` for one
    choice among the groups (19.0 offers every privilege so), ``"boolean"`` for
    separate boxes.
    """
    if not ODOO_19:
        return {
            app.get_external_id().get(app.id): (kind, groups)
            for app, kind, groups, _category in env[
                "res.groups"
            ].get_groups_by_application()
            if app
        }
    hierarchy = env["res.groups"]._get_view_group_hierarchy()
    headings = {}
    for privilege_id, privilege in hierarchy["privileges"].items():
        record = env["res.groups.privilege"].browse(privilege_id)
        xmlid = record.get_external_id().get(privilege_id) or ""
        module, _dot, name = xmlid.partition(".")
        heading = f"{module}.{name.removeprefix('privilege_')}" if name else ""
        groups = env["res.groups"].browse(privilege["group_ids"])
        headings[heading] = ("selection", groups)
    return headings
