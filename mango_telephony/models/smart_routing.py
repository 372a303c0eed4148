"""Smart routing: a known customer waiting in the voice menu or a queue is sent
to their salesperson's extension.

Mango distributes calls by its own scheme; when the account asks for it, the fold
of a ringing call whose caller is identified sends one ``commands/route`` for the
waiting leg, within Mango's limit of one route command per two seconds (an
account-wide slot, reserved across workers). Mango's own routing applies whenever
the salesperson has no extension, the slot is taken or Mango refuses.
"""

import logging
import time

import psycopg2.errors

from odoo import fields, models
from odoo.tools import SQL

from mango_office import errors as mango_errors

_logger = logging.getLogger(__name__)

# commands/route: 1 request per 2 s per product (reference §3.4, §6).
ROUTE_INTERVAL_SECONDS = 2.0
# Where a call waits for Mango's own distribution (reference §2.4): voice menu
# (also "ivr.2" …) or an operator group's queue.
WAITING_LOCATIONS = ("ivr", "queue")


class MangoAccount(models.Model):
    _inherit = "mango.account"

    smart_routing = fields.Boolean(
        string="Route known customers to their salesperson",
        help="While a known customer waits in the voice menu or a queue, send the "
        "call to the extension of the customer's salesperson. Mango's own routing "
        "applies when the salesperson has no extension.",
    )
    route_next_allowed_at = fields.Float(
        string="Next route command allowed at",
        readonly=True,
        copy=False,
        help="Epoch time before which no routing command is sent (Mango's limit).",
    )

    def _mango_take_route_slot(self):
        """Reserve the account's routing slot if it is free; never waits for it.

        The reservation is committed at once on its own cursor: the command is
        sent whatever becomes of the event's transaction, and several workers
        must see each other's reservations straight away. The row lock is held
        for one statement only; should it be busy, the slot counts as taken.

        :return: True when a route command may be sent now
        """
        self.ensure_one()
        self.flush_recordset(["route_next_allowed_at"])
        now = time.time()
        try:
            with self.env.registry.cursor() as cr:
                cr.execute("SET LOCAL lock_timeout = '200ms'")
                cr.execute(
                    SQL(
                        """
                        UPDATE mango_account SET route_next_allowed_at = %(next)s
                         WHERE id = %(id)s
                           AND COALESCE(route_next_allowed_at, 0) <= %(now)s
                        RETURNING id
                        """,
                        next=now + ROUTE_INTERVAL_SECONDS,
                        id=self.id,
                        now=now,
                    )
                )
                taken = bool(cr.fetchone())
        except psycopg2.errors.LockNotAvailable:
            taken = False
        self.invalidate_recordset(["route_next_allowed_at"])
        return taken


class MangoCall(models.Model):
    _inherit = "mango.call"

    route_state = fields.Selection(
        [
            ("sent", "Sent to the salesperson"),
            ("throttled", "Skipped (Mango's rate limit)"),
            ("failed", "Refused by Mango"),
        ],
        string="Smart routing",
        readonly=True,
        copy=False,
    )
    route_user_id = fields.Many2one(
        "res.users", string="Routed to", readonly=True, copy=False
    )
    route_command_id = fields.Char(readonly=True, copy=False)

    def _mango_step_smart_route(self, previous):
        for call in self:
            call._mango_smart_route()

    def _mango_waiting_leg(self):
        """The caller's leg while the PBX still distributes it: in the voice
        menu or a group queue and not hung up. The voice menu answers the
        caller, so that leg may be Connected as well as Appeared."""
        self.ensure_one()
        waiting = self.leg_ids.filtered(
            lambda leg: (
                leg.state in ("Appeared", "Connected", "OnHold")
                and (leg.location or "").split(".")[0] in WAITING_LOCATIONS
            )
        )
        return waiting.sorted(
            lambda leg: (leg.appeared_at or fields.Datetime.now(), leg.id)
        )[:1]

    def _mango_smart_route(self):
        """Send a known customer waiting in the voice menu or a queue to their
        salesperson's extension, once per call and within Mango's route limit."""
        self.ensure_one()
        account = self.account_id
        if (
            not account.smart_routing
            or self.route_state in ("sent", "failed")
            or self.direction not in ("incoming", False)
            or self.status != "ringing"
        ):
            return
        partner = self.partner_id
        salesperson = partner.commercial_partner_id.user_id or partner.user_id
        if not salesperson:
            return
        leg = self._mango_waiting_leg()
        if not leg:
            return
        extension = account._mango_extension_of_user(salesperson)
        if not extension or extension == leg.to_extension:
            return
        if not account._mango_take_route_slot():
            self.write({"route_state": "throttled", "route_user_id": salesperson.id})
            return
        command_id = f"odoo-route-{self.env.cr.dbname}-{self.id}"
        try:
            account._mango_client().route(
                leg.mango_call_id, extension, command_id=command_id
            )
        except mango_errors.MangoError as error:
            _logger.info(
                "Mango refused to route call %s: %s (code %s)",
                self.id,
                type(error).__name__,
                error.code,
            )
            self.write({"route_state": "failed", "route_user_id": salesperson.id})
            return
        self.write(
            {
                "route_state": "sent",
                "route_user_id": salesperson.id,
                "route_command_id": command_id,
            }
        )
