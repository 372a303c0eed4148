from odoo import api, fields, models

from ..compat.constraints import table_constraints

# incominglines regions that cannot carry an outgoing call: toll-free numbers only
# receive, and a passive SIP line is fed by another carrier (reference §4.5).
_INCOMING_ONLY_REGIONS = ("toll-free", "sip")


@table_constraints
class MangoLine(models.Model):
    _name = "mango.line"
    _description = "Mango Office line"
    _order = "account_id, number, name, id"
    _rec_names_search = ("number", "name", "comment")

    account_id = fields.Many2one(
        "mango.account", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    active = fields.Boolean(default=True)
    line_id = fields.Char(
        string="Mango line ID",
        required=True,
        help="Identifier of the line in Mango, used when assigning it to an employee.",
    )
    number = fields.Char(help="The number, in Mango's format (7XXXXXXXXXX).")
    name = fields.Char(help="Name of the line in Mango; SIP lines are called by it.")
    comment = fields.Char()
    region = fields.Char(
        help="Region code of the number, or the kind of line: sip-uac (active SIP "
        "line), sip (passive SIP line), toll-free."
    )
    schema_name = fields.Char(string="Call scheme")
    usable_outgoing = fields.Boolean(
        string="Outgoing calls",
        compute="_compute_usable_outgoing",
        store=True,
        readonly=False,
        help="Whether calls can be placed with this number shown; decided from the "
        "kind of line and can be corrected by hand.",
    )

    _sql_constraints = (
        (
            "line_id_account_unique",
            "unique(account_id, line_id)",
            "A Mango line is listed once per account.",
        ),
    )

    @api.depends("region", "number")
    def _compute_usable_outgoing(self):
        for line in self:
            digits = "".join(ch for ch in line.number or "" if ch.isdigit())
            toll_free = digits.startswith(("7800", "8800"))
            line.usable_outgoing = (
                bool(line.number or line.name)
                and (line.region or "") not in _INCOMING_ONLY_REGIONS
                and not toll_free
            )

    @api.depends("number", "name")
    def _compute_display_name(self):
        for line in self:
            number = line.number or ""
            if number.isdigit():
                number = f"+{number}"
            if number and line.name and line.name != line.number:
                line.display_name = f"{number} ({line.name})"
            else:
                line.display_name = number or line.name or line.line_id

    def _mango_line_number(self):
        """What Mango expects in ``line_number``: the number, or the name of a SIP
        line without one. Empty string for an empty recordset."""
        if not self:
            return False
        self.ensure_one()
        return self.number or self.name or False
