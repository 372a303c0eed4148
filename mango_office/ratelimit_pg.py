"""Mango's per-product limits kept in PostgreSQL, shared by every process.

Odoo runs as several worker processes, often several instances over one
database; limits kept in each process's memory (:class:`ratelimit.RateLimiter`)
add up, and the PBX sees four workers send four times its limit. This limiter
has the same interface and the same rules, with its state in two tables every
process reads:

* ``mango_rate_limit_product``: per product (a digest of the API address and
  key, never the key itself) the end of Mango's lockout and the time of the
  last invalid (3xxx) answer;
* ``mango_rate_limit_bucket``: per product and method class the times of the
  last ``limit`` tokens spent, as a JSON array of ``limit`` slots. A new token
  takes the oldest slot once it is ``period`` seconds old, so no window of
  ``period`` seconds ever holds more than ``limit`` tokens; nothing older is
  kept, so the tables hold one row per product and class ever used.

Every time is the database's ``clock_timestamp()`` in epoch seconds: instances
whose clocks disagree still agree on the window. Each operation is its own
short transaction on its own connection (``connect``), never the caller's: a
token must be seen by the other workers at once, and must not come back when
the caller's request rolls back. Odoo's cursors are REPEATABLE READ, whose
snapshot would predate a lock the transaction then waits for, so each one
switches to READ COMMITTED and reads the bucket only after taking its lock (an
advisory lock per bucket, so even the first requests of a new bucket queue
up). Waiting for a token happens between transactions, holding no lock.

When the database cannot be used the request is not sent
(:class:`~mango_office.errors.MangoLimiterUnavailable`): a limiter that let
requests through when it fails would lock the PBX out exactly when it matters.
"""

import hashlib
import json
import logging
import time

from .errors import MangoLimiterUnavailable
from .ratelimit import DEFAULT_LIMITS, LOCKOUT_SECONDS, method_class

_logger = logging.getLogger(__name__)

PRODUCT_TABLE = "mango_rate_limit_product"
BUCKET_TABLE = "mango_rate_limit_bucket"

# The tables, for whoever owns the database (Odoo creates them at install).
# Unlogged: the state lives seconds (two minutes for a lockout); after a crash
# the tables come back empty, which only means full buckets and Mango telling
# us again about a lockout. Writing no WAL keeps each token cheap.
SCHEMA = f"""
CREATE UNLOGGED TABLE IF NOT EXISTS {PRODUCT_TABLE} (
    id serial PRIMARY KEY,
    product varchar NOT NULL UNIQUE,
    locked_until double precision,
    last_invalid double precision
);
CREATE UNLOGGED TABLE IF NOT EXISTS {BUCKET_TABLE} (
    id serial PRIMARY KEY,
    product_id integer NOT NULL REFERENCES {PRODUCT_TABLE} (id) ON DELETE CASCADE,
    method_class varchar NOT NULL,
    spent jsonb NOT NULL DEFAULT '[]',
    UNIQUE (product_id, method_class)
);
"""

# What every transaction here starts with, in its first round trip (see the
# module's docstring). Other
# workers see a commit at once whether or not it waited for the disk; waiting
# for it would cost each request two disk flushes.
_BEGIN = """
SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
SET LOCAL synchronous_commit TO OFF;
"""
_NOW = "extract(epoch FROM clock_timestamp())::float8"

