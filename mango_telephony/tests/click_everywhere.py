"""Every menu and window action of one addon, opened in a real browser by an
administrator and by each telephony role.

Why: a compute that did not assign one of its fields crashed Settings → IP
telephony → Directories for everyone who clicked it, while the suite was green:
the tests called the models, nobody opened the menu. Each addon's
``test_click_everywhere`` walks its own menus and actions with this mixin:

* web's clickbot (``@web/webclient/clickbot``, the bot of Odoo's own
  ``test_click_everywhere``) clicks every menu, every filter and every view switch of
  the apps the addon's menus live in. The server hands the browser only the addon's
  menus and their parents (CRM → Calls, Settings → IP telephony → …, Website → …), so
  the bot walks ours and not all of CRM or Settings;
* ``mangoClickEverywhere`` (static/tests/click_everywhere.esm.js) first opens every
  window action of the addon in each view type it offers, an existing record's form
  (each notebook page, each smart button) and a new record's form, plus the views
  the addon adds to other apps (a contact's form, the lead lists, the settings…);
* a menu whose groups a role holds, on a model it may read, must be in the role's
  menu tree: a parent menu must not hide it;
* every field the addon defines reads, on every record set up and on a new one, as
  each of them (``test_every_field_reads``), and every view the addon defines or
  extends is on the walk (``test_every_view_is_walked``).

Both halves wait for the page to settle as the clickbot does (no request in flight,
no render pending) and fail on an error dialog, a failed request, a console error
or warning. Records are created in ``mango_setup_records`` (the demo data has none),
so each form is really opened.
"""

import copy
import json
import logging

from lxml import etree

from odoo import Command
from odoo.tools.safe_eval import safe_eval

from odoo.addons.mango_telephony.compat.groups import MENU_GROUPS, USER_GROUPS
from odoo.addons.mango_telephony.compat.menus import menu_action, move_menu_action
from odoo.addons.web.controllers.utils import clean_action

from .common import MangoSimulatorMixin

MANGO_ADDONS = ("mango_telephony", "mango_callback", "mango_ldap")
WALKER = "@mango_telephony/../tests/click_everywhere.esm"
CLICKBOT_SUCCEEDED = "clickbot test succeeded"
WALK_SUCCEEDED = "mango click everywhere succeeded"

#: Each telephony role with the groups a real holder of it has: telephony people
#: work in CRM (a salesperson, or one who sees all leads).
ROLES = {
    "telephony_user": (
        "sales_team.group_sale_salesman",
        "mango_telephony.group_mango_user",
    ),
    "recording_listener": (
        "sales_team.group_sale_salesman",
        "mango_telephony.group_mango_user",
        "mango_telephony.group_mango_recording_listener",
    ),
    "telephony_supervisor": (
        "sales_team.group_sale_salesman_all_leads",
        "mango_telephony.group_mango_supervisor",
    ),
    "telephony_admin": (
        "sales_team.group_sale_salesman_all_leads",
        "mango_telephony.group_mango_admin",
    ),
}


class _Collector(logging.Handler):
    """Keeps the messages of the records it sees (and lets them through)."""

    def __init__(self, level):
        super().__init__(level)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


