"""Hardening of the client (issue 13): the same timeouts on both faces, no key in what an error holds,
requests that cannot be built, and a breaker that counts calls. Sync and async, against the simulator
(its X-Sim-* fault and latency headers) or a plain local HTTP server where the simulator cannot say it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from lib.dify import (
    AsyncDifyClient,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceededError,
    DifyClient,
    DifyError,
    FirstEventTimeoutError,
    GatewayError,
    InvalidRequestError,
    NotDifyAPIError,
    RetryPolicy,
    ServerError,
    Timeouts,
)
from tests.support.client_api import FAST_RETRY, api, count, fault, new_key  # noqa: F401  (api is a fixture)
from tests.support.clock import FakeClock
from tests.support.procs import free_port

USER = "hardening"
Q = "Tell me about rivers"
COMPLETION_INPUTS = {"topic": "rivers", "style": "Summary"}


# -- timeouts: the sync face keeps the async face's limits, to the figure ------------------------------------------------


async def test_first_event_is_enforced_after_the_headers_came(api, sim):
    key = new_key()
    a = api(timeouts=Timeouts(first_event=0.5, idle=30))
    t0 = time.perf_counter()
    events, stream, exc = await a.stream_until_error("stream_chat", Q, user=USER, headers=fault(key=key, ttft_ms=6000))
    elapsed = time.perf_counter() - t0
    assert isinstance(exc, FirstEventTimeoutError) and "within 0.5 s" in str(exc) and exc.may_have_been_processed
    assert stream.timing.first_byte is not None  # the headers had come: the wait was for the first event
    assert events == [] and count(sim, key) == 1
    assert elapsed < 3.0  # not the 6 s the model took, nor the 30 s idle limit


async def test_a_total_deadline_before_the_first_event(api, sim):
    a = api(timeouts=Timeouts(first_event=30, idle=30, total=0.8))
    t0 = time.perf_counter()
    events, stream, exc = await a.stream_until_error("stream_chat", Q, user=USER, headers=fault(ttft_ms=6000))
    assert isinstance(exc, DeadlineExceededError) and "total deadline of 0.8 s" in str(exc)
    assert time.perf_counter() - t0 < 3.0 and events == []


async def test_a_total_deadline_while_a_stream_stalls(api, sim):
    key = new_key()
    a = api(timeouts=Timeouts(idle=10, total=1.0))
    t0 = time.perf_counter()
    events, stream, exc = await a.stream_until_error("stream_chat", Q, user=USER, headers=fault("stall", key=key, after=3))
    assert isinstance(exc, DeadlineExceededError), f"{type(exc).__name__}: {exc}"
    assert "total deadline of 1 s" in str(exc) and "after 3 events" in str(exc) and exc.may_have_been_processed
    assert len(events) == 3 and exc.partial == stream.answer and count(sim, key) == 1
    assert time.perf_counter() - t0 < 4.0  # not the 10 s idle limit


async def test_a_total_deadline_while_the_headers_are_slow(api, sim):
    key = new_key()
    a = api(timeouts=Timeouts(first_event=30, total=0.6))
    with pytest.raises(DeadlineExceededError) as info:
        await a.stream("stream_chat", Q, user=USER, headers=fault("slow-headers", key=key, delay_ms=3000))
    assert "total deadline of 0.6 s" in str(info.value) and info.value.may_have_been_processed and count(sim, key) == 1


async def test_a_blocking_call_past_its_total_deadline(api, sim):
    key = new_key()
    a = api("completion", timeouts=Timeouts(first_event=30, total=0.8))
    t0 = time.perf_counter()
    with pytest.raises(DeadlineExceededError) as info:
        await a("completion", COMPLETION_INPUTS, user=USER, headers=fault("stall", key=key))
    assert "total deadline of 0.8 s" in str(info.value) and info.value.may_have_been_processed
    assert count(sim, key) == 1 and time.perf_counter() - t0 < 4.0


async def test_a_blocking_call_past_its_first_event_limit_still_says_first_event(api, sim):
    a = api("completion", timeouts=Timeouts(first_event=0.5, total=20))
    with pytest.raises(FirstEventTimeoutError) as info:
        await a("completion", COMPLETION_INPUTS, user=USER, headers=fault("stall"))
    assert "first_event 0.5 s" in str(info.value)


# -- the breaker counts calls, not attempts --------------------------------------------------------------------------------


async def test_one_call_and_its_retries_are_one_failure_for_the_breaker(api, sim):
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    a = api(breaker=breaker, retry=FAST_RETRY)  # 3 attempts
    key = new_key()
    with pytest.raises(GatewayError):  # all three attempts answered 502: one failed call
        await a("info", headers=fault("502", key=key, times=3))
    assert count(sim, key) == 3 and breaker.state == "closed"
    key2 = new_key()
    assert (await a("info", headers=fault("502", key=key2, times=2))).mode == "chat"  # two 502s, then an answer
    assert count(sim, key2) == 3 and breaker.state == "closed"
    with pytest.raises(GatewayError):  # the success reset the count: this is the first failed call again
        await a("info", headers=fault("502", key=new_key(), times=3))
    assert breaker.state == "closed"
    with pytest.raises(GatewayError):
        await a("info", headers=fault("502", key=new_key(), times=3))
    assert breaker.state == "open"  # two failed calls in a row


async def test_the_half_open_message_says_a_probe_is_in_flight(api, sim):
    clock = FakeClock()  # frozen: the probe in flight cannot expire while the test looks at it
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=30, clock=clock)
    a = api(breaker=breaker, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ServerError):
        await a("info", headers=fault("500"))
    assert breaker.state == "open"
    clock.now += 30
    probe_key = new_key()
    probe = asyncio.ensure_future(a("info", headers=fault("slow-headers", key=probe_key, delay_ms=1500)))
    if not a.is_async:  # the sync client blocks: await it from a thread
        probe.cancel()
        probe = asyncio.ensure_future(asyncio.to_thread(a.client.info, headers=fault("slow-headers", key=probe_key, delay_ms=1500)))
    for _ in range(100):  # until the probe is on its way
        if count(sim, probe_key):
            break
        await asyncio.sleep(0.02)
    assert breaker.probing
    with pytest.raises(CircuitOpenError) as info:
        await a("info")
    sentence = str(info.value)
    assert "probe call is in flight" in sentence and "fail fast until it reports" in sentence
    assert (await probe).mode == "chat"  # the probe succeeded: closed
    assert breaker.state == "closed" and not breaker.probing


# -- the key in what a failure holds -----------------------------------------------------------------------------------------

LONG_KEY = "app-Zq7Lm2Xw9Rt4Yp6Ks3Vb8Nc1"


def _key_pieces(key: str, width: int = 8) -> list[str]:
    """Every run of `width` characters of the key's secret part (its last 4 may be shown)."""
    secret = key.removeprefix("app-")[:-4]
    return [secret[i:i + width] for i in range(len(secret) - width + 1)]


