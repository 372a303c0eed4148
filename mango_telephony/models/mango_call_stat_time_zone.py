"""Statistics count days in the company's time zone (its address's): when
that zone changes, every stored day is a day of the old zone.

Refreshing day by day cannot fix that (the calls of one old day spread over
two new ones), so the change asks the rebuild cron to run at once instead of
waiting for the night; the call log follows the new zone immediately, the
statistics within the cron's next run.
"""

from odoo import models


class ResPartner(models.Model):
    _inherit = "res.partner"

    def write(self, vals):
        if "tz" not in vals:
            return super().write(vals)
        before = {partner.id: partner.tz for partner in self}
        result = super().write(vals)
        changed = self.filtered(lambda partner: partner.tz != before[partner.id])
        if changed and changed._mango_counts_statistics_days():
            rebuild = self.env.ref(
                "mango_telephony.ir_cron_mango_call_stat_rebuild",
                raise_if_not_found=False,
            )
            if rebuild:
                rebuild.sudo()._trigger()
        return result

    def _mango_counts_statistics_days(self):
        """Whether one of these is the address of a company with a Mango account."""
        companies = (
            self.env["res.company"].sudo().search([("partner_id", "in", self.ids)])
        )
        return bool(
            companies
            and self.env["mango.account"]
            .sudo()
            .with_context(active_test=False)
            .search_count([("company_id", "in", companies.ids)], limit=1)
        )
