"""The gateway's FastAPI app: /health, /ready, /metrics, and Dify's Service API under /v1."""
from __future__ import annotations

import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import CallerKeys
from .config import Caller, GatewaySettings
from .metrics import GatewayMetrics
from .proxy import Gateway
from .routes import METHODS
from .tracing import make_tracer

SERVER_VERSION = "gateway"


class GatewayApp:
    """The gateway's ASGI app: Dify's Service API (`/v1/<route>`) straight to the gateway's handler, the rest
    (/health, /ready, /metrics, GET /v1) to FastAPI.

    Why not a FastAPI or Starlette route: every call to Dify passes here, and each chunk of every stream
    would pass FastAPI's five middleware `send` wrappers, and each request its dependency machinery, on the
    one event loop all open streams share (benchmarks/gateway_overhead.py measured it in added TTFT)."""

    def __init__(self, api: FastAPI, gw: Gateway, *, cors_origins: list[str]) -> None:
        self.api, self.gateway = api, gw
        self.state = api.state
        proxy: ASGIApp = gw.asgi
        if cors_origins:
            # Around the proxy and FastAPI alike, so refusals (401, 429) carry CORS headers too and a browser
            # can read them.
            cors = dict(allow_origins=cors_origins, allow_methods=METHODS + ["OPTIONS"],
                        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                        expose_headers=["X-Request-ID", "Retry-After"],
                        allow_credentials=False,  # keys travel in Authorization, never cookies
                        max_age=600)
            proxy = CORSMiddleware(proxy, **cors)  # type: ignore[arg-type]
            api.add_middleware(CORSMiddleware, **cors)  # type: ignore[arg-type]
        self._proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 4 and scope["path"].startswith("/v1/"):
            await self._proxy(scope, receive, send)
        else:
            await self.api(scope, receive, send)  # lifespan included: the gateway starts and stops with it


def create_app(settings: GatewaySettings | None = None, *, tracer_provider=None) -> GatewayApp:
    """Build the app. `settings` default to the environment; `tracer_provider` (tests) overrides OTLP.

    Raises ConfigError when a required setting is missing.
    """
    settings = (settings or GatewaySettings()).check()
    gw = Gateway(settings, GatewayMetrics(), *make_tracer(settings, tracer_provider))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await gw.start()
        # Everything built so far (FastAPI, pydantic, prometheus, the routes: ~80k objects) lives as long as the
        # process: out of the collector's sight, a full collection no longer stalls every open stream for tens
        # of ms to walk it again (measured: ~57 ms each, under load).
        gc.freeze()
        try:
            yield
        finally:
            await gw.close()

    app = FastAPI(title="Dify gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gw

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process lives (liveness): no upstream call."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Upstream reachable and breaker closed (readiness)."""
        ok, detail = await gw.readiness()
        return JSONResponse(detail, status_code=200 if ok else 503)

    metrics_key = settings.gateway_metrics_key.get_secret_value().strip()
    metrics_keys = CallerKeys([Caller("metrics", settings.gateway_metrics_key)]) if metrics_key else None

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        if metrics_keys is not None and metrics_keys.caller(request.headers.get("authorization")) is None:
            return JSONResponse({"code": "unauthorized", "message": "/metrics needs `Authorization: Bearer "
                                 "<GATEWAY_METRICS_KEY>`.", "status": 401}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        gw.refresh_breaker_gauge()
        body, content_type = gw.metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/v1")
    @app.get("/v1/")
    async def welcome() -> dict[str, str]:
        # Dify answers GET /v1/ without a key; clients use it as a reachability check.
        return {"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": SERVER_VERSION}

    return GatewayApp(app, gw, cors_origins=settings.cors_origins)
