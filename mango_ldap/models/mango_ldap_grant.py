from odoo import fields, models

from odoo.addons.mango_telephony.compat.constraints import table_constraints


@table_constraints
class MangoLdapGrant(models.Model):
    """An Odoo group the sync itself gave to a linked user.

    Only groups recorded here are ever revoked, so rights an administrator
    granted by hand survive a directory group change.
    """

    _name = "mango.ldap.grant"
    _description = "Group granted by directory sync"

    link_id = fields.Many2one(
        "mango.ldap.link", required=True, ondelete="cascade", index=True
    )
    group_id = fields.Many2one("res.groups", required=True, ondelete="cascade")

    _sql_constraints = [
        (
            "grant_unique",
            "UNIQUE(link_id, group_id)",
            "This grant is already recorded.",
        ),
    ]
