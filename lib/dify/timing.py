"""The timing record every call carries: when it was sent, its first byte, first token, each token, end.

All instants are `time.perf_counter()` values (monotonic, sub-microsecond on Linux); read them through
the relative properties (`ttft`, `ttfb`, `e2e`, `inter_token`), which are seconds measured from `sent`.
`started_at` is the wall clock (epoch seconds) for storing a run. Blocking calls fill the same fields:
their first byte, first event and first content are all the moment the response arrived.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from .usage import Usage

clock = time.perf_counter


@dataclass(slots=True)
class Timing:
    started_at: float = field(default_factory=time.time)  # wall clock, epoch seconds
    start: float = field(default_factory=clock)  # the call began (before queueing for a token or a slot)
    sent: float | None = None  # the last attempt was handed to the transport
    first_byte: float | None = None  # its response headers arrived
    first_event: float | None = None  # first SSE data event (a ping is not an event)
    first_content: float | None = None  # first event carrying answer text (the first token)
    content: list[float] = field(default_factory=list)  # every content event, first included
    end: float | None = None  # the call finished, successfully or not
    usage: Usage | None = None
    attempts: int = 0
    queued: float = 0.0  # seconds spent waiting for the rate limit, a concurrency slot or a backoff
    events: int = 0  # data events received (pings excluded)
    pings: int = 0
    outcome: str | None = None  # "ok", "error", or "abandoned" (the caller stopped reading or was cancelled)

    def _since_sent(self, t: float | None) -> float | None:
        return None if t is None or self.sent is None else t - self.sent

    @property
    def ttfb(self) -> float | None:
        """Seconds from sending to the response headers."""
        return self._since_sent(self.first_byte)

    @property
    def ttft(self) -> float | None:
        """Time to first token: seconds from sending to the first content event."""
        return self._since_sent(self.first_content)

    @property
    def e2e(self) -> float | None:
        """Seconds from sending the (last) attempt to the end of the call."""
        return self._since_sent(self.end)

    @property
    def total(self) -> float | None:
        """Seconds from the call's start (queueing and retries included) to its end."""
        return None if self.end is None else self.end - self.start

    @property
    def inter_token(self) -> list[float]:
        """Gaps in seconds between consecutive content events."""
        c = self.content
        return [b - a for a, b in pairwise(c)]

    def as_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready: relative seconds, for storing a benchmark sample."""
        usage = self.usage
        return {
            "started_at": self.started_at,
            "outcome": self.outcome,
            "ttfb": self.ttfb,
            "ttft": self.ttft,
            "e2e": self.e2e,
            "total": self.total,
            "attempts": self.attempts,
            "queued": self.queued,
            "events": self.events,
            "content_events": len(self.content),
            "pings": self.pings,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "total_tokens": usage.total_tokens if usage else None,
            "total_price": usage.total_price if usage else None,
            "currency": usage.currency if usage else None,
        }

    def __repr__(self) -> str:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1000:.1f}ms"

        return (
            f"Timing(ttfb={ms(self.ttfb)}, ttft={ms(self.ttft)}, e2e={ms(self.e2e)}, "
            f"content_events={len(self.content)}, attempts={self.attempts}, usage={self.usage!r})"
        )
