"""Simulator settings: the latency model, fault rates and limits, from CLI flags."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from .profiles import DEFAULT_VERSION

FAULTS = (
    "429",
    "429-retry-after",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "drop",
    "stall",
    "error-event",
    "malformed-event",
    "slow-headers",
    "node-failed",
    "no-model",
)
# Faults that happen inside a stream (after some events); the rest happen before headers.
STREAM_FAULTS = frozenset({"drop", "stall", "error-event", "malformed-event"})
# Faults the generation itself plays (a workflow node fails), in both response modes.
RUN_FAULTS = frozenset({"node-failed"})


@dataclass
class Latency:
    """Time to first token and the pace after it; `jitter` is the relative spread (0 = exact)."""

    ttft_s: float = 0.5
    tokens_per_s: float = 40.0
    jitter: float = 0.2

    def ttft(self, rng: random.Random) -> float:
        return self._spread(self.ttft_s, rng)

    def gap(self, rng: random.Random) -> float:
        return self._spread(1.0 / self.tokens_per_s, rng) if self.tokens_per_s > 0 else 0.0

    def spread(self, value: float, rng: random.Random) -> float:
        """`value` with this request's jitter."""
        return self._spread(value, rng)

    def _spread(self, value: float, rng: random.Random) -> float:
        if self.jitter <= 0 or value <= 0:
            return value
        return value * max(0.2, rng.gauss(1.0, self.jitter))


@dataclass
class NodeTiming:
    """How long a workflow/chatflow run spends outside its model, so a per-node waterfall on the simulator
    shows something: `overhead_s` before the first node (Dify loading the app and its graph, queueing the
    run), `step_s` for each node without I/O (Start, Answer, End, Template). Knowledge Retrieval takes 30%
    of the TTFT; the LLM node spans the generation, from its start to its last token (the first at the
    request's TTFT, as for chat apps). Both get the request's jitter."""

    overhead_s: float = 0.03
    step_s: float = 0.004


@dataclass
class SimConfig:
    seed: int = 0
    latency: Latency = field(default_factory=Latency)
    fast: bool = False
    fault_rates: dict[str, float] = field(default_factory=dict)  # applied to generation calls
    max_active_requests: int = 0  # per app, 0 = unlimited (Dify's self-host default)
    ping_interval_s: float = 10.0
    stall_limit_s: float = 300.0  # a stalled stream gives up after this long, client or not
    slow_headers_s: float = 2.0
    drop_after: int = 3
    dify_version: str = DEFAULT_VERSION  # the profile of requests without X-Sim-Dify-Version
    nodes: NodeTiming = field(default_factory=NodeTiming)

    def node_timing_for(self, overhead_ms: str | None, node_ms: str | None) -> NodeTiming:
        """The node timing of one request: the configured one, none in --fast mode, or the request's override."""
        base = NodeTiming(0.0, 0.0) if self.fast else self.nodes
        return NodeTiming(
            overhead_s=float(overhead_ms) / 1000 if overhead_ms is not None else base.overhead_s,
            step_s=float(node_ms) / 1000 if node_ms is not None else base.step_s,
        )

    def latency_for(self, ttft_ms: str | None, tokens_per_s: str | None) -> Latency:
        """The latency of one request: the model, or none in --fast mode, or the request's own override."""
        base = Latency(0.0, 0.0, 0.0) if self.fast else self.latency
        if ttft_ms is None and tokens_per_s is None:
            return base
        return Latency(
            ttft_s=float(ttft_ms) / 1000 if ttft_ms is not None else base.ttft_s,
            tokens_per_s=float(tokens_per_s) if tokens_per_s is not None else base.tokens_per_s,
            jitter=0.0 if self.fast else base.jitter,
        )
