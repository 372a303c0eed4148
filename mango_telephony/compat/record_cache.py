"""Values read by our own SQL, put in the ORM's record cache, on each series.

Caller identification reads, with each contact found, the few fields the pick
and the record rules need, in the same round trip as the lookup itself; giving
them to the ORM saves the query it would otherwise make for them. Odoo 18.0
keeps the record cache on the environment (``env.cache.insert_missing``); 19.0
on each field (``field._insert_cache``). Both leave a value already in the cache
alone: a pending update of the record wins over what the database holds.
"""

from . import ODOO_19


def cache_fetched(records, field, values):
    """Cache ``values`` (as the database returns them, one per record of
    ``records``) for ``field`` where the cache has no value yet."""
    if ODOO_19:
        field._insert_cache(records, values)
    else:
        records.env.cache.insert_missing(records, field, values)
