"""OpenTelemetry in the gateway: real spans (the SDK's in-memory exporter, and a real OTLP/HTTP export),
a server span per call with the upstream call as its child, no secrets in attributes, off when unset."""
from __future__ import annotations

import http.server
import threading
import time

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from lib.gateway import GatewaySettings, create_app
from tests.support.gateway import CALLER_KEY, CALLER_KEYS, OTHER_KEY, auth, start_gateway
from tests.support.procs import free_port

DIFY_KEY = "app-sim-chat"
SECRETS = (CALLER_KEY, OTHER_KEY, DIFY_KEY, "Bearer")
CHAT = {"query": "Trace me", "user": "trace-user", "inputs": {}}


def settings(upstream: str, **extra) -> GatewaySettings:
    return GatewaySettings(dify_api_base=upstream, dify_api_key=DIFY_KEY, gateway_api_keys=CALLER_KEYS,
                           gateway_rate_limit=0, otel_exporter_otlp_endpoint="", **extra)


def serve(app) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "in-process gateway did not start"
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture
def traced(sim):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    url, server, thread = serve(create_app(settings(sim.url), tracer_provider=provider))
    yield url, exporter
    server.should_exit = True
    thread.join(timeout=10)


def attribute_text(span) -> str:
    return " ".join(f"{k}={v}" for k, v in (span.attributes or {}).items()) + " " + span.name


def test_a_span_per_call_with_the_upstream_call_as_its_child(traced):
    url, exporter = traced
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caller_trace = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    r = httpx.post(f"{url}/v1/chat-messages", json={**CHAT, "response_mode": "streaming"}, headers={**auth(), **caller_trace})
    assert r.status_code == 200 and "message_end" in r.text
    httpx.post(f"{url}/v1/chat-messages", json=CHAT, headers={"Authorization": "Bearer not-a-key"})

    def finished():
        spans = exporter.get_finished_spans()
        return spans if len(spans) >= 3 else None

    deadline = time.monotonic() + 10
    while not (spans := finished()):
        assert time.monotonic() < deadline, f"spans: {exporter.get_finished_spans()}"
        time.sleep(0.05)
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    clients = [s for s in spans if s.kind == SpanKind.CLIENT]
    ok = next(s for s in servers if s.attributes.get("http.response.status_code") == 200)
    (upstream,) = clients
    assert ok.name == "POST /v1/chat-messages" and upstream.name == "upstream POST /v1/chat-messages"
    assert upstream.parent is not None and upstream.parent.span_id == ok.context.span_id
    assert upstream.context.trace_id == ok.context.trace_id == int(trace_id, 16)  # joined the caller's trace
    assert ok.attributes["gateway.caller"] == "web" and ok.attributes["gateway.stream_outcome"] == "ok"
    assert upstream.attributes["http.response.status_code"] == 200
    refused = next(s for s in servers if s.attributes.get("http.response.status_code") == 401)
    assert refused.context.trace_id != ok.context.trace_id  # no upstream child: it never left the gateway
    for span in spans:
        text = attribute_text(span)
        assert not any(secret in text for secret in SECRETS), text
        assert "trace-user" not in text  # no end-user ids either


def test_tracing_is_off_without_an_endpoint(sim):
    before = {t.ident for t in threading.enumerate()}
    app = create_app(settings(sim.url))
    assert app.state.gateway.tracer is None
    new = [t.name for t in threading.enumerate() if t.ident not in before]
    assert not new, f"threads started with tracing off: {new}"


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        _Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_are_exported_over_otlp_when_the_endpoint_is_set(sim, tmp_path):
    """A real OTLP/HTTP export from the gateway process to a collector endpoint (here a recording server)."""
    _Collector.received = []
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    gw = start_gateway(tmp_path, sim.url, env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "gw-test"})
    try:
        assert httpx.post(f"{gw.url}/v1/chat-messages", json=CHAT, headers=auth()).status_code == 200
    finally:
        gw.stop()  # shutdown flushes the batch exporter
        collector.shutdown()
    assert "Application shutdown complete" in gw.log()  # a graceful stop (uvicorn then re-raises SIGTERM)
    assert _Collector.received, f"nothing exported:\n{gw.log()}"
    names, raw = set(), b""
    for path, body in _Collector.received:
        assert path == "/v1/traces"
        raw += body
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            assert service == "gw-test"
            names |= {s.name for scope in resource_spans.scope_spans for s in scope.spans}
    assert {"POST /v1/chat-messages", "upstream POST /v1/chat-messages"} <= names
    assert not any(secret.encode() in raw for secret in SECRETS)
