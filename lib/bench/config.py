"""What a benchmark run does: RunConfig (validated, JSON round trip) and its SLO thresholds.

The API key is never part of a config: a config is saved with every run and exported, so the key is
passed to the engine separately (see engine.run_benchmark).
"""
from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lib.dify.keys import mask

DEFAULT_QUERY = "Explain in a few sentences how streaming changes what a user sees first."

AppKind = Literal["auto", "chat", "completion", "workflow"]
LATENCY_METRICS = ("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "ttfb_ms", "queue_ms")
STATS = ("min", "p50", "p90", "p95", "p99", "p99.9", "mean", "std", "max")
_EXTRA_PCT = re.compile(r"p\d{1,2}(\.\d+)?")  # a --percentiles figure, e.g. p75, p99.99


def pct_key(q: float) -> str:
    """The summary key of a percentile: 99.9 -> "p99.9", 50 -> "p50"."""
    return f"p{q:g}"
# Scalar figures of a summary a threshold may check (besides METRIC.STAT of a latency).
SCALARS = ("success_rate", "request_throughput", "output_tokens_per_s", "goodput_rate", "goodput_share",
           "input_tokens_per_s", "total_tokens_per_s", "output_tokens_per_s_peak")


# Header names whose values are secrets: masked in the stored config, exports and every view.
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"})
_SENSITIVE_WORDS = re.compile(r"key|token|secret|passw|auth|cookie|session|credential|signature", re.I)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)


def is_sensitive_header(name: str) -> bool:
    return name.strip().lower() in SENSITIVE_HEADERS or bool(_SENSITIVE_WORDS.search(name))


def mask_header_value(name: str, value: str) -> str:
    """`Bearer app-…last4` for an auth scheme and a token, `…last4` otherwise; other headers as they are."""
    if not is_sensitive_header(name) or not value or "…" in value:  # "…": masked already (masking is idempotent)
        return value
    scheme, sep, token = value.strip().partition(" ")
    if sep and token and scheme.isalpha():
        return f"{scheme} {mask(token.strip())}"
    return mask(value.strip())


def mask_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: mask_header_value(k, v) for k, v in headers.items()}


def mask_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config dict (RunConfig.model_dump) with its sensitive header values masked: what is stored and shown."""
    headers = config.get("headers")
    if not isinstance(headers, dict) or not headers:
        return config
    return {**config, "headers": mask_headers({str(k): str(v) for k, v in headers.items()})}


def check_base_url(url: str) -> str:
    """A Service API base URL must be http(s)://host[:port][/path]; else a sentence saying what to write."""
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        example = "http://" + text.split("://", 1)[-1] if text and "://" not in text else "http://localhost:5001/v1"
        raise ValueError(f"the base URL {text!r} needs http:// or https:// and a host, e.g. {example}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"the base URL {text!r} has a port that is not a number") from None
    return text


def check_header(name: str, value: str) -> None:
    """An extra request header: a token name and a value without line breaks (CR/LF would split the request)."""
    if not _TOKEN.match(name or ""):
        raise ValueError(f"{name!r} is not a valid header name (letters, digits and -, no spaces or colons)")
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"the value of header {name} contains a line break (CR/LF) or NUL: headers are one line")


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
        if (name in LATENCY_METRICS and (stat in STATS or _EXTRA_PCT.fullmatch(stat))) or (v in SCALARS):
            return v
        raise ValueError(f"unknown SLO figure {v!r}: use METRIC.STAT (METRIC in {', '.join(LATENCY_METRICS)}; "
                         f"STAT in {', '.join(STATS)}, or a --percentiles one such as p75) or one of {', '.join(SCALARS)}")

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """`ttft_ms.p95<=800`, `success_rate>=0.99`."""
        m = re.fullmatch(r"\s*([\w.]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*", text)
        if not m:
            raise ValueError(f"an SLO reads METRIC.STAT<=LIMIT or FIGURE>=LIMIT, e.g. ttft_ms.p95<=800; got {text!r}")
        return cls(metric=m.group(1), op=m.group(2), limit=float(m.group(3)))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"

    @property
    def per_request_metric(self) -> str | None:
        """The per-request latency this rule limits (for goodput), e.g. "ttft_ms"; None for scalars."""
        name = self.metric.partition(".")[0]
        return name if name in ("ttft_ms", "e2e_ms", "tpot_ms") and self.op == "<=" else None


