from odoo import api, fields, models

from .res_partner import mango_e164, mango_region


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # crm indexes phone_sanitized, but it holds only one of phone/mobile (the
    # mobile first): a lead whose landline rings would not be found.
    mango_phone_e164 = fields.Char(
        string="Phone (E.164)",
        compute="_compute_mango_e164",
        store=True,
        index="btree_not_null",
        readonly=True,
        copy=False,
    )
    mango_mobile_e164 = fields.Char(
        string="Mobile (E.164)",
        compute="_compute_mango_e164",
        store=True,
        index="btree_not_null",
        readonly=True,
        copy=False,
    )
    mango_call_ids = fields.One2many("mango.call", "lead_id", string="Calls")
    mango_call_count = fields.Integer(
        string="Number of calls",
        compute="_compute_mango_call_count",
        groups="mango_telephony.group_mango_user",
    )

    @api.depends("phone", "mobile", "country_id", "company_id")
    def _compute_mango_e164(self):
        for lead in self:
            region = mango_region(
                lead.country_id, lead.company_id.country_id, self.env.company.country_id
            )
            lead.mango_phone_e164 = mango_e164(lead.phone, region)
            lead.mango_mobile_e164 = mango_e164(lead.mobile, region)

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

    @api.model_create_multi
    def create(self, vals_list):
        leads = super().create(vals_list)
        call_id = self.env.context.get("mango_link_call_id")
        if call_id:
            self.env["mango.call"]._mango_call_to_link(call_id)._mango_link_lead(
                leads[:1]
            )
        return leads

    @api.model
    def _mango_find_open_by_phone(self, number, company=None):
        """Open (active, not won) leads and opportunities reachable at ``number``,
        newest first.

        :param str number: the number as Mango or a user wrote it
        :param company: res.company whose leads are searched (default: all visible)
        :return: crm.lead recordset
        """
        e164 = self.env["res.partner"]._mango_normalize(number, company)
        if not e164:
            return self.browse()
        domain = [
            "|",
            ("mango_phone_e164", "=", e164),
            ("mango_mobile_e164", "=", e164),
            "|",
            ("stage_id", "=", False),
            ("stage_id.is_won", "=", False),
        ]
        if company:
            domain = [("company_id", "in", (False, company.id)), *domain]
        return self.search(domain, order="id desc", limit=20)
