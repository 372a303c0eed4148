"""The incoming-call card's contact is one the user may read, as Odoo decides.

The card's lookup decides the user's read rules once per combination of the
values they compare and reuses the verdict (``ResPartner._mango_readable_ids``,
``compat/record_rules.py``). Here random rules — global or for telephony users,
over the columns the lookup returns and over others, with ``parent_of``,
``child_of``, ``in``, ``!=``, ``ilike``, dotted paths, negations — random
contacts (some of them internal users') and random company contexts are looked
up as a salesperson, and every answer must be the one Odoo's own
``_filtered_access`` gives on the contacts the number reaches.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import Command
from odoo.tests import tagged

from odoo.addons.mango_telephony.compat import ODOO_19, record_rules

from .test_partner_phone_keys import CONTACT, NUMBERS, PartnerPhoneCase, _Rollback

# Conditions a rule on contacts may hold: the first ones compare a column the
# lookup returns with a constant (decided once per value), the others do not
# (decided by Odoo on every contact).
DECIDED_BY_VALUES = (
    "('company_id', 'parent_of', company_ids)",
    "('company_id', 'child_of', company_ids)",
    "('company_id', 'in', company_ids)",
    "('company_id', '=', False)",
    "('company_id', '!=', company_id)",
    "('partner_share', '=', False)",
    "('partner_share', '!=', True)",
    "('commercial_partner_id', '!=', False)",
    # Evaluated for the user when the rule is read: a constant by then.
    "('company_id', 'in', user.company_ids.ids)",
)
DECIDED_BY_ODOO = (
    "('is_company', '=', True)",
    "('name', 'ilike', 'Contact 1')",
    "('parent_id.is_company', '=', True)",
    "('ref', '!=', 'secret')",
    "('company_id.name', '=', 'Elsewhere Ltd')",
)
# Records as the value: 18.0 refuses them in a rule; 19.0 turns them into
# ids (decided by values then).
EITHER = ("('company_id', 'in', user.company_ids)",) if ODOO_19 else ()
CONDITION = st.sampled_from(DECIDED_BY_VALUES + DECIDED_BY_ODOO + EITHER)


@st.composite
def rule_domains(draw):
    """A domain in Polish notation: 1 to 3 conditions, each maybe negated,
    joined by '&' or '|'."""
    conditions = draw(st.lists(CONDITION, min_size=1, max_size=3))
    parts = []
    for _ in conditions[1:]:
        parts.append(repr(draw(st.sampled_from(("&", "|")))))
    for condition in conditions:
        parts.extend(["'!'", condition] if draw(st.booleans()) else [condition])
    return "[" + ", ".join(parts) + "]"


def deciding_fields(Partner):
    """The fields deciding the read rules of ``Partner``'s user and
    companies (``_mango_read_rule_verdicts``), or None."""
    rule_context = Partner.env["ir.rule"]._compute_domain_context_values()
    verdicts = Partner._mango_read_rule_verdicts(tuple(rule_context))
    return verdicts and verdicts.fields


RULE = st.fixed_dictionaries(
    {"domain": rule_domains(), "for_telephony_users": st.booleans()}
)
CONTEXT = st.sampled_from((("main",), ("main", "other"), ("other", "main")))


@tagged("post_install", "-at_install")
class TestCardRecordRules(PartnerPhoneCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesperson.company_ids = [Command.link(cls.other_company.id)]

    def _rules(self, rules):
        telephony_users = self.env.ref("mango_telephony.group_mango_user")
        for rule in rules:
            self.env["ir.rule"].create(
                {
                    "name": "Random contact rule",
                    "model_id": self.env["ir.model"]._get_id("res.partner"),
                    "groups": [Command.link(telephony_users.id)]
                    if rule["for_telephony_users"]
                    else [],
                    "domain_force": rule["domain"],
                    "perm_read": True,
                }
            )

    def _make_internal(self, partners, internal):
        """Make some contacts internal users' (``partner_share`` false: the
        usual rule shows them whatever their company)."""
        Users = self.env["res.users"].with_context(no_reset_password=True)
        for partner, flag in zip(partners, internal, strict=False):
            if flag and not partner.is_company:
                company = partner.company_id or self.env.company
                Users.create(
                    {
                        "login": f"internal-{partner.id}@example.com",
                        "partner_id": partner.id,
                        "company_id": company.id,
                        "company_ids": [Command.set(company.ids)],
                    }
                )

    def test_the_usual_rules_are_decided_by_the_returned_values(self):
        # Without this, the tests below would only walk Odoo's own path.
        Partner = self.env["res.partner"].with_user(self.salesperson)
        self.assertEqual(deciding_fields(Partner), ("company_id", "partner_share"))
        self.assertLessEqual(
            set(deciding_fields(Partner)), set(Partner._mango_lookup_columns)
        )

    def test_what_cannot_be_decided_by_values_is_recognised(self):
        Partner = self.env["res.partner"]
        for condition in DECIDED_BY_ODOO:
            with self.subTest(condition=condition):
                self.env["ir.rule"].search([("name", "=", "Undecidable rule")]).unlink()
                self._rules([{"domain": f"[{condition}]", "for_telephony_users": True}])
                self.env["ir.rule"].search(
                    [("name", "=", "Random contact rule")]
                ).name = "Undecidable rule"
                as_user = Partner.with_user(self.salesperson)
                deciding = deciding_fields(as_user)
                self.assertTrue(
                    deciding is None
                    or not set(deciding) <= set(Partner._mango_lookup_columns),
                    deciding,
                )
        self.assertTrue(record_rules.rules_alone_decide_access(Partner))
        self.assertFalse(
            record_rules.rules_alone_decide_access(self.env["mail.message"]),
            "mail's messages check access in code of their own",
        )

    @given(
        contacts=st.lists(CONTACT, min_size=1, max_size=8),
        internal=st.lists(st.booleans(), min_size=8, max_size=8),
        rules=st.lists(RULE, max_size=2),
        context=CONTEXT,
    )
    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def test_the_card_finds_what_odoo_lets_the_user_read(
        self, contacts, internal, rules, context
    ):
        companies = {"main": self.env.company, "other": self.other_company}
        allowed = [companies[name].id for name in context]
        try:
            with self.env.cr.savepoint():
                self._make_internal(self._create(contacts), internal)
                self._rules(rules)
                self.env.flush_all()
                Partner = (
                    self.env["res.partner"]
                    .with_user(self.salesperson)
                    .with_context(allowed_company_ids=allowed)
                )
                for number in NUMBERS:
                    for company in (None, self.env.company):
                        with self.subTest(rules=rules, number=number, company=company):
                            self.assertEqual(
                                Partner._mango_find_by_phone(number, company),
                                self._searched(Partner, number, company),
                            )
                raise _Rollback
        except _Rollback:
            # The rules created are gone with the savepoint; so must be what
            # was kept about them (a rolled back transaction does the same).
            self.env.registry.clear_cache()
            self.env.invalidate_all()

    def test_every_value_the_rules_compare_counts(self):
        # Two contacts of a company the user does not work in: a customer,
        # hidden, and a colleague there (an internal user's contact), shown.
        # The verdict on the first must not be reused for the second.
        Partner = self.env["res.partner"]
        customer, colleague = Partner.create(
            [
                {
                    "name": name,
                    "phone": phone,
                    "company_id": self.other_company.id,
                }
                for name, phone in (
                    ("Customer there", "+7 916 555-00-01"),
                    ("Colleague there", "+7 916 555-00-02"),
                )
            ]
        )
        self._make_internal(colleague, [True])
        self.assertFalse(colleague.partner_share)
        self.assertEqual(colleague.company_id, self.other_company)
        as_user = Partner.with_user(self.salesperson).with_context(
            allowed_company_ids=[self.env.company.id]
        )
        self.assertFalse(as_user._mango_find_by_phone("79165550001"))
        self.assertEqual(as_user._mango_find_by_phone("79165550002"), colleague)
        self.assertFalse(as_user._mango_find_by_phone("79165550001"))

    def test_verdicts_follow_rule_changes_and_contact_moves(self):
        Partner = self.env["res.partner"]
        contact = Partner.create({"name": "Moving", "phone": "+7 916 555-44-33"})
        as_user = Partner.with_user(self.salesperson).with_context(
            allowed_company_ids=[self.env.company.id]
        )
        self.assertEqual(as_user._mango_find_by_phone("79165554433"), contact)
        # Another company: hidden unless the user works in it.
        contact.company_id = self.other_company
        self.assertFalse(as_user._mango_find_by_phone("79165554433"))
        both = as_user.with_context(
            allowed_company_ids=[self.env.company.id, self.other_company.id]
        )
        self.assertEqual(both._mango_find_by_phone("79165554433"), contact)
        contact.company_id = False
        self.assertEqual(as_user._mango_find_by_phone("79165554433"), contact)
        # A rule added afterwards applies at once, and stops when removed.
        self._rules(
            [{"domain": "[('company_id', '!=', False)]", "for_telephony_users": True}]
        )
        self.assertFalse(as_user._mango_find_by_phone("79165554433"))
        self.env["ir.rule"].search([("name", "=", "Random contact rule")]).unlink()
        self.assertEqual(as_user._mango_find_by_phone("79165554433"), contact)
        # Losing the read right on contacts hides them all.
        self.env["ir.model.access"].search(
            [("model_id.model", "=", "res.partner")]
        ).perm_read = False
        self.assertFalse(as_user._mango_find_by_phone("79165554433"))
