"""Mango's protective limits: the 3xxx lockout and per-method rate limits.

Reference §1.4 and §6.

Both run on the simulator clock so tests advance time instead of sleeping.
"""

import threading

LOCKOUT_WINDOW = 120.0

# (name, capacity, tokens per second). "1 per 2 s" is a bucket of one token that
# refills at 0.5/s; "4/s" is four tokens refilled at 4/s, so a burst of four passes
# and the fifth request inside the same second is refused.
GENERAL = ("general", 10, 10.0)
METHOD_CLASSES = {
    "commands/callback": ("callback", 4, 4.0),
    "commands/callback_group": ("callback", 4, 4.0),
    "commands/call/hangup": ("hangup", 4, 4.0),
    "commands/recording/start": ("recording/start", 4, 4.0),
    "queries/recording/post": ("recordings", 10, 10.0),
    "queries/recording/link": ("recordings", 10, 10.0),
    "config/users/request": ("users/request", 1, 0.5),
    "account/balance": ("account/balance", 2, 2.0),
    "commands/transfer": ("transfer", 1, 0.5),
    "stats/request": ("stats/request", 1, 0.5),
    "stats/calls/request": ("stats/request", 1, 0.5),
    "commands/route": ("route", 1, 0.5),
}

RATE_LIMIT_BODY = {
    "name": "Service Unavailable",
    "message": "Rate limit exceeded.",
    "code": 0,
    "status": 429,
}


class TokenBucket:
    def __init__(self, capacity, rate, now):
        self.capacity = capacity
        self.rate = rate
        self.tokens = float(capacity)
        self.updated = now

    def refill(self, now):
        if now > self.updated:
            self.tokens = min(
                self.capacity, self.tokens + (now - self.updated) * self.rate
            )
        self.updated = max(self.updated, now)

    def retry_after(self):
        return max(0.0, (1 - self.tokens) / self.rate)


class RateLimiter:
    """Token buckets per product (API key) and method class, plus the general bucket."""

    def __init__(self, clock):
        self.clock = clock
        self.enabled = True
        self._buckets = {}
        self._lock = threading.Lock()

    def _bucket(self, product, spec, now):
        name, capacity, rate = spec
        key = (product, name)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(capacity, rate, now)
        bucket.refill(now)
        return bucket

    def acquire(self, product, method):
        """Take a token for ``method``; ``None`` if allowed, else seconds to wait."""
        if not self.enabled:
            return None
        now = self.clock.now()
        with self._lock:
            buckets = [self._bucket(product, GENERAL, now)]
            spec = METHOD_CLASSES.get(method)
            if spec:
                buckets.append(self._bucket(product, spec, now))
            if any(b.tokens < 1 for b in buckets):
                return max(b.retry_after() for b in buckets)
            for b in buckets:
                b.tokens -= 1
            return None

    def clear(self):
        with self._lock:
            self._buckets.clear()


class Lockout:
    """One invalid (3xxx) request per two minutes; a second one locks the API.

    The lock answers HTTP 401 to everything until two minutes after the *first*
    invalid request of the window (reference §1.4, DOC2026 §1.4.1).
    """

    def __init__(self, clock, window=LOCKOUT_WINDOW):
        self.clock = clock
        self.window = window
        self.enabled = True
        self.first_invalid_at = None
        self.locked_until = None
        self._lock = threading.Lock()

    def locked(self):
        """Seconds the lock still lasts, or 0."""
        if not self.enabled:
            return 0
        with self._lock:
            now = self.clock.now()
            if self.locked_until is not None and now < self.locked_until:
                return self.locked_until - now
            if self.locked_until is not None:
                self.locked_until = None
                self.first_invalid_at = None
            return 0

    def register_invalid(self):
        """Record a 3xxx answer; True when it must be answered 401 instead."""
        if not self.enabled:
            return False
        with self._lock:
            now = self.clock.now()
            if (
                self.first_invalid_at is None
                or now >= self.first_invalid_at + self.window
            ):
                self.first_invalid_at = now
                return False
            self.locked_until = self.first_invalid_at + self.window
            return True

    def clear(self):
        with self._lock:
            self.first_invalid_at = None
            self.locked_until = None

    def to_dict(self):
        now = self.clock.now()
        return {
            "enabled": self.enabled,
            "first_invalid_at": self.first_invalid_at,
            "locked_until": self.locked_until,
            "locked": bool(
                self.enabled and self.locked_until and now < self.locked_until
            ),
        }
