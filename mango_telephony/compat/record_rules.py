"""Whether a user's read rules on a model are decided by a few column values.

The incoming-call card shows the caller only if the user whose phone rings may
read that contact. Odoo decides it with ``_filtered_access``: the rules' domain
evaluated in Python on the records, about 100 µs per lookup, more than the
lookup's own round trip. Most rules on contacts only compare a column of the
contact with a constant (the multi-company rule: ``partner_share``,
``company_id`` ``parent_of`` the user's companies). Then the verdict on a
contact depends on those values and nothing else, so it can be decided once per
combination of values, by Odoo itself, and reused (``Verdicts``, made by
``ResPartner._mango_read_rule_verdicts`` and kept in the ORM cache beside the
rules' own cached domains, cleared with them).

``fields_deciding`` answers the question "which columns decide the rules, if
any": it reads the conditions the way each series spells a domain (a list of
leaves on 18.0, a ``Domain`` on 19.0). Whatever it cannot prove to be a
comparison of a stored column with a constant makes it answer None, and the
caller then asks Odoo's ``_filtered_access`` on every record, as before.
"""

from collections.abc import Collection

from odoo.models import BaseModel

from . import ODOO_19

#: Comparisons whose answer on a record depends on the column's value alone.
VALUE_OPERATORS = frozenset({"=", "!=", "in", "not in"})
#: A company's place in the hierarchy: Odoo refuses to change a company's
#: parent ("The company hierarchy cannot be changed"), so these depend on the
#: value alone too, for a field that holds a company.
COMPANY_HIERARCHY_OPERATORS = frozenset({"parent_of", "child_of"})
#: 18.0's constant leaves (``expression.TRUE_LEAF``, ``FALSE_LEAF``).
CONSTANT_LEAVES = ((1, "=", 1), (0, "=", 1))


class _Undecidable(Exception):
    """A part of a domain that is no comparison of a column (19.0's custom
    conditions, a node this module does not know)."""


def _conditions(domain):
    """``(field path, operator, value)`` of each condition of ``domain``, what
    ``ir.rule._compute_domain`` returns on this series; raises _Undecidable on
    a part that is not one."""
    if ODOO_19:
        yield from _domain_conditions(domain)
        return
    for item in domain:
        if isinstance(item, str):  # '&', '|', '!'
            continue
        if tuple(item) in CONSTANT_LEAVES:
            continue
        yield tuple(item)


def _domain_conditions(node):
    """19.0: the conditions of a ``Domain`` tree, walked node by node rather
    than with ``iter_conditions``, which passes over custom conditions."""
    from odoo.orm.domains import (
        DomainBool,
        DomainCondition,
        DomainNary,
        DomainNot,
    )

    if isinstance(node, DomainBool):
        return
    if isinstance(node, DomainCondition):
        yield node.field_expr, node.operator, node.value
    elif isinstance(node, DomainNot):
        yield from _domain_conditions(node.child)
    elif isinstance(node, DomainNary):
        for child in node.children:
            yield from _domain_conditions(child)
    else:
        raise _Undecidable(node)


def _is_constant(value, relational):
    """A value compared as it is: no sub-query, and for a relational field no
    name (Odoo compares a text with the record's display name, which changes)."""
    if isinstance(value, str):
        return not relational
    if isinstance(value, BaseModel):  # records: Odoo's own comparison
        return False
    if isinstance(value, Collection):  # lists, sets, 19.0's OrderedSet
        return all(_is_constant(item, relational) for item in value)
    return value is None or isinstance(value, bool | int | float)


def rules_alone_decide_access(model):
    """Whether reading ``model``'s records is decided by its access rights and
    record rules alone: no module overrides ``_check_access`` for it (mail's
    messages and activities do, with rules of their own)."""
    return type(model)._check_access is BaseModel._check_access


class Verdicts:
    """Odoo's verdicts on records whose access the values of ``fields``
    alone decide (``fields_deciding``), by those values, as they are asked
    for. Made anew whenever the rules may have changed (it is kept in the ORM
    cache, see ``ResPartner._mango_read_rule_verdicts``)."""

    #: Distinct combinations kept at most; then the verdicts start over.
    LIMIT = 10_000

    __slots__ = ("fields", "_known")

    def __init__(self, fields):
        self.fields = fields
        self._known = {}

    def allows(self, values, decide):
        """The verdict for a record whose ``fields`` hold ``values``:
        ``decide()`` (Odoo's own, on such a record) the first time."""
        known = self._known.get(values)
        if known is None:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            known = self._known[values] = bool(decide())
        return known


def fields_deciding(model, domain):
    """The names of the stored fields of ``model`` whose values alone decide
    ``domain`` on a record, sorted; None when something else may (a field path
    through a relation, a computed field, a sub-query, a name, an operator
    such as ``ilike`` or ``any``).

    :param domain: the current user's read rules, as ``ir.rule._compute_domain``
        returns them
    """
    names = set()
    try:
        conditions = list(_conditions(domain))
    except _Undecidable:
        return None
    for path, operator, value in conditions:
        field = model._fields.get(path) if isinstance(path, str) else None
        if field is None or not field.store or not field.column_type:
            return None
        if operator in COMPANY_HIERARCHY_OPERATORS:
            if field.type != "many2one" or field.comodel_name != "res.company":
                return None
        elif operator not in VALUE_OPERATORS:
            return None
        if not _is_constant(value, field.relational):
            return None
        names.add(path)
    return tuple(sorted(names))