@contextmanager
def plain_server(status: int, body: bytes, content_type: str, seen: list[Any] | None = None) -> Iterator[str]:
    """A local HTTP server answering every request with one fixed response; records the request headers."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if seen is not None:
                seen.append(self.headers)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("content_type", ["text/plain", "text/html"])
async def test_a_not_dify_body_is_redacted_before_it_is_cut(api, content_type):
    # a proxy's page that echoes the request's key right where the snippet is cut (160 characters)
    body = ("Forbidden: " + "x" * 129 + f" token {LONG_KEY} was rejected").encode()  # the key spans character 160
    if content_type == "text/html":
        body = b"<html><body><p>" + body + b"</p></body></html>"
    with plain_server(418, body, content_type) as url:
        a = api(LONG_KEY, url=url)
        with pytest.raises(NotDifyAPIError) as info:
            await a("info")
    err = info.value
    texts = [str(err), repr(err), err.message or "", repr(err.__dict__)]
    assert "Forbidden: xxx" in err.message  # the snippet is there, cut
    for piece in _key_pieces(LONG_KEY):
        assert all(piece not in t for t in texts), piece


async def test_the_malformed_frame_warning_logs_no_frame(api, sim, caplog):
    caplog.set_level(logging.DEBUG, logger="lib.dify")
    events, stream = await api().stream("stream_chat", Q, user=USER, headers=fault("malformed-event", after=3))
    assert stream.state.malformed == 1 and events[-1].event == "message_end"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("malformed SSE frame" in w for w in warnings)
    assert "unterminated" not in caplog.text  # the frame's own text (server text may echo anything)


def _requests_reachable_from(exc: BaseException) -> list[httpx.Request]:
    """The httpx.Requests an exception keeps: along its cause/context chain and in its traceback's frames."""
    found: list[httpx.Request] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        request = getattr(e, "_request", None)
        if isinstance(request, httpx.Request):
            found.append(request)
        info = getattr(e, "request_info", None)  # aiohttp's
        if info is not None:
            found.append(httpx.Request("GET", "http://x/", headers=dict(info.headers)))
        tb = e.__traceback__
        while tb is not None:
            for v in tb.tb_frame.f_locals.values():
                if isinstance(v, httpx.Request):
                    found.append(v)
                elif isinstance(v, httpx.Response) and v._request is not None:
                    found.append(v._request)
            tb = tb.tb_next
    return found


