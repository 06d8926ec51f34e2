"""What a benchmark run does: RunConfig (validated, JSON round trip) and its SLO thresholds.

The API key is never part of a config: a config is saved with every run and exported, so the key is
passed to the engine separately (see engine.run_benchmark).
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_QUERY = "Explain in a few sentences how streaming changes what a user sees first."

AppKind = Literal["auto", "chat", "completion", "workflow"]
LATENCY_METRICS = ("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "ttfb_ms", "queue_ms")
STATS = ("p50", "p90", "p95", "p99", "mean", "max")
# Scalar figures of a summary a threshold may check (besides METRIC.STAT of a latency).
SCALARS = ("success_rate", "request_throughput", "output_tokens_per_s", "goodput_rate", "goodput_share")


class Prompt(BaseModel):
    """One request's content: the query (chat apps; optional for completion; unused by workflows)
    and the app's `inputs` (the variables of its user_input_form)."""

    model_config = ConfigDict(extra="forbid")
    query: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)


class Threshold(BaseModel):
    """A pass/fail rule on a run's summary, e.g. `ttft_ms.p95 <= 800` or `success_rate >= 0.99`."""

    model_config = ConfigDict(extra="forbid")
    metric: str  # "ttft_ms.p95" or a scalar such as "success_rate"
    op: Literal["<=", ">="] = "<="
    limit: float

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        name, _, stat = v.partition(".")
        if (name in LATENCY_METRICS and stat in STATS) or (v in SCALARS):
            return v
        raise ValueError(f"unknown SLO figure {v!r}: use METRIC.STAT (METRIC in {', '.join(LATENCY_METRICS)}; "
                         f"STAT in {', '.join(STATS)}) or one of {', '.join(SCALARS)}")

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """`ttft_ms.p95<=800`, `success_rate>=0.99`."""
        m = re.fullmatch(r"\s*([\w.]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*", text)
        if not m:
            raise ValueError(f"an SLO reads METRIC.STAT<=LIMIT or FIGURE>=LIMIT, e.g. ttft_ms.p95<=800; got {text!r}")
        return cls(metric=m.group(1), op=m.group(2), limit=float(m.group(3)))  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"

    @property
    def per_request_metric(self) -> str | None:
        """The per-request latency this rule limits (for goodput), e.g. "ttft_ms"; None for scalars."""
        name = self.metric.partition(".")[0]
        return name if name in ("ttft_ms", "e2e_ms", "tpot_ms") and self.op == "<=" else None


class RunConfig(BaseModel):
    """One benchmark run (or a sweep of runs over `sweep` levels).

    Load: `closed` keeps `concurrency` users busy, each sending as soon as its last answer ends;
    `open` sends at `rate` requests/s (`constant` gaps or `poisson` arrivals) whatever the answers do,
    and its latencies count from each request's scheduled time. Stop after `duration_s` of
    measurement or `requests` measured requests, whichever is set; requests started in the first
    `warmup_s` are sent but not counted.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    target: str = ""  # the target's display name (the key is never stored)
    base_url: str
    app: AppKind = "auto"  # which endpoint: auto asks Dify (GET /info)
    mode: Literal["streaming", "blocking"] = "streaming"

    load: Literal["closed", "open"] = "closed"
    concurrency: int = Field(1, ge=1, le=10_000)
    rate: float = Field(1.0, gt=0, le=100_000)
    arrival: Literal["poisson", "constant"] = "poisson"
    sweep: list[float] = Field(default_factory=list)  # levels of concurrency (closed) or rate (open)

    duration_s: float | None = Field(None, gt=0)
    requests: int | None = Field(None, ge=1)
    warmup_s: float = Field(0.0, ge=0)
    max_in_flight: int | None = Field(None, ge=1)  # open loop: arrivals past it wait (and it shows in latency)
    drain_s: float | None = Field(None, ge=0)  # how long to wait for answers in flight at the end (default: timeout_s)

    prompts: list[Prompt] = Field(default_factory=lambda: [Prompt(query=DEFAULT_QUERY)])
    prompts_source: str = "query"
    shuffle: bool = True  # a seeded permutation of the prompts, cycled
    inputs: dict[str, Any] = Field(default_factory=dict)  # under every prompt's own inputs
    user: str = ""  # Dify end-user id; default bench-<run id>
    seed: int = 0

    timeout_s: float = Field(120.0, gt=0)  # per request: the wait for the first event, and the longest silence (<= 60 s)
    retries: int = Field(0, ge=0, le=10)  # client retries (0: a benchmark should see every failure)
    client_rate_limit: float | None = Field(None, gt=0)  # the client's token bucket; off by default
    headers: dict[str, str] = Field(default_factory=dict)  # extra request headers (e.g. X-Sim-*)
    slo: list[Threshold] = Field(default_factory=list)

    @field_validator("sweep")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        if any(x <= 0 for x in v):
            raise ValueError("sweep levels must be positive")
        return v

    @field_validator("prompts")
    @classmethod
    def _some_prompts(cls, v: list[Prompt]) -> list[Prompt]:
        if not v:
            raise ValueError("at least one prompt is needed")
        return v

    @model_validator(mode="after")
    def _stop_rule(self) -> RunConfig:
        if self.duration_s is None and self.requests is None:
            self.duration_s = 30.0
        if self.duration_s is not None and self.requests is not None:
            raise ValueError("give a duration or a request count, not both")
        if self.load == "closed" and self.sweep and any(x != int(x) for x in self.sweep):
            raise ValueError("a concurrency sweep takes whole numbers of users")
        return self

    # -- derived --------------------------------------------------------------------------------------

    @property
    def level(self) -> float:
        return float(self.concurrency) if self.load == "closed" else self.rate

    def at_level(self, level: float) -> RunConfig:
        """This config at one sweep level (the sweep itself dropped)."""
        update: dict[str, Any] = {"sweep": []}
        if self.load == "closed":
            update["concurrency"] = int(level)
        else:
            update["rate"] = float(level)
        return self.model_copy(update=update)

    def describe(self) -> str:
        """A one-line label: `closed, 8 users, 30 s, streaming` / `open, 20 req/s poisson, 500 requests, blocking`."""
        load = (f"closed, {self.concurrency} user{'' if self.concurrency == 1 else 's'}" if self.load == "closed"
                else f"open, {self.rate:g} req/s {self.arrival}" + (f" (cap {self.max_in_flight})" if self.max_in_flight else ""))
        stop = (f"{self.duration_s:g} s" if self.duration_s is not None
                else f"{self.requests} request{'' if self.requests == 1 else 's'}")
        sweep = f" sweep {','.join(f'{x:g}' for x in self.sweep)}" if self.sweep else ""
        return f"{load}{sweep}, {stop}, {self.mode}"

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> RunConfig:
        return cls.model_validate_json(text)
