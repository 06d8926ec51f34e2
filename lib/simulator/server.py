"""The simulator's ASGI app: Dify's Service API routes, its error envelope, and fault injection."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .apps import APPS, SimApp
from .config import RUN_FAULTS, STREAM_FAULTS, SimConfig
from .errors import INTERNAL, UNAUTHORIZED_HEADERS, DifyError, invalid_param
from .faults import Fault, FaultPlan
from .metrics import CountRequests, SimMetrics
from .profiles import PROFILES, VERSION_HEADER, Profile, UnknownVersion, profile_named
from .state import Store

log = logging.getLogger("lib.simulator")

SERVER_VERSION = PROFILES["1.13"].server_version
PASS_THROUGH_FAULTS = STREAM_FAULTS | RUN_FAULTS  # played by the route, not before headers
# Dify's answer when the app's model has no provider configured (captures 76-80).
NO_MODEL_MESSAGE = (
    "2 validation errors for ModelConfigEntity\nprovider\n  Input should be a valid string [type=string_type, "
    "input_value=None, input_type=NoneType]\n    For further information visit https://errors.pydantic.dev/2.11/v/string_type\n"
    "model\n  Input should be a valid string [type=string_type, input_value=None, input_type=NoneType]\n"
    "    For further information visit https://errors.pydantic.dev/2.11/v/string_type"
)
# werkzeug's NotFound page, byte for byte as Dify 1.12 sends it for an unknown route (capture 40).
WERKZEUG_404 = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server. If you entered the URL manually please check your "
    "spelling and try again.</p>\n"
)
CORS_HEADERS = [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", b"X-Env, X-Trace-Id, X-Version")]
GENERATION_PATHS = ("/v1/chat-messages", "/v1/completion-messages", "/v1/workflows/run")


class Simulator:
    """Shared state of one simulator process: config, in-memory store and fault plan."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.store = Store()
        self.faults = FaultPlan(config)
        self.metrics = SimMetrics()
        self.counter = itertools.count()  # request number: seeds each request's latency jitter
        self.default_profile = profile_named(config.dify_version)

    def profile_of(self, headers) -> Profile:
        """The request's Dify version: its X-Sim-Dify-Version header, else --dify-version."""
        wanted = headers.get(VERSION_HEADER)
        if not wanted:
            return self.default_profile
        try:
            return profile_named(wanted)
        except UnknownVersion as exc:
            raise DifyError(400, "bad_request", f"X-Sim-Dify-Version: {exc}") from None

    def profile(self, request: Request) -> Profile:
        return self.profile_of(request.headers)

    def app_for(self, request: Request) -> SimApp:
        """Dify's auth checks, in Dify's order; returns the app the key belongs to."""
        header = request.headers.get("authorization")
        if not header or " " not in header.strip():
            raise DifyError(401, "unauthorized", "Authorization header must be provided and start with 'Bearer'", UNAUTHORIZED_HEADERS)
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise DifyError(401, "unauthorized", "Authorization scheme must be 'Bearer'", UNAUTHORIZED_HEADERS)
        app = APPS.get(token.strip())
        if app is None:
            raise DifyError(401, "unauthorized", "Access token is invalid", UNAUTHORIZED_HEADERS)
        return app

    def stream_fault(self, request: Request) -> Fault | None:
        """The request's fault when the route plays it (in-stream faults and node-failed)."""
        fault = request.scope.get("sim.fault")
        return fault if fault and fault.name in PASS_THROUGH_FAULTS else None


