"""The gateway's request path: route check, caller auth, rate limit, breaker, then upstream.

Upstream is one aiohttp session (upstream.py). Event streams are relayed chunk by chunk as they arrive
(no buffering, `X-Accel-Buffering: no` for nginx in front), in one loop with no per-chunk work beyond
the caller's prefix strip and a byte counter (benchmarks/gateway_overhead.py measures it beside a bare
proxy); the caller's key is checked here and dropped, and upstream gets the server-side Dify key instead.
"""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from lib.dify import CircuitBreaker
from lib.metrics.labels import BREAKER_STATES, status_class

from . import tracing
from . import upstream as up
from .auth import CallerKeys
from .config import GatewaySettings
from .isolation import OWNED, CallerSpace, Refused
from .logs import request_id
from .metrics import GatewayMetrics
from .ratelimit import CallerLimits, FailedAuthLimits
from .routes import GENERATION, match

log = logging.getLogger("lib.gateway")
clock = time.perf_counter

# Never forwarded upstream: hop-by-hop headers, the caller's credentials, and what httpx recomputes.
_DROP_REQUEST = frozenset({
    "host", "authorization", "cookie", "proxy-authorization", "connection", "keep-alive", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "accept-encoding", "x-request-id", "origin", "referer",
    "x-api-key", "traceparent", "tracestate",
})
# Who the client is, as told by a proxy: believed and passed on only from GATEWAY_TRUSTED_PROXIES.
_FORWARDED = frozenset({"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port",
                        "x-real-ip"})
# Never passed back to the caller: hop-by-hop headers and what the gateway's server sets itself.
_DROP_RESPONSE = frozenset({
    b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"server", b"date", b"set-cookie",
    b"x-request-id", b"access-control-allow-origin", b"access-control-allow-credentials",
})
_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="api"'}
_CLOSE = {"Connection": "close"}  # refused mid-body: the rest of it is not read
KEY_REFUSED = ("Dify upstream answered 401: the gateway's Dify key was refused (your gateway key was accepted); "
               "the gateway's operator must set a valid DIFY_API_KEY.")


