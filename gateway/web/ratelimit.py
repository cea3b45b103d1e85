"""Rate limits of the status page, per token and per client address, in a sliding window.

Counted in this instance's memory (one process): enough to stop guessing and flooding from one
address, cheap, and forgotten at a restart. With several instances behind a load balancer each
counts its own share, so a client may get up to N times the limit; the link's 128-bit MAC is
what keeps guessing hopeless anyway."""

from __future__ import annotations

import threading
import time
from collections import deque

_MAX_KEYS = 100_000  # beyond this, the oldest windows are dropped (memory stays bounded)


class Window:
    """At most `limit` events per key within `seconds`."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Count one event for `key` if it is within the limit; False when over it."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= _MAX_KEYS:
                    self._events.pop(next(iter(self._events)))
                events = self._events[key] = deque()
            while events and events[0] <= moment - self.seconds:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(moment)
            return True
