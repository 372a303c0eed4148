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

    def _domain_lister():
        """``listed(domain)``: ``list(domain)`` for thousands of groups made of
        a few hundred conditions: each child of a conjunction listed once and
        kept for the lister's life, then put together as a conjunction lists
        itself (its ``&`` operators first, then each child's own list)."""
        from odoo.orm.domains import DomainAnd

        kept = {}

        def listing(child):
            # id() of a child kept alive in ``kept``: never reused meanwhile.
            entry = kept.get(id(child))
            if entry is None:
                entry = kept[id(child)] = (child, list(child))
            return entry[1]

        def listed(children):
            if len(children) == 1:
                return list(listing(children[0]))
            joined = ["&"] * (len(children) - 1)
            for child in children:
                joined.extend(listing(child))
            return joined

        def domain_listed(domain):
            if isinstance(domain, DomainAnd):
                return listed(domain.children)
            return listed((domain,))

        return domain_listed, listed

    def group_domain_joiner():
        """``(join, done)``: ``join(domain, part)`` adds a grouping's
        condition (from ``group_domain_part``) to a group's domain the way
        ``read_group`` does; ``done(domain)`` is the group's domain as
        ``read_group`` returns it, ``list(domain)``, with the conditions the
        groups share listed once (``_domain_lister``)."""
        domain_listed, _listed = _domain_lister()
        return operator.and_, domain_listed

    # What the web client's formatting (formatted_read_group…) makes of a
    # group's conditions: their conjunction, as a list.
    from odoo.addons.web.models.models import AND as group_extra_domain

    def group_extra_domain_joiner():
        """``extra(parts)``: ``group_extra_domain(parts)`` (the list of the
        conjunction of ``parts``, ``Domain`` objects) for thousands of groups
        sharing a few hundred parts, put together as ``Domain.AND`` flattens a
        conjunction, each condition listed once (``_domain_lister``). No
        part, or a part that is TRUE or FALSE, goes to Odoo's way."""
        from odoo.orm.domains import DomainAnd, DomainBool

        _domain_listed, listed = _domain_lister()

        def extra(parts):
            children = []
            for part in parts:
                if isinstance(part, DomainBool):
                    return group_extra_domain(parts)
                if isinstance(part, DomainAnd):
                    children.extend(part.children)
                else:
                    children.append(part)
            if not children:  # no grouping: Odoo's TRUE
                return group_extra_domain(parts)
            return listed(children)

        return extra

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
        """``(join, done)``: ``join(domain, part)`` adds a grouping's
        condition (``part``, from ``group_domain_part``) to a group's
        ``domain`` the way ``read_group`` does, ``expression.AND([domain,
        part])``; ``done(domain)`` is the group's domain as ``read_group``
        returns it (the list ``join`` made).

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

        return join, _as_returned

    def _as_returned(domain):
        return domain

    # 18.0's web client formats groups with read_group only.
    group_extra_domain = group_extra_domain_joiner = None
