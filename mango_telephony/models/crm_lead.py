"""A lead's calls: the smart button and the list it opens.

Finding the leads behind a number is caller identification
(caller_identification.py); this is what the call log adds to the lead form.
"""

from odoo import fields, models


class CrmLead(models.Model):
    _inherit = "crm.lead"

    mango_call_ids = fields.One2many("mango.call", "lead_id", string="Calls")
    mango_call_count = fields.Integer(
        string="Number of calls",
        compute="_compute_mango_call_count",
        groups="mango_telephony.group_mango_user",
    )

    def _mango_calls_domain(self):
        """The lead's own calls and every call with its customer's company: a
        salesperson on an opportunity wants the whole conversation."""
        self.ensure_one()
        domain = [("lead_id", "=", self.id)]
        if self.partner_id:
            domain = [
                "|",
                *domain,
                ("partner_id", "child_of", self.partner_id.commercial_partner_id.id),
            ]
        return domain

    def _compute_mango_call_count(self):
        Call = self.env["mango.call"]
        for lead in self:
            lead.mango_call_count = (
                Call.search_count(lead._mango_calls_domain()) if lead.id else 0
            )

    def action_mango_calls(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mango_telephony.mango_call_action"
        )
        action["domain"] = self._mango_calls_domain()
        action["context"] = {"create": False}
        return action