def dify_error(status: int, code: str, message: str, rid: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Dify's error envelope, so Dify clients read gateway errors as they read Dify's."""
    return JSONResponse({"code": code, "message": message, "status": status}, status_code=status,
                        headers={"X-Request-ID": rid, **(headers or {})})


class Gateway:
    """Shared state of one gateway app: settings, the upstream pool, breaker, limits, metrics, tracer."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics, tracer=None, tracer_owner=None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tracer = tracer  # None: tracing off, no span work at all
        self._tracer_owner = tracer_owner  # the provider to flush at shutdown, when the gateway made it
        self.base = settings.dify_api_base
        self.base_url = httpx.URL(self.base)
        self.keys = CallerKeys(settings.callers)
        self.limits = CallerLimits(settings.gateway_rate_limit, settings.gateway_rate_burst)
        self.auth_failures = FailedAuthLimits(settings.gateway_auth_failures, settings.gateway_auth_window)
        self._drop_request = _DROP_REQUEST if settings.trusted_proxies else _DROP_REQUEST | _FORWARDED
        self._key_verdict: tuple[float, bool] | None = None  # (when, accepted) of the last sign from upstream
        # caller -> its namespace of Dify users; empty when callers are not kept apart
        self.spaces = {c.name: CallerSpace(c.name) for c in settings.callers} if settings.gateway_isolate_callers else {}
        self.breaker = CircuitBreaker(settings.gateway_breaker_failures, settings.gateway_breaker_recovery,
                                      on_change=metrics.breaker_changed)
        self._auth = f"Bearer {settings.dify_api_key.get_secret_value().strip()}"
        self.http: aiohttp.ClientSession | None = None

    # -- lifecycle (the app's lifespan: the aiohttp pool must live in the server's event loop) ----------

    async def start(self) -> None:
        s = self.settings
        self.http = up.session(s.gateway_max_connections, s.gateway_connect_timeout, s.gateway_read_timeout)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        tracing.shutdown(self._tracer_owner)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The upstream pool, which exists from start() on."""
        if self.http is None:
            raise RuntimeError("The gateway is not started: its upstream session opens in the app's lifespan (start()).")
        return self.http

    def __repr__(self) -> str:  # never the keys
        return f"Gateway(upstream={self.base!r}, callers={len(self.settings.callers)})"

    # -- /ready --------------------------------------------------------------------------------------

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """Ready when upstream answers, accepts the gateway's Dify key and the breaker is closed. The key
        is checked with GET /info (cheap, authenticated) at most every GATEWAY_READY_CACHE seconds, else
        an unauthenticated GET / shows upstream answers. The probe is also the breaker's half-open trial,
        so a gateway taken out of rotation still finds its way back."""
        if self.breaker.state == "open":
            return False, {"status": "not ready", "reason": f"circuit breaker open: upstream failed repeatedly; "
                                                            f"next try in {self.breaker.retry_in():.0f} s"}
        verdict = self._key_verdict
        fresh = verdict is not None and time.monotonic() - verdict[0] < self.settings.gateway_ready_cache
        if verdict is not None and fresh and not verdict[1]:
            return False, self._key_refused_detail()
        check_key = not fresh
        limit = min(2.0, self.settings.gateway_connect_timeout)
        try:
            if check_key:
                r = await self.session.get(self.base + "/info", headers={"authorization": self._auth},
                                        timeout=up.timeout(limit, limit), allow_redirects=False)
            else:
                r = await self.session.get(self.base + "/", timeout=up.timeout(limit, limit), allow_redirects=False)
            r.release()
        except up.FAILURES as exc:
            name, _ = up.failure(exc)
            self.breaker.record_failure(name)
            return False, {"status": "not ready", "reason": f"upstream unreachable ({name})"}
        status = r.status
        if status >= 500:
            self.breaker.record_failure(f"HTTP {status}")
            return False, {"status": "not ready", "reason": f"upstream answered {status}"}
        if check_key:
            self._key_verdict = (time.monotonic(), status != 401)
            if status == 401:
                return False, self._key_refused_detail()
        if self.breaker.state != "closed":
            self.breaker.record_success()
        state = self.breaker.state
        ok = state == "closed"
        return ok, {"status": "ready" if ok else "not ready", "upstream": "reachable", "dify_key": "accepted",
                    "breaker": state}

    @staticmethod
    def _key_refused_detail() -> dict[str, str]:
        return {"status": "not ready", "upstream": "reachable", "dify_key": "refused",
                "reason": "the gateway's Dify key was refused by upstream (401): set a valid DIFY_API_KEY"}

    def refresh_breaker_gauge(self) -> None:
        self.metrics.breaker_state.set(BREAKER_STATES.get(self.breaker.state, 2))

    # -- /v1/... -------------------------------------------------------------------------------------

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry of /v1/<route> (app.GatewayApp): the answer of `handle`, sent. A bug in `handle`
        is logged and answered 500 in Dify's envelope, as FastAPI's error middleware answered it before."""
        try:
            response = await self.handle(Request(scope, receive))
        except Exception:
            log.exception("gateway error", extra={"path": scope.get("path", "")})
            response = dify_error(500, "internal_server_error", "The gateway failed on this request; its log "
                                  "has the details.", request_id(None))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        started = clock()
        method = request.method
        path = request.scope["path"][3:] or "/"  # under /v1, percent-decoded
        rid = request_id(request.headers.get("x-request-id"))
        route, upstream_path, allowed = match(method, path)
        label = route or "other"
        caller = "anonymous"
        m = self.metrics
        m.in_flight.inc()
        span = tracing.start_server_span(self.tracer, method, label, request.headers, rid) if self.tracer else None
        response: Response | None = None
        try:
            if route is None:
                response = dify_error(404, "not_found", "The requested URL was not found on the server. "
                                      "The gateway passes Dify's Service API routes only.", rid)
                return response
            if not allowed or upstream_path is None:  # one test: match gives a path only with an allowed method
                response = dify_error(405, "method_not_allowed", "The method is not allowed for the requested URL.", rid)
                return response
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.settings.max_body_bytes:
                response = self._too_large(rid)
                return response
            address = request.client.host if request.client else "unknown"
            blocked = self.auth_failures.blocked_for(address)
            if blocked:
                m.auth_blocked.inc()
                retry = max(1, round(blocked + 0.5))
                response = dify_error(429, "too_many_requests", "Too many failed gateway-key attempts from this address; "
                                      f"retry in {retry} s.", rid, {"Retry-After": str(retry)})
                return response
            name = self.keys.caller(request.headers.get("authorization"))
            if name is None:
                m.auth_failures.inc()
                self.auth_failures.failed(address)
                response = dify_error(401, "unauthorized", "A gateway key is required: send `Authorization: Bearer <gateway key>`.",
                                      rid, _UNAUTHORIZED)
                return response
            caller = name
            if span is not None:
                span.set_attribute("gateway.caller", caller)
            wait = self.limits.acquire(caller)
            if wait:
                m.rate_limited.labels(caller).inc()
                response = dify_error(429, "too_many_requests", f"Too many requests from this caller; retry in {wait:.1f} s.",
                                      rid, {"Retry-After": str(max(1, round(wait + 0.5)))})
                return response
            retry_in = self.breaker.allow()
            if retry_in is not None:
                m.upstream_errors.labels(label, "breaker_open").inc()
                response = dify_error(503, "service_unavailable", "Dify upstream is failing; the gateway stopped calling it for now.",
                                      rid, {"Retry-After": str(max(1, round(retry_in + 0.5)))})
                return response
            body = await self.read_body(request, rid)
            if isinstance(body, Response):
                response = body
                return response
            query, content_type = request.scope["query_string"].decode("latin-1"), request.headers.get("content-type", "")
            space = self.spaces.get(caller)
            if space is not None:
                try:
                    query, body, content_type = space.request(label, query, content_type, body)
                except Refused as refused:
                    response = dify_error(refused.status, refused.code, refused.message, rid)
                    return response
            response = await self._forward(request, method, upstream_path, query, content_type, label, body, rid,
                                           caller, space, started, span)
            return response
        finally:
            if not isinstance(response, Relay):  # a relay finishes (metrics, span, log) when its stream ends
                status = response.status_code if response is not None else 500
                m.in_flight.dec()
                m.requests.labels(label, method, caller, status_class(status)).inc()
                elapsed = clock() - started
                m.duration.labels(label).observe(elapsed)
                tracing.finish(span, status)
                log.info("request", extra={"request_id": rid, "method": method, "route": label, "caller": caller,
                                           "status": status, "duration_ms": round(elapsed * 1000, 1)})

    def _too_large(self, rid: str) -> JSONResponse:
        return dify_error(413, "file_too_large", "The request body is larger than the gateway accepts "
                          f"({self.settings.gateway_max_body_mb:g} MB, GATEWAY_MAX_BODY_MB).", rid, _CLOSE)

    async def read_body(self, request: Request, rid: str) -> bytes | Response:
        """The request body, or the refusal to send: counted as it arrives, so a body without a length
        (chunked) is refused at GATEWAY_MAX_BODY_MB, not after it was all read, and given
        GATEWAY_BODY_TIMEOUT seconds in all, so a body trickled byte by byte cannot hold a connection."""
        limit, chunks, size = self.settings.max_body_bytes, [], 0
        try:
            async with asyncio.timeout(self.settings.gateway_body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        return self._too_large(rid)
                    if chunk:
                        chunks.append(chunk)
        except TimeoutError:
            return dify_error(408, "request_timeout", "The request body did not arrive within "
                              f"{self.settings.gateway_body_timeout:g} s.", rid, _CLOSE)
        except ClientDisconnect:
            return dify_error(400, "bad_request", "The caller left before sending the whole request body.", rid, _CLOSE)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _forward(self, request: Request, method: str, path: str, query: str, content_type: str, label: str,
                       body: bytes, rid: str, caller: str, space: CallerSpace | None, started: float, span) -> Response:
        headers = {k: v for k, v in request.headers.items() if k not in self._drop_request}
        if content_type:
            headers["content-type"] = content_type
        headers["authorization"] = self._auth
        headers["x-request-id"] = rid
        headers["accept-encoding"] = "identity"  # bytes pass through as they are: no compressed SSE to hold back
        upstream_span = None
        if self.tracer is not None:
            upstream_span = tracing.start_upstream_span(self.tracer, span, method, label, self.base_url.host, self.base_url.port)
            tracing.inject(upstream_span, headers)
        url = up.normalised(self.base + path + (f"?{query}" if query else ""))
        m = self.metrics
        m.overhead.labels(label).observe(clock() - started)
        sent = clock()
        try:
            resp = await self.session.request(method, url, headers=headers, data=body or None, allow_redirects=False)
        except up.FAILURES as exc:
            name, kind = up.failure(exc)
            self.breaker.record_failure(name)
            m.upstream_errors.labels(label, kind).inc()
            tracing.finish(upstream_span, None, name)
            log.warning("upstream failed", extra={"request_id": rid, "route": label, "error": name})
            if kind == "timeout":
                return dify_error(504, "gateway_timeout", "Dify upstream did not answer in time.", rid)
            return dify_error(502, "bad_gateway", f"The gateway could not reach Dify upstream ({name}).", rid)
        m.upstream_duration.labels(label).observe(clock() - sent)
        status = resp.status
        if status == 401:
            # The caller's key was accepted here, so Dify refused the gateway's own: passing its 401 on would
            # tell the caller their key is wrong.
            resp.close()
            self._key_verdict = (time.monotonic(), False)
            m.upstream_errors.labels(label, "key_refused").inc()
            tracing.finish(upstream_span, status, "key_refused")
            log.error("upstream refused the gateway's Dify key", extra={"request_id": rid, "route": label})
            return dify_error(502, "gateway_upstream_key_refused", KEY_REFUSED, rid)
        if status >= 500:
            self.breaker.record_failure(f"HTTP {status}")
        else:
            self.breaker.record_success()
        raw_headers = [(k.lower(), v) for k, v in resp.raw_headers if k.lower() not in _DROP_RESPONSE]
        raw_headers.append((b"x-request-id", rid.encode()))
        ctype = resp.headers.get("content-type", "")
        # Only text answers can name a user: files and audio pass through untouched.
        strip = space if space is not None and ("json" in ctype or "text/event-stream" in ctype) else None
        if "text/event-stream" in ctype or "content-length" not in resp.headers:
            sse = "text/event-stream" in ctype
            if sse:
                raw_headers += [(b"x-accel-buffering", b"no"), (b"cache-control", b"no-cache")]
            return Relay(self, resp, raw_headers, label=label, method=method, caller=caller, rid=rid, started=started,
                         span=span, upstream_span=upstream_span, measure_ttft=sse and label in GENERATION, space=strip)
        try:
            content = await resp.read()
        except up.FAILURES as exc:
            name, kind = up.failure(exc)
            self.breaker.record_failure(name)
            m.upstream_errors.labels(label, kind).inc()
            tracing.finish(upstream_span, status, name)
            return dify_error(502, "bad_gateway", f"Dify's answer was cut short ({name}).", rid)
        finally:
            resp.release()
        tracing.finish(upstream_span, status)
        if strip is not None:
            if label in OWNED and status == 200 and not strip.owns(content):
                code, message = OWNED[label]
                return dify_error(404, code, message, rid)  # another caller's: as Dify answers an unknown id
            content = strip.strip(content)
        out = Response(content, status_code=status)
        out.raw_headers = [h for h in out.raw_headers if h[0] != b"content-type"] + raw_headers
        return out


class _Unused:
    """StreamingResponse wants a body iterator; a Relay writes its body itself (stream_response)."""

    def __aiter__(self):
        return self

    async def __anext__(self):
        raise StopAsyncIteration


_UNUSED = _Unused()


class Relay(StreamingResponse):
    """Passes an upstream body through chunk by chunk, each sent the moment it arrives.

    Ends the request's bookkeeping (metrics, spans, the log line, the upstream connection) exactly
    once, however the stream ends: finished, upstream broken, or the caller gone (Starlette cancels
    the relay on disconnect, and closing the upstream response drops that connection).
    """

    def __init__(self, gw: Gateway, upstream: aiohttp.ClientResponse, raw_headers: list[tuple[bytes, bytes]], *,
                 label: str, method: str, caller: str, rid: str, started: float, span, upstream_span,
                 measure_ttft: bool, space: CallerSpace | None = None) -> None:
        super().__init__(_UNUSED, status_code=upstream.status)
        self.raw_headers = raw_headers
        self.gw, self.upstream = gw, upstream
        self.label, self.method, self.caller, self.rid, self.started = label, method, caller, rid, started
        self.span, self.upstream_span = span, upstream_span
        self.measure_ttft = measure_ttft
        self.space = space  # strips the caller's namespace from user ids in the stream
        self.nbytes = 0
        self.error: str | None = None
        self.outcome = "caller_left"  # until the stream ends otherwise

        self._finished = False

    async def stream_response(self, send: Send) -> None:
        # The hot path: one pass of this loop per upstream chunk per stream. aiohttp's readany() hands over
        # whatever arrived (b"" at the end); nothing here decodes, parses or observes a metric per chunk.
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        read = self.upstream.content.readany
        strip = self.space.stream_stripper() if self.space is not None else None
        ttft_pending = self.measure_ttft
        nbytes = 0
        try:
            while True:
                try:
                    chunk = await read()
                except up.FAILURES as exc:
                    # Leave the response unterminated, as Dify's own cut would: the caller sees a broken stream,
                    # not a clean end it would take for a complete answer.
                    self.error, _ = up.failure(exc)
                    self.outcome = "upstream_broke"
                    return
                if not chunk:
                    break
                if strip is not None:
                    chunk = strip.feed(chunk)
                    if not chunk:
                        continue
                if ttft_pending and b"data:" in chunk:  # the first data event (a ping is not one)
                    ttft_pending = False
                    self.gw.metrics.ttft.labels(self.label).observe(clock() - self.started)
                nbytes += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            rest = strip.rest() if strip is not None else b""
            if rest:
                nbytes += len(rest)
                await send({"type": "http.response.body", "body": rest, "more_body": True})
        finally:
            self.nbytes = nbytes
        self.outcome = "ok"
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.finish()

    async def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        gw, m = self.gw, self.gw.metrics
        if self.outcome == "ok":
            self.upstream.release()  # read to its end: the connection goes back to the pool
        else:
            self.upstream.close()  # broken, or the caller left mid-stream: drop the connection, so Dify stops

        if self.outcome == "upstream_broke":
            gw.breaker.record_failure(self.error or "stream broke")
            m.upstream_errors.labels(self.label, "broken").inc()
        elapsed = clock() - self.started
        m.in_flight.dec()
        m.requests.labels(self.label, self.method, self.caller, status_class(self.status_code)).inc()
        m.duration.labels(self.label).observe(elapsed)
        if self.nbytes:
            m.stream_bytes.labels(self.label).inc(self.nbytes)
        tracing.finish(self.upstream_span, self.status_code, self.error)
        if self.span is not None:
            self.span.set_attribute("gateway.stream_outcome", self.outcome)
        tracing.finish(self.span, self.status_code, self.error)
        level = logging.WARNING if self.outcome == "upstream_broke" else logging.INFO
        log.log(level, "request", extra={"request_id": self.rid, "method": self.method, "route": self.label,
                                         "caller": self.caller, "status": self.status_code, "stream": self.outcome,
                                         "bytes": self.nbytes, "duration_ms": round(elapsed * 1000, 1)})
