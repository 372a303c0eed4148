from odoo import api, fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    mango_extension = fields.Char(
        string="Phone extension",
        help="Your internal number on the Mango PBX: calls answered on it are "
        "yours, and click-to-call rings it first. An account's own extension list "
        "(Settings → Telephony) takes precedence.",
    )
    mango_account_user_ids = fields.One2many(
        "mango.account.user", "user_id", string="Extensions per account"
    )

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + ["mango_extension"]

    @property
    def SELF_WRITEABLE_FIELDS(self):
        return super().SELF_WRITEABLE_FIELDS + ["mango_extension"]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if isinstance(vals.get("mango_extension"), str):
                vals["mango_extension"] = vals["mango_extension"].strip() or False
        return super().create(vals_list)

    def write(self, vals):
        if isinstance(vals.get("mango_extension"), str):
            vals["mango_extension"] = vals["mango_extension"].strip() or False
        return super().write(vals)
