"""A contact's calls: the smart button and the list it opens.

Finding the contact behind a number is caller identification
(caller_identification.py); this is what the call log adds to the contact form.
"""

from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    mango_call_ids = fields.One2many("mango.call", "partner_id", string="Calls")
    mango_call_count = fields.Integer(
        string="Number of calls",
        compute="_compute_mango_call_count",
        groups="mango_telephony.group_mango_user",
    )

    def _compute_mango_call_count(self):
        counts = dict(
            self.env["mango.call"]._read_group(
                [("partner_id", "child_of", self.commercial_partner_id.ids)],
                ["partner_id"],
                ["__count"],
            )
        )
        for partner in self:
            family = (
                partner.commercial_partner_id | partner.commercial_partner_id.child_ids
            )
            partner.mango_call_count = sum(
                count
                for call_partner, count in counts.items()
                if call_partner in family
            )

    def action_mango_calls(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mango_telephony.mango_call_action"
        )
        family = self.commercial_partner_id | self.commercial_partner_id.child_ids
        action["domain"] = [("partner_id", "in", family.ids)]
        action["context"] = {"create": False}
        return action
