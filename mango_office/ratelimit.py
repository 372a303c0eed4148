"""Mango's per-product request limits (reference §6), kept on our side.

Each method class has its own bucket. A bucket holds ``limit`` tokens and a spent
token comes back exactly ``period`` seconds after it was spent, so no window of
``period`` seconds ever sees more than ``limit`` requests, however the server
counts. A classic refill-by-rate bucket would let ``2 × limit`` through around
a window edge and earn a 429.

Only the per-product figures are enforced. The "total" figures of §6 cap the
whole customer account across products and are always larger.

The rules (limits, method classes, lockout) are used by both limiters. Odoo
runs many processes, whose buckets must be one: its clients use
:mod:`mango_office.ratelimit_pg`, which keeps them in the database. The
in-process :class:`RateLimiter` here serves a client used on its own (a
script, the pure tests): one per product is shared by every client of that
product in the process (:func:`shared_rate_limiter`), the client's default.
"""

import collections
import threading
import time

# (limit, period in seconds) per method class, reference §6.
# Mango's penalty for repeated invalid requests lasts 2 minutes (§1.4).
LOCKOUT_SECONDS = 120

DEFAULT_LIMITS = {
    "general": (10, 1.0),
    "callback": (4, 1.0),
    "hangup": (4, 1.0),
    "recording_start": (4, 1.0),
    "recordings": (10, 1.0),
    "users": (1, 2.0),
    "balance": (2, 1.0),
    "ab_read": (50, 1.0),
    "ab_write": (10, 1.0),
    "transfer": (1, 2.0),
    "stats": (1, 2.0),
    # §6 gives only a total 50/s for stats/result; applied per product (safe).
    "stats_result": (50, 1.0),
    "route": (1, 2.0),
}

_CLASS_BY_PATH = {
    "commands/callback": "callback",
    "commands/callback_group": "callback",
    "commands/call/hangup": "hangup",
    "commands/recording/start": "recording_start",
    "queries/recording/post": "recordings",
    "queries/recording/link": "recordings",
    "config/users/request": "users",
    "account/balance": "balance",
    "commands/transfer": "transfer",
    "stats/request": "stats",
    "stats/calls/request": "stats",
    "stats/result": "stats_result",
    "stats/calls/result": "stats_result",
    "commands/route": "route",
}


def method_class(path):
    """The limit class of an API path (``general`` for all §6 does not single out)."""
    path = path.strip("/")
    path = path.removeprefix("vpbx/")
    if path in _CLASS_BY_PATH:
        return _CLASS_BY_PATH[path]
    if path.startswith("queries/recording/link/"):
        return "recordings"
    if path.startswith("ab/"):
        # Address-book reads are the list/get methods; anything else writes.
        tail = path[3:]
        return (
            "ab_read"
            if tail.startswith(("contact", "contacts", "get", "list", "search"))
            else "ab_write"
        )
    return "general"


class RateLimiter:
    """Blocking, thread-safe limiter with one bucket per method class.

    ``acquire`` spends a token when a request leaves; ``release`` moves the
    token's time to when the answer came back. Mango counts a request when it
    arrives, which is somewhere in between: counting from the later moment
    keeps a sequence of requests apart by a full period on Mango's side too.
    ``clock`` and ``sleep`` are injectable so tests can run on a fake clock.
    """

    def __init__(self, limits=None, clock=time.monotonic, sleep=time.sleep):
        self.limits = dict(DEFAULT_LIMITS)
        if limits:
            self.limits.update(limits)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._spent = collections.defaultdict(list)
        self._locked_until = 0.0
        self._last_invalid = None

    def _wait_time(self, name, now):
        limit, period = self.limits.get(name, self.limits["general"])
        spent = self._spent[name]
        spent[:] = [ticket for ticket in spent if ticket[1] > now - period]
        if len(spent) < limit:
            return 0.0
        stamps = sorted(ticket[1] for ticket in spent)
        return stamps[len(spent) - limit] + period - now

    def _spend(self, name, now):
        ticket = [name, now]
        self._spent[name].append(ticket)
        return ticket

    def try_acquire(self, path):
        """Spend a token if one is free now: the ticket, or None."""
        name = method_class(path)
        with self._lock:
            now = self._clock()
            if self._wait_time(name, now) > 0:
                return None
            return self._spend(name, now)

    def acquire(self, path):
        """Wait for a token of the path's class; the ticket for :meth:`release`."""
        name = method_class(path)
        while True:
            with self._lock:
                now = self._clock()
                delay = self._wait_time(name, now)
                if delay <= 0:
                    return self._spend(name, now)
            self._sleep(delay)

    def release(self, ticket):
        """The request of ``ticket`` got its answer: its token counts from now."""
        if ticket is None:
            return
        with self._lock:
            ticket[1] = max(ticket[1], self._clock())
            spent = self._spent[ticket[0]]
            if not any(t is ticket for t in spent):
                # Pruned while in flight (a request slower than the period).
                spent.append(ticket)

    # Mango locks the whole API of a product for 2 minutes after a second invalid
    # request (§1.4); every client of the product must stop asking meanwhile.
    def lock_out(self, seconds):
        with self._lock:
            self._locked_until = max(self._locked_until, self._clock() + seconds)

    def locked_for(self):
        """Seconds left of a lockout reported by Mango (0 when not locked)."""
        with self._lock:
            return max(0.0, self._locked_until - self._clock())

    # Mango tolerates one invalid (3xxx) request per 2 minutes; the second locks
    # the API. Work that may be refused and can wait (a recording that might not be
    # stored yet) holds back while a strike is on record, so it never becomes the
    # second one and takes click-to-call down with it.
    def note_invalid(self):
        with self._lock:
            self._last_invalid = self._clock()

    def invalid_strike_for(self, window=LOCKOUT_SECONDS):
        """Seconds until the last 3xxx no longer counts (0 when there is none)."""
        with self._lock:
            if self._last_invalid is None:
                return 0.0
            return max(0.0, self._last_invalid + window - self._clock())


_shared = {}
_shared_lock = threading.Lock()


def shared_rate_limiter(product_key):
    """The process-wide limiter of one Mango product (key: base URL and API key)."""
    with _shared_lock:
        limiter = _shared.get(product_key)
        if limiter is None:
            limiter = _shared[product_key] = RateLimiter()
        return limiter


def reset_shared_rate_limiters():
    """Forget every product's buckets and lockout (a test that resets its simulator)."""
    with _shared_lock:
        _shared.clear()
