"""Per-caller rate limits: a token bucket for each caller, refusing (429) instead of queueing.

A gateway that queued would hold connections open for callers that already exceed their share;
refusing with Retry-After lets a client back off (lib.dify's client honours it).
"""
from __future__ import annotations

import time


class CallerLimits:
    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # caller -> [tokens, last refill]; one event loop: no lock

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, caller: str) -> float:
        """Take a token for `caller`: 0.0 if allowed, else the seconds until a token is available."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = [float(self.burst), now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate
