"""Mango's rate limits and lockout, shared by every worker and instance.

Mango counts requests per product, whichever of our processes sends them, and
locks the whole product out after repeated invalid ones. Limits kept in each
worker's memory would add up across workers and instances, so the limiter keeps
its state in this database (``mango_office/ratelimit_pg.py`` holds the rules and
the SQL; this model creates its tables and gives it connections).

The limiter works on connections of its own, outside the request's transaction:
a token spent must be visible to the other workers at once and must stay spent
when the request rolls back. It needs no record of the registry, so it also
works while tests run on one shared test cursor (its tables exist from the
install on). Nobody reads or writes the tables through the ORM.
"""

from odoo import api, models
from odoo.sql_db import db_connect
from odoo.tools import SQL

from mango_office.ratelimit_pg import (
    BUCKET_TABLE,
    PRODUCT_TABLE,
    SCHEMA,
    SharedRateLimiter,
    product_digest,
    prune_idle_products,
)


class MangoRateLimit(models.AbstractModel):
    _name = "mango.rate.limit"
    _description = "Mango rate limits shared by all workers"

    def init(self):
        self.env.cr.execute(SCHEMA)

    def _mango_connect(self):
        """A cursor on a connection of its own (never the request's): what the
        limiter runs each of its short transactions on."""
        dbname = self.env.registry.db_name
        return lambda: db_connect(dbname).cursor()

    @api.model
    def _mango_limiter(self, base_url, api_key):
        """The limiter of one Mango product (API address and key) in this
        database; every object built for the same product shares its state.

        :rtype: mango_office.ratelimit_pg.SharedRateLimiter
        """
        return SharedRateLimiter(
            self._mango_connect(), product_digest(base_url, api_key)
        )

    @api.autovacuum
    def _gc_idle_products(self):
        """Daily: forget the products nobody sent a request for in a day (a key
        replaced, an account deleted), so the tables hold the products in use."""
        prune_idle_products(self._mango_connect())

    @api.model
    def _mango_forget_all(self):
        """Drop every product's tokens, lockout and strike (tests that reset
        their simulator, whose PBX forgets them too)."""
        with self._mango_connect()() as cr:
            cr.execute(SQL("DELETE FROM %s", SQL.identifier(PRODUCT_TABLE)))

    @api.model
    def _mango_drop_tables(self):
        """Uninstalling: the tables are ours, not the ORM's."""
        self.env.cr.execute(
            SQL(
                "DROP TABLE IF EXISTS %s, %s",
                SQL.identifier(BUCKET_TABLE),
                SQL.identifier(PRODUCT_TABLE),
            )
        )
