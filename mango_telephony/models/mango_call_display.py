"""The parties of a call as a salesperson reads them.

Mango reports an employee's side as a SIP device (``sip:anna@vpbx….mangosip.ru``)
and numbers in bare E.164 digits; the call log shows the employee and extension,
the line the call went through, and numbers formatted for people instead.
"""

from odoo import _, api, fields, models

from mango_office import phones


def readable_number(number, region="RU"):
    """``+7 495 123-45-67`` for a phone number, the user part of a SIP URI (the
    domain is always the company's own PBX), the text as is otherwise."""
    if not number:
        return ""
    text = str(number).strip()
    if text.lower().startswith("sip:"):
        return text[4:].split("@", 1)[0]
    return phones.display(text, region) or text


class MangoCall(models.Model):
    _inherit = "mango.call"

    from_display = fields.Char(
        string="From",
        compute="_compute_party_display",
        help="Who called: the customer's number, or the employee and the line "
        "of a call made from the office.",
    )
    to_display = fields.Char(
        string="To",
        compute="_compute_party_display",
        help="Who was called: the line an incoming call came in on, the "
        "customer's number of an outgoing call, the colleague of an internal one.",
    )

    line_display = fields.Char(
        string="Company line",
        compute="_compute_line_display",
        help="The company's number the call went through.",
    )

    @api.depends("line_number", "company_id")
    def _compute_line_display(self):
        for call in self:
            call.line_display = readable_number(
                call.line_number, call.company_id.country_id.code or "RU"
            )

    @api.depends(
        "direction",
        "caller_number",
        "called_number",
        "customer_number_e164",
        "line_number",
        "employee_user_id",
        "employee_extension",
        "answered_extension",
        "user_id",
        "leg_ids.from_extension",
        "leg_ids.to_extension",
    )
    def _compute_party_display(self):
        extension_users = self._mango_extension_users()
        for call in self:
            region = call.company_id.country_id.code or "RU"
            users = extension_users.get(call.account_id.id, {})

            def employee(extension, user=None, users=users):
                user = user or users.get(str(extension or "").strip())
                if user and extension:
                    return f"{user.name} ({extension})"
                return (user and user.name) or (extension and str(extension)) or ""

            line = readable_number(call.line_number, region)
            customer = readable_number(
                call.customer_number_e164
                or (
                    call.caller_number
                    if call.direction != "outgoing"
                    else call.called_number
                ),
                region,
            )
            if call.direction == "outgoing":
                caller = employee(
                    call.employee_extension, call.sudo().employee_user_id
                ) or readable_number(call.caller_number, region)
                call.from_display = " · ".join(p for p in (caller, line) if p)
                call.to_display = customer
            elif call.direction == "internal":
                caller_ext, callee_ext = call._mango_internal_extensions()
                call.from_display = employee(caller_ext) or readable_number(
                    call.caller_number, region
                )
                call.to_display = employee(
                    callee_ext,
                    call.sudo().user_id
                    if callee_ext == call.answered_extension
                    else None,
                ) or readable_number(call.called_number, region)
            else:
                call.from_display = customer
                call.to_display = line or readable_number(call.called_number, region)

    @api.depends("from_display", "to_display", "partner_id")
    def _compute_display_name(self):
        # Titles of forms, breadcrumbs and links: "Incoming: Olga Customer",
        # "Outgoing: +7 903 123-45-67", never a bare E.164 string or SIP device.
        directions = dict(self._fields["direction"]._description_selection(self.env))
        for call in self:
            if call.direction == "internal":
                party = " → ".join(p for p in (call.from_display, call.to_display) if p)
            elif call.direction == "outgoing":
                party = call.partner_id.display_name or call.to_display
            else:
                party = call.partner_id.display_name or call.from_display
            label = directions.get(call.direction) or _("Call")
            call.display_name = f"{label}: {party or call.entry_id}"

    def _mango_internal_extensions(self):
        """(caller, callee) extensions of an internal call, from its legs: the
        caller is the first employee dialling out, or the one a click-to-call
        rang first; the callee answered, or was rung last."""
        self.ensure_one()
        legs = self.sudo().leg_ids.sorted(lambda leg: (leg.appeared_at or 0, leg.id))
        caller = next((leg.from_extension for leg in legs if leg.from_extension), None)
        if not caller and legs and legs[0].command_id:
            caller = legs[0].to_extension
        callee = self.answered_extension or next(
            (
                leg.to_extension
                for leg in reversed(legs)
                if leg.to_extension and leg.to_extension != caller
            ),
            None,
        )
        return caller, callee

    def _mango_extension_users(self):
        """``{account id: {extension: res.users}}`` for every extension the
        calls' internal legs name, one lookup per account."""
        wanted = {}
        for call in self.filtered(lambda c: c.direction == "internal"):
            extensions = wanted.setdefault(call.account_id, set())
            for leg in call.sudo().leg_ids:
                extensions.update(
                    e for e in (leg.from_extension, leg.to_extension) if e
                )
        return {
            account.id: account.sudo()._mango_users_for_extensions(extensions)
            for account, extensions in wanted.items()
            if account
        }
