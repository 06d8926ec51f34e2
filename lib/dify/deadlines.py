"""Deadlines for the sync client's socket reads: the first-event and total limits, as the async client has them.

The async client bounds each wait with `asyncio.timeout`. A blocking httpx read has only its read
timeout, and httpcore takes that once per response body, so a deadline that falls mid-stream (no
first event 2 s after the headers came, a total budget running out while Dify stalls) would wait a
whole idle timeout and then be reported as one. This wraps httpcore's network backend: every
socket read and write made while a call has set `reading(at)` is cut at that instant with
httpcore's own ReadTimeout/WriteTimeout, which httpx maps as usual; the call then reads the clock
to say which limit it was. The instant is thread-local: the sync client reads each response in the
caller's thread, and is only set for the span of one read (never across a `yield`).

Written by hand: httpx has no per-read deadline, and no library adds one to httpcore.
"""
from __future__ import annotations

import threading
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore

from .timing import clock

_local = threading.local()


def set_deadline(at: float | None) -> float | None:
    """Set this thread's read deadline; returns the one it replaces (restore it after the read)."""
    before = getattr(_local, "at", None)
    _local.at = at
    return before


@contextmanager
def reading(at: float | None) -> Iterator[None]:
    """Reads and writes on this thread inside the block end by the perf_counter instant `at` (None: no limit)."""
    before = getattr(_local, "at", None)
    _local.at = at
    try:
        yield
    finally:
        _local.at = before


def _bounded(timeout: float | None, exc: type[Exception]) -> float | None:
    at = getattr(_local, "at", None)
    if at is None:
        return timeout
    left = at - clock()
    if left <= 0:
        raise exc("the call's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend with every connect, read and write bounded by the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[Any] | None = None) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[Any] | None = None) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(transport: Any) -> bool:
    """Put the deadline backend under an httpx.HTTPTransport (or a proxy's) before it opens a connection.
    False for a transport of another kind (a caller's own): its reads keep their plain timeouts, and the
    client still checks its deadlines at every chunk.

    Private attributes, as no public way exists: httpcore.ConnectionPool takes a `network_backend=`, but
    httpx.HTTPTransport builds its pool inside __init__ and forwards none. A transport written on a pool
    built with it would re-implement HTTPTransport.handle_request and httpx's exception mapping (private,
    httpx._transports.default), and miss the proxy transports httpx mounts from the environment; so the
    backend is swapped in place (httpx 0.28 / httpcore 1.0, pinned; the sync timeout tests fail if it stops working).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if pool is None or backend is None:
        return False
    if not isinstance(backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(backend)
    return True
