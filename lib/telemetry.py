"""Prometheus metrics shared by the console's processes, and the client hooks that record into them.

Buckets are sized for LLM latencies (10 ms to 60 s): prometheus_client's defaults stop at 10 s,
which would put every slow answer in +Inf.

The client metrics live here, at module level on the default registry, because a metric created in a
page script raises "Duplicated timeseries" on the next rerun. Labels stay low-cardinality: `target`
(the short target name picked in the console, never its key or URL), `endpoint` (the client's route,
e.g. "POST /chat-messages"), `status_class`, retry `reason` and wait `kind`.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from lib.dify import DifyError, Hooks, Timing

log = logging.getLogger(__name__)



def _steps(start: float, stop: float, step: float) -> tuple[float, ...]:
    """Bucket bounds from start to stop inclusive, rounded so `le` labels read cleanly (0.325, not 0.32499999)."""
    n = round((stop - start) / step)
    return tuple(round(start + i * step, 4) for i in range(n + 1))


# histogram_quantile interpolates linearly inside a bucket, so a quantile is only as exact as its bucket is
# narrow. Most TTFTs and short answers fall in 0.2-1 s: 25 ms steps there keep a p50 within ~5% of the true
# figure (with 0.3/0.5 bounds a 305 ms TTFT read as 400 ms); steps widen to ~10% of the value beyond.
LLM_LATENCY_BUCKETS = (
    (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175)
    + _steps(0.2, 1.0, 0.025)
    + _steps(1.1, 2.0, 0.1)
    + _steps(2.25, 3.0, 0.25)
    + (3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 90.0, 120.0)
)
INTER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
DEFAULT_METRICS_PORT = 9464

# Circuit breaker state as a number, so it can be graphed: 0 closed, 1 half-open, 2 open.
BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


def status_class(status: int | None) -> str:
    """`2xx`..`5xx`, or `error` when no HTTP status arrived (connection failures, timeouts)."""
    return f"{status // 100}xx" if status else "error"


# -- the console's client (DifyClient / AsyncDifyClient), one series set per target -------------------------

CLIENT_REQUESTS = Counter(
    "dify_client_requests", "Calls finished by the client, by endpoint and final status class",
    ["target", "endpoint", "status_class"],
)
CLIENT_DURATION = Histogram(
    "dify_client_request_duration_seconds", "Time from the start of a call (queueing and retries included) to its end",
    ["target", "endpoint"], buckets=LLM_LATENCY_BUCKETS,
)
CLIENT_TTFT = Histogram(
    "dify_client_ttft_seconds", "Time from sending a request to its first content event (first token)",
    ["target", "endpoint"], buckets=LLM_LATENCY_BUCKETS,
)
CLIENT_INTER_TOKEN = Histogram(
    "dify_client_inter_token_seconds", "Gaps between consecutive content events of a stream",
    ["target", "endpoint"], buckets=INTER_TOKEN_BUCKETS,
)
CLIENT_OUTPUT_TOKENS = Counter(
    "dify_client_output_tokens", "Completion tokens reported by Dify's usage", ["target", "endpoint"],
)
CLIENT_RETRIES = Counter(
    "dify_client_retries", "Attempts retried, by the reason the previous one failed", ["target", "endpoint", "reason"],
)
CLIENT_RATE_LIMIT_WAIT = Counter(
    "dify_client_rate_limit_wait_seconds", "Seconds calls waited for the rate limit or a concurrency slot", ["target", "kind"],
)
CLIENT_BREAKER_STATE = Gauge(
    "dify_client_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["target"],
)
CLIENT_IN_FLIGHT = Gauge(
    "dify_client_requests_in_flight", "Calls sent and not finished yet", ["target", "endpoint"],
)


def client_hooks(target: str = "default") -> Hooks:
    """lib.dify Hooks recording into the dify_client_* metrics under the label `target`.

    Pass a short name (the console's target name), never a key or a URL with credentials. Per-event work
    is nil: TTFT, inter-token gaps and tokens are read from the call's Timing once, when it ends.
    """
    from lib.dify import Hooks  # lazy: telemetry is imported by the simulator, which does not need the client

    CLIENT_BREAKER_STATE.labels(target).set(0)
    in_flight: dict[str, Gauge] = {}  # child gauges by endpoint: .labels() costs a lock and a dict build

    def flight(endpoint: str) -> Gauge:
        g = in_flight.get(endpoint)
        if g is None:
            g = in_flight[endpoint] = CLIENT_IN_FLIGHT.labels(target, endpoint)
        return g

    def on_request(endpoint: str, attempt: int) -> None:
        if attempt == 1:  # a call is in flight from its first attempt to on_complete
            flight(endpoint).inc()

    def on_retry(endpoint: str, attempt: int, delay: float, reason: str) -> None:
        CLIENT_RETRIES.labels(target, endpoint, _reason(reason)).inc()

    def on_rate_limit_wait(kind: str, seconds: float) -> None:
        CLIENT_RATE_LIMIT_WAIT.labels(target, kind).inc(seconds)

    def on_breaker_change(old: str, new: str) -> None:
        CLIENT_BREAKER_STATE.labels(target).set(BREAKER_STATES.get(new, 2))

    def on_complete(endpoint: str, timing: Timing, error: DifyError | None) -> None:
        if timing.attempts >= 1:  # calls refused before sending (open breaker, deadline in queue) never went up
            flight(endpoint).dec()
        status = status_class(getattr(error, "status", None)) if error is not None else "2xx"
        CLIENT_REQUESTS.labels(target, endpoint, status).inc()
        if timing.end is not None:
            CLIENT_DURATION.labels(target, endpoint).observe(timing.end - timing.start)
        ttft = timing.ttft
        if ttft is not None:
            CLIENT_TTFT.labels(target, endpoint).observe(ttft)
        content = timing.content
        if len(content) > 1:
            gaps = CLIENT_INTER_TOKEN.labels(target, endpoint)
            for a, b in zip(content, content[1:]):
                gaps.observe(b - a)
        usage = timing.usage
        if usage is not None and usage.completion_tokens:
            CLIENT_OUTPUT_TOKENS.labels(target, endpoint).inc(usage.completion_tokens)

    return Hooks(
        on_request=on_request, on_retry=on_retry, on_rate_limit_wait=on_rate_limit_wait,
        on_breaker_change=on_breaker_change, on_complete=on_complete,
    )


def _reason(reason: str) -> str:
    """A retry reason as a bounded label: "HTTP 503" stays, exception names are kept short."""
    return reason[:40] if reason else "unknown"


# -- the process's /metrics endpoint ---------------------------------------------------------------------

_server_lock = threading.Lock()
_server_port: int | None = None
_server_tried = False


def metrics_port(environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    return int(env.get("CONSOLE_METRICS_PORT") or DEFAULT_METRICS_PORT)


def start_metrics_server(port: int | None = None, addr: str | None = None) -> int | None:
    """Serve the default registry on http://addr:port/metrics, once per process.

    Port from CONSOLE_METRICS_PORT (default 9464), address from CONSOLE_METRICS_ADDR (default 127.0.0.1:
    loopback, where make run's Prometheus scrapes; a container sets 0.0.0.0).

    Later calls return the port of the first one. A port already taken (another console on this machine)
    is logged and ignored: metrics are not worth crashing the app for. Returns the port, or None.
    """
    global _server_port, _server_tried
    with _server_lock:
        if _server_tried:
            return _server_port
        _server_tried = True
        port = metrics_port() if port is None else port
        addr = addr or os.environ.get("CONSOLE_METRICS_ADDR") or "127.0.0.1"
        try:
            server, _ = start_http_server(port, addr=addr)
        except OSError as exc:
            log.warning("metrics server not started on %s:%s (%s); the console runs without /metrics", addr, port, exc)
            return None
        _server_port = port = server.server_port  # the real one when asked for port 0
        log.info("client metrics on http://%s:%s/metrics", addr, port)
        return port
