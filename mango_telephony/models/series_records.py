"""Records whose XML would differ between Odoo 18.0 and 19.0, made from Python.

``data/series_records.xml`` (and the activity types' own noupdate file) call
these at install and update, with stable XML ids, so that every XML file of the
addons is one both series accept. What differs is in ``compat/``.
"""

from odoo import Command, api, models

from ..compat import activities, contact_phones, groups

#: Each group and the heading (category) it shows under in the user form.
TELEPHONY_GROUP_HEADINGS = {
    "mango_telephony.group_mango_user": (
        "mango_telephony.module_category_mango_telephony_roles"
    ),
    "mango_telephony.group_mango_supervisor": (
        "mango_telephony.module_category_mango_telephony_roles"
    ),
    "mango_telephony.group_mango_admin": (
        "mango_telephony.module_category_mango_telephony_roles"
    ),
    "mango_telephony.group_mango_recording_listener": (
        "mango_telephony.module_category_mango_telephony_recordings"
    ),
}

PARTNER_LIST_MOBILE_VIEW = "view_partner_tree_mango_mobile"


class MangoSeriesRecords(models.AbstractModel):
    _name = "mango.series.records"
    _description = "Records that differ between Odoo series"

    @api.model
    def _mango_place_groups(self, placements=None):
        groups.place_groups(self.env, placements or TELEPHONY_GROUP_HEADINGS)

    @api.model
    def _mango_settings_menu_for_admins(self):
        """Settings is for ERP managers; telephony administrators who are not
        find IP telephony there too (the app shows them what their groups allow:
        this folder, as Settings' other menus keep their own groups)."""
        menu = self.env.ref("base.menu_administration")
        admins = self.env.ref("mango_telephony.group_mango_admin")
        menu[groups.MENU_GROUPS] = [Command.link(admins.id)]

    @api.model
    def _mango_demo_mobiles(self, numbers):
        """``{record xml id: mobile number}`` for the demo's contacts and users."""
        for xmlid, number in numbers.items():
            contact_phones.set_mobile(self.env.ref(xmlid), number)

    @api.model
    def _mango_demo_groups(self, given):
        """``{user xml id: [group xml ids]}`` for the demo's users."""
        for user_xmlid, group_xmlids in given.items():
            user = self.env.ref(user_xmlid)
            user[groups.USER_GROUPS] = [
                Command.link(self.env.ref(xmlid).id) for xmlid in group_xmlids
            ]

    @api.model
    def _mango_keep_done(self, activity_type_xmlid):
        activities.keep_done(self.env.ref(activity_type_xmlid))

    @api.model
    def _mango_settings_inline(self):
        """18.0 opens settings forms with target 'inline' (no breadcrumb);
        19.0 removed that target and opens them in the current window."""
        action = self.env.ref("mango_telephony.mango_telephony_settings_action")
        targets = dict(action._fields["target"]._description_selection(self.env))
        if "inline" in targets:
            action.target = "inline"

    @api.model
    def _mango_partner_list_mobile(self):
        """On 18.0, the contacts list's Mobile column gets the call button too
        (19.0 has one phone column, handled by views/phone_widget_views.xml)."""
        if not contact_phones.has_mobile(self.env["res.partner"]):
            return
        xmlid = f"mango_telephony.{PARTNER_LIST_MOBILE_VIEW}"
        values = {
            "name": "res.partner.list.inherit.mango_telephony.mobile",
            "model": "res.partner",
            "inherit_id": self.env.ref("base.view_partner_tree").id,
            "arch": """<data>
                <xpath expr="//field[@name='mobile']" position="attributes">
                    <attribute name="widget">phone</attribute>
                    <attribute name="options">{'enable_sms': false}</attribute>
                </xpath>
            </data>""",
        }
        self.env["ir.ui.view"]._load_records(
            [{"xml_id": xmlid, "values": values, "noupdate": False}]
        )


class IrModuleModule(models.Model):
    _inherit = "ir.module.module"

    def _load_module_terms(self, modules, langs, *args, **kwargs):
        """Translations loaded: the privileges made for our headings follow."""
        result = super()._load_module_terms(modules, langs, *args, **kwargs)
        groups.translate_privileges_as_headings(self.env)
        return result
