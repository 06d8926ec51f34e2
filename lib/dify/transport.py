"""The fast async transport: httpx's API on aiohttp's connection pool (httpx-aiohttp).

httpx's own async pool distorts latency fivefold at 100 concurrent streams (design.md, measured
facts); httpx-aiohttp stays within a few percent of raw aiohttp. Two fixes on top of it:

- aiohttp's connector caps at 100 connections by default: the cap here is `max_connections`
  (1000), since the client's own ConcurrencyLimit is the throttle that matters.
- httpx-aiohttp maps every aiohttp `ClientConnectionError` to `httpx.ConnectTimeout`, which would
  make a connection dropped *after* the request was sent look like one never opened, and so
  "safe to retry". The client's no-duplicate rule depends on that difference: errors are mapped
  again here from the original aiohttp exception.
- aiohttp's hidden resend of idempotent requests is switched off (see get_client).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def _mapped(exc: BaseException, request: httpx.Request | None) -> BaseException:
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ is not None else exc
    message = str(cause) or type(cause).__name__
    cls: type[httpx.HTTPError]
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        cls = httpx.ConnectTimeout
    elif isinstance(cause, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        cls = httpx.ReadTimeout
    elif isinstance(cause, aiohttp.ClientConnectorError):  # DNS, refused, unreachable: never sent
        cls = httpx.ConnectError
    elif isinstance(cause, aiohttp.ClientPayloadError):  # body cut short
        cls = httpx.ReadError
    elif isinstance(cause, aiohttp.ServerDisconnectedError):
        cls = httpx.RemoteProtocolError
    elif isinstance(cause, (aiohttp.ClientOSError, aiohttp.ClientConnectionError)):
        cls = httpx.ReadError
    elif isinstance(cause, aiohttp.ClientResponseError):  # unparsable status line or headers
        cls = httpx.RemoteProtocolError
    elif isinstance(cause, (aiohttp.InvalidURL, ValueError)) and not isinstance(exc, httpx.HTTPError):
        cls = httpx.UnsupportedProtocol
    elif isinstance(exc, httpx.HTTPError):
        return exc
    else:
        cls = httpx.TransportError
    return cls(message, request=request) if request is not None else cls(message)


class _Stream(httpx.AsyncByteStream):
    """The response body, its errors mapped from aiohttp's own (see the module's docstring).

    Chunks are read straight from aiohttp's StreamReader.readany(): httpx-aiohttp's stream passes each one
    through two async-generator layers (its own and iter_chunked's), a measurable share of the client's CPU
    per token at 100 concurrent streams (py-spy, benchmarks/client_overhead.py). Its reader is a private
    attribute (`_aiohttp_response`, httpx-aiohttp 0.2.0, pinned); should a release rename it, the body is
    read through its stream as before (tests/integration/test_fast_transport.py checks the direct path is taken).
    """

    __slots__ = ("_content", "_inner", "_request")

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner, self._request = inner, request
        response = getattr(inner, "_aiohttp_response", None)
        self._content: aiohttp.StreamReader | None = getattr(response, "content", None)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self if self._content is not None else self._through_inner()

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._content.readany()  # type: ignore[union-attr]
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(exc, self._request) from exc
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def _through_inner(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (TimeoutError, httpx.HTTPError, aiohttp.ClientError) as exc:
            raise _mapped(exc, self._request) from exc

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except (TimeoutError, httpx.HTTPError, aiohttp.ClientError):
            pass  # closing a broken response: nothing left to report


class FastTransport(AiohttpTransport):
    """An `httpx.AsyncBaseTransport` on aiohttp. Create it inside the event loop that will use it
    (aiohttp's session is made on the first request, so constructing it anywhere is fine)."""

    def __init__(self, max_connections: int = 1000, keepalive_expiry: float = 5.0, **kwargs: object) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=keepalive_expiry)
        super().__init__(limits=limits, **kwargs)  # type: ignore[arg-type]

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
            ttl_dns_cache=300,
        )
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        # aiohttp silently resends an idempotent request once when the connection drops; the client's
        # RetryPolicy must be the only retry, so that attempts, hooks and the breaker see every one
        # (aiohttp's own test client switches it off the same way). Private, as no public way exists:
        # ClientSession takes no argument for it (aiohttp 3.14, pinned).
        session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (TimeoutError, httpx.HTTPError, aiohttp.ClientError) as exc:
            raise _mapped(exc, request) from exc
        response.stream = _Stream(response.stream, request)  # type: ignore[arg-type]
        return response


def make_async_transport(kind: str | httpx.AsyncBaseTransport | None, max_connections: int) -> httpx.AsyncBaseTransport:
    """"aiohttp" (default, fast), "httpx" (httpx's own pool), or a transport instance."""
    if isinstance(kind, httpx.AsyncBaseTransport):
        return kind
    if kind in (None, "aiohttp", "fast"):
        return FastTransport(max_connections=max_connections)
    if kind == "httpx":
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        return httpx.AsyncHTTPTransport(limits=limits)
    raise ValueError(f"transport must be 'aiohttp', 'httpx' or an httpx.AsyncBaseTransport, not {kind!r}")
