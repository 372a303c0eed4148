from odoo import api, fields, models

from odoo.addons.mango_telephony.compat.constraints import table_constraints


@table_constraints
class MangoLdapPbxOption(models.Model):
    """Access roles and SIP domains as last read from the PBX (`roles`, `domains`).

    Kept as records so the directory form offers real choices without calling
    Mango each time the form opens.
    """

    _name = "mango.ldap.pbx.option"
    _description = "PBX access role or SIP domain"
    _order = "kind, name"

    account_id = fields.Many2one(
        "mango.account", required=True, ondelete="cascade", index=True
    )
    kind = fields.Selection(
        [("role", "Access role"), ("domain", "SIP domain")], required=True
    )
    value = fields.Char(required=True, help="Role id or domain name as Mango knows it.")
    name = fields.Char(required=True)

    _sql_constraints = [
        (
            "value_unique",
            "UNIQUE(account_id, kind, value)",
            "This PBX option already exists.",
        ),
    ]

    @api.depends("name", "value", "kind")
    def _compute_display_name(self):
        for option in self:
            if option.kind == "role":
                option.display_name = f"{option.name} ({option.value})"
            else:
                option.display_name = option.name
