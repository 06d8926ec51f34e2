"""The console's client metrics (dify_client_*) and the lib.dify Hooks that record into them.

    hooks = client_hooks("Simulator · chat")           # on the default registry: what the console serves
    metrics = ClientMetrics(CollectorRegistry())       # or on a registry of one's own (a test, a notebook)
    client = DifyClient(url, key, hooks=metrics.hooks("my-target"))

The console's set is created once per process, on first use, on prometheus_client's default registry
(`console_metrics()`): registering the same names twice on one registry raises "Duplicated timeseries",
which a metric made in a page script would do on its next rerun. Importing this module registers nothing.
Labels stay low-cardinality: `target` (the short target name picked in the console, never its key or URL),
`endpoint` (the client's route, e.g. "POST /chat-messages"), `status_class`, retry `reason` and wait `kind`.
"""
from __future__ import annotations

import threading
from itertools import pairwise
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from .buckets import INTER_TOKEN_BUCKETS, LLM_LATENCY_BUCKETS
from .labels import BREAKER_STATES, status_class

if TYPE_CHECKING:
    from lib.dify import DifyError, Hooks, Timing


class ClientMetrics:
    """The dify_client_* metrics, registered on `registry` when made."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = r = registry
        self.requests = Counter(
            "dify_client_requests", "Calls finished by the client, by endpoint and final status class",
            ["target", "endpoint", "status_class"], registry=r,
        )
        self.duration = Histogram(
            "dify_client_request_duration_seconds", "Time from the start of a call (queueing and retries included) to its end",
            ["target", "endpoint"], buckets=LLM_LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "dify_client_ttft_seconds", "Time from sending a request to its first content event (first token)",
            ["target", "endpoint"], buckets=LLM_LATENCY_BUCKETS, registry=r,
        )
        self.inter_token = Histogram(
            "dify_client_inter_token_seconds", "Gaps between consecutive content events of a stream",
            ["target", "endpoint"], buckets=INTER_TOKEN_BUCKETS, registry=r,
        )
        self.output_tokens = Counter(
            "dify_client_output_tokens", "Completion tokens reported by Dify's usage", ["target", "endpoint"], registry=r,
        )
        self.retries = Counter(
            "dify_client_retries", "Attempts retried, by the reason the previous one failed",
            ["target", "endpoint", "reason"], registry=r,
        )
        self.rate_limit_wait = Counter(
            "dify_client_rate_limit_wait_seconds", "Seconds calls waited for the rate limit or a concurrency slot",
            ["target", "kind"], registry=r,
        )
        self.breaker_state = Gauge(
            "dify_client_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["target"], registry=r,
        )
        self.in_flight = Gauge(
            "dify_client_requests_in_flight", "Calls sent and not finished yet", ["target", "endpoint"], registry=r,
        )

    def hooks(self, target: str = "default") -> Hooks:
        """lib.dify Hooks recording into these metrics under the label `target`.

        Pass a short name (the console's target name), never a key or a URL with credentials. Per-event work
        is nil: TTFT, inter-token gaps and tokens are read from the call's Timing once, when it ends.
        """
        from lib.dify import Hooks  # lazy: the metrics package is importable without the client

        self.breaker_state.labels(target).set(0)
        in_flight: dict[str, Gauge] = {}  # child gauges by endpoint: .labels() costs a lock and a dict build

        def flight(endpoint: str) -> Gauge:
            g = in_flight.get(endpoint)
            if g is None:
                g = in_flight[endpoint] = self.in_flight.labels(target, endpoint)
            return g

        def on_request(endpoint: str, attempt: int) -> None:
            if attempt == 1:  # a call is in flight from its first attempt to on_complete
                flight(endpoint).inc()

        def on_retry(endpoint: str, attempt: int, delay: float, reason: str) -> None:
            self.retries.labels(target, endpoint, _reason(reason)).inc()

        def on_rate_limit_wait(kind: str, seconds: float) -> None:
            self.rate_limit_wait.labels(target, kind).inc(seconds)

        def on_breaker_change(old: str, new: str) -> None:
            self.breaker_state.labels(target).set(BREAKER_STATES.get(new, 2))

        def on_complete(endpoint: str, timing: Timing, error: DifyError | None) -> None:
            if timing.attempts >= 1:  # calls refused before sending (open breaker, deadline in queue) never went up
                flight(endpoint).dec()
            status = status_class(getattr(error, "status", None)) if error is not None else "2xx"
            self.requests.labels(target, endpoint, status).inc()
            if timing.end is not None:
                self.duration.labels(target, endpoint).observe(timing.end - timing.start)
            ttft = timing.ttft
            if ttft is not None:
                self.ttft.labels(target, endpoint).observe(ttft)
            content = timing.content
            if len(content) > 1:
                gaps = self.inter_token.labels(target, endpoint)
                for a, b in pairwise(content):
                    gaps.observe(b - a)
            usage = timing.usage
            if usage is not None and usage.completion_tokens:
                self.output_tokens.labels(target, endpoint).inc(usage.completion_tokens)

        return Hooks(
            on_request=on_request, on_retry=on_retry, on_rate_limit_wait=on_rate_limit_wait,
            on_breaker_change=on_breaker_change, on_complete=on_complete,
        )


def _reason(reason: str) -> str:
    """A retry reason as a bounded label: "HTTP 503" stays, exception names are kept short."""
    return reason[:40] if reason else "unknown"


_console_lock = threading.Lock()
_console: ClientMetrics | None = None


def console_metrics() -> ClientMetrics:
    """The console's ClientMetrics on the default registry, made on the first call of the process."""
    global _console
    with _console_lock:
        if _console is None:
            _console = ClientMetrics(REGISTRY)
        return _console


def client_hooks(target: str = "default", metrics: ClientMetrics | None = None) -> Hooks:
    """Hooks recording under `target` into `metrics` (the console's, on the default registry, when None)."""
    return (metrics or console_metrics()).hooks(target)
