"""Live call information in the web client: the incoming-call card and the systray.

The card is pushed on Odoo's bus to the one user whose extension rings (reference
§2.4: ``Appeared`` at ``location`` ``abonent`` with ``to.extension``), from a
post-fold step, so it reaches every open tab of that user within the event
worker's latency and nobody else. Its content is read with that user's rights
(its contact comes from caller identification, ``_mango_card_partner``).
Supervisors' systrays hear of every call that starts, changes or ends, for their
list of live calls.
"""

import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError

from mango_office.rules import FINISHED_STATUSES

from ..compat.groups import users_of
from .mango_call_display import readable_number

_logger = logging.getLogger(__name__)

CARD_NOTIFICATION = "mango_call_card"
LIVE_NOTIFICATION = "mango_call_live"
LIVE_STATUSES = ("ringing", "in_progress")
LEG_CARD_STATES = {
    "Appeared": "ringing",
    "Connected": "connected",
    "OnHold": "connected",
    "Disconnected": "ended",
}
# A call whose last event is older than this is not shown as live any more:
# Mango may never send the end of a call lost on its side.
LIVE_MAX_AGE = timedelta(hours=4)
CARD_LIST_LIMIT = 5


class MangoCallLeg(models.Model):
    _inherit = "mango.call.leg"

    mango_card_state = fields.Char(
        readonly=True,
        copy=False,
        help="The last state of the incoming-call card pushed for this leg, so a "
        "re-fold of the same events pushes nothing new.",
    )


