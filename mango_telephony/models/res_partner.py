from odoo import api, fields, models
from odoo.tools import SQL

from mango_office import phones


def mango_region(*countries):
    """The first ISO code among ``countries`` (res.country records), else RU.

    Mango is a Russian PBX: a company without a country most likely dials
    Russian numbers, and bare 10-digit numbers are Russian numbers there.
    """
    for country in countries:
        if country and country.code:
            return country.code.upper()
    return "RU"


def mango_e164(number, region):
    """The E.164 form of ``number`` or False; SIP URIs are not phone numbers."""
    if not number:
        return False
    normalized = phones.normalize(number, default_region=region)
    if not normalized or not normalized.startswith("+"):
        return False
    return normalized


class ResPartner(models.Model):
    _inherit = "res.partner"

    # Odoo's phone_sanitized keeps only one of the two numbers and has no index
    # on res.partner, and its phone_mobile_search scans a regexp over every row.
    # An exact match on an indexed E.164 column keeps caller identification in
    # the sub-millisecond range on a million contacts
    # (benchmarks/bench_phone_lookup.py).
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
    mango_call_ids = fields.One2many("mango.call", "partner_id", string="Calls")
    mango_call_count = fields.Integer(
        string="Number of calls",
        compute="_compute_mango_call_count",
        groups="mango_telephony.group_mango_user",
    )

    def init(self):
        result = super().init()
        self.env.cr.execute(
            SQL(
                """
            CREATE OR REPLACE FUNCTION mango_partner_ids_by_phone(
                wanted_number varchar, wanted_company integer
            ) RETURNS SETOF integer LANGUAGE plpgsql STABLE AS $mango$
            BEGIN
                RETURN QUERY
                    SELECT partner.id
                      FROM res_partner partner
                     WHERE (partner.mango_phone_e164 = wanted_number
                            OR partner.mango_mobile_e164 = wanted_number)
                       AND partner.active
                       AND (wanted_company IS NULL
                            OR partner.company_id IS NULL
                            OR partner.company_id = wanted_company)
                     ORDER BY partner.id
                     LIMIT 20;
            END
            $mango$
                """
            )
        )
        return result

    @api.depends("phone", "mobile", "country_id", "company_id")
    def _compute_mango_e164(self):
        for partner in self:
            region = mango_region(
                partner.country_id,
                partner.company_id.country_id,
                self.env.company.country_id,
            )
            partner.mango_phone_e164 = mango_e164(partner.phone, region)
            partner.mango_mobile_e164 = mango_e164(partner.mobile, region)

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

    @api.model_create_multi
    def create(self, vals_list):
        partners = super().create(vals_list)
        call_id = self.env.context.get("mango_link_call_id")
        if call_id:
            self.env["mango.call"]._mango_call_to_link(call_id)._mango_link_partner(
                partners[:1]
            )
        return partners

    @api.model
    def _mango_normalize(self, number, company=None):
        company = company or self.env.company
        return mango_e164(number, mango_region(company.country_id))

    @api.model
    def _mango_find_by_phone(self, number, company=None):
        """The contact calling from ``number``, or an empty recordset.

        The number is normalised (default region: the company's country) and
        matched exactly against the indexed E.164 columns. When several
        contacts of one company share the number — a switchboard — the company
        itself is returned; otherwise the single contact found.

        :param str number: the number as Mango or a user wrote it
        :param company: res.company whose contacts are visible (default: current)
        :return: res.partner, at most one record
        """
        e164 = self._mango_normalize(number, company)
        if not e164:
            return self.browse()
        self.flush_model(
            ["mango_phone_e164", "mango_mobile_e164", "active", "company_id"]
        )
        # Plain SQL on the two indexed columns, through a PL/pgSQL function: the
        # ORM's domain parsing and record-rule query cost ten times the index
        # lookup itself, and planning the statement afresh for every event
        # costs as much again as executing it; the function keeps its plan for
        # the connection's life. Access rules are still applied, to the few
        # rows found.
        self.env.cr.execute(
            SQL(
                "SELECT * FROM mango_partner_ids_by_phone(%s, %s)",
                e164,
                company.id if company else None,
            )
        )
        partners = self.browse([row[0] for row in self.env.cr.fetchall()])
        if partners and not self.env.su:
            partners = partners._filtered_access("read")
        return self._mango_pick_partner(partners)

    def _mango_pick_partner(self, partners):
        if len(partners) <= 1:
            return partners
        groups = {}
        for partner in partners:
            groups.setdefault(partner.commercial_partner_id, self.browse())
            groups[partner.commercial_partner_id] |= partner

        def rank(item):
            commercial, members = item
            # A company named by the number itself beats a family of contacts,
            # which beats a single contact; then the oldest record wins.
            return (commercial not in members, -len(members), commercial.id)

        commercial, members = min(groups.items(), key=rank)
        if len(members) == 1 and commercial not in members:
            return members
        return commercial

    def action_mango_calls(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mango_telephony.mango_call_action"
        )
        family = self.commercial_partner_id | self.commercial_partner_id.child_ids
        action["domain"] = [("partner_id", "in", family.ids)]
        action["context"] = {"create": False}
        return action
