"""The simulator's own Prometheus metrics: the server side of what the console's client measures."""
from __future__ import annotations

import re
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import Receive, Scope, Send

from lib.metrics.buckets import LLM_LATENCY_BUCKETS
from lib.metrics.labels import status_class

_ID = re.compile(r"/[0-9a-fA-F-]{32,36}(?=/|$)")
_KNOWN = re.compile(r"^/v1/(chat-messages|completion-messages|workflows|workflow|messages|conversations|files|audio-to-text|"
                    r"text-to-audio|parameters|meta|info|site|end-users|apps|app|form)\b")


def endpoint_label(path: str) -> str:
    """A low-cardinality route name: ids become `{id}`, unknown paths `other`."""
    if not _KNOWN.match(path):
        return "other"
    return _ID.sub("/{id}", path)[:80] if "/stop" not in path else re.sub(r"/[^/]+/stop$", "/{task_id}/stop", path)


class SimMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("dify_sim_http_requests", "HTTP requests served, by route and status class",
                                ["endpoint", "method", "status_class"], registry=r)
        self.duration = Histogram(
            "dify_sim_http_request_duration_seconds",
            "Time from request to the end of its response (streams included)",
            ["endpoint"],
            buckets=LLM_LATENCY_BUCKETS,
            registry=r,
        )
        self.active = Gauge("dify_sim_active_generations", "Generations in flight", ["app_mode"], registry=r)
        self.generations = Counter(
            "dify_sim_generations", "Generations finished, by outcome", ["app_mode", "response_mode", "outcome"], registry=r
        )
        self.ttft = Histogram(
            "dify_sim_ttft_seconds",
            "Time from request to the first content event sent",
            ["app_mode"],
            buckets=LLM_LATENCY_BUCKETS,
            registry=r,
        )
        self.output_tokens = Counter("dify_sim_output_tokens", "Completion tokens generated", ["app_mode"], registry=r)
        self.faults = Counter("dify_sim_faults_injected", "Faults injected, by kind", ["fault"], registry=r)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class CountRequests:
    """ASGI layer counting every /v1 request with its final status and duration."""

    def __init__(self, app, metrics: SimMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            return await self.app(scope, receive, send)
        start = time.monotonic()
        status: list[int] = []

        async def watch(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            endpoint = endpoint_label(scope["path"])
            self.metrics.requests.labels(endpoint, scope["method"], status_class(status[0] if status else None)).inc()
            self.metrics.duration.labels(endpoint).observe(time.monotonic() - start)
