"""DifyClient and AsyncDifyClient: thin I/O loops around the sans-IO core.

Both run the same loop, one with `time.sleep` and blocking httpx, the other with `await`:

    admit (breaker, rate limit) -> concurrency slot -> send -> head -> result | retry | raise

and hand every decision to `core.Call` / `stream.StreamState`. The sync client is thread-safe (one
instance may sit in Streamlit's st.cache_resource); create the async one inside the event loop that
uses it (e.g. inside asyncio.run) and close it there.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Self

import httpx

from . import deadlines
from .core import Call, CallOptions, ClientCore, Spec
from .endpoints import Endpoints
from .errors import DifyError
from .event_streams import AsyncEventStream, EventStream, detach
from .hooks import Hooks
from .options import ClientOptions
from .resilience import CircuitBreaker
from .stream import StreamState
from .timing import clock
from .transport import make_async_transport

if TYPE_CHECKING:
    from .async_endpoints import AsyncEndpoints as _AsyncSurface
else:
    _AsyncSurface = Endpoints  # at run time the async client runs the same endpoint methods


class _ClientBase:
    _core: ClientCore

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def api_key_masked(self) -> str:
        """The key as it may be shown: `app-…last4`."""
        return self._core.key.masked

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self._core.breaker

    @property
    def hooks(self) -> Hooks:
        return self._core.hooks

    @property
    def options(self) -> ClientOptions:
        """The configuration this client was built with (pass it to another client to configure it alike)."""
        return self._core.options

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self.api_key_masked!r})"


class DifyClient(_ClientBase, Endpoints):
    """Synchronous, thread-safe client of one Dify app's Service API.

    Configured by `options=ClientOptions(...)` and/or its fields as keywords (`retry=RetryPolicy(...)`,
    `transport=` an httpx.BaseTransport, `max_connections=` 100 by default): see ClientOptions.
    """

    def __init__(self, base_url: str, api_key: str, *, options: ClientOptions | None = None, **overrides: Any) -> None:
        self._core = ClientCore(base_url, api_key, options=options, **overrides)
        opts = self._core.options
        size = opts.max_connections if opts.max_connections is not None else 100
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._http = httpx.Client(transport=opts.transport, limits=limits, follow_redirects=False)
        self._transport = _transport_of(self._http, self._core.base_url)
        deadlines.install(self._transport)  # first-event and total deadlines on every socket read
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, spec: Spec, options: CallOptions) -> Any:
        call = self._core.call(spec, options)
        try:
            return self._run(call, stream=False)
        except DifyError as err:
            detach(err)
            raise
        finally:
            call.abandoned()  # no-op unless interrupted (KeyboardInterrupt, a bug): the record still closes

    def _stream(self, spec: Spec, options: CallOptions) -> EventStream:
        return EventStream(self, self._core.call(spec, options))

    def _run(self, call: Call, stream: bool) -> Any:
        """The attempt loop. Returns the result, or for a stream (response, state, release)."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        transport, limit = self._transport, self._core.limit
        while True:
            wait = call.admit()
            if wait:
                time.sleep(wait)
            if limit is not None:
                t0 = clock()
                acquired = limit.acquire(call.slot_timeout())
                call.slot_waited(clock() - t0, acquired)
            handed_over = False
            try:
                request = call.request()
                call.sent()
                # The wait for an answer ends at the first-event deadline (streams) or the total one, as
                # asyncio.timeout ends it on the async client.
                before = deadlines.set_deadline(call.answer_deadline(stream))
                try:
                    try:
                        response = transport.handle_request(request)
                    except httpx.HTTPError as exc:
                        delay = call.transport_failed(exc)
                    else:
                        try:
                            ok = call.head(response.status_code, response.headers)
                            if ok and stream:
                                call.stream_opened(response.headers, request)
                                state = StreamState(call)
                                handed_over = True
                                return response, state, (limit.release if limit is not None else _noop)
                            body = response.read()
                        except httpx.HTTPError as exc:
                            delay = call.transport_failed(exc)
                        else:
                            if ok:
                                return call.result(response.status_code, response.headers, body)
                            delay = call.error_response(response.status_code, response.headers, body)
                        finally:
                            if not handed_over:
                                response.close()
                finally:
                    deadlines.set_deadline(before)
            finally:
                if limit is not None and not handed_over:
                    limit.release()
            time.sleep(delay)


