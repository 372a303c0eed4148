from odoo import api, fields, models


class MangoLdapRoleMapping(models.Model):
    """Directory group → Odoo groups and a Mango access role.

    Membership is evaluated with nested groups resolved by the reader, so a
    user in a sub-group of the mapped group gets the mapped rights too.
    """

    _name = "mango.ldap.role.mapping"
    _description = "Directory group to roles mapping"
    _order = "directory_id, sequence, id"

    directory_id = fields.Many2one(
        "mango.ldap.directory", required=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(
        default=10, help="When several mappings carry a PBX role, the first one wins."
    )
    group_dn = fields.Char(string="Directory group DN", required=True)
    group_ids = fields.Many2many(
        "res.groups",
        "mango_ldap_role_mapping_group_rel",
        "mapping_id",
        "group_id",
        string="Odoo groups",
        help="Granted while the user is a (nested) member of the directory group.",
    )
    account_id = fields.Many2one(related="directory_id.account_id")
    pbx_role_option_id = fields.Many2one(
        "mango.ldap.pbx.option",
        string="Mango access role",
        domain="[('account_id', '=', account_id), ('kind', '=', 'role')]",
        ondelete="restrict",
    )

    @api.depends("group_dn")
    def _compute_display_name(self):
        for mapping in self:
            mapping.display_name = mapping.group_dn
