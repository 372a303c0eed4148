from odoo import fields, models


class MangoLdapBaseDn(models.Model):
    """A subtree of the directory searched for staff; several may be configured."""

    _name = "mango.ldap.base.dn"
    _description = "Directory search base"
    _order = "directory_id, sequence, id"
    _rec_name = "dn"

    directory_id = fields.Many2one(
        "mango.ldap.directory", required=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(default=10)
    dn = fields.Char(string="Base DN", required=True)
    scope = fields.Selection(
        [
            ("subtree", "Whole subtree"),
            ("onelevel", "One level"),
            ("base", "Base entry only"),
        ],
        required=True,
        default="subtree",
    )
