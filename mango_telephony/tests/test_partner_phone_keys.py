"""The phone keys the caller lookup reads (models/partner_phone_keys.py) against
the straightforward answer: an ORM search on the contacts' E.164 columns.

Random contacts (shared numbers, companies and their contacts, other companies,
archived ones, numbers in every spelling, in ``phone`` or the mobile field) are
created, changed, archived and deleted through the ORM; then every number, in
every spelling, must find the same contact through the lookup as through the
search, as superuser and as a salesperson, and the table the triggers kept must
hold exactly what a full refill builds from res_partner.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo.tests import tagged

from odoo.addons.mango_telephony.compat.contact_phones import MOBILE_INPUT
from odoo.addons.mango_telephony.models.caller_identification import (
    mango_e164,
    mango_region,
    pick_caller,
)

from .followup_common import MangoFollowupCase

# Few numbers, so that contacts share them; one Finnish, one outside Russia's
# mobile range.
NUMBERS = ("9161230001", "9161230002", "4957654321", "+358401234567")


def spellings(number):
    """The ways a number is written by people and sent by Mango."""
    if number.startswith("+"):
        return (number, "00" + number[1:], number[1:], f"{number[:4]} {number[4:]}")
    return (
        f"8 ({number[:3]}) {number[3:6]}-{number[6:8]}-{number[8:]}",
        f"+7 {number[:3]} {number[3:6]} {number[6:8]} {number[8:]}",
        f"7{number}",
        f"8{number}",
        number,
    )


CONTACT = st.fixed_dictionaries(
    {
        "number": st.sampled_from(NUMBERS),
        "spelling": st.integers(0, 4),
        "field": st.sampled_from(("phone", MOBILE_INPUT)),
        "kind": st.sampled_from(("person", "company", "member")),
        "company": st.sampled_from(("none", "main", "other")),
        "active": st.booleans(),
    }
)
CHANGE = st.tuples(
    st.integers(0, 50),
    st.sampled_from(("renumber", "archive", "restore", "unlink", "move", "clear")),
    st.sampled_from(NUMBERS),
)


class _Rollback(Exception):
    """Undoes one example's writes (hypothesis runs many in one test)."""


class PartnerPhoneCase(MangoFollowupCase):
    """Contacts made from ``CONTACT`` draws, and the answer a plain ORM search
    gives for a number (also the base of test_card_record_rules.py)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_company = cls.env["res.company"].create({"name": "Elsewhere Ltd"})

    def _spelled(self, number, variant):
        options = spellings(number)
        return options[variant % len(options)]

    def _create(self, contacts):
        Partner = self.env["res.partner"]
        companies = {"none": False, "main": self.env.company.id}
        companies["other"] = self.other_company.id
        made = Partner
        for contact in contacts:
            values = {
                "name": f"Contact {len(made)}",
                "is_company": contact["kind"] == "company",
                "company_id": companies[contact["company"]],
                contact["field"]: self._spelled(contact["number"], contact["spelling"]),
            }
            parents = made.filtered("is_company")
            if contact["kind"] == "member" and parents:
                values["parent_id"] = parents[-1].id
                values["company_id"] = parents[-1].company_id.id
            made |= Partner.create(values)
        return made

    def _change(self, partners, changes):
        for position, action, number in changes:
            partner = partners[position % len(partners)]
            if not partner.exists():
                continue
            if action == "renumber":
                partner.phone = self._spelled(number, position)
            elif action == "archive":
                partner.active = False
            elif action == "restore":
                partner.active = True
            elif action == "unlink":
                partner.unlink()
            elif action == "move" and not partner.parent_id:
                partner.company_id = (
                    False if partner.company_id else self.env.company.id
                )
            elif action == "clear":
                partner.write({"phone": False, MOBILE_INPUT: False})

    def _searched(self, Partner, number, company):
        """The contact the plain ORM search names for ``number``."""
        e164 = mango_e164(
            number, mango_region((company or self.env.company).country_id)
        )
        if not e164:
            return Partner.browse()
        domain = [
            "|",
            ("mango_phone_e164", "=", e164),
            ("mango_mobile_e164", "=", e164),
        ]
        if company:
            domain = [("company_id", "in", (False, company.id)), *domain]
        found = Partner.sudo().search(domain, order="id")
        found = Partner.browse(found.ids)._filtered_access("read")
        return Partner.browse(
            pick_caller([(p.id, p.sudo().commercial_partner_id.id) for p in found])
        )

    def _keys(self):
        self.env.cr.execute(
            "SELECT number, partner_id, commercial_partner_id, company_id,"
            " partner_share FROM mango_partner_phone ORDER BY number, partner_id"
        )
        return self.env.cr.fetchall()

    def _refilled_keys(self):
        self.env.cr.execute("SAVEPOINT mango_refill")
        self.env.cr.execute("SELECT mango_partner_phone_refill()")
        keys = self._keys()
        self.env.cr.execute("ROLLBACK TO SAVEPOINT mango_refill")
        return keys


@tagged("post_install", "-at_install")
class TestPartnerPhoneKeys(PartnerPhoneCase):
    @given(
        contacts=st.lists(CONTACT, min_size=1, max_size=8),
        changes=st.lists(CHANGE, max_size=6),
    )
    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def test_lookup_finds_what_a_search_finds(self, contacts, changes):
        try:
            with self.env.cr.savepoint():
                partners = self._create(contacts)
                self._change(partners, changes)
                self.env.flush_all()
                self.assertEqual(self._keys(), self._refilled_keys())
                for Partner in (
                    self.env["res.partner"].sudo(),
                    self.env["res.partner"].with_user(self.salesperson),
                ):
                    for number in NUMBERS:
                        for spelling in spellings(number):
                            for company in (None, self.env.company):
                                with self.subTest(
                                    user=Partner.env.user.login,
                                    number=spelling,
                                    company=company,
                                ):
                                    self.assertEqual(
                                        Partner._mango_find_by_phone(spelling, company),
                                        self._searched(Partner, spelling, company),
                                    )
                raise _Rollback
        except _Rollback:
            self.env.invalidate_all()

    def test_keys_follow_every_write(self):
        Partner = self.env["res.partner"]
        partner = Partner.create({"name": "Keyed", "phone": "8 916 777-00-01"})
        self.env.flush_all()
        self.assertIn((79167770001, partner.id), [k[:2] for k in self._keys()])
        partner.write({"phone": "+7 916 777-00-02"})
        partner.flush_recordset()
        keys = [k[:2] for k in self._keys()]
        self.assertNotIn((79167770001, partner.id), keys)
        self.assertIn((79167770002, partner.id), keys)
        partner.company_id = self.other_company
        partner.flush_recordset()
        self.assertIn(
            (79167770002, partner.id, partner.id, self.other_company.id, True),
            self._keys(),
        )
        partner.active = False
        partner.flush_recordset()
        self.assertNotIn(partner.id, [k[1] for k in self._keys()])
        partner.active = True
        partner.flush_recordset()
        self.assertIn(partner.id, [k[1] for k in self._keys()])
        partner_id = partner.id
        partner.unlink()
        self.assertNotIn(partner_id, [k[1] for k in self._keys()])
        self.assertEqual(self._keys(), self._refilled_keys())
