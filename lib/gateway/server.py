"""Serving the gateway: uvicorn on httptools, with the request-head limits uvicorn does not have.

uvicorn's knobs are used where they exist (keep-alive timeout, backlog, limit_concurrency from
GATEWAY_MAX_CLIENT_CONNECTIONS, proxy headers only from GATEWAY_TRUSTED_PROXIES). Its httptools protocol has no
limit on the size or number of headers and no deadline for receiving them (h11_max_incomplete_event_size caps the
size only, on the slower h11 parser, and h11 has no deadline or count either), so `LimitedHttpToolsProtocol` adds,
before any request reaches the app (so before auth):

- a deadline for the request line and headers (slow-header connections get 408 and are closed);
- a cap on their bytes, counted as they arrive (431), on the URL (414) and on the number of headers (431);
- closing the connection when a response went out before its request body was read to the end
  (a refusal such as 401, 408 or 413): uvicorn would otherwise keep reading, and throwing away, a
  body nobody will use, for as long as a client trickles it.

The body's size and deadline are enforced where the body is read (proxy.Gateway.read_body).
"""
from __future__ import annotations

import asyncio
import functools
import json
import sys

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .config import GatewaySettings


class HeadRefused(Exception):
    """Raised inside a parser callback to stop parsing; the protocol answers `status` and closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def protocol_class(settings: GatewaySettings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with this gateway's head limits."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {
        "max_head_bytes": settings.max_header_bytes,
        "max_headers": settings.gateway_max_headers,
        "head_timeout": settings.gateway_header_timeout,
    })


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = 32 * 1024
    max_headers = 100
    head_timeout = 10.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._reading_head = False
        self._head_bytes = 0  # raw bytes received since the request began, until its headers ended
        self._header_count = 0
        self._url_bytes = 0
        self._refusal: HeadRefused | None = None

    # -- the head deadline ----------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._reading_head and (self.cycle is None or self.cycle.response_complete):
            self._refuse(HeadRefused(408, f"The request's headers did not arrive within {self.head_timeout:g} s."))
        else:
            # Nothing of a request came (a 408 would be read as the answer to the next one sent), or a
            # response is still going out on this connection: just close.
            self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    # -- the head's size and count ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        super().data_received(data)
        if self._reading_head and self._refusal is None and not self.transport.is_closing():
            # httptools holds a header in memory until it is complete: count raw bytes, so a 10 MB header is
            # refused once the limit's worth arrived, not after all of it
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(HeadRefused(431, f"The request's headers are larger than the gateway accepts "
                                              f"({self.max_head_bytes // 1024} KiB)."))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_bytes = self._header_count = self._url_bytes = 0
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.max_head_bytes:
            raise HeadRefused(414, "The request URL is longer than the gateway accepts.")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            raise HeadRefused(431, f"The request has more header fields than the gateway accepts ({self.max_headers}).")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm_head_timer()
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.on_response = functools.partial(self._cycle_answered, self.cycle)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers any parser error with 400; one of our callbacks raising is a limit, answered as such
        exc = self._refusal_from_parser()
        if exc is not None:
            self._refuse(exc)
        else:
            super().send_400_response(msg)

    def _refusal_from_parser(self) -> HeadRefused | None:
        # httptools re-raises a callback's exception as HttpParserCallbackError, the original as its context
        err = sys.exc_info()[1]
        while err is not None:
            if isinstance(err, HeadRefused):
                return err
            err = err.__cause__ or err.__context__
        return None

    def _refuse(self, refusal: HeadRefused) -> None:
        self._refusal = refusal
        self._disarm_head_timer()
        body = json.dumps({"code": _CODES.get(refusal.status, "bad_request"), "message": refusal.message,
                           "status": refusal.status}).encode()
        content = [STATUS_LINE[refusal.status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"content-type: application/json\r\n",
                        b"content-length: " + str(len(body)).encode() + b"\r\n",
                        b"connection: close\r\n\r\n", body])
        self.transport.write(b"".join(content))
        self.transport.close()

    # -- a refusal before the body was read ---------------------------------------------------------------

    def _cycle_answered(self, cycle) -> None:
        if cycle.more_body and not self.transport.is_closing():
            self.transport.close()  # the body was not read to its end: stop receiving it
        self.on_response_complete()


_CODES = {408: "request_timeout", 414: "uri_too_long", 431: "request_header_fields_too_large"}


def serve(app, settings: GatewaySettings, *, host: str, port: int, log_level: str) -> None:
    trusted = settings.trusted_proxies
    uvicorn.run(app, host=host, port=port, loop="uvloop", http=protocol_class(settings), log_config=None,
                log_level=log_level, access_log=False, timeout_keep_alive=75, backlog=4096,
                limit_concurrency=settings.gateway_max_client_connections or None,
                # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: only from proxies named here
                proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None)
