"""Click-to-call requests: which command we sent for whom, from which record.

Mango echoes our ``command_id`` in every event of the call it starts (reference
§2.4, §3.1), so remembering it at click time is enough to show the call on the
contact or lead the button was clicked on, whatever order the events arrive in.
"""

import logging

from odoo import api, fields, models

from mango_office import codes

_logger = logging.getLogger(__name__)


class MangoClickToCall(models.Model):
    _name = "mango.click.to.call"
    _description = "Click-to-call request"
    _order = "id desc"
    _rec_name = "number_mango"

    command_id = fields.Char(required=True, readonly=True, index=True, copy=False)
    user_id = fields.Many2one(
        "res.users", required=True, readonly=True, index=True, ondelete="cascade"
    )
    account_id = fields.Many2one(
        "mango.account", required=True, readonly=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True)
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
    state = fields.Selection(
        [
            ("sent", "Sent"),
            ("failed", "Refused"),
            ("linked", "Call started"),
        ],
        required=True,
        default="sent",
        readonly=True,
    )
    result_code = fields.Integer(readonly=True, aggregator=None)
    error = fields.Char(readonly=True)
    call_id = fields.Many2one(
        "mango.call", readonly=True, index="btree_not_null", ondelete="set null"
    )

    _sql_constraints = (
        (
            "command_id_uniq",
            "unique(command_id)",
            "A command is sent once.",
        ),
    )

    # ------------------------------------------------------------------
    # Linking the call to the click
    # ------------------------------------------------------------------

    @api.model
    def _mango_clicks_of(self, command_ids):
        command_ids = [c for c in command_ids if c]
        if not command_ids:
            return self.browse()
        return self.sudo().search([("command_id", "in", command_ids)])

    def _mango_link_calls(self, calls):
        """Give ``calls`` (whose command_id is one of these clicks') the record
        they were clicked on, and its contact and lead when still unknown.

        Runs before the caller identification of the post-fold pipeline, so the chatter
        post follows the record the user clicked on rather than a namesake that
        shares the number.
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
            if click.call_id != call or click.state != "linked":
                click.write({"call_id": call.id, "state": "linked"})

    def _mango_link_after_commit(self):
        """Post-commit: when the call was folded before this click was committed,
        the post-fold pipeline could not see the click; link it now."""
        with self.env.registry.cursor() as cr:
            clicks = self.with_env(self.env(cr=cr, su=True)).exists()
            calls = clicks.env["mango.call"].search(
                [
                    ("command_id", "in", clicks.mapped("command_id")),
                    ("account_id", "in", clicks.account_id.ids),
                ]
            )
            if calls:
                clicks._mango_link_calls(calls)
                calls._mango_post_on_chatter()

    # ------------------------------------------------------------------
    # Asynchronous result of commands/callback
    # ------------------------------------------------------------------

    @api.model
    def _mango_command_result(self, account, command_id, result):
        """Mango's ``result/callback`` for one of our clicks: on refusal, tell the
        user who clicked why their phone will not ring. Idempotent."""
        click = self.sudo().search(
            [("command_id", "=", command_id), ("account_id", "=", account.id)],
            limit=1,
        )
        if not click or result is None or click.result_code == result:
            return click
        success = codes.is_success(result)
        vals = {"result_code": result}
        if not success and click.state != "linked":
            meaning = codes.describe(result)
            vals.update(state="failed", error=f"{result}: {meaning}")
        click.write(vals)
        if not success:
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
        return click


class MangoCall(models.Model):
    _inherit = "mango.call"

    def _mango_step_link_click_origin(self, previous):
        """The calls our clicks placed get the record clicked on (and its contact
        and lead): the first post-fold step, so that caller identification and
        the chatter post further down use the clicked record."""
        clicks = self.env["mango.click.to.call"]._mango_clicks_of(
            self.mapped("command_id")
        )
        if clicks:
            clicks._mango_link_calls(self)


class MangoEvent(models.Model):
    _inherit = "mango.event"

    def _mango_process_other(self, parsed):
        # A refused callback never produces call events, so its result arrives
        # here rather than through a call's fold.
        command = getattr(parsed, "command", None)
        if command == "callback" and getattr(parsed, "command_id", None):
            self.env["mango.click.to.call"]._mango_command_result(
                self.account_id, parsed.command_id, parsed.result
            )
        return super()._mango_process_other(parsed)
