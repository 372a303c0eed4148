"""Search domains on each series.

Odoo 18.0 combines and walks domains with ``odoo.osv.expression``; 19.0 has the
``Domain`` class and deprecates ``odoo.osv`` (a warning at every start). Both
series accept what ``AND`` returns wherever a domain is expected.
"""

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
