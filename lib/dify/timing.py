"""The timing record every call carries: when it was sent, its first byte, first token, each token, end.

All instants are `time.perf_counter()` values (monotonic, sub-microsecond on Linux); read them through
the relative properties (`ttft`, `ttfb`, `e2e`, `inter_token`), which are seconds measured from `sent`.
`started_at` is the wall clock (epoch seconds) for storing a run. Blocking calls fill the same fields:
their first byte, first event and first content are all the moment the response arrived.

Workflow and chatflow streams also keep each node's span (`nodes`, a NodeSpan per node execution):
when its node_started and node_finished arrived, on the same clock. It is filled from the node events
only (nothing per content chunk), so chat apps pay nothing; it stays None when no node event came:
an app without nodes, or a blocking call (Dify's blocking answer carries no node events).
lib/waterfall.py turns it into a per-node latency waterfall.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from .usage import Usage, _float, _int

clock = time.perf_counter


@dataclass(slots=True)
class NodeSpan:
    """One node execution of a workflow/chatflow run, as the client saw it. `started`/`finished` are the
    arrival instants (perf_counter) of its node_started/node_finished; `finished` stays None when none
    came (the run failed, was stopped or the stream broke while it ran). `elapsed` is Dify's own
    `elapsed_time` (seconds, measured inside Dify); tokens/price from its `execution_metadata`."""

    node_id: str
    title: str
    type: str
    index: int | None
    execution_id: str | None  # data.id: one per execution (a node in an iteration runs several times)
    started: float
    finished: float | None = None
    status: str | None = None  # None until finished: succeeded | failed | exception | stopped ...
    elapsed: float | None = None
    tokens: int | None = None
    price: float | None = None
    currency: str | None = None
    error: str | None = None
    parent: str | None = None  # the iteration or loop node it ran inside
    retries: int = 0  # node_retry events for this execution

    @classmethod
    def started_from(cls, data: dict[str, Any], now: float) -> NodeSpan:
        index = data.get("index")
        return cls(
            str(data.get("node_id") or data.get("id") or "node"), str(data.get("title") or data.get("node_id") or "node"),
            str(data.get("node_type") or ""), index if isinstance(index, int) else None, data.get("id"), now,
            parent=data.get("iteration_id") or data.get("loop_id"),
        )

    def finish(self, data: dict[str, Any], now: float) -> None:
        self.finished = now
        self.status = data.get("status") or "succeeded"
        elapsed = data.get("elapsed_time")
        self.elapsed = float(elapsed) if isinstance(elapsed, (int, float)) else None
        error = data.get("error")
        self.error = str(error)[:300] if error else None
        meta = data.get("execution_metadata")
        if isinstance(meta, dict):
            if meta.get("total_tokens") is not None:
                self.tokens = _int(meta.get("total_tokens"))
            if meta.get("total_price") is not None:
                self.price = _float(meta.get("total_price"))
                self.currency = meta.get("currency") or "USD"


def node_usage(spans: list[NodeSpan] | None, total_tokens: int | None = None) -> Usage:
    """A workflow run's usage from its nodes: the sum of the prices in their execution_metadata (the LLM, agent and
    tool nodes that spend), and of their tokens unless Dify's `total_tokens` is given. A node inside an iteration or
    loop whose container reported its own total is counted once, in that total. Prices in several currencies are
    not added into one meaningless figure: the usage then says "mixed", `price` is None and `node_prices` holds
    each currency's sum (a run mixing, say, a USD and an RMB model)."""
    spans = spans or []
    priced = {s.node_id for s in spans if s.price is not None}
    tokened = {s.node_id for s in spans if s.tokens is not None}
    prices: dict[str, float] = {}
    tokens = 0
    for s in spans:
        inside = s.parent is not None
        if s.price is not None and not (inside and s.parent in priced):
            currency = s.currency or "USD"
            prices[currency] = prices.get(currency, 0.0) + s.price
        if s.tokens is not None and not (inside and s.parent in tokened):
            tokens += s.tokens
    usage = Usage(total_tokens=tokens if total_tokens is None else total_tokens, price_from="nodes", node_prices=prices)
    if len(prices) == 1:
        (usage.currency, usage.total_price), = prices.items()
    elif len(prices) > 1:
        usage.price_from, usage.currency = "mixed", "+".join(sorted(prices))
    return usage


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
    nodes: list[NodeSpan] | None = None  # workflow/chatflow streams: each node execution, in start order

    def node_event(self, name: str, data: dict[str, Any], now: float) -> NodeSpan | None:
        """Record a node_started / node_finished / node_retry that arrived at `now`; the span it touched."""
        nodes = self.nodes
        if name == "node_started":
            if nodes is None:
                nodes = self.nodes = []
            started = NodeSpan.started_from(data, now)
            nodes.append(started)
            return started
        span = self._open_span(data)
        if span is None:  # a node_finished without its node_started (joined late): a zero-length span
            if name != "node_finished":
                return None
            span = NodeSpan.started_from(data, now)
            if nodes is None:
                nodes = self.nodes = []
            nodes.append(span)
        if name == "node_finished":
            span.finish(data, now)
        else:
            span.retries += 1
        return span

    def span_of(self, data: dict[str, Any]) -> NodeSpan | None:
        """The newest span of the node execution a node event's `data` names (finished or not), or None."""
        exec_id, node_id = data.get("id"), data.get("node_id")
        for span in reversed(self.nodes or ()):  # the newest first: almost always the last one
            if span.execution_id == exec_id if exec_id else span.node_id == node_id:
                return span
        return None

    def _open_span(self, data: dict[str, Any]) -> NodeSpan | None:
        if not self.nodes:
            return None
        exec_id, node_id = data.get("id"), data.get("node_id")
        for span in reversed(self.nodes):  # the newest first: almost always the last one
            if span.finished is None and (span.execution_id == exec_id if exec_id else span.node_id == node_id):
                return span
        return None

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
            "total_price": usage.price if usage else None,
            "currency": usage.currency if usage else None,
        }

    def __repr__(self) -> str:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1000:.1f}ms"

        nodes = f", nodes={len(self.nodes)}" if self.nodes else ""
        return (
            f"Timing(ttfb={ms(self.ttfb)}, ttft={ms(self.ttft)}, e2e={ms(self.e2e)}, "
            f"content_events={len(self.content)}, attempts={self.attempts}{nodes}, usage={self.usage!r})"
        )
