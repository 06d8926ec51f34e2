"""ClientOptions: everything a client is configured with besides its base URL and key, in one object.

DifyClient, AsyncDifyClient and ClientCore take `options=ClientOptions(...)` and/or the same names as
keywords (`retry=...`); `ClientOptions.build` merges the two, the one place a configuration is made.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .hooks import Hooks
from .resilience import (
    CircuitBreaker,
    ConcurrencyLimit,
    RetryPolicy,
    Timeouts,
    TokenBucket,
)


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()  # breaker=DEFAULT: a fresh CircuitBreaker() per client (None: no breaker)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """A client's configuration. None (and DEFAULT) mean "the client's default"; stateful parts (the
    breaker, the retry policy's random source, hooks) are made fresh per client unless given.

      timeouts: Timeouts(connect, first_event, idle, total)
      retry: RetryPolicy(max_attempts, base, cap, max_retry_after); RetryPolicy(max_attempts=1) disables retries
      rate_limit: requests per second (a float) or a TokenBucket to share between clients
      max_concurrency: calls in flight at once (an int) or a ConcurrencyLimit to share
      breaker: a CircuitBreaker (default: 5 failures, 30 s recovery), or None for none
      hooks: Hooks(...) callbacks for metrics
      headers: extra headers on every request (an Authorization among them is ignored)
      transport: DifyClient: an httpx.BaseTransport (default: httpx's);
                 AsyncDifyClient: "aiohttp" (default: httpx on aiohttp, fast), "httpx" (httpx's own pool)
                 or an httpx.AsyncBaseTransport
      max_connections: connection pool size (default: 100 sync, 1000 async)
    """

    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None
    rate_limit: float | TokenBucket | None = None
    max_concurrency: int | ConcurrencyLimit | None = None
    breaker: CircuitBreaker | None = DEFAULT
    hooks: Hooks | None = None
    headers: Mapping[str, str] | None = field(default=None, repr=False)  # may hold a proxy's credentials
    transport: Any = None
    max_connections: int | None = None

    @classmethod
    def build(cls, options: ClientOptions | None = None, overrides: Mapping[str, Any] | None = None) -> ClientOptions:
        """`options` (or the defaults) with the keywords in `overrides` on top. An unknown name is a
        TypeError naming the valid ones, as a misspelt keyword argument always was."""
        base = options if options is not None else cls()
        if not isinstance(base, ClientOptions):
            raise TypeError(f"options must be a ClientOptions, not {type(base).__name__}")
        if not overrides:
            return base
        unknown = sorted(set(overrides) - set(FIELDS))
        if unknown:
            raise TypeError(f"unexpected client option(s) {', '.join(map(repr, unknown))}; the options are: {', '.join(FIELDS)}")
        return dataclasses.replace(base, **overrides)


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ClientOptions))