_ENSURE_PRODUCT = f"""
INSERT INTO {PRODUCT_TABLE} (product) SELECT %(product)s
 WHERE NOT EXISTS (SELECT 1 FROM {PRODUCT_TABLE} WHERE product = %(product)s)
    ON CONFLICT (product) DO NOTHING;
"""
_ENSURE_BUCKET = f"""
INSERT INTO {BUCKET_TABLE} (product_id, method_class)
SELECT id, %(name)s FROM {PRODUCT_TABLE} WHERE product = %(product)s
    ON CONFLICT (product_id, method_class) DO NOTHING;
"""
# One lock per bucket, held to the end of the transaction. An advisory lock
# needs no row: the first two requests of a new bucket are serialized too.
_LOCK = """
SELECT pg_advisory_xact_lock(hashtextextended(%(product)s || '|' || %(name)s, 0));
"""
# Under READ COMMITTED each statement reads what was committed when it starts:
# a read after the lock sees what the lock's previous holder wrote.
_READ = f"""
SELECT b.id, b.spent, {_NOW}
  FROM {BUCKET_TABLE} b JOIN {PRODUCT_TABLE} p ON p.id = b.product_id
 WHERE p.product = %(product)s AND b.method_class = %(name)s;
"""
_WRITE_SLOTS = f"UPDATE {BUCKET_TABLE} SET spent = %(spent)s WHERE id = %(bucket)s"
# A ticket's token counts from when its answer came back.
_RELEASE = f"""
UPDATE {BUCKET_TABLE}
   SET spent = jsonb_set(spent, ARRAY[%(slot)s::text], to_jsonb(GREATEST(
           COALESCE((spent ->> %(slot)s)::float8, 0), {_NOW})))
 WHERE id = %(bucket)s
RETURNING (spent ->> %(slot)s)::float8
"""
_LOCK_OUT = f"""
UPDATE {PRODUCT_TABLE}
   SET locked_until = GREATEST(COALESCE(locked_until, 0), {_NOW} + %(seconds)s)
 WHERE product = %(product)s
"""
_NOTE_INVALID = (
    f"UPDATE {PRODUCT_TABLE} SET last_invalid = {_NOW} WHERE product = %(product)s"
)
_LOCKED_FOR = f"""
SELECT GREATEST(0, locked_until - {_NOW}) FROM {PRODUCT_TABLE}
 WHERE product = %(product)s
"""
# A database clock set back must not stretch the window past its length.
_STRIKE_FOR = f"""
SELECT LEAST(%(window)s, GREATEST(0, last_invalid + %(window)s - {_NOW}))
  FROM {PRODUCT_TABLE} WHERE product = %(product)s
"""
_FORGET = f"DELETE FROM {PRODUCT_TABLE} WHERE product = %(product)s"
# Products nobody asked for within ``idle`` seconds (an API key replaced, an
# account deleted): their rows say nothing any more.
_PRUNE = f"""
DELETE FROM {PRODUCT_TABLE} p
 WHERE COALESCE(p.locked_until, 0) < {_NOW} - %(idle)s
   AND COALESCE(p.last_invalid, 0) < {_NOW} - %(idle)s
   AND NOT EXISTS (
       SELECT 1 FROM {BUCKET_TABLE} b, jsonb_array_elements_text(b.spent) t
        WHERE b.product_id = p.id AND t::float8 >= {_NOW} - %(idle)s)
"""


def product_digest(base_url, api_key):
    """The key of one Mango product in the tables: the API address and key,
    hashed so the tables hold nothing that identifies the account to Mango."""
    text = f"{(base_url or '').rstrip('/')}|{(api_key or '').strip()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def take_slot(spent, limit, period, now):
    """Decide one request under the bucket's lock.

    :param list spent: the bucket's slots (times of the last tokens spent)
    :return: ``(slots, index, 0)`` when a token is taken (the new slots, the
        slot it took), or ``(None, None, wait)`` with the seconds until the
        oldest slot is free again (never more than ``period``, even if a slot
        lies in the future of a clock that was set back)
    """
    slots = [float(t) for t in spent]
    if len(slots) > limit:  # the limit was lowered since: keep the newest
        slots = sorted(slots)[-limit:]
    if len(slots) < limit:
        return [*slots, now], len(slots), 0.0
    index = min(range(limit), key=slots.__getitem__)
    oldest = slots[index]
    if oldest <= now - period:
        slots[index] = now
        return slots, index, 0.0
    return None, None, min(oldest, now) + period - now


def prune_idle_products(connect, idle=86400.0):
    """Drop the rows of products unused for ``idle`` seconds, in a transaction
    of its own (``connect`` as for :class:`SharedRateLimiter`); how many.

    A product's rows come back at its next request, so this only keeps the
    tables to the products in use.
    """
    with connect() as cr:
        cr.execute(_BEGIN + _PRUNE, {"idle": float(idle)})
        return cr.rowcount


