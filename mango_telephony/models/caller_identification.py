"""Caller identification: who is on the other end of a call.

A number becomes a contact (and an open lead) in one place. Identifiable models
carry ``mango.phone.mixin``: its stored, indexed E.164 columns let a lookup be an
exact index match rather than a regexp over every row. Each such model declares
its ``_mango_caller_priority``; the fold asks them in that order (contact, then
lead, then employee), each filling what the earlier ones left open, so a new
identifiable model is one class with a priority and an ``_mango_identify_call``,
not an edit of a hard-coded chain. The same lookup gives the incoming-call card
its contact, read with the rights of the user whose phone rings; and a contact or
lead created from a call ("new contact" on the call or its card) is linked to it.
"""

import logging

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError
from odoo.tools import SQL

from mango_office import phones
from mango_office.rules import FINISHED_STATUSES

from ..compat import record_rules
from ..compat.cached_calls import call_cached
from ..compat.contact_phones import mobile_of
from ..compat.record_cache import cache_fetched
from .partner_phone_keys import ensure_partner_phone_keys

_logger = logging.getLogger(__name__)

# hr is no dependency of this addon (installing telephony must not install HR), so
# employees cannot carry the mixin: they are a source of their own, asked last.
EMPLOYEE_CALLER_PRIORITY = 30


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


def pick_caller(found):
    """The one partner a number stands for, among ``found``.

    :param found: ``[(partner id, its commercial partner id)]``, oldest first
    :return: a partner id, or None when ``found`` is empty

    When several contacts share the number, a company named by the number
    itself beats a family of contacts, which beats a single contact; then the
    oldest wins. A family found without its company (a switchboard of contacts)
    stands for the company; a single contact for itself.
    """
    if len(found) <= 1:
        return found[0][0] if found else None
    families = {}
    for partner, commercial in found:
        # Rows written by hand may lack their commercial partner: their own.
        families.setdefault(commercial or partner, []).append(partner)

    def rank(item):
        commercial, members = item
        return (commercial not in members, -len(members), commercial)

    commercial, members = min(families.items(), key=rank)
    if len(members) == 1 and commercial not in members:
        return members[0]
    return commercial


class MangoPhoneMixin(models.AbstractModel):
    """The E.164 forms of a record's ``phone`` and ``mobile``, indexed, and how a
    call is matched against them.

    Odoo's ``phone_sanitized`` keeps only one of the two numbers (the mobile
    first: a landline that rings would not be found), has no index on
    res.partner, and its ``phone_mobile_search`` scans a regexp over every row.
    An exact match on an indexed E.164 column, in one round trip, keeps caller
    identification close to a bare ``SELECT 1`` on ten million contacts
    (benchmarks/bench_phone_lookup.py prints both).
    """

    _name = "mango.phone.mixin"
    _description = "Phone numbers for caller identification"
    # Lower is asked first by the fold; see mango.call._mango_caller_sources.
    _mango_caller_priority = 100

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

    def _mango_e164_depends(self):
        # The mixin itself has none of these fields; the models using it have.
        return [
            name
            for name in ("phone", "mobile", "country_id", "company_id")
            if name in self._fields
        ]

    @api.depends(lambda self: self._mango_e164_depends())
    def _compute_mango_e164(self):
        for record in self:
            region = mango_region(
                record.country_id,
                record.company_id.country_id,
                self.env.company.country_id,
            )
            record.mango_phone_e164 = mango_e164(record.phone, region)
            record.mango_mobile_e164 = mango_e164(mobile_of(record), region)

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        call_id = self.env.context.get("mango_link_call_id")
        if call_id:
            records[:1]._mango_link_to_call(
                self.env["mango.call"]._mango_call_to_link(call_id)
            )
        return records

    @api.model
    def _mango_normalize(self, number, company=None):
        company = company or self.env.company
        return mango_e164(number, mango_region(company.country_id))

    def _mango_link_to_call(self, call):
        """This record was created from ``call`` (its "new contact/lead" button):
        attach it to the call. Nothing by default."""
        return None

    @api.model
    def _mango_identify_call(self, call, number, found):
        """Fill what is still empty in ``found`` from the records of this model
        reachable at ``number``; called in ``_mango_caller_priority`` order.

        :param call: the ``mango.call`` being identified
        :param str number: the outside party's number (E.164)
        :param dict found: ``{"partner": res.partner, "lead": crm.lead}``, what
            the call has or earlier models found
        """
        return None


