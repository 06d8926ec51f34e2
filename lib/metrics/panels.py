"""The Metrics page's panels: title, unit and PromQL of each, in one place.

The page (via queries.py), the tests and deploy/grafana-dashboard.json (grafana.py)
all read these definitions, so a query fixed here is fixed everywhere.

Each expression covers the three kinds of process that export metrics: the console's client
(`dify_client_*`, job "console"), the gateway (`dify_gateway_*`) and the simulator (`dify_sim_*`),
joined with `or` so one query draws one series per job. Two placeholders are filled in per use:
`SEL` (label matchers, e.g. `job=~"gateway|simulator"`) and `WINDOW` (the rate window, e.g. `1m`).
"""
from __future__ import annotations

from dataclasses import dataclass

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Query:
    expr: str  # PromQL with SEL and WINDOW placeholders
    legend: str  # series name, labels in braces: "{job}", "p95 {job}"


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    unit: str  # "req/s", "ratio", "s", "tokens/s", "count", "state", "per s"
    queries: tuple[Query, ...]
    help: str = ""


def _per_job(template: str, metrics: tuple[str, ...], by: str = "job") -> str:
    """`template` (with METRIC and BY) for each metric, joined with `or`."""
    return " or ".join(f"({template.replace('METRIC', m).replace('BY', by)})" for m in metrics)


_REQUESTS = ("dify_client_requests_total", "dify_gateway_requests_total", "dify_sim_http_requests_total")
_DURATION = ("dify_client_request_duration_seconds_bucket", "dify_gateway_request_duration_seconds_bucket",
             "dify_sim_http_request_duration_seconds_bucket")
_TTFT = ("dify_client_ttft_seconds_bucket", "dify_gateway_ttft_seconds_bucket", "dify_sim_ttft_seconds_bucket")
_ERRORS = 'status_class=~"5xx|error"'


def _quantiles(metrics: tuple[str, ...]) -> tuple[Query, ...]:
    inner = _per_job("sum by (BY) (rate(METRIC{SEL}[WINDOW]))", metrics, by="job, le")
    return tuple(Query(f"histogram_quantile({q}, {inner})", f"p{round(q * 100)} {{job}}") for q in QUANTILES)


PANELS: tuple[Panel, ...] = (
    Panel("request_rate", "Request rate", "req/s", (
        Query(_per_job("sum by (BY) (rate(METRIC{SEL}[WINDOW]))", _REQUESTS), "{job}"),
    ), "Requests finished per second: calls by the console's client, requests answered by the gateway and the simulator."),
    Panel("error_ratio", "Error ratio", "ratio", (
        Query(_per_job(
            f"(sum by (BY) (rate(METRIC{{{_ERRORS},SEL}}[WINDOW])) or 0 * sum by (BY) (rate(METRIC{{SEL}}[WINDOW])))"
            " / sum by (BY) (rate(METRIC{SEL}[WINDOW]))", _REQUESTS), "{job}"),
    ), "Share of requests that ended in a 5xx or no answer at all (connection failure, timeout)."),
    Panel("latency", "Request duration p50 / p95 / p99", "s", _quantiles(_DURATION),
          "From the start of a request to the end of its answer, streams included."),
    Panel("ttft", "Time to first token p50 / p95 / p99", "s", _quantiles(_TTFT),
          "From sending a generation request to its first content event."),
    Panel("output_tokens", "Output tokens", "tokens/s", (
        Query(_per_job("sum by (BY) (rate(METRIC{SEL}[WINDOW]))",
                       ("dify_client_output_tokens_total", "dify_sim_output_tokens_total")), "{job}"),
    ), "Completion tokens per second, as Dify's usage reports them."),
    Panel("in_flight", "In flight", "count", (
        Query(_per_job("sum by (BY) (METRIC{SEL})", ("dify_client_requests_in_flight", "dify_gateway_requests_in_flight",
                                                     "dify_sim_active_generations")), "{job}"),
    ), "Requests sent and not finished (the simulator: generations running)."),
    Panel("retries", "Retries and upstream errors", "per s", (
        Query("sum by (job, reason) (rate(dify_client_retries_total{SEL}[WINDOW]))", "{job} retry: {reason}"),
        Query("sum by (job, kind) (rate(dify_gateway_upstream_errors_total{SEL}[WINDOW]))", "{job} upstream: {kind}"),
    ), "Client retries by the reason the attempt failed; gateway upstream failures by kind."),
    Panel("rate_limits", "Rate limiting", "per s", (
        Query("sum by (job, kind) (rate(dify_client_rate_limit_wait_seconds_total{SEL}[WINDOW]))", "{job} waited s/s: {kind}"),
        Query("sum by (job) (rate(dify_gateway_rate_limited_total{SEL}[WINDOW]))", "{job} refused/s"),
    ), "Seconds per second the client spent waiting for its rate limit or a slot; gateway refusals per second."),
    Panel("breaker", "Circuit breaker state", "state", (
        Query("max by (job, target) (dify_client_circuit_breaker_state{SEL})", "{job} {target}"),
        Query("max by (job) (dify_gateway_circuit_breaker_state{SEL})", "{job}"),
    ), "0 closed (healthy), 1 half-open (probing), 2 open (not calling upstream)."),
)
PANELS_BY_KEY = {p.key: p for p in PANELS}


def selector(jobs: list[str] | None = None, instances: list[str] | None = None) -> str:
    """Label matchers for SEL: `job=~"a|b",instance=~"h:1"`; all jobs when none are chosen."""
    def alternatives(values: list[str]) -> str:
        return "|".join(_escape_regex(v) for v in values)

    parts = [f'job=~"{alternatives(jobs)}"' if jobs else 'job=~".+"']
    if instances:
        parts.append(f'instance=~"{alternatives(instances)}"')
    return ",".join(parts)


def render(expr: str, sel: str, window: str) -> str:
    return expr.replace("SEL", sel).replace("WINDOW", window)


def rate_window(range_seconds: float, scrape_interval: float = 2.0) -> str:
    """A rate window wide enough for several scrapes and smooth over the range shown."""
    seconds = max(4 * scrape_interval, min(300.0, range_seconds / 30))
    return f"{int(round(seconds))}s"


def step_seconds(range_seconds: float, points: int = 240, minimum: float = 2.0) -> float:
    """Query resolution: about `points` points over the range, never finer than the scrape interval."""
    return max(minimum, round(range_seconds / points))


def series_name(legend: str, labels: dict[str, str]) -> str:
    """Fill a legend's `{label}` slots; a missing label leaves nothing (and no doubled spaces)."""
    out = legend
    for key in _slots(legend):
        out = out.replace("{" + key + "}", labels.get(key, ""))
    return " ".join(out.split()) or "value"


def _slots(legend: str) -> list[str]:
    import re

    return re.findall(r"\{(\w+)\}", legend)


def _escape_regex(value: str) -> str:
    import re

    return re.escape(value).replace("\\", "\\\\").replace('"', '\\"')