class MangoClickEverywhereMixin(MangoSimulatorMixin):
    """Mixed into an ``HttpCase`` tagged ``post_install``, ``-at_install``.

    Set :attr:`mango_addon`, create the addon's records in
    :meth:`mango_setup_records`, and list the other apps' actions whose views the
    addon extends in :attr:`mango_extended_actions`.
    """

    # Odoo's loader collects only the test methods a class defines itself.
    allow_inherited_tests_method = True
    #: the addon whose menus and actions are walked
    mango_addon = None
    #: other apps' actions whose views the addon extends: ``{"action": xmlid,
    #: "views": view types, "groups": xmlid (who opens it), "domain": which
    #: record's form}``
    mango_extended_actions = ()
    #: ``{model: (button names)}``: buttons besides smart buttons that only open
    #: something (a wizard, another record), pressed on each record's form
    mango_navigation_buttons = {}
    #: ``{model: domain}``: the record whose form to open, when some records show
    #: more than others (a call with a recording); any record otherwise
    mango_record_domains = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_sim = cls.mango_start_class_simulator()
        cls.mango_account = cls.mango_create_account(cls.mango_sim)
        cls.mango_admin = cls.env.ref("base.user_admin")
        cls.mango_role_users = {
            role: cls._mango_role_user(role, groups) for role, groups in ROLES.items()
        }
        cls.mango_setup_records()

    @classmethod
    def _mango_role_user(cls, role, groups):
        login = f"mango_click_{role}"
        return (
            cls.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {
                    "name": role.replace("_", " ").capitalize(),
                    "login": login,
                    "password": login,
                    "email": f"{login}@example.com",
                    USER_GROUPS: [
                        Command.set(
                            [cls.env.ref("base.group_user").id]
                            + [cls.env.ref(xmlid).id for xmlid in groups]
                        )
                    ],
                }
            )
        )

    @classmethod
    def mango_setup_records(cls):
        """Create what the addon's forms need when the demo data has none."""

    # ------------------------------------------------------------------ tests
    def test_as_administrator(self):
        self.mango_click_everywhere(self.mango_admin, "admin")

    def test_as_telephony_user(self):
        self.mango_click_everywhere(self.mango_role_users["telephony_user"])

    def test_as_recording_listener(self):
        self.mango_click_everywhere(self.mango_role_users["recording_listener"])

    def test_as_telephony_supervisor(self):
        self.mango_click_everywhere(self.mango_role_users["telephony_supervisor"])

    def test_as_telephony_admin(self):
        self.mango_click_everywhere(self.mango_role_users["telephony_admin"])

    # ---------------------------------------------------------------- driver
    def mango_click_everywhere(self, user, login=None):
        """Walk the addon's actions, then its menus, in the browser as ``user``."""
        self.assertFalse(
            self._mango_unreachable_menus(user),
            f"{user.name}: menus meant for the role are hidden by another app's menu",
        )
        menus = self._mango_restricted_menus(user)
        steps = self._mango_steps(user, menus)
        # With no app left the clickbot would wait for one forever.
        with_clickbot = bool(menus["root"]["children"])
        if not steps and not with_clickbot:
            return  # nothing of the addon is the user's to open
        Menu = self.registry["ir.ui.menu"]
        load_menus = Menu.load_menus
        self.patch(
            Menu,
            "load_menus",
            lambda menu, debug: self._mango_restricted_menus(
                menu.env.user, debug, load_menus
            ),
        )
        # A console warning is a defect the page hides (a missing field widget
        # falls back to plain text): it fails the walk as an error does.
        warnings = _Collector(logging.WARNING)
        browser_logger = self._logger.getChild("browser")
        browser_logger.addHandler(warnings)
        self.addCleanup(browser_logger.removeHandler, warnings)
        self.browser_js(
            "/odoo",
            f"odoo.loader.modules.get({WALKER!r}).mangoClickEverywhere("
            f"{json.dumps(steps)}, {json.dumps(with_clickbot)})",
            ready=f"odoo.isReady === true && !!odoo.loader.modules.get({WALKER!r})",
            login=login or user.login,
            timeout=600,
            success_signal=CLICKBOT_SUCCEEDED if with_clickbot else WALK_SUCCEEDED,
        )
        self.assertFalse(warnings.messages, f"{user.name}: warnings in the browser")

    # ------------------------------------------------------------------ menus
    def _mango_own(self, model):
        data = self.env["ir.model.data"].search(
            [("module", "=", self.mango_addon), ("model", "=", model)]
        )
        return self.env[model].browse(data.mapped("res_id")).exists()

    def _mango_unreachable_menus(self, user):
        """Menus of the addon that ``user`` is meant to see and cannot reach.

        Meant to see: ``user`` holds the groups of the menu and of its parents in
        the Mango addons (IP telephony is for telephony administrators) and may
        read its model. Cannot reach: a parent of another app hides it (Settings
        is for administrators only).
        """
        group_ids = set(user._get_group_ids())
        access = self.env["ir.model.access"].with_user(user)
        mango_menus = set(
            self.env["ir.model.data"]
            .search([("module", "in", MANGO_ADDONS), ("model", "=", "ir.ui.menu")])
            .mapped("res_id")
        )
        visible = self.env["ir.ui.menu"].with_user(user).load_menus(False)
        unreachable = []
        for menu in self._mango_own("ir.ui.menu"):
            chain = menu
            while chain[-1].parent_id.id in mango_menus:
                chain |= chain[-1].parent_id
            if any(
                m[MENU_GROUPS] and group_ids.isdisjoint(m[MENU_GROUPS].ids)
                for m in chain
            ):
                continue
            action = menu.action
            if action and action._name == "ir.actions.act_window":
                if not access.check(action.res_model, "read", False):
                    continue
            if menu.id not in visible:
                unreachable.append(menu.complete_name)
        return sorted(unreachable)

    def _mango_restricted_menus(self, user, debug=False, load_menus=None):
        """``user``'s menu tree cut down to the addon's menus and their parents:
        what the browser gets, so that the clickbot walks ours only.

        An app without an action of its own opens its first menu's action (as
        the web client's ``load_web_menus`` does); here that menu's action is
        the app's and the menu goes, so the bot tests the action once, not
        once as the app and again as the menu (all its filters in all views).
        """
        keep = set()
        for menu in self._mango_own("ir.ui.menu"):
            while menu:
                keep.add(menu.id)
                menu = menu.parent_id
        load_menus = load_menus or self.registry["ir.ui.menu"].load_menus
        menus = copy.deepcopy(load_menus(self.env["ir.ui.menu"].with_user(user), debug))
        kept = {key: m for key, m in menus.items() if key == "root" or key in keep}
        self._mango_prune(kept)
        for app in [kept[key] for key in kept["root"]["children"]]:
            parent, first = app, app
            while not menu_action(first) and first["children"]:
                parent, first = first, kept[first["children"][0]]
            if first is not app and menu_action(first):
                move_menu_action(app, first)
                parent["children"].remove(first["id"])
                del kept[first["id"]]
        self._mango_prune(kept)
        return kept

    @staticmethod
    def _mango_prune(menus):
        """Drops the children no longer in ``menus``, then each parent left
        without a child or an action: an empty dropdown, or an app with nothing
        to open, is not what users get."""
        while True:
            for menu in menus.values():
                menu["children"] = [c for c in menu["children"] if c in menus]
            empty = [
                key
                for key, menu in menus.items()
                if key != "root" and not menu["children"] and not menu_action(menu)
            ]
            if not empty:
                return
            for key in empty:
                del menus[key]

    # ------------------------------------------------------------------ views
    def _mango_steps(self, user, menus=None):
        """What the browser opens as ``user``: each view of each window action
        the addon defines or extends, each client action, and the extras.

        Given ``menus``, the user's menu tree, actions the clickbot opens from a
        menu keep only their forms: the bot switches to every other view itself.
        """
        clicked = {
            menu_action(menu)[1]
            for key, menu in (menus or {}).items()
            if key != "root" and menu_action(menu)
        }
        env = self.env(user=user)
        steps = []
        for action in self._mango_own("ir.actions.act_window"):
            view_types = action.view_mode.split(",")
            if action.id in clicked:
                view_types = [t for t in view_types if t == "form"]
            steps += self._mango_action_steps(env, action, view_types)
        for extended in self.mango_extended_actions:
            groups = extended.get("groups")
            if groups and not user.has_group(groups):
                continue
            steps += self._mango_action_steps(
                env,
                self.env.ref(extended["action"]),
                extended["views"],
                extended.get("domain", []),
            )
        for action in self._mango_own("ir.actions.client"):
            if action.id not in clicked:
                steps.append({"label": action.name, "action": action.id})
        for step in self.mango_extra_steps(env):
            if isinstance(step["action"], dict):
                # As the web client gets a button's action (views from view_mode…).
                step["action"] = clean_action(dict(step["action"]), env)
            steps.append(step)
        return steps

    def _mango_action_steps(self, env, action, view_types, domain=()):
        """Each of ``view_types`` of ``action``; a form shows the first record
        ``env``'s user sees (within ``domain``) and a new one if they may create."""
        access = env["ir.model.access"]
        model = env[action.res_model]
        if not access.check(model._name, "read", False):
            return []
        steps = []
        for view_type in view_types:
            label = f"{action.name} ({action.res_model}), {view_type}"
            step = {"label": label, "action": action.id, "viewType": view_type}
            if action.target == "new":
                step["dialog"] = True
            # A settings page (target "inline" on 18.0, which 19.0 dropped): one
            # form, its buttons lead elsewhere.
            settings = action.target == "inline" or model._name == "res.config.settings"
            if settings:
                step["buttons"] = self._mango_buttons(model._name)
            if view_type != "form" or action.target == "new" or settings:
                steps.append(step)
                continue
            domain = safe_eval(action.domain or "[]", {"uid": env.uid}) + list(domain)
            record = model.search(
                domain + self.mango_record_domains.get(model._name, []), limit=1
            ) or model.search(domain, limit=1)
            if record:
                steps.append(
                    dict(
                        step,
                        label=f"{label} of {record.display_name}",
                        resId=record.id,
                        buttons=self._mango_buttons(model._name),
                    )
                )
            elif env.user == self.mango_admin:
                self.fail(f"{label}: no record to open; create one in setup")
            if access.check(model._name, "create", False):
                steps.append(dict(step, label=f"{label}, new record", resId=None))
        return steps

    def mango_extra_steps(self, env):
        """Views no action of the addon opens (one2many lines, wizards)."""
        return []

    def _mango_buttons(self, model):
        """Smart buttons the addon's views put on ``model``'s form, and the
        navigation buttons listed for it."""
        names = []
        for view in self._mango_own("ir.ui.view").filtered(
            lambda v: v.model == model and v.type == "form"
        ):
            for button in etree.fromstring(view.arch_db).iter("button"):
                if "oe_stat_button" in (button.get("class") or "").split():
                    names.append(button.get("name"))
        names += self.mango_navigation_buttons.get(model, ())
        return list(dict.fromkeys(names))

    def test_every_field_reads(self):
        """Every field the addon defines or adds, on the records set up and on a
        new record, reads as the administrator and as each role that may read
        it: a compute that leaves a field unassigned in some branch, or reads
        what its reader may not, fails here even where no view shows the field."""
        fields_by_model = {}
        own_fields = self._mango_own("ir.model.fields")
        for field in own_fields.sorted(lambda f: (f.model, f.name)):
            fields_by_model.setdefault(field.model, []).append(field.name)
        for user in (self.mango_admin, *self.mango_role_users.values()):
            access = self.env["ir.model.access"].with_user(user)
            for model_name, names in fields_by_model.items():
                model = self.env[model_name].with_user(user)
                if model._abstract or not access.check(model_name, "read", False):
                    continue
                readable = [
                    name
                    for name in names
                    if name in model._fields
                    and (
                        not model._fields[name].groups
                        or user.has_groups(model._fields[name].groups)
                    )
                ]
                with self.subTest(user=user.login, model=model_name):
                    self.env.invalidate_all()
                    model.search([], limit=50).read(readable)
                    # A new record, as a form's onchange computes it.
                    new = model.new({})
                    for name in readable:
                        new.mapped(name)

    def test_every_view_is_walked(self):
        """Each form, list… view the addon defines or extends is on the walk
        (the clickbot's share included): a view added later without a way to
        reach it fails here."""
        opened = set()
        for step in self._mango_steps(self.mango_admin):
            action = step["action"]
            if isinstance(action, dict):
                model = action["res_model"]
                action_views = action.get("views") or []
            else:
                action = self.env["ir.actions.actions"].browse(action)
                action = self.env[action.type].browse(action.id)
                if action._name != "ir.actions.act_window":
                    continue  # a client action: no view of ours
                model = action.res_model
                action_views = [(v.view_id.id, v.view_mode) for v in action.view_ids]
                if action.view_id:
                    action_views.append((action.view_id.id, action.view_id.type))
            # The view the web client shows: the action's own, else the default.
            view_id = next(
                (
                    vid
                    for vid, vtype in action_views
                    if vtype == step["viewType"] and vid
                ),
                None,
            ) or self.env["ir.ui.view"].default_view(model, step["viewType"])
            view = self.env["ir.ui.view"].browse(view_id)
            opened |= set((view | view._get_inheriting_views()).ids)
        missing = [
            f"{view.name} ({view.model}, {view.type})"
            for view in self._mango_own("ir.ui.view")
            if view.type not in ("qweb", "search") and view.id not in opened
        ]
        self.assertFalse(missing, "views the click-everywhere walk never opens")
