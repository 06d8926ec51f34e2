"""The gateway's Prometheus metrics, on a registry of its own (one per app, so tests can run several)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from lib.metrics.buckets import INTER_TOKEN_BUCKETS, LLM_LATENCY_BUCKETS
from lib.metrics.labels import BREAKER_STATES


class GatewayMetrics:
    """Labels: `route` (the routes.py label, never a path with ids), `method`, `status_class`, and
    `caller` (the configured caller name, never its key)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("dify_gateway_requests", "Requests answered by the gateway, by route, caller and status class",
                                ["route", "method", "caller", "status_class"], registry=r)
        self.duration = Histogram("dify_gateway_request_duration_seconds",
                                  "Time from receiving a request to the end of its response (streams included)",
                                  ["route"], buckets=LLM_LATENCY_BUCKETS, registry=r)
        self.upstream_duration = Histogram("dify_gateway_upstream_headers_seconds",
                                           "Time from sending upstream to the upstream response headers",
                                           ["route"], buckets=LLM_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("dify_gateway_ttft_seconds",
                              "Time from receiving a streaming request to forwarding its first data event",
                              ["route"], buckets=LLM_LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("dify_gateway_added_seconds",
                                  "Time the gateway spends before handing a request upstream (auth, limits, body)",
                                  ["route"], buckets=INTER_TOKEN_BUCKETS, registry=r)
        self.in_flight = Gauge("dify_gateway_requests_in_flight", "Requests being answered, streams included", registry=r)
        self.rate_limited = Counter("dify_gateway_rate_limited", "Requests refused by a caller's rate limit", ["caller"], registry=r)
        self.auth_failures = Counter("dify_gateway_auth_failures", "Requests refused for a missing or unknown caller key", registry=r)
        self.auth_blocked = Counter("dify_gateway_auth_blocked",
                                    "Requests refused (429) from an address that failed auth too often", registry=r)
        self.upstream_errors = Counter("dify_gateway_upstream_errors",
                                       "Upstream failures: connect, timeout, broken stream, breaker open, key refused (401)",
                                       ["route", "kind"], registry=r)
        self.breaker_state = Gauge("dify_gateway_circuit_breaker_state",
                                   "Upstream circuit breaker: 0 closed, 1 half-open, 2 open", registry=r)
        self.stream_bytes = Counter("dify_gateway_stream_bytes", "Bytes of event streams passed through", ["route"], registry=r)

    def breaker_changed(self, old: str, new: str) -> None:
        self.breaker_state.set(BREAKER_STATES.get(new, 2))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
