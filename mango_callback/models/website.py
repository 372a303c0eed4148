from odoo import fields, models


class Website(models.Model):
    _inherit = "website"

    mango_callback_widget_ids = fields.One2many(
        "mango.callback.widget", "website_id", string="Callback widgets"
    )

    def _mango_callback_widget(self):
        """The enabled callback widget of this website, if any (public-safe)."""
        self.ensure_one()
        return (
            self.env["mango.callback.widget"]
            .sudo()
            .search([("website_id", "=", self.id), ("active", "=", True)], limit=1)
        )
