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

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, key: str) -> float:
        """The seconds until `key` has a token, taking none (0.0 when it has one now)."""
        bucket = self._buckets.get(key)
        if self.rate <= 0 or bucket is None:
            return 0.0
        tokens = min(self.burst, bucket[0] + (self._clock() - bucket[1]) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def forget_full(self) -> None:
        """Drop the buckets that refilled: a new bucket starts full, so nothing changes for them."""
        now = self._clock()
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[key]


class FailedAuthLimits:
    """Failed-auth attempts per client address: `allowed` failures, refilled over `window` seconds.

    An address that used them up gets 429 for every request, its key unchecked, until one refills:
    guessing keys from one address runs at `allowed / window` per second at most. Callers sharing the
    address (a NAT, a proxy not listed in GATEWAY_TRUSTED_PROXIES) share its budget.
    """

    MAX_ADDRESSES = 10_000  # past this, addresses whose budget refilled are forgotten (memory stays bounded)

    def __init__(self, allowed: int, window: float, clock=time.monotonic) -> None:
        self.allowed = max(0, allowed)
        self._limits = CallerLimits(self.allowed / window if self.allowed and window > 0 else 0.0, self.allowed, clock)

    def blocked_for(self, address: str) -> float:
        """Seconds until `address` may try again (0.0: it may now)."""
        if not self.allowed:
            return 0.0
        return self._limits.wait(address)

    def failed(self, address: str) -> None:
        if self.allowed:
            self._limits.acquire(address)
            if len(self._limits) > self.MAX_ADDRESSES:
                self._limits.forget_full()
