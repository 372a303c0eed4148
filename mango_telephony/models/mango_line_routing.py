from odoo import fields, models


class MangoLine(models.Model):
    _inherit = "mango.line"

    default_user_id = fields.Many2one(
        "res.users",
        string="Missed calls go to",
        domain="[('share', '=', False)]",
        ondelete="set null",
        help="Who gets the call-back activity for a missed call on this line when "
        "the caller has no salesperson. Leave empty to use the account's default.",
    )
