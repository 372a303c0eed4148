"""When a queue tries again, and when it stops: one rule for every retry loop.

The queues that retry on their own clock — webhook events (``mango.event``),
recording fetches (``mango.call.recording``) and the website's call-back
attempts (``mango.callback.request``) — used to spell their loops by hand. They
now share one vocabulary: *attempts* made so far, the *next attempt at* a time,
the *last error*, and a :class:`Backoff` that turns the number of attempts into
the wait before the next one and says when to give up.

Each queue keeps its own numbers, for its own reason (events back off
exponentially because a failure is usually our bug and retrying fast only fills
the log; a recording is asked for once a minute for an hour because Mango says
so, reference §4.1; a visitor is called back every N minutes, N attempts, as the
widget's settings say).
"""

from dataclasses import dataclass
from datetime import timedelta

LONGEST_WAIT_SECONDS = 100 * 365 * 86400


@dataclass(frozen=True)
class Backoff:
    """The wait after the n-th failed attempt, and when to give up.

    :param first: the wait after the first failure
    :param factor: each further failure multiplies the wait (1: a fixed wait)
    :param cap: the longest wait, if any
    :param max_attempts: give up once this many attempts failed, if set
    :param window: give up when the next attempt would come later than this
        after the first one, if set
    """

    first: timedelta
    factor: float = 2.0
    cap: timedelta | None = None
    max_attempts: int | None = None
    window: timedelta | None = None

    def delay(self, attempts):
        """The wait before the next attempt, once ``attempts`` (>= 1) failed."""
        seconds = self.first.total_seconds() * self.factor ** max(attempts - 1, 0)
        if self.cap is not None:
            seconds = min(seconds, self.cap.total_seconds())
        # A wait beyond a century is no retry; it would overflow timedelta.
        return timedelta(seconds=min(seconds, LONGEST_WAIT_SECONDS))

    def exhausted(self, attempts, first_attempt_at=None, next_attempt_at=None):
        """Whether to give up after ``attempts`` failed attempts, the first at
        ``first_attempt_at``, the next one planned at ``next_attempt_at``."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return bool(
            self.window is not None
            and first_attempt_at is not None
            and next_attempt_at is not None
            and next_attempt_at - first_attempt_at > self.window
        )

    def next_attempt_at(self, now, attempts, first_attempt_at=None, wait=None):
        """When to try again after ``attempts`` failed attempts (``None``: give
        up). ``wait`` overrides the computed delay, for an answer that says how
        long to wait (a lockout's Retry-After)."""
        planned = now + (self.delay(attempts) if wait is None else wait)
        if self.exhausted(attempts, first_attempt_at or now, planned):
            return None
        return planned
