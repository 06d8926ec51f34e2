"""Observation points of the client, for metrics and logs (lib/metrics/client.py wires them to Prometheus).

Every hook is optional and called synchronously, possibly from many threads. A hook that raises is
logged and ignored: observing a call must never break it. `route` is the low-cardinality endpoint
label, e.g. "POST /chat-messages" (never a path with ids, never a user or key).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import DifyError
    from .events import Event
    from .timing import Timing

log = logging.getLogger("lib.dify")


@dataclass(slots=True)
class Hooks:
    on_request: Callable[[str, int], None] | None = None  # (route, attempt) as each attempt is sent
    on_response: Callable[[str, int, float], None] | None = None  # (route, status, seconds to headers)
    on_retry: Callable[[str, int, float, str], None] | None = None  # (route, failed attempt, delay s, reason)
    on_rate_limit_wait: Callable[[str, float], None] | None = None  # (kind: "rate"|"concurrency", seconds)
    on_breaker_change: Callable[[str, str], None] | None = None  # (old state, new state)
    on_event: Callable[[str, Event], None] | None = None  # (route, event) each yielded stream event: hot path
    on_ping: Callable[[str], None] | None = None  # (route) each `event: ping`
    on_malformed: Callable[[str, bytes], None] | None = None  # (route, the first 200 bytes of the frame)
    # once per call, at its end: error is None when it succeeded or the caller left (timing.outcome says which)
    on_complete: Callable[[str, Timing, DifyError | None], None] | None = None


def fire(hook: Callable[..., Any] | None, *args: Any) -> None:
    if hook is None:
        return
    try:
        hook(*args)
    except Exception:
        log.exception("a lib.dify hook raised; ignored")