class MangoCall(models.Model):
    _inherit = "mango.call"

    def _mango_step_push_cards(self, previous):
        self._mango_push_cards()

    def _mango_step_push_live(self, previous):
        self._mango_push_live(previous)

    # ------------------------------------------------------------------
    # Incoming-call card
    # ------------------------------------------------------------------

    def _mango_card_legs(self):
        """``[(leg, user, state)]`` of the legs ringing or connected at an
        employee, for cards. The employee's own click-to-call leg is left out:
        they just asked for that ring."""
        self.ensure_one()
        account = self.account_id.sudo()
        own_commands = set(
            self.env["mango.command"]
            ._mango_of(self.leg_ids.mapped("command_id"))
            .filtered(lambda c: c.kind == "click_to_call")
            .mapped(lambda c: (c.command_id, c.user_id.id))
        )
        result = []
        for leg in self.sudo().leg_ids:
            if (leg.location or "").split(".")[0] != "abonent" or not leg.to_extension:
                continue
            user = account._mango_user_for_extension(leg.to_extension)
            if not user or user.share or not user.active:
                continue
            if leg.command_id and (leg.command_id, user.id) in own_commands:
                continue
            state = LEG_CARD_STATES.get(leg.state)
            if not state:
                continue
            if self.status in FINISHED_STATUSES:
                state = "ended"
            result.append((leg, user, state))
        return result

    def _mango_push_cards(self):
        for call in self:
            for leg, user, state in call._mango_card_legs():
                if leg.mango_card_state == state:
                    continue
                if state == "ended" and not leg.mango_card_state:
                    # Never shown (the whole call was folded at once): nothing
                    # to close, and a card for a call long gone helps nobody.
                    leg.mango_card_state = state
                    continue
                payload = call._mango_card_payload(leg, user, state)
                user._bus_send(CARD_NOTIFICATION, payload)
                leg.mango_card_state = state

    def _mango_card_payload(self, leg, user, state):
        """The card of this call for ``user``, read with ``user``'s rights.

        :param leg: the ``mango.call.leg`` ringing ``user``
        :param user: the employee whose extension rings
        :param str state: ``ringing``, ``connected`` or ``ended``
        :rtype: dict
        """
        self.ensure_one()
        env = (
            self.with_user(user)
            .with_context(
                allowed_company_ids=(
                    self.company_id.ids
                    if self.company_id in user.company_ids
                    else user.company_id.ids
                ),
                active_test=True,
                # The worker folding the event has no language: the labels of the
                # card (last calls, order states, lead stages) are the user's.
                lang=user.lang or "en_US",
            )
            .env
        )
        call = self.sudo()
        region = call.company_id.country_id.code or "RU"
        colleague = self._mango_card_colleague(leg)
        number = call.customer_number_e164 or (
            False
            if colleague
            else (call.caller_number or leg.from_number or leg.from_extension or "")
        )
        line_number = call.line_number or leg.line_number or False
        payload = {
            "key": f"{call.id}:{leg.id}",
            "call_id": call.id,
            "leg_id": leg.id,
            "state": state,
            "direction": call.direction or "incoming",
            "number": number or "",
            "number_display": readable_number(number, region),
            # A colleague calling (internal call, click-to-call to an extension):
            # their name and extension, never their SIP device.
            "colleague": colleague,
            "line_number": line_number,
            "line_display": readable_number(line_number, region),
            "group": leg.acd_group or call.group_extension or False,
            "transferred": bool(leg.is_transfer),
            "transferred_by": self._mango_card_transferred_by(leg),
            "start": fields.Datetime.to_string(call.start_time or leg.appeared_at),
            "partner": False,
            "leads": [],
            "orders": [],
            "calls": [],
            "can_create_partner": bool(number)
            and env["res.partner"].has_access("create"),
            "can_create_lead": bool(number) and env["crm.lead"].has_access("create"),
            "can_open_call": False,
        }
        try:
            payload["can_open_call"] = bool(
                env["mango.call"].has_access("read")
                and env["mango.call"].browse(call.id)._filtered_access("read")
            )
        except AccessError:
            payload["can_open_call"] = False
        partner = self._mango_card_partner(env, number)
        if partner:
            payload["partner"] = self._mango_card_partner_values(env, partner)
        payload["leads"] = self._mango_card_leads(env, partner, number)
        payload["orders"] = self._mango_card_orders(env, partner)
        payload["calls"] = self._mango_card_calls(env, number)
        return payload

    def _mango_card_colleague(self, leg):
        """``{"name", "extension"}`` of the employee calling on ``leg`` when the
        call has no outside party, else False."""
        self.ensure_one()
        if self.customer_number_e164 or not leg.from_extension:
            return False
        user = self.account_id.sudo()._mango_user_for_extension(leg.from_extension)
        return {"name": user.name or False, "extension": leg.from_extension}

    def _mango_card_transferred_by(self, leg):
        """Name (or extension) of the employee who handed the call over."""
        self.ensure_one()
        if not leg.is_transfer:
            return False
        source = self.sudo().leg_ids.filtered(
            lambda other: other.mango_call_id == leg.taken_from_call_id
        )[:1]
        extension = (
            source.to_extension if source.to_extension != leg.to_extension else None
        ) or leg.from_extension
        user = source.user_id if source.user_id != leg.user_id else None
        if not user and extension:
            user = self.account_id.sudo()._mango_user_for_extension(extension)
        return (user and user.name) or extension or False

    def _mango_card_partner_values(self, env, partner):
        commercial = partner.commercial_partner_id
        salesperson = commercial.user_id or partner.user_id
        company = commercial if commercial != partner else partner.parent_id
        return {
            "id": partner.id,
            "name": partner.display_name,
            "company": company.display_name if company else False,
            "is_company": partner.is_company,
            "salesperson": salesperson.sudo().name if salesperson else False,
            "email": partner.email or False,
            "avatar_url": f"/web/image/res.partner/{partner.id}/avatar_128",
        }

    def _mango_card_leads(self, env, partner, number):
        Lead = env["crm.lead"]
        if not Lead.has_access("read"):
            return []
        leads = Lead.browse()
        if partner:
            leads = Lead.search(
                [
                    ("partner_id", "child_of", partner.commercial_partner_id.id),
                    "|",
                    ("stage_id", "=", False),
                    ("stage_id.is_won", "=", False),
                ],
                order="id desc",
                limit=CARD_LIST_LIMIT,
            )
        if not leads and number:
            leads = Lead._mango_find_open_by_phone(number, self.company_id)[
                :CARD_LIST_LIMIT
            ]
        return [
            {
                "id": lead.id,
                "name": lead.name,
                "type": lead.type,
                "stage": lead.stage_id.name or False,
                "user": lead.user_id.sudo().name or False,
            }
            for lead in leads
        ]

    def _mango_card_orders(self, env, partner):
        if not partner or "sale.order" not in env:
            return []
        Order = env["sale.order"]
        if not Order.has_access("read"):
            return []
        orders = Order.search(
            [("partner_id", "child_of", partner.commercial_partner_id.id)],
            order="date_order desc, id desc",
            limit=CARD_LIST_LIMIT,
        )
        states = dict(Order._fields["state"]._description_selection(env))
        return [
            {
                "id": order.id,
                "name": order.name,
                "date": fields.Datetime.to_string(order.date_order),
                "amount": order.amount_total,
                "currency": order.currency_id.name,
                "state": states.get(order.state, order.state),
            }
            for order in orders
        ]

    def _mango_card_calls(self, env, number):
        Call = env["mango.call"]
        if not number or not Call.has_access("read"):
            return []
        calls = Call.search(
            [
                ("customer_number_e164", "=", number),
                ("id", "!=", self.id),
                ("status", "in", FINISHED_STATUSES),
            ],
            order="start_time desc, id desc",
            limit=CARD_LIST_LIMIT,
        )
        return [call._mango_call_summary() for call in calls]

    def _mango_call_summary(self):
        self.ensure_one()
        env = self.env
        directions = dict(self._fields["direction"]._description_selection(env))
        statuses = dict(self._fields["status"]._description_selection(env))
        return {
            "id": self.id,
            "start": fields.Datetime.to_string(self.start_time),
            "direction": self.direction or False,
            "direction_label": directions.get(self.direction, ""),
            "status": self.status,
            "status_label": statuses.get(self.status, ""),
            "talk": int(self.talk_duration or 0),
            "number": self.customer_number_e164 or self.caller_number or False,
            "number_display": self._mango_other_party_display(),
            "partner": self.partner_id.display_name if self.partner_id else False,
            "user": (self.user_id or self.employee_user_id).sudo().name or False,
        }

    def _mango_other_party_display(self):
        """The party a list of calls names: the customer, or both colleagues of
        an internal call."""
        self.ensure_one()
        if self.direction == "internal":
            return " → ".join(p for p in (self.from_display, self.to_display) if p)
        if self.direction == "outgoing":
            return self.to_display or False
        return self.from_display or False

    @api.model
    def mango_active_cards(self):
        """The cards of the calls ringing or connected at the current user right
        now: a tab opened after the call started shows them too."""
        user = self.env.user
        if not user.has_group("mango_telephony.group_mango_user"):
            return []
        since = fields.Datetime.now() - LIVE_MAX_AGE
        legs = (
            self.env["mango.call.leg"]
            .sudo()
            .search(
                [
                    ("user_id", "=", user.id),
                    ("call_id.status", "in", LIVE_STATUSES),
                    ("call_id.start_time", ">=", since),
                    ("state", "in", ("Appeared", "Connected", "OnHold")),
                    ("mango_card_state", "in", ("ringing", "connected")),
                ],
                limit=20,
            )
        )
        cards = []
        for leg in legs:
            for card_leg, card_user, state in leg.call_id._mango_card_legs():
                if card_leg == leg and card_user == user and state != "ended":
                    cards.append(leg.call_id._mango_card_payload(leg, user, state))
        return cards

    # ------------------------------------------------------------------
    # Systray: live calls (supervisors) and my recent calls
    # ------------------------------------------------------------------

    def _mango_push_live(self, previous):
        """Tell supervisors' systrays that a call started, changed or ended."""
        changed = self.filtered(
            lambda c: (previous.get(c.id) or {}).get("status") != c.status
        )
        if not changed:
            return
        group = self.env.ref(
            "mango_telephony.group_mango_supervisor", raise_if_not_found=False
        )
        if not group:
            return
        supervisors = users_of(group.sudo()).filtered(
            lambda u: u.active and not u.share
        )
        for company in changed.company_id:
            calls = changed.filtered(lambda c, co=company: c.company_id == co)
            message = {
                "calls": [{"id": c.id, "status": c.status} for c in calls],
            }
            for user in supervisors.filtered(lambda u, co=company: co in u.company_ids):
                user._bus_send(LIVE_NOTIFICATION, message)

    @api.model
    def mango_systray_data(self):
        """Live calls for supervisors, the user's recent calls for everybody."""
        user = self.env.user
        if not user.has_group("mango_telephony.group_mango_user"):
            return {"live": [], "recent": [], "is_supervisor": False}
        is_supervisor = user.has_group("mango_telephony.group_mango_supervisor")
        live = []
        if is_supervisor:
            calls = self.search(
                [
                    ("status", "in", LIVE_STATUSES),
                    ("start_time", ">=", fields.Datetime.now() - LIVE_MAX_AGE),
                ],
                order="start_time desc, id desc",
                limit=50,
            )
            live = [call._mango_call_summary() for call in calls]
        mine = self.search(
            [
                "|",
                "|",
                ("user_id", "=", user.id),
                ("employee_user_id", "=", user.id),
                ("leg_ids.user_id", "=", user.id),
            ],
            order="start_time desc, id desc",
            limit=10,
        )
        return {
            "live": live,
            "recent": [call._mango_call_summary() for call in mine],
            "is_supervisor": is_supervisor,
        }