class ResPartner(models.Model):
    _name = "res.partner"
    _inherit = ["res.partner", "mango.phone.mixin"]
    _mango_caller_priority = 10

    #: Columns the lookup returns with each partner found, in the same round
    #: trip: what picking among several needs (the commercial partner) and what
    #: the record rules every internal user has on contacts read (the
    #: multi-company rule: company, shared or not), so that the rules are
    #: decided once per combination of these values. A rule reading other
    #: fields still applies: Odoo decides it on every contact found then, with
    #: these values in its cache and fetching what it lacks
    #: (_mango_readable_ids). In the order mango_partners_by_phone() returns
    #: them, after the id; the phone keys table carries them
    #: (partner_phone_keys.py).
    _mango_lookup_columns = ("commercial_partner_id", "company_id", "partner_share")

    def init(self):
        result = super().init()
        ensure_partner_phone_keys(self.env.cr)
        return result

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
        # Every number the normaliser gives has a key; a text without one
        # cannot be any contact's number either (partner_phone_keys.py).
        key = phones.e164_key(self._mango_normalize(number, company))
        if key is None:
            return self.browse()
        # The triggers keep the keys as the rows are written: pending writes
        # of the columns they read must reach the database first.
        self.flush_model(
            ["mango_phone_e164", "mango_mobile_e164", "active"]
            + list(self._mango_lookup_columns)
        )
        # One round trip, one index-only scan of the phone keys
        # (partner_phone_keys.py), through a PL/pgSQL function that keeps its
        # plan for the connection's life; it returns with each partner what
        # the pick and the record rules read. The rules then apply to the few
        # rows found, decided once per combination of the values they compare
        # (_mango_readable_ids).
        self.env.cr.execute(
            SQL(
                "SELECT * FROM mango_partners_by_phone(%s, %s)",
                key,
                company.id if company else None,
            )
        )
        rows = self.env.cr.fetchall()
        if not rows:
            return self.browse()
        ids, *columns = zip(*rows, strict=True)
        if self.env.su:
            # The superuser (the fold) reads none of the columns through the
            # ORM: the pick takes them from the rows, so filling the cache
            # would be work for nothing.
            return self.browse(pick_caller(list(zip(ids, columns[0], strict=True))))
        readable = self._mango_readable_ids(ids, columns)
        commercial_of = dict(zip(ids, columns[0], strict=True))
        return self.browse(pick_caller([(id_, commercial_of[id_]) for id_ in readable]))

    def _mango_readable_ids(self, ids, columns):
        """The ids among ``ids`` the current user may read, in order.

        When the user's read rules compare only columns the lookup returned
        (``columns``, in ``_mango_lookup_columns`` order) with constants, each
        combination of those values is decided once by Odoo's own
        ``_filtered_access`` and the verdict reused
        (``_mango_read_rule_verdicts``); otherwise Odoo decides on every record.
        """
        verdicts = call_cached(
            self,
            "_mango_read_rule_verdicts",
            tuple(self.env["ir.rule"]._compute_domain_context_values()),
        )
        returned = dict(zip(self._mango_lookup_columns, columns, strict=True))
        returned["id"] = ids
        if verdicts is None or not set(verdicts.fields) <= returned.keys():
            return (
                self._mango_with_lookup_columns(ids, columns)
                ._filtered_access("read")
                ._ids
            )
        values = [returned[name] for name in verdicts.fields]
        return [
            id_
            for index, id_ in enumerate(ids)
            if verdicts.allows(
                tuple(column[index] for column in values),
                lambda id_=id_: (
                    self._mango_with_lookup_columns(ids, columns)
                    .browse(id_)
                    ._filtered_access("read")
                ),
            )
        ]

    def _mango_with_lookup_columns(self, ids, columns):
        """The contacts ``ids``, with the lookup's ``columns`` in the record
        cache for Odoo's rules (evaluated on cached values), saving the query
        that would fetch them. Done only when Odoo is asked: a verdict already
        known reads nothing from the cache, and filling it cost 8 µs of the
        card's 147 µs at p50 (``bench_phone_lookup.py``'s phases, 10M contacts)."""
        partners = self.browse(ids)
        for name, values in zip(self._mango_lookup_columns, columns, strict=True):
            cache_fetched(partners, self._fields[name], values)
        return partners

    @api.model
    @tools.ormcache("self.env.uid", "self.env.su", "rule_context")
    def _mango_read_rule_verdicts(self, rule_context):
        """Odoo's verdicts on contacts for the current user, by the values of
        the fields that alone decide its read rules (``compat.record_rules.
        Verdicts``), or None when something else may decide them.

        Kept like Odoo keeps the rules' domains: per user and
        ``rule_context`` (what ``ir.rule._compute_domain_context_values``
        gives), in the ORM cache that any change of rules, access rights,
        groups or companies clears; the verdicts go with it.
        """
        if not record_rules.rules_alone_decide_access(self):
            return None
        domain = self.env["ir.rule"]._compute_domain(self._name, "read")
        fields = record_rules.fields_deciding(self, domain)
        return None if fields is None else record_rules.Verdicts(fields)

    @api.model
    def _mango_identify_call(self, call, number, found):
        if not found["partner"]:
            found["partner"] = self._mango_find_by_phone(number, call.company_id)

    def _mango_link_to_call(self, call):
        call._mango_link_partner(self)