async def test_failures_keep_no_request_with_the_key(api, sim):
    secret = "app-sim-chat"
    a = api(retry=RetryPolicy(max_attempts=1), timeouts=Timeouts(first_event=0.4, idle=0.4))
    dead = api(url=f"http://127.0.0.1:{free_port()}/v1", retry=RetryPolicy(max_attempts=1))
    failures: list[BaseException] = []
    for attempt in (
        lambda: dead("info"),  # connection refused
        lambda: a("chat", Q, user=USER, headers=fault("reset")),  # reset after sending
        lambda: a("completion", COMPLETION_INPUTS, user=USER, headers=fault("stall")),  # read timeout (blocking)
        lambda: a.stream("stream_chat", Q, user=USER, headers=fault("drop", after=2)),  # cut mid-stream
        lambda: a.stream("stream_chat", Q, user=USER, headers=fault("stall", after=2)),  # idle mid-stream
        lambda: a.stream("stream_chat", Q, user=USER, headers=fault("slow-headers", delay_ms=1500)),  # no headers in time
    ):
        try:
            await attempt()
        except DifyError as exc:
            failures.append(exc)
    assert len(failures) == 6
    checked = 0
    for exc in failures:
        assert exc.__cause__ is None and exc.__context__ is None, type(exc.__context__)
        for request in _requests_reachable_from(exc):
            checked += 1
            assert secret not in str(request.headers.get("authorization", "")), (type(exc).__name__, request)
    assert checked  # the requests were there to check (and scrubbed)


async def test_a_lowercase_authorization_in_headers_is_not_sent_twice(api):
    seen: list[Any] = []
    body = json.dumps({"name": "x", "mode": "chat"}).encode()
    with plain_server(200, body, "application/json", seen) as url:
        a = api(LONG_KEY, url=url, headers={"authorization": "Bearer app-someone-else", "X-Team": "t"})
        assert (await a("info")).mode == "chat"
        assert (await a("info", headers={"AUTHORIZATION": "Bearer app-another-one"})).mode == "chat"
    assert len(seen) == 2
    for headers in seen:
        assert headers.get_all("Authorization") == [f"Bearer {LONG_KEY}"] and headers["X-Team"] == "t"


async def test_a_lone_surrogate_in_a_query_is_a_sentence_and_nothing_is_sent(api, sim):
    key = new_key()
    a = api()
    with pytest.raises(InvalidRequestError) as info:
        await a("chat", "half an emoji \ud83d here", user=USER, headers=fault(key=key))
    sentence = str(info.value)
    assert "query" in sentence and "lone surrogate" in sentence and "not sent" in sentence
    assert info.value.hint and count(sim, key) == 0
    with pytest.raises(InvalidRequestError) as info2:  # in an input too, said where
        await a("chat", Q, user=USER, inputs={"topic": "x\udc00"}, headers=fault(key=key))
    assert "inputs.topic" in str(info2.value) and count(sim, key) == 0
    assert (await a("chat", Q, user=USER)).answer  # the client works on


@pytest.mark.parametrize("cls", [DifyClient, AsyncDifyClient])
@pytest.mark.parametrize("url", ["http://[::1/v1", "http://dify.example:port/v1"])
def test_an_unparsable_base_url_is_a_sentence(cls, url):
    with pytest.raises(InvalidRequestError) as info:
        cls(url, "app-x-1234")
    assert isinstance(info.value, ValueError) and "is not a valid URL" in str(info.value) and "/v1" in str(info.value)
