"""OpenTelemetry traces: a server span per call, the upstream call as its child.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: then `make_tracer` returns None, the gateway creates
no provider, no exporter and no background thread, and skips span work on the hot path entirely.
Attributes are route templates, methods, statuses, the caller's name and the request id: never a
key, a header value, a query string or a body.
"""
from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .config import GatewaySettings

_PROPAGATOR = TraceContextTextMapPropagator()  # W3C traceparent: joins the caller's trace and Dify's


def make_tracer(settings: GatewaySettings, provider: trace.TracerProvider | None = None) -> tuple[Tracer | None, object]:
    """(tracer, provider to shut down or None): a tracer exporting over OTLP/HTTP, the given provider's
    (tests pass one with an in-memory exporter; its owner shuts it down), or (None, None) when off."""
    owned = None
    if provider is None:
        endpoint = settings.otel_exporter_otlp_endpoint.strip()
        if not endpoint:
            return None, None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # The generic variable names the collector's base URL; the traces path is appended, as the SDK does.
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        owned = provider
    return provider.get_tracer("lib.gateway"), owned


def shutdown(provider) -> None:
    """Flush and stop the exporter of a provider make_tracer made (a no-op for none)."""
    if provider is not None:
        provider.shutdown()


def start_server_span(tracer: Tracer, method: str, route: str, headers: Mapping[str, str], request_id: str) -> Span:
    parent = _PROPAGATOR.extract(headers, getter=DefaultGetter())
    return tracer.start_span(
        f"{method} /v1{route}", context=parent, kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": f"/v1{route}", "gateway.request_id": request_id},
    )


def start_upstream_span(tracer: Tracer, parent: Span, method: str, route: str, host: str, port: int | None) -> Span:
    attributes: dict[str, str | int] = {"http.request.method": method, "url.template": f"/v1{route}", "server.address": host}
    if port:
        attributes["server.port"] = port
    return tracer.start_span(
        f"upstream {method} /v1{route}", context=trace.set_span_in_context(parent), kind=SpanKind.CLIENT,
        attributes=attributes,
    )


def inject(span: Span, headers: dict[str, str]) -> None:
    """Add the upstream span's traceparent to the upstream request's headers."""
    _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span, otel_context.get_current()))


def finish(span: Span | None, status: int | None, error: str | None = None) -> None:
    if span is None:
        return
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if error or (status is not None and status >= 500):
        span.set_status(Status(StatusCode.ERROR, error or f"HTTP {status}"))
        if error:
            span.set_attribute("error.type", error)
    span.end()