class Stage(BaseModel):
    """One stage of a load shape: move linearly to `level` (users, or requests/s) over `duration_s`
    (as k6's stages do; two stages of the same level hold it)."""

    model_config = ConfigDict(extra="forbid")
    duration_s: float = Field(gt=0)
    level: float = Field(ge=0)

    @classmethod
    def parse_list(cls, text: str) -> list[Stage]:
        """`10:4,30:4,10:0`: DURATION_S:LEVEL pieces, comma-separated."""
        stages = []
        for piece in (p.strip() for p in text.split(",")):
            d, sep, lv = piece.partition(":")
            try:
                if not sep:
                    raise ValueError
                stages.append(cls(duration_s=float(d), level=float(lv)))
            except ValueError:
                raise ValueError(f"a stage reads SECONDS:LEVEL (e.g. 30:8, a comma between stages); got {piece!r}") from None
        if not stages:
            raise ValueError("give at least one stage, e.g. 10:4,30:4")
        return stages


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
    burstiness: float = Field(1.0, gt=0, le=100)  # poisson: gamma shape of the gaps (1 Poisson; <1 burstier)
    sweep: list[float] = Field(default_factory=list)  # levels of concurrency (closed) or rate (open)
    ramp_up_s: float = Field(0.0, ge=0)  # reach `concurrency`/`rate` linearly over this long from the start
    stages: list[Stage] = Field(default_factory=list)  # a load shape over time (replaces the level and duration)
    trace: list[float] = Field(default_factory=list)  # open loop: send at these offsets (s from the start)
    trace_source: str = ""

    duration_s: float | None = Field(None, gt=0)
    requests: int | None = Field(None, ge=1)
    warmup_s: float = Field(0.0, ge=0)
    max_in_flight: int | None = Field(None, ge=1)  # open loop: arrivals past it wait (and it shows in latency)
    drain_s: float | None = Field(None, ge=0)  # how long to wait for answers in flight at the end (default: timeout_s)
    cancel_grace_s: float = Field(10.0, ge=0)  # after a cancel (Ctrl-C): how long answers in flight may still finish
    max_errors: int | None = Field(None, ge=1)  # stop sending once this many measured requests failed
    max_error_rate: float | None = Field(None, gt=0, le=1)  # stop once this share failed (after 20 answers)
    stop_on_saturation: bool = True  # open loop: stop when the backlog of unanswered requests grows without bound

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
    percentiles: list[float] = Field(default_factory=list)  # more percentiles of every latency, e.g. [75, 99.99]

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_base_url(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            check_header(name, value)
        return v

    @field_validator("percentiles")
    @classmethod
    def _pcts(cls, v: list[float]) -> list[float]:
        if any(not 0 < q < 100 for q in v):
            raise ValueError("percentiles lie between 0 and 100 (exclusive), e.g. 75 or 99.99")
        return sorted(set(v))

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
        if self.stages or self.trace:
            what = "stages" if self.stages else "a trace"
            if self.requests is not None:
                raise ValueError(f"{what} set the run's length: give no request count")
            if self.sweep:
                raise ValueError(f"{what} and a sweep do not go together")
            if self.stages and (self.trace or self.ramp_up_s):
                raise ValueError("stages already shape the load: give no trace or ramp-up with them")
            if self.trace and (self.load != "open" or self.ramp_up_s):
                raise ValueError("a trace replays arrivals: it needs the open loop (--rate is not used) and no ramp-up")
            total = sum(st.duration_s for st in self.stages) if self.stages else max(self.trace) + 1e-6
            if total <= self.warmup_s:
                raise ValueError(f"the warm-up ({self.warmup_s:g} s) takes the whole {total:g} s of the {what}")
            self.duration_s = total - self.warmup_s
            if self.stages and self.load == "closed":
                if any(st.level != int(st.level) for st in self.stages):
                    raise ValueError("closed-loop stages take whole numbers of users")
                self.concurrency = max(1, int(max(st.level for st in self.stages)))
            if self.stages and self.load == "open":
                peak = max(st.level for st in self.stages)
                if peak <= 0:
                    raise ValueError("the stages never send: give a stage a rate above 0")
                self.rate = peak
        if self.trace and any(t < 0 for t in self.trace):
            raise ValueError("trace offsets are seconds from the start, not below 0")
        if self.ramp_up_s and self.duration_s is not None and self.ramp_up_s > self.warmup_s + self.duration_s:
            raise ValueError("the ramp-up is longer than the run")
        if self.duration_s is None and self.requests is None:
            self.duration_s = 30.0
        if self.duration_s is not None and self.requests is not None:
            raise ValueError("give a duration or a request count, not both")
        if self.load == "closed" and self.sweep and any(x != int(x) for x in self.sweep):
            raise ValueError("a concurrency sweep takes whole numbers of users")
        known = set(STATS) | {pct_key(q) for q in self.percentiles}
        for t in self.slo:
            stat = t.metric.partition(".")[2]
            if stat and stat not in known:
                raise ValueError(f"the SLO {t} needs the percentile {stat[1:]} computed: add it to --percentiles "
                                 f"(or use one of {', '.join(STATS)})")
        return self

    # -- derived --------------------------------------------------------------------------------------

    def shape(self) -> list[tuple[float, float, float, float]] | None:
        """The load over time as linear pieces (t_start, t_end, level_start, level_end) in seconds from
        the run's start, or None for a level held from the start (the plain case)."""
        if self.stages:
            pieces, t, level = [], 0.0, 0.0  # from 0, as k6's stages
            for st in self.stages:
                pieces.append((t, t + st.duration_s, level, st.level))
                t, level = t + st.duration_s, st.level
            return pieces
        if self.ramp_up_s > 0:
            end = self.warmup_s + (self.duration_s or 0.0)
            pieces = [(0.0, self.ramp_up_s, 0.0, self.level)]
            if self.duration_s is None or end > self.ramp_up_s:
                pieces.append((self.ramp_up_s, end if self.duration_s is not None else float("inf"), self.level, self.level))
            return pieces
        return None

    def level_at(self, t: float) -> float:
        """The shape's level (users or requests/s) `t` seconds after the start."""
        pieces = self.shape()
        if pieces is None:
            return self.level
        for a, b, la, lb in pieces:
            if t < b:
                return la + (lb - la) * ((t - a) / (b - a)) if b > a and b != float("inf") else lb
        return pieces[-1][3]

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
                else f"open, {self.rate:g} req/s {self.arrival}"
                + (f" burstiness {self.burstiness:g}" if self.arrival == "poisson" and self.burstiness != 1 else "")
                + (f" (cap {self.max_in_flight})" if self.max_in_flight else ""))
        if self.stages:
            unit = " users" if self.load == "closed" else " req/s"
            load = f"{self.load}, stages " + " ".join(f"{st.duration_s:g}s→{st.level:g}" for st in self.stages) + unit
        if self.trace:
            load = f"open, trace {self.trace_source or ''} ({len(self.trace)} arrivals)".replace("  ", " ")
        stop = (f"{self.duration_s:g} s" if self.duration_s is not None
                else f"{self.requests} request{'' if self.requests == 1 else 's'}")
        sweep = f" sweep {','.join(f'{x:g}' for x in self.sweep)}" if self.sweep else ""
        ramp = f" ramp-up {self.ramp_up_s:g} s" if self.ramp_up_s else ""
        return f"{load}{sweep}{ramp}, {stop}, {self.mode}"

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> RunConfig:
        return cls.model_validate_json(text)
