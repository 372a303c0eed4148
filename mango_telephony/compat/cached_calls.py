"""Calling a method kept in Odoo's ORM cache (``tools.ormcache``) on each series.

The incoming-call card asks for the verdicts of the user's record rules on
every lookup (``ResPartner._mango_read_rule_verdicts``), and its whole budget
is twice a ``SELECT 1`` round trip. Odoo 18.0 wraps an ormcached method with
the ``decorator`` package, whose wrapper binds the arguments to the signature
with ``inspect`` on every call: about 10 µs, as much as everything else the
card's record rules cost. Its cache object (``__cache__``) looks the value up
without that binding. Odoo 19.0 wraps it with ``functools.wraps``, which costs
nothing to call.
"""

from . import ODOO_19


def call_cached(model, name, *args):
    """``getattr(model, name)(*args)``, through the ORM cache of the method
    without the 18.0 wrapper's argument binding. The same cache, keys and
    invalidation: only the way in differs. A method that an override has left
    without its cache is called as usual."""
    function = getattr(type(model), name)
    cache = getattr(function, "__cache__", None)
    if ODOO_19 or cache is None:
        return function(model, *args)
    # 18.0: lookup(method, *args) computes the method's own key from
    # (model, *args) and calls the cached method on a miss.
    return cache.lookup(function, model, *args)
