"""Click-to-call requests: which record a user clicked, for which number.

The command itself (its ``command_id``, state, result code and the call it
started) is a ``mango.command`` this model delegates to: the outbox matches
Mango's answers to it (mango_command.py). What is left here is what only a click
knows: the record it was clicked on, whose contact and lead the call then shows,
whatever order the events arrive in, and the user to tell when Mango refuses.
"""

from odoo import fields, models

from mango_office import codes


class MangoClickToCall(models.Model):
    _name = "mango.click.to.call"
    _description = "Click-to-call request"
    _inherit = ["mango.command.owner"]
    _order = "id desc"
    _rec_name = "number_mango"
    _mango_command_kind = "click_to_call"

    number = fields.Char(string="Number clicked", readonly=True)
    number_mango = fields.Char(string="Number dialled", readonly=True)
    extension = fields.Char(readonly=True)
    line_number = fields.Char(string="Line", readonly=True)
    res_model = fields.Char(string="Clicked on (model)", readonly=True)
    res_id = fields.Many2oneReference(
        string="Clicked on (record)", model_field="res_model", readonly=True
    )
    partner_id = fields.Many2one(
        "res.partner", string="Contact", readonly=True, ondelete="set null"
    )
    lead_id = fields.Many2one(
        "crm.lead", string="Lead/Opportunity", readonly=True, ondelete="set null"
    )

    # ------------------------------------------------------------------
    # Hooks of mango.command
    # ------------------------------------------------------------------

    def _mango_command_linked(self, calls):
        """Give the calls these clicks started the record they were clicked on,
        and its contact and lead when still unknown.

        Runs in the first post-fold step, so the chatter post follows the
        record the user clicked on rather than a namesake that shares the number.
        """
        by_command = {click.command_id: click for click in self}
        for call in calls.sudo():
            click = by_command.get(call.command_id)
            if not click:
                continue
            vals = {}
            if click.res_model and not call.origin_model:
                vals["origin_model"] = click.res_model
                vals["origin_res_id"] = click.res_id
            if click.partner_id and not call.partner_id:
                vals["partner_id"] = click.partner_id.id
            if click.lead_id and not call.lead_id:
                vals["lead_id"] = click.lead_id.id
            if vals:
                call.write(vals)

    def _mango_command_refused(self, result):
        """Tell the user who clicked why their phone will not ring."""
        for click in self:
            number = self.env["res.users"]._mango_show(click.number_mango)
            click.user_id._bus_send(
                "simple_notification",
                {
                    "type": "danger",
                    "sticky": True,
                    "title": self.env._("Call not placed"),
                    "message": self.env._(
                        "Mango did not place your call to %(number)s (%(code)s): "
                        "%(meaning)s.",
                        number=number,
                        code=result,
                        meaning=codes.describe(result),
                    ),
                },
            )
