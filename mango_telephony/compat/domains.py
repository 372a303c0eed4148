"""Search domains on each series.

Odoo 18.0 combines and walks domains with ``odoo.osv.expression``; 19.0 has the
``Domain`` class and deprecates ``odoo.osv`` (a warning at every start). Both
series accept what ``AND`` returns wherever a domain is expected.
"""

import operator

from . import ODOO_19

if ODOO_19:
    from odoo.fields import Domain

    def AND(domains):
        """Every record matching all of ``domains``."""
        return Domain.AND(domains)

    def conditions(domain):
        """``(field path, operator, value)`` of each condition in ``domain``."""
        for condition in Domain(domain).iter_conditions():
            yield condition.field_expr, condition.operator, condition.value

    def normalized(domain):
        """``domain`` as a prefix list with every operator explicit."""
        return list(Domain(domain))

    #: What ``read_group`` starts a group's ``__domain`` from when it has no
    #: search domain.
    GROUP_DOMAIN_START = Domain.TRUE

    def group_domain_part(domain):
        """``domain`` as ``read_group`` combines it into a group's domain."""
        return Domain(domain)

    def group_domain_joiner():
        """``join(domain, part)``: ``domain`` and ``part`` (from
        ``group_domain_part``), the way ``read_group`` adds each grouping's
        condition to a group's domain."""
        return operator.and_

    def group_domain_done(domain):
        """A group's domain as ``read_group`` returns it (a list)."""
        return list(domain)

    # What the web client's formatting (formatted_read_group…) makes of a
    # group's conditions: their conjunction, as a list.
    from odoo.addons.web.models.models import AND as group_extra_domain

else:
    from odoo.osv import expression

    def AND(domains):
        """Every record matching all of ``domains``."""
        return expression.AND(domains)

    def conditions(domain):
        """``(field path, operator, value)`` of each condition in ``domain``."""
        for leaf in expression.normalize_domain(domain):
            if isinstance(leaf, (list, tuple)) and isinstance(leaf[0], str):
                yield tuple(leaf)

    def normalized(domain):
        """``domain`` as a prefix list with every operator explicit."""
        return expression.normalize_domain(domain)

    #: What ``read_group`` starts a group's ``__domain`` from when it has no
    #: search domain.
    GROUP_DOMAIN_START = []

    def group_domain_part(domain):
        """``domain`` as ``read_group`` combines it into a group's domain."""
        return domain

    def group_domain_joiner():
        """``join(domain, part)``: ``domain`` and ``part`` (from
        ``group_domain_part``), the way ``read_group`` adds each grouping's
        condition to a group's domain: ``expression.AND([domain, part])``.

        Thousands of groups share a few dozen domains and parts: each is
        normalized once (by ``expression.normalize_domain``) and kept for the
        joiner's life, then joined as ``expression.combine`` joins normalized
        domains (the unit dropped, the zero absorbing, ``&`` before the rest),
        into a new list for each group as ``AND`` gives.
        """
        true, false = [expression.TRUE_LEAF], [expression.FALSE_LEAF]
        seen = {}

        def normalized(domain):
            # id() of a domain kept alive in ``seen``: never reused meanwhile.
            entry = seen.get(id(domain))
            if entry is None:
                normal = expression.normalize_domain(domain)
                kind = "unit" if normal == true else "zero" if normal == false else ""
                entry = seen[id(domain)] = (domain, normal, kind)
            return entry

        def join(domain, part):
            _domain, left, left_kind = normalized(domain)
            _part, right, right_kind = normalized(part)
            if "zero" in (left_kind, right_kind):
                joined, kind = [expression.FALSE_LEAF], "zero"
            elif left_kind == "unit":
                joined, kind = list(right), right_kind
            elif right_kind == "unit":
                joined, kind = list(left), left_kind
            else:
                joined, kind = [expression.AND_OPERATOR, *left, *right], ""
            # Normalized already: when it is joined in turn (an employee's
            # domain to each of its weeks), it is not normalized again.
            seen[id(joined)] = (joined, joined, kind)
            return joined

        return join

    def group_domain_done(domain):
        """A group's domain as ``read_group`` returns it (a list)."""
        return domain

    # 18.0's web client formats groups with read_group only.
    group_extra_domain = None
