"""The simulator's clock: real time plus an offset, optionally frozen.

Lockouts, rate limits, stats readiness and link expiry all read this clock, so a
test can freeze it and advance it instead of sleeping.
"""

import threading
import time


class SimClock:
    def __init__(self, frozen=False, now=None):
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen_at = None
        if now is not None:
            self.set(now)
        if frozen:
            self.freeze()

    def now(self):
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    @property
    def frozen(self):
        return self._frozen_at is not None

    def freeze(self):
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = time.time() + self._offset

    def unfreeze(self):
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.time()
                self._frozen_at = None

    def advance(self, seconds):
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds

    def set(self, epoch):
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at = float(epoch)
            else:
                self._offset = float(epoch) - time.time()

    def reset(self):
        with self._lock:
            self._offset = 0.0
            self._frozen_at = None

    def to_dict(self):
        return {"now": self.now(), "frozen": self.frozen}