def _error_page(status: int, title: str) -> Response:
    body = (f"<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n<center><h1>{status} {title}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    return Response(body, status_code=status, media_type="text/html")


_PROXY_PAGES = {"502": "Bad Gateway", "503": "Service Temporarily Unavailable", "504": "Gateway Time-out"}


class CaptureTransport:
    """Outermost ASGI layer: keeps the socket of uvicorn's request cycle in the scope.

    Only here is `send` uvicorn's own bound method; a `reset` or `drop` fault aborts that
    transport for a real cut, not an HTTP error response.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["sim.transport"] = getattr(getattr(send, "__self__", None), "transport", None)
        await self.app(scope, receive, send)


class FaultInjection:
    """Picks a request's fault and plays those that happen before headers."""

    def __init__(self, app, sim: Simulator):
        self.app, self.sim = app, sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        fault = None
        if path.startswith("/v1/"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            generation = scope["method"] == "POST" and path.startswith(GENERATION_PATHS) and not path.endswith("/stop")
            fault = self.sim.faults.pick(headers, generation=generation)
            if fault is not None:
                self.sim.metrics.faults.labels(fault.name).inc()
        if fault is None or fault.name in PASS_THROUGH_FAULTS:
            scope["sim.fault"] = fault
            return await self.app(scope, receive, send)
        if fault.name == "slow-headers":
            await asyncio.sleep(fault.delay_s)
            return await self.app(scope, receive, send)
        if fault.name == "reset":
            await abort(scope)
            return
        response: Response
        if fault.name == "429":
            response = DifyError(429, "too_many_requests", "Too many requests. Please try again later.").response()
        elif fault.name == "429-retry-after":
            response = PlainTextResponse("Too Many Requests", status_code=429, headers={"Retry-After": fault.retry_after})
        elif fault.name == "500":
            response = INTERNAL.response()
        elif fault.name == "no-model":
            response = invalid_param(NO_MODEL_MESSAGE).response()
        else:
            response = _error_page(int(fault.name), _PROXY_PAGES[fault.name])
        await response(scope, receive, send)


async def abort(scope: Scope) -> None:
    """Cut the connection (TCP reset) and let uvicorn notice before the handler returns."""
    transport = scope.get("sim.transport")
    if transport is not None:
        transport.abort()
        await asyncio.sleep(0)


async def _dify_error(request: Request, exc: DifyError) -> Response:
    return exc.response()


class VersionHeaders:
    """Dify's `X-Version` and `X-Env` headers on every /v1 response, by the request's profile."""

    def __init__(self, app, sim: Simulator):
        self.app, self.sim = app, sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            version = self.sim.profile_of(headers).server_version
        except DifyError as exc:  # a bad X-Sim-Dify-Version fails every request, not only those that read it
            return await exc.response()(scope, receive, send)
        extra = [(b"x-version", version.encode()), (b"x-env", b"PRODUCTION")]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                # Flask-CORS marks what the Service API answers; werkzeug's own 404/405 pass it by (captures 40, 41).
                cors = [] if scope.get("sim.routing_error") else CORS_HEADERS
                message = {**message, "headers": [*message.get("headers", []), *cors, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    request.scope["sim.routing_error"] = True
    if exc.status_code == 404:
        try:
            html = request.app.state.sim.profile(request).html_404
        except DifyError:
            html = False
        if html:
            return Response(WERKZEUG_404, status_code=404, media_type="text/html; charset=utf-8")
    messages = {
        404: "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.",
        405: "The method is not allowed for the requested URL.",
    }
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return JSONResponse(
        {"code": code, "message": messages.get(exc.status_code, str(exc.detail)), "status": exc.status_code}, status_code=exc.status_code
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("simulator bug on %s %s", request.method, request.url.path)
    return INTERNAL.response()


@contextlib.asynccontextmanager
async def _warm_up(app: Starlette) -> AsyncIterator[None]:
    """Load what the first stream would otherwise load inside its TTFT: anyio imports its asyncio backend on
    the first task group, which Starlette opens around every streaming response (0.05 s quiet, 0.3 s and
    more on a loaded machine, all of it added to the first answer's first token)."""
    async with anyio.create_task_group():
        pass
    yield


def create_app(config: SimConfig | None = None) -> CaptureTransport:
    from . import routes_app, routes_conversations, routes_files, routes_generation

    sim = Simulator(config or SimConfig())

    async def welcome(request: Request) -> Response:
        return JSONResponse({"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": sim.profile(request).server_version})

    async def sim_requests(request: Request) -> Response:
        key = request.query_params.get("key", "")
        return JSONResponse({"key": key, "count": sim.faults.count(key)})

    async def metrics(request: Request) -> Response:
        body, content_type = sim.metrics.exposition()
        return Response(body, media_type=content_type)

    async def sim_reset(request: Request) -> Response:
        sim.faults.reset()
        return JSONResponse({"result": "success"})

    routes = [
        Route("/v1/", welcome),
        Route("/v1", welcome),
        Route("/_sim/requests", sim_requests),
        Route("/metrics", metrics),
        Route("/_sim/reset", sim_reset, methods=["POST"]),
        *routes_generation.routes(sim),
        *routes_conversations.routes(sim),
        *routes_files.routes(sim),
        *routes_app.routes(sim),
    ]
    starlette = Starlette(
        routes=routes,
        lifespan=_warm_up,
        # Starlette types every handler as taking any Exception; each of these takes the class it is keyed by.
        exception_handlers={DifyError: _dify_error, HTTPException: _http_error, Exception: _unexpected},  # type: ignore[dict-item]
    )
    starlette.state.sim = sim
    return CaptureTransport(CountRequests(VersionHeaders(FaultInjection(starlette, sim), sim), sim.metrics))