class SharedRateLimiter:
    """The limits of one Mango product, kept in PostgreSQL (see the module).

    :param connect: returns a new cursor on a connection of its own, usable as
        a context manager that commits on a clean exit, rolls back on an error
        and gives the connection back (Odoo's ``Cursor`` does all three)
    :param str product: :func:`product_digest` of the product
    :param dict limits: overrides of :data:`ratelimit.DEFAULT_LIMITS`
    :param sleep: how to wait for a token (injectable for tests)
    """

    def __init__(self, connect, product, limits=None, sleep=time.sleep):
        self.limits = dict(DEFAULT_LIMITS)
        if limits:
            self.limits.update(limits)
        self.product = product
        self._connect = connect
        self._sleep = sleep

    def __repr__(self):
        return f"<SharedRateLimiter {self.product[:12]}>"

    def _run(self, steps):
        """Run ``steps(cursor)`` in a transaction of its own; what it returns.
        The first query of ``steps`` starts with :data:`_BEGIN`."""
        try:
            with self._connect() as cr:
                return steps(cr)
        except MangoLimiterUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure must stop the request
            raise MangoLimiterUnavailable(
                "The request to Mango was not sent: the shared rate limiter in "
                f"the database failed ({type(exc).__name__}: {exc})"
            ) from exc

    def _record(self, what, steps):
        """Run ``steps`` for a request already answered: a failure is logged, not
        raised, so the caller still gets Mango's own answer (a command that was
        sent must not look unsent and be sent again)."""
        try:
            return self._run(steps)
        except MangoLimiterUnavailable as exc:
            _logger.error(
                "Could not record %s in the shared rate limiter: %s", what, exc
            )
            return None

    def _params(self, **params):
        return {"product": self.product, **params}

    def _take(self, cr, name):
        """One attempt under the bucket's lock: ``(ticket, 0)`` or ``(None, wait)``."""
        limit, period = self.limits.get(name, self.limits["general"])
        params = self._params(name=name)
        cr.execute(_BEGIN + _LOCK + _READ, params)
        while True:
            row = cr.fetchone()
            if row is None:  # the product's first request of this class
                cr.execute(_ENSURE_PRODUCT + _ENSURE_BUCKET + _READ, params)
                row = cr.fetchone()
            bucket, spent, now = row
            if isinstance(spent, str):  # a driver that does not decode jsonb
                spent = json.loads(spent)
            slots, index, wait = take_slot(spent or [], limit, period, now)
            if slots is None:
                return None, wait
            cr.execute(_WRITE_SLOTS, {"spent": json.dumps(slots), "bucket": bucket})
            if cr.rowcount == 1:
                return [name, bucket, index, now], 0.0
            # Pruned meanwhile (prune_idle_products): made again, read again.
            cr.execute(_READ, params)

    def try_acquire(self, path):
        """Spend a token if one is free now: the ticket, or None."""
        name = method_class(path)
        ticket, _wait = self._run(lambda cr: self._take(cr, name))
        return ticket

    def acquire(self, path):
        """Wait for a token of the path's class; the ticket for :meth:`release`."""
        name = method_class(path)
        while True:
            ticket, wait = self._run(lambda cr: self._take(cr, name))
            if ticket is not None:
                return ticket
            # Outside any transaction: no lock is held while we wait.
            self._sleep(wait)

    def release(self, ticket):
        """The request of ``ticket`` got its answer: its token counts from now.

        :return: the token's time on the database clock (None without ticket)
        """
        if ticket is None:
            return None
        name, bucket, index, _spent = ticket

        def move(cr):
            params = self._params(name=name, bucket=bucket, slot=index)
            cr.execute(_BEGIN + _LOCK + _RELEASE, params)
            row = cr.fetchone()
            return row[0] if row else None

        # Unrecorded, the token keeps the time it was taken at.
        ticket[3] = self._record("an answer", move) or ticket[3]
        return ticket[3]

    # Mango locks the whole API of a product for 2 minutes after a second invalid
    # request (§1.4); every worker of every instance must stop asking meanwhile.
    def lock_out(self, seconds):
        def lock(cr):
            params = self._params(seconds=float(seconds))
            cr.execute(_BEGIN + _ENSURE_PRODUCT + _LOCK_OUT, params)

        self._record("Mango's lockout", lock)

    def locked_for(self):
        """Seconds left of a lockout reported by Mango (0 when not locked)."""
        return self._value(_LOCKED_FOR, self._params())

    # Mango tolerates one invalid (3xxx) request per 2 minutes; work that may be
    # refused and can wait holds back while a strike is on record, whichever
    # worker earned it (see ratelimit.RateLimiter.note_invalid).
    def note_invalid(self):
        self._record(
            "an invalid request",
            lambda cr: cr.execute(
                _BEGIN + _ENSURE_PRODUCT + _NOTE_INVALID, self._params()
            ),
        )

    def invalid_strike_for(self, window=LOCKOUT_SECONDS):
        """Seconds until the last 3xxx no longer counts (0 when there is none)."""
        return self._value(_STRIKE_FOR, self._params(window=float(window)))

    def forget(self):
        """Drop the product's tokens, lockout and strike (a test that resets
        its simulator, whose PBX forgets them too)."""
        self._run(lambda cr: cr.execute(_BEGIN + _FORGET, self._params()))

    def _value(self, query, params):
        def read(cr):
            cr.execute(_BEGIN + query, params)
            row = cr.fetchone()
            return float(row[0]) if row and row[0] is not None else 0.0

        return self._run(read)