class AsyncDifyClient(_ClientBase, _AsyncSurface):
    """Asynchronous client of one Dify app's Service API: the same methods as coroutines and async streams
    (typed as such by async_endpoints.AsyncEndpoints).

    Configured by `options=ClientOptions(...)` and/or its fields as keywords: see ClientOptions. `transport=`
    "aiohttp" (default: httpx on aiohttp, fast), "httpx" (httpx's own pool) or an httpx.AsyncBaseTransport;
    `max_connections=` 1000 by default.
    """

    def __init__(self, base_url: str, api_key: str, *, options: ClientOptions | None = None, **overrides: Any) -> None:
        self._core = ClientCore(base_url, api_key, options=options, **overrides)
        opts = self._core.options
        size = opts.max_connections if opts.max_connections is not None else 1000
        self._http = httpx.AsyncClient(transport=make_async_transport(opts.transport, size), follow_redirects=False)
        self._transport = _transport_of(self._http, self._core.base_url)
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # bound on first use, not at construction

    async def aclose(self) -> None:
        self._closed = True
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, spec: Spec, options: CallOptions) -> Any:
        call = self._core.call(spec, options)
        try:
            return await self._run(call, stream=False)
        except DifyError as err:
            detach(err)
            raise
        finally:
            call.abandoned()  # no-op unless cancelled: the record still closes

    def _stream(self, spec: Spec, options: CallOptions) -> AsyncEventStream:
        return AsyncEventStream(self, self._core.call(spec, options))

    async def _run(self, call: Call, stream: bool) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:  # its connections belong to the first loop
                raise RuntimeError(
                    f"{self!r} is bound to the event loop of its first call: create one AsyncDifyClient "
                    "per event loop (e.g. inside each asyncio.run) and close it there"
                )
            self._loop = loop
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        limit = self._core.limit
        while True:
            wait = call.admit()
            if wait:
                await asyncio.sleep(wait)
            if limit is not None:
                t0 = clock()
                acquired = await limit.acquire_async(call.slot_timeout())
                call.slot_waited(clock() - t0, acquired)
            handed_over = False
            try:
                request = call.request(async_stream=stream)
                call.sent()
                try:
                    response = await self._send(call, request, stream)
                except httpx.HTTPError as exc:
                    delay = call.transport_failed(exc)
                else:
                    try:
                        ok = call.head(response.status_code, response.headers)
                        if ok and stream:
                            call.stream_opened(response.headers)
                            state = StreamState(call)
                            handed_over = True
                            return response, state, (limit.release if limit is not None else _noop)
                        body = await self._read(call, response)
                    except httpx.HTTPError as exc:
                        delay = call.transport_failed(exc)
                    else:
                        if ok:
                            return call.result(response.status_code, response.headers, body)
                        delay = call.error_response(response.status_code, response.headers, body)
                    finally:
                        if not handed_over:
                            await response.aclose()
            finally:
                if limit is not None and not handed_over:
                    limit.release()
            await asyncio.sleep(delay)

    async def _send(self, call: Call, request: httpx.Request, stream: bool) -> httpx.Response:
        """Send; the wait for the headers is bounded by the first-event deadline (streams) and the total one."""
        end = call.answer_deadline(stream)
        if end is None:
            return await self._transport.handle_async_request(request)
        try:
            async with asyncio.timeout(max(end - clock(), 0.0)):
                return await self._transport.handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout("no answer headers in time", request=request) from None  # transport_failed says which limit

    async def _read(self, call: Call, response: httpx.Response) -> bytes:
        """A blocking answer's body, within the total deadline."""
        if call.deadline is None:
            return await response.aread()
        try:
            async with asyncio.timeout(max(call.deadline - clock(), 0.0)):
                return await response.aread()
        except TimeoutError:
            raise httpx.ReadTimeout("the answer's body did not arrive in time", request=call.last_request) from None


def _noop() -> None:
    return None


def _transport_of(http: httpx.Client | httpx.AsyncClient, base_url: str) -> Any:
    """The transport httpx would pick for this base URL (honouring proxy env vars and mounts).

    The clients send through it directly: httpx.Client.send adds cookies, auth flows, redirects
    and event hooks, none of which the Service API uses, at ~0.1 ms a request (benchmarks/).
    """
    # Private, as no public way exists: httpx has no public call that says which transport (a mount, an
    # environment proxy's, or the default) it would use for a URL. httpx 0.28, pinned.
    return http._transport_for_url(httpx.URL(base_url))