class CrmLead(models.Model):
    _name = "crm.lead"
    _inherit = ["crm.lead", "mango.phone.mixin"]
    _mango_caller_priority = 20

    @api.model
    def _mango_find_open_by_phone(self, number, company=None):
        """Open (active, not won) leads and opportunities reachable at ``number``,
        newest first.

        :param str number: the number as Mango or a user wrote it
        :param company: res.company whose leads are searched (default: all visible)
        :return: crm.lead recordset
        """
        e164 = self._mango_normalize(number, company)
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

    @api.model
    def _mango_identify_call(self, call, number, found):
        lead = (
            found["lead"] or self._mango_find_open_by_phone(number, call.company_id)[:1]
        )
        found["lead"] = lead
        # A lead's customer answers for a number no contact carries.
        if not found["partner"] and lead.partner_id:
            found["partner"] = lead.partner_id

    def _mango_link_to_call(self, call):
        call._mango_link_lead(self)


class MangoCall(models.Model):
    _inherit = "mango.call"

    caller_identified = fields.Boolean(
        readonly=True,
        copy=False,
        help="The caller has been looked up once; a later edit of the contact by "
        "hand is not overridden.",
    )

    # ------------------------------------------------------------------
    # The registry of identifiable models
    # ------------------------------------------------------------------

    @api.model
    def _mango_caller_sources(self):
        """The identifiable models, in the order they are asked.

        Every model using ``mango.phone.mixin`` is one, at the priority it
        declares; employees are one when HR is installed.

        :return: ``[(priority, model name, finder)]``, ``finder(call, number,
            found)`` filling ``found`` like ``_mango_identify_call``
        """
        sources = []
        for name in self.env.registry.descendants(["mango.phone.mixin"], "_inherit"):
            model = self.env[name]
            if not model._abstract:
                sources.append(
                    (
                        model._mango_caller_priority,
                        name,
                        model.sudo()._mango_identify_call,
                    )
                )
        if "hr.employee" in self.env:
            sources.append(
                (EMPLOYEE_CALLER_PRIORITY, "hr.employee", self._mango_identify_employee)
            )
        return sorted(sources, key=lambda source: source[:2])

    # ------------------------------------------------------------------
    # The post-fold step
    # ------------------------------------------------------------------

    def _mango_step_identify_caller(self, previous):
        for call in self:
            call._mango_identify_caller()

    def _mango_identify_caller(self):
        self.ensure_one()
        if self.caller_identified:
            return
        number = self._mango_external_number()
        if not number:
            # Internal calls have no customer; leaving the flag unset lets a later
            # event that reveals the direction try again.
            if self.direction == "internal":
                self.caller_identified = True
            return
        found = {"partner": self.partner_id, "lead": self.lead_id}
        for _priority, _model, finder in self._mango_caller_sources():
            finder(self, number, found)
        vals = {"caller_identified": True}
        if found["partner"] and not self.partner_id:
            vals["partner_id"] = found["partner"].id
        if found["lead"] and not self.lead_id:
            vals["lead_id"] = found["lead"].id
        self.write(vals)

    @api.model
    def _mango_identify_employee(self, call, number, found):
        if not found["partner"]:
            found["partner"] = call._mango_find_employee_contact(number)

    def _mango_find_employee_contact(self, number):
        """The work contact of an employee using ``number``, when HR is installed.

        Employees' phones are free text in HR's columns, which have no index
        of ours, and a directory import brings a hundred thousand of them: so
        SQL keeps the employees whose phones show the number's last digits
        (``phones.tail_pattern``) or need parsing to tell (``needs_parsing``),
        and only those are normalised and compared: about 7 s → 0.12 s for a
        number no one has among 100,000 employees with phones.
        """
        if "hr.employee" not in self.env:
            return self.env["res.partner"]
        region = (self.company_id.country_id.code or "RU").upper()
        Employee = self.env["hr.employee"].sudo()
        query = Employee._search(
            [
                ("company_id", "in", (False, self.company_id.id)),
                "|",
                ("work_phone", "!=", False),
                ("mobile_phone", "!=", False),
            ],
            order="id",
        )
        pattern = phones.tail_pattern(number)
        if pattern:
            # Both phones as one text: half the matching per row; what the
            # join adds (digits across the two, a second extension word) only
            # lets more rows through to the exact comparison.
            both = SQL(
                "concat_ws(' ', %s, %s)",
                SQL.identifier(Employee._table, "work_phone"),
                SQL.identifier(Employee._table, "mobile_phone"),
            )
            query.add_where(
                SQL(
                    """(%(both)s ~ %(shown_or_unsafe)s
                        OR (%(both)s ~ %(latin)s
                            AND regexp_replace(%(both)s, %(extension)s, '', 'i')
                                ~ %(latin)s))""",
                    both=both,
                    shown_or_unsafe=f"{pattern}|{phones.UNSAFE_CHARACTER}",
                    latin=phones.LATIN_LETTER,
                    extension=phones.EXTENSION_WORD,
                )
            )
        for employee in Employee.browse(query):
            for candidate in (employee.mobile_phone, employee.work_phone):
                if candidate and phones.normalize(candidate, region) == number:
                    return employee.work_contact_id or employee.user_id.partner_id
        return self.env["res.partner"]

    # ------------------------------------------------------------------
    # The incoming-call card's contact
    # ------------------------------------------------------------------

    def _mango_card_partner(self, env, number):
        """The caller's contact if ``env``'s user may read it."""
        Partner = env["res.partner"]
        if not Partner.has_access("read"):
            return Partner
        known = self.sudo().partner_id
        if known:
            readable = Partner.browse(known.id)._filtered_access("read")
            if readable:
                return readable
        if not number:
            return Partner
        return Partner._mango_find_by_phone(number, self.company_id)[:1]

    # ------------------------------------------------------------------
    # A contact or lead created from a call
    # ------------------------------------------------------------------

    @api.model
    def _mango_call_to_link(self, call_id):
        """The call whose "new contact" or "new lead" button was pressed, when the
        current user may change it: the id comes from the client's context, and
        linking a colleague's call to a contact of one's own would show it to
        whoever is that contact's salesperson.

        :rtype: mango.call (empty when unknown or not the user's to change)
        """
        if not isinstance(call_id, int) or isinstance(call_id, bool) or call_id <= 0:
            return self.browse()
        call = self.browse(call_id).exists()
        if call and not self.env.su:
            try:
                call.check_access("write")
            except AccessError:
                _logger.info(
                    "User %s may not change call %s: not linking it",
                    self.env.uid,
                    call_id,
                )
                return self.browse()
        return call

    def _mango_link_partner(self, partner):
        """Attach ``partner`` to this call and to the other unmatched calls of
        the same number, then show the finished ones on its chatter."""
        if not partner:
            return
        calls = self.sudo().filtered(lambda c: not c.partner_id)
        numbers = [n for n in calls.mapped("customer_number_e164") if n]
        if numbers:
            calls |= self.sudo().search(
                [
                    ("customer_number_e164", "in", numbers),
                    ("company_id", "in", calls.company_id.ids),
                    ("partner_id", "=", False),
                ]
            )
        if not calls:
            return
        calls.write({"partner_id": partner.id, "caller_identified": True})
        calls.filtered(lambda c: c.status in FINISHED_STATUSES)._mango_post_on_chatter()

    def _mango_link_lead(self, lead):
        if not lead:
            return
        calls = self.sudo().filtered(lambda c: not c.lead_id)
        if not calls:
            return
        calls.write({"lead_id": lead.id, "caller_identified": True})
        if lead.partner_id:
            calls.filtered(lambda c: not c.partner_id).write(
                {"partner_id": lead.partner_id.id}
            )
        calls.filtered(lambda c: c.status in FINISHED_STATUSES)._mango_post_on_chatter()

    def action_mango_create_partner(self):
        """Open a new contact prefilled with the caller's number; saving it links
        the contact to this call (and other calls from the number)."""
        self.ensure_one()
        number = self.customer_number_e164 or self.caller_number or ""
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("New contact"),
            "res_model": "res.partner",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
            "context": {
                "default_phone": number,
                "default_name": False,
                "mango_link_call_id": self.id,
            },
        }

    def action_mango_create_lead(self):
        """Open a new lead prefilled with the caller's number (and contact);
        saving it links the lead to this call."""
        self.ensure_one()
        number = self.customer_number_e164 or self.caller_number or ""
        context = {
            "default_phone": number,
            "default_name": self.env._("Call from %(number)s", number=number),
            "default_type": "lead"
            if self.env.user.has_group("crm.group_use_lead")
            else "opportunity",
            "mango_link_call_id": self.id,
        }
        if self.partner_id:
            context["default_partner_id"] = self.partner_id.id
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("New lead"),
            "res_model": "crm.lead",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
            "context": context,
        }
