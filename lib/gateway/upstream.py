"""The gateway's upstream client: one aiohttp session, used through its public API.

A proxy relays bytes and needs nothing of httpx's models: on aiohttp directly a stream's chunks come from
`ClientResponse.content.readany()` with no generator wrapped around it (design.md: httpx on the aiohttp
transport added about 2.5 ms TTFT at 50 streams, httpx's own pool about 24 ms; this is the floor under
both). The URL is still normalised by `httpx.URL`, so the path upstream receives is exactly the one the
httpx-based gateway sent (httpx-aiohttp handed aiohttp `str(httpx.URL(url))` too).

Failures are named as lib.dify's transport names them (ConnectError, ReadTimeout, ...), so the gateway's
502/504 messages, logs and breaker reasons read as they always did.
"""
from __future__ import annotations

import asyncio
import functools

import aiohttp
import httpx

# (aiohttp exception, name the caller and the logs see, kind for dify_gateway_upstream_errors_total); first match wins
_ERRORS: tuple[tuple[type[BaseException], str, str], ...] = (
    (aiohttp.ConnectionTimeoutError, "ConnectTimeout", "connect"),
    (aiohttp.ClientConnectorError, "ConnectError", "connect"),  # DNS, refused, unreachable: never sent
    (aiohttp.ServerTimeoutError, "ReadTimeout", "timeout"),
    (asyncio.TimeoutError, "ReadTimeout", "timeout"),
    (aiohttp.ClientPayloadError, "ReadError", "broken"),  # body cut short
    (aiohttp.ServerDisconnectedError, "RemoteProtocolError", "broken"),
    (aiohttp.ClientConnectionError, "ReadError", "broken"),
    (aiohttp.ClientResponseError, "RemoteProtocolError", "broken"),  # unparsable status line or headers
)
FAILURES = (aiohttp.ClientError, asyncio.TimeoutError)  # what an upstream call or read can raise


def failure(exc: BaseException) -> tuple[str, str]:
    """(name, kind) of an upstream failure: kind is "connect", "timeout" or "broken"."""
    for cls, name, kind in _ERRORS:
        if isinstance(exc, cls):
            return name, kind
    return "TransportError", "broken"


def timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """Connect (pool wait and socket connect) and read (between chunks) limits, as httpx-aiohttp mapped them."""
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=read)


def session(max_connections: int, connect: float, read: float, keepalive: float = 5.0) -> aiohttp.ClientSession:
    """The pool to Dify. Make it inside the server's event loop. Bytes pass as they come (no decompression);
    aiohttp's connector caps at 100 connections unless told: GATEWAY_MAX_CONNECTIONS is the cap here."""
    connector = aiohttp.TCPConnector(limit=max_connections or 0, limit_per_host=0, keepalive_timeout=keepalive,
                                     ttl_dns_cache=300)
    # DummyCookieJar: a cookie Dify set for one caller's request is never kept and sent on another's
    return aiohttp.ClientSession(connector=connector, auto_decompress=False, timeout=timeout(connect, read),
                                 trust_env=False, cookie_jar=aiohttp.DummyCookieJar())


@functools.lru_cache(maxsize=4096)
def normalised(url: str) -> str:
    """`url` as httpx percent-encodes it (what the gateway always sent upstream); cached, since most calls
    go to a few URLs (POST /chat-messages) and a burst of streams should not parse the same one 50 times."""
    return str(httpx.URL(url))
