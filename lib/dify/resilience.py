"""Timeouts, retry policy, rate limit, concurrency cap and circuit breaker.

Each primitive is thread-safe (a `threading.Lock` held only for arithmetic) and usable from sync code
and from any event loop: waiting is done by the caller (`time.sleep` or `asyncio.sleep`) or, for the
concurrency cap, with a per-waiter Event/Future created at wait time, so nothing binds to a loop at
construction (the async client is built and closed inside `asyncio.run`, the sync one is shared by
Streamlit's threads). Written by hand: no library offers one semaphore shared by threads and event
loops, and stamina's backoff is additive jitter with process-global hooks (we need full jitter,
`Retry-After`, and per-client hooks).
"""
from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

clock = time.perf_counter


def min_timeout(*values: float | None) -> float | None:
    """The smallest of the given limits (None = no limit), never below 1 ms; None if there are none."""
    present = [v for v in values if v is not None]
    return max(0.001, min(present)) if present else None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; None means no limit.

    - connect: to open the TCP (and TLS) connection.
    - first_event: from sending to the first SSE data event of a stream (pings do not count), or to
      the whole answer of a blocking generation call.
    - idle: a stream may go this long without a byte (Dify pings every ~10 s, which counts as life);
      also the read timeout of non-generation calls.
    - total: the whole call, queueing and retries included.
    """

    connect: float | None = 10.0
    first_event: float | None = 100.0
    idle: float | None = 30.0
    total: float | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; `Retry-After` honoured up to `max_retry_after`.

    What is retried is decided by the client's rules (see core.py), not here: connect errors, and
    429/502/503/504 before any event of a stream was read; never a generation POST that may have started.
    """

    max_attempts: int = 4
    base: float = 0.5  # first backoff ceiling, seconds
    cap: float = 8.0
    max_retry_after: float = 60.0  # a longer Retry-After is not waited for: the error is raised
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]. `attempt` is the one that failed."""
        return self.rng.uniform(0.0, min(self.cap, self.base * (2 ** (attempt - 1))))

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None when the server asks for too long a wait."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(attempt)


NO_RETRY = RetryPolicy(max_attempts=1)


class TokenBucket:
    """A token bucket as GCRA (virtual scheduling): `reserve()` books the next slot and says how long to
    wait for it, so waits never drift and the long-run rate is exact (`rate` per second, `burst` at once).
    Share one instance between clients to share the budget."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat = 0.0  # theoretical arrival time of the next request
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token; return the seconds to wait before using it (0 if available now)."""
        with self._lock:
            now = clock()
            tat = max(self._tat, now)
            at = max(now, tat - self._tolerance)
            self._tat = tat + self._interval
            wait = at - now
            return wait if wait > 1e-9 else 0.0  # float dust is not a wait

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst})"


class _Waiter:
    __slots__ = ("event", "future", "granted", "loop")

    def __init__(self) -> None:
        self.granted = False
        self.event: threading.Event | None = None
        self.future: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None


class ConcurrencyLimit:
    """At most `limit` calls in flight, FIFO, shared by threads and event loops alike."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._active = 0
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        return self._active

    def _try(self) -> _Waiter | None:
        """Under the lock: take a slot now, or queue a waiter."""
        if self._active < self.limit and not self._waiters:
            self._active += 1
            return None
        w = _Waiter()
        self._waiters.append(w)
        return w

    def acquire(self, timeout: float | None = None) -> bool:
        with self._lock:
            w = self._try()
            if w is None:
                return True
            w.event = threading.Event()
        if w.event.wait(timeout):
            return True
        with self._lock:
            if w.granted:  # granted just as we gave up: keep it
                return True
            self._waiters.remove(w)
            return False

    async def acquire_async(self, timeout: float | None = None) -> bool:
        with self._lock:
            w = self._try()
            if w is None:
                return True
            w.loop = asyncio.get_running_loop()
            w.future = w.loop.create_future()
        try:
            if timeout is None:
                await w.future
            else:
                await asyncio.wait_for(asyncio.shield(w.future), timeout)
            return True
        except TimeoutError:
            self._abandon(w)
            return False
        except asyncio.CancelledError:
            self._abandon(w)
            raise

    def _abandon(self, w: _Waiter) -> None:
        """A waiter gave up; if the slot was handed to it as it left, pass the slot on."""
        with self._lock:
            if not w.granted:
                self._waiters.remove(w)
                return
        self.release()

    def release(self) -> None:
        with self._lock:
            if not self._waiters:
                self._active -= 1
                return
            w = self._waiters.popleft()  # hand the slot over: _active stays the same
            w.granted = True
        if w.event is not None:
            w.event.set()
        else:
            assert w.loop is not None and w.future is not None
            w.loop.call_soon_threadsafe(_wake, w.future)

    def __repr__(self) -> str:
        return f"ConcurrencyLimit(limit={self.limit}, active={self._active}, waiting={len(self._waiters)})"


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failed calls -> half-open after `recovery_time`,
    where one probe call goes through: its success closes the circuit, its failure opens it again.
    The client reports each call once, when it ends (a call and its retries are one failure, not four).

    Failures are what says Dify is unwell: connection errors, timeouts, 5xx, broken streams. 4xx and
    429 are answers from a working Dify and count as successes. `on_change(old, new)` is called on
    every transition (outside the lock).
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_time: float = 30.0,
        *,
        on_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.recovery_time = recovery_time
        self.on_change = on_change
        self._clock = clock
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        self.last_failure: str | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() >= self._opened_at + self.recovery_time:
                return HALF_OPEN  # what the next call will find
            return self._state

    @property
    def probing(self) -> bool:
        """Half-open with its one probe call in flight (other calls fail fast until it reports)."""
        with self._lock:
            return self._state == HALF_OPEN and self._probe_started is not None and self._clock() < self._probe_started + self.recovery_time

    def retry_in(self) -> float:
        """Seconds until the next call may go through (0 when it may now)."""
        with self._lock:
            if self._state == OPEN:
                return max(0.0, self._opened_at + self.recovery_time - self._clock())
            if self._state == HALF_OPEN and self._probe_started is not None:
                return max(0.0, self._probe_started + self.recovery_time - self._clock())
            return 0.0

    def allow(self) -> float | None:
        """None if a call may go now; else the seconds until one may. Marks the half-open probe."""
        change = None
        with self._lock:
            now = self._clock()
            if self._state == OPEN:
                if now < self._opened_at + self.recovery_time:
                    return self._opened_at + self.recovery_time - now
                change = (self._state, HALF_OPEN)
                self._state, self._probe_started = HALF_OPEN, now
            elif self._state == HALF_OPEN:
                # One probe at a time; a probe that never reported (cancelled) expires after recovery_time.
                if self._probe_started is not None and now < self._probe_started + self.recovery_time:
                    return self._probe_started + self.recovery_time - now
                self._probe_started = now
        self._notify(change)
        return None

    def record_success(self) -> None:
        change = None
        with self._lock:
            self._failures = 0
            if self._state != CLOSED:
                change = (self._state, CLOSED)
                self._state, self._probe_started = CLOSED, None
        self._notify(change)

    def record_failure(self, reason: str = "") -> None:
        change = None
        with self._lock:
            self.last_failure = reason or self.last_failure
            self._failures += 1
            if self._state == HALF_OPEN or (self._state == CLOSED and self._failures >= self.failure_threshold):
                change = (self._state, OPEN)
                self._state, self._opened_at, self._probe_started = OPEN, self._clock(), None
        self._notify(change)

    def _notify(self, change: tuple[str, str] | None) -> None:
        if change and self.on_change is not None:
            try:
                self.on_change(*change)
            except Exception:  # noqa: BLE001, S110 - a metrics hook must never break a call (core's own hook logs)
                pass

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state!r}, failures={self._failures}, threshold={self.failure_threshold})"
