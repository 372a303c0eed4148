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

    def _conjunction_lister():
        """``listed(parts)``: ``list(Domain.AND(parts))`` for thousands of
        groups made of a few hundred shared parts (``Domain`` objects): each
        part's conditions, flattened as a conjunction flattens its children,
        listed once and kept for the lister's life; a group's list is then the
        conjunction's ``&`` operators followed by its parts' lists, as
        ``Domain.AND`` flattens and lists it. No part, or a part that is TRUE
        or FALSE, goes to Odoo's own way."""
        from odoo.orm.domains import DomainAnd, DomainBool

        kept = {}

        def flattened(part):
            # id() of a part kept alive in ``kept``: never reused meanwhile.
            entry = kept.get(id(part))
            if entry is None:
                if isinstance(part, DomainBool):
                    entry = (part, 0, None)
                else:
                    children = part.children if isinstance(part, DomainAnd) else (part,)
                    items = [item for child in children for item in child]
                    entry = (part, len(children), items)
                kept[id(part)] = entry
            return entry

        def listed(parts):
            count, lists = 0, []
            for part in parts:
                _part, size, items = flattened(part)
                if not size:
                    return list(Domain.AND(parts))
                count += size
                lists.append(items)
            if not lists:
                return list(Domain.AND(parts))
            joined = ["&"] * (count - 1)
            for items in lists:
                joined += items
            return joined

        return listed

    def group_domain_joiner():
        """``(join, join_last, done)``: ``join(domain, part)`` adds a
        grouping's condition (from ``group_domain_part``) to a group's domain
        the way ``read_group`` does; ``done(domain)`` is the group's domain as
        ``read_group`` returns it, ``list(domain)``; ``join_last(domain,
        part)`` is ``done(join(domain, part))``, for the last grouping. The
        conditions the groups share are listed once (``_conjunction_lister``)."""
        listed = _conjunction_lister()
        return (
            operator.and_,
            lambda domain, part: listed((domain, part)),
            lambda domain: listed((domain,)),
        )

    # What the web client's formatting (formatted_read_group…) makes of a
    # group's conditions: their conjunction, as a list.
    def group_extra_domain_joiner():
        """``extra(parts)``: the list of the conjunction of ``parts``
        (``Domain`` objects), as the web client's formatting gives it
        (``web.models.models.AND``), the parts' conditions listed once
        (``_conjunction_lister``)."""
        return _conjunction_lister()

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
        """``(join, join_last, done)``: ``join(domain, part)`` adds a
        grouping's condition (``part``, from ``group_domain_part``) to a
        group's ``domain`` the way ``read_group`` does, ``expression.AND(
        [domain, part])``; ``done(domain)`` is the group's domain as
        ``read_group`` returns it (the list ``join`` made); ``join_last`` is
        ``join`` for a group's own domain, which is never joined again.

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

        def joined_with_kind(domain, part):
            # Once per group: the kept entries looked up here, not by a call.
            _domain, left, left_kind = seen.get(id(domain)) or normalized(domain)
            _part, right, right_kind = seen.get(id(part)) or normalized(part)
            if not left_kind and not right_kind:
                return [expression.AND_OPERATOR, *left, *right], ""
            if "zero" in (left_kind, right_kind):
                return [expression.FALSE_LEAF], "zero"
            if left_kind == "unit":
                return list(right), right_kind
            if right_kind == "unit":
                return list(left), left_kind
            return [expression.AND_OPERATOR, *left, *right], ""

        def join(domain, part):
            joined, kind = joined_with_kind(domain, part)
            # Normalized already: when it is joined in turn (an employee's
            # domain to each of its weeks), it is not normalized again.
            seen[id(joined)] = (joined, joined, kind)
            return joined

        def join_last(domain, part):
            # A group's own domain is never joined again: not kept.
            _domain, left, left_kind = seen.get(id(domain)) or normalized(domain)
            _part, right, right_kind = seen.get(id(part)) or normalized(part)
            if not left_kind and not right_kind:
                return [expression.AND_OPERATOR, *left, *right]
            return joined_with_kind(domain, part)[0]

        return join, join_last, _as_returned

    def _as_returned(domain):
        return domain

    # 18.0's web client formats groups with read_group only.
    group_extra_domain_joiner = None
