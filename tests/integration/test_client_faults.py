"""The client under failure, against the simulator's injected faults, sync and async.

Attempts are counted by the simulator itself (X-Sim-Fault-Key + GET /_sim/requests), so "no second
POST after a stream has begun" is asserted on what the server saw, not on what the client believes.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest

from lib.dify import (
    AsyncDifyClient,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceededError,
    DifyClient,
    DifyConnectionError,
    FirstEventTimeoutError,
    GatewayError,
    Hooks,
    IdleTimeoutError,
    ModelError,
    RateLimitError,
    RetryPolicy,
    RunFailedError,
    ServerError,
    StreamError,
    StreamInterruptedError,
    Timeouts,
)
from tests.support.client_api import FAST_RETRY, api, count, fault, new_key  # noqa: F401  (api is a fixture)
from tests.support.clock import FakeClock
from tests.support.procs import free_port

USER = "faults"
Q = "Tell me about rivers"
COMPLETION_INPUTS = {"topic": "rivers", "style": "Summary"}


# -- retried: 429, 502/503/504, connect errors ----------------------------------------------------------------------


async def test_dify_429_is_retried_with_backoff_until_success(api, sim):
    retries = []
    a = api(hooks=Hooks(on_retry=lambda route, attempt, delay, reason: retries.append((route, attempt, reason))))
    key = new_key()
    result = await a("chat", Q, user=USER, headers=fault("429", key=key, times=2))
    assert result.answer and result.timing.attempts == 3 and count(sim, key) == 3
    assert retries == [("POST /chat-messages", 1, "HTTP 429"), ("POST /chat-messages", 2, "HTTP 429")]


async def test_persistent_429_gives_up_after_max_attempts(api, sim):
    key = new_key()
    with pytest.raises(RateLimitError) as info:
        await api()("chat", Q, user=USER, headers=fault("429", key=key))
    assert count(sim, key) == 3 and info.value.attempts == 3
    assert info.value.code == "too_many_requests" and info.value.status == 429 and "concurrency limit" in str(info.value)


async def test_a_proxys_retry_after_is_honoured(api, sim):
    delays = []
    a = api(retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.01),
            hooks=Hooks(on_retry=lambda route, attempt, delay, reason: delays.append(delay)))
    key = new_key()
    t0 = time.perf_counter()
    events, stream = await a.stream("stream_chat", Q, user=USER, headers=fault("429-retry-after", key=key, times=1, retry_after=1))
    elapsed = time.perf_counter() - t0
    assert events[-1].event == "message_end" and count(sim, key) == 2
    assert delays == [1.0] and elapsed >= 0.95  # the backoff alone would have waited <= 10 ms


async def test_a_retry_after_longer_than_the_cap_is_not_waited_for(api, sim):
    key = new_key()
    a = api(retry=RetryPolicy(max_attempts=3, max_retry_after=5))
    t0 = time.perf_counter()
    with pytest.raises(RateLimitError) as info:
        await a("info", headers=fault("429-retry-after", key=key, retry_after=120))
    assert time.perf_counter() - t0 < 2 and count(sim, key) == 1
    assert info.value.retry_after == 120 and "120" in str(info.value)


@pytest.mark.parametrize("status", ["502", "503", "504"])
async def test_gateway_errors_before_a_stream_are_retried(api, sim, status):
    key = new_key()
    with pytest.raises(GatewayError) as info:
        await api().stream("stream_chat", Q, user=USER, headers=fault(status, key=key))
    assert count(sim, key) == 3 and info.value.status == int(status)
    assert "<html>" not in str(info.value) and "proxy" in str(info.value)
    key = new_key()  # twice, then served: the stream arrives whole
    events, stream = await api().stream("stream_chat", Q, user=USER, headers=fault(status, key=key, times=2))
    assert count(sim, key) == 3 and events[-1].event == "message_end" and stream.timing.attempts == 3


@pytest.mark.parametrize("status,attempts", [("502", 3), ("503", 3), ("504", 1)])
async def test_blocking_generation_and_gateway_errors(api, sim, status, attempts):
    key = new_key()
    with pytest.raises(GatewayError) as info:
        await api("completion")("completion", COMPLETION_INPUTS, user=USER, headers=fault(status, key=key))
    assert count(sim, key) == attempts
    # a 504 to a blocking run: the proxy gave up, Dify most likely goes on generating
    assert info.value.may_have_been_processed is (status == "504")


async def test_500_is_not_retried(api, sim):
    key = new_key()
    with pytest.raises(ServerError) as info:
        await api("workflow")("run_workflow", {"topic": "x"}, user=USER, headers=fault("500", key=key))
    assert count(sim, key) == 1 and info.value.code == "internal_server_error" and info.value.status == 500


async def test_connect_errors_are_retried(api):
    sent = []
    a = api(url=f"http://127.0.0.1:{free_port()}/v1", hooks=Hooks(on_request=lambda route, attempt: sent.append(attempt)))
    with pytest.raises(DifyConnectionError) as info:
        await a("chat", Q, user=USER)
    assert sent == [1, 2, 3] and info.value.attempts == 3
    assert not info.value.may_have_been_processed and "Could not connect" in str(info.value)


# -- never resent once Dify may have started: reset, drop, stall, error event, timeouts ------------------------------------


@pytest.mark.parametrize("method", ["chat", "stream_chat"])
async def test_a_reset_after_sending_a_generation_is_not_resent(api, sim, method):
    key = new_key()
    a = api()
    with pytest.raises(DifyConnectionError) as info:
        if method == "chat":
            await a("chat", Q, user=USER, headers=fault("reset", key=key))
        else:
            await a.stream("stream_chat", Q, user=USER, headers=fault("reset", key=key))
    assert count(sim, key) == 1
    assert info.value.may_have_been_processed and "may already have processed" in str(info.value)


async def test_a_reset_on_a_read_only_call_is_retried(api, sim):
    key = new_key()
    info = await api()("info", headers=fault("reset", key=key, times=1))
    assert info.mode == "chat" and count(sim, key) == 2
    key = new_key()
    with pytest.raises(DifyConnectionError):
        await api()("parameters", headers=fault("reset", key=key))
    assert count(sim, key) == 3


@pytest.mark.parametrize("app,method,args", [
    ("chat", "stream_chat", (Q,)),
    ("completion", "stream_completion", (COMPLETION_INPUTS,)),
    ("workflow", "stream_workflow", ({"topic": "rivers"},)),
])
async def test_a_dropped_stream_is_surfaced_never_resent(api, sim, app, method, args):
    key = new_key()
    events, stream, exc = await api(app).stream_until_error(method, *args, user=USER, headers=fault("drop", key=key, after=3))
    assert isinstance(exc, StreamInterruptedError) and exc.may_have_been_processed
    assert count(sim, key) == 1 and len(events) == 3 and exc.attempts == 1
    assert exc.partial == stream.answer and "may already have processed" in str(exc)


async def test_a_blocking_call_dropped_before_its_answer(api, sim):
    key = new_key()
    with pytest.raises(DifyConnectionError) as info:
        await api("completion")("completion", COMPLETION_INPUTS, user=USER, headers=fault("drop", key=key))
    assert count(sim, key) == 1 and info.value.may_have_been_processed


async def test_a_stalled_stream_hits_the_idle_timeout(api, sim):
    key = new_key()
    a = api(timeouts=Timeouts(idle=0.5))
    t0 = time.perf_counter()
    events, stream, exc = await a.stream_until_error("stream_chat", Q, user=USER, headers=fault("stall", key=key, after=3))
    elapsed = time.perf_counter() - t0
    assert isinstance(exc, IdleTimeoutError) and exc.may_have_been_processed
    assert count(sim, key) == 1 and len(events) == 3 and 0.45 <= elapsed < 5
    assert "not even a ping" in str(exc)


async def test_a_stalled_blocking_call_hits_the_first_event_timeout(api, sim):
    key = new_key()
    a = api("completion", timeouts=Timeouts(first_event=0.5))
    t0 = time.perf_counter()
    with pytest.raises(FirstEventTimeoutError) as info:
        await a("completion", COMPLETION_INPUTS, user=USER, headers=fault("stall", key=key))
    assert count(sim, key) == 1 and info.value.may_have_been_processed and 0.45 <= time.perf_counter() - t0 < 5


@pytest.mark.parametrize("app,method,args", [
    ("chat", "stream_chat", (Q,)),
    ("advanced-chat", "stream_chat", (Q,)),
    ("workflow", "stream_workflow", ({"topic": "rivers"},)),
])
async def test_a_mid_stream_error_event_says_the_model_failed(api, sim, app, method, args):
    key = new_key()
    events, stream, exc = await api(app).stream_until_error(method, *args, user=USER, headers=fault("error-event", key=key, after=3))
    # a chat app's model failed mid-stream: StreamError; a workflow-based app's run ended workflow_finished
    # "failed" first: the run failed (RunFailedError), with the model's message
    assert isinstance(exc, StreamError if app == "chat" else RunFailedError)
    assert "[simulated fault]" in exc.message and "model failed" in str(exc).lower() and exc.message in str(exc)
    if app == "chat":
        assert (exc.code, exc.status) == ("completion_request_error", 400)
    else:
        assert events[-1].event == "workflow_finished" and stream.state.workflow.status == "failed" and exc.result is not None
    assert count(sim, key) == 1 and len(events) >= 3


async def test_a_blocking_model_error(api, sim):
    key = new_key()
    with pytest.raises(ModelError) as info:
        await api()("chat", Q, user=USER, headers=fault("error-event", key=key))
    assert count(sim, key) == 1 and info.value.code == "completion_request_error" and info.value.status == 400


async def test_a_malformed_frame_is_skipped_and_the_stream_goes_on(api, sim):
    seen = []
    key = new_key()
    a = api(hooks=Hooks(on_malformed=lambda route, data: seen.append(data)))
    events, stream = await a.stream("stream_chat", Q, user=USER, headers=fault("malformed-event", key=key, after=3))
    assert events[-1].event == "message_end" and stream.state.malformed == 1 and len(seen) == 1
    assert count(sim, key) == 1 and stream.answer


async def test_slow_headers(api, sim):
    key = new_key()
    events, stream = await api().stream("stream_chat", Q, user=USER, headers=fault("slow-headers", key=key, delay_ms=300))
    assert events[-1].event == "message_end" and stream.timing.ttfb >= 0.28 and count(sim, key) == 1
    key = new_key()  # a generation whose headers come too late is not resent
    with pytest.raises(FirstEventTimeoutError) as info:
        slow = fault("slow-headers", key=key, delay_ms=1000)
        await api(timeouts=Timeouts(first_event=0.1)).stream("stream_chat", Q, user=USER, headers=slow)
    assert count(sim, key) == 1 and info.value.may_have_been_processed
    key = new_key()  # a read-only call is
    info2 = await api(timeouts=Timeouts(idle=0.1)).__call__("info", headers=fault("slow-headers", key=key, times=1, delay_ms=1000))
    assert info2.mode == "chat" and count(sim, key) == 2


async def test_first_event_timeout_on_a_slow_model(api, sim):
    a = api(timeouts=Timeouts(first_event=0.3))
    t0 = time.perf_counter()
    with pytest.raises(FirstEventTimeoutError) as info:
        await a.stream("stream_chat", Q, user=USER, headers=fault(ttft_ms=1500))
    elapsed = time.perf_counter() - t0
    assert info.value.may_have_been_processed
    # both faces enforce it to the moment (sync: a deadline on each socket read, lib/dify/deadlines.py)
    assert elapsed < 1.2


async def test_total_deadline(api, sim):
    a = api(timeouts=Timeouts(total=0.6))
    t0 = time.perf_counter()
    events, stream, exc = await a.stream_until_error("stream_chat", Q, user=USER, headers=fault(ttft_ms=50, tokens_per_s=20))
    assert isinstance(exc, DeadlineExceededError) and 0.55 <= time.perf_counter() - t0 < 2.5
    assert events and exc.partial == stream.answer


# -- circuit breaker ------------------------------------------------------------------------------------------------------------


async def test_circuit_breaker_opens_fails_fast_probes_and_closes(api, sim):
    changes: list[tuple[str, str]] = []
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30, clock=clock)
    a = api(breaker=breaker, retry=RetryPolicy(max_attempts=1), hooks=Hooks(on_breaker_change=lambda o, n: changes.append((o, n))))
    key = new_key()
    for _ in range(2):
        with pytest.raises(ServerError):
            await a("info", headers=fault("500", key=key))
    assert breaker.state == "open" and count(sim, key) == 2
    with pytest.raises(CircuitOpenError) as info:
        await a("info", headers=fault(key=key))
    assert count(sim, key) == 2  # failed fast: nothing sent
    assert "not calling it until" in str(info.value) and info.value.retry_after == pytest.approx(30)
    clock.now += 29
    with pytest.raises(CircuitOpenError) as info:  # still open a second before the recovery time
        await a("info", headers=fault(key=key))
    assert info.value.retry_after == pytest.approx(1) and count(sim, key) == 2
    clock.now += 1
    with pytest.raises(ServerError):  # the half-open probe fails: open again
        await a("info", headers=fault("500", key=key))
    assert breaker.state == "open"
    clock.now += 30
    assert (await a("info", headers=fault(key=key))).mode == "chat"  # the probe succeeds
    assert breaker.state == "closed" and count(sim, key) == 4
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_broken_streams_count_as_failures(api, sim):
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    a = api(breaker=breaker, timeouts=Timeouts(idle=0.3))
    for name in ("drop", "stall"):
        await a.stream_until_error("stream_chat", Q, user=USER, headers=fault(name, after=2))
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        await a("info")


# -- rate limit and concurrency cap -----------------------------------------------------------------------------------------


def measured_rate(times: list[float]) -> float:
    """Requests per second as the least-squares slope of send times: one late wake-up of a loaded
    machine moves it far less than it would move (last - first)."""
    times = sorted(times)
    n = len(times)
    mean_i, mean_t = (n - 1) / 2, sum(times) / n
    slope = sum((i - mean_i) * (t - mean_t) for i, t in enumerate(times)) / sum((i - mean_i) ** 2 for i in range(n))
    return 1 / slope


async def test_rate_limit_holds_its_rate(api):
    times = []
    a = api(rate_limit=20.0, hooks=Hooks(on_request=lambda route, attempt: times.append(time.perf_counter())))
    for _ in range(30):
        await a("info")
    assert measured_rate(times) == pytest.approx(20.0, rel=0.05)


def test_rate_limit_is_shared_by_threads(sim):
    times, lock = [], threading.Lock()

    def on_request(route, attempt):
        with lock:
            times.append(time.perf_counter())

    with DifyClient(sim.url, "app-sim-chat", rate_limit=25.0, hooks=Hooks(on_request=on_request)) as client:
        with ThreadPoolExecutor(4) as pool:  # .result() re-raises what failed in a thread
            for f in [pool.submit(lambda: [client.info() for _ in range(10)]) for _ in range(4)]:
                f.result()
    assert len(times) == 40
    assert measured_rate(times) == pytest.approx(25.0, rel=0.05)


async def test_async_rate_limit_across_tasks(sim):
    times = []
    async with AsyncDifyClient(
        sim.url, "app-sim-chat", rate_limit=25.0, hooks=Hooks(on_request=lambda r, a: times.append(time.perf_counter()))
    ) as client:
        await asyncio.gather(*(client.info() for _ in range(40)))
    assert len(times) == 40 and measured_rate(times) == pytest.approx(25.0, rel=0.05)


def _tracker():
    state = {"active": 0, "peak": 0}
    lock = threading.Lock()

    def on_request(route, attempt):
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])

    def on_complete(route, timing, error):
        with lock:
            state["active"] -= 1

    return state, Hooks(on_request=on_request, on_complete=on_complete)


async def test_concurrency_cap_async(sim):
    state, hooks = _tracker()
    slow = fault(ttft_ms=150, tokens_per_s=1000)
    async with AsyncDifyClient(sim.url, "app-sim-chat", max_concurrency=2, hooks=hooks) as client:

        async def one():
            return await client.stream_chat(Q, user=USER, headers=slow).collect()

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(6)))
        elapsed = time.perf_counter() - t0
    assert all(r.answer for r in results) and state["peak"] == 2 and elapsed >= 3 * 0.15


def test_concurrency_cap_threads(sim):
    state, hooks = _tracker()
    slow = fault(ttft_ms=150, tokens_per_s=1000)
    with DifyClient(sim.url, "app-sim-chat", max_concurrency=2, hooks=hooks) as client:
        with ThreadPoolExecutor(6) as pool:  # .result() re-raises what failed in a thread
            futures = [pool.submit(lambda: client.stream_chat(Q, user=USER, headers=slow).collect()) for _ in range(6)]
            results = [f.result() for f in futures]
    assert len(results) == 6 and all(r.answer for r in results) and state["peak"] == 2


# -- text: Thai, emoji, 100 KB ----------------------------------------------------------------------------------------------------


async def test_thai_emoji_and_a_100_kb_query_round_trip(api):
    a = api()
    query = ("สวัสดีครับ ช่วยสรุปเรื่องนี้ให้หน่อย 🙏🏽👩‍💻🇹🇭 " * 1200)[:34_000]
    assert len(query.encode()) > 100_000
    result = await a("chat", query, user="unicode")
    assert result.answer and result.usage.prompt_tokens > 1000
    events, stream = await a.stream("stream_chat", "สวัสดี 👋 emoji 🎉", user="unicode", conversation_id=result.conversation_id)
    assert stream.answer and events[-1].event == "message_end"
    history = await a("messages", result.conversation_id, user="unicode")
    assert [m.query for m in history.data] == [query, "สวัสดี 👋 emoji 🎉"]
    assert history.data[1].answer == stream.answer


# -- the key never leaks ---------------------------------------------------------------------------------------------------------


async def test_the_key_never_appears_in_logs_errors_or_reprs(sim, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "app-sim-chat"
    bad = "app-TOTALLY-SECRET-not-a-key-9876"
    seen: list[str] = []

    def record(*args):
        seen.append(repr(args))

    hooks = Hooks(on_request=record, on_response=record, on_retry=record, on_complete=record, on_breaker_change=record)
    texts: list[str] = []
    for cls in (DifyClient, AsyncDifyClient):
        for key in (secret, bad):
            client = cls(sim.url, key, retry=FAST_RETRY, hooks=hooks)
            texts.append(repr(client))
            for call in (
                lambda c: c.info(),
                lambda c: c.chat(Q, user=USER),
                lambda c: c.chat(Q, user=USER, headers=fault("503")),
                lambda c: c.chat(Q, user=USER, headers=fault("reset")),
            ):
                try:
                    result = call(client)
                    if cls is AsyncDifyClient:
                        result = await result
                    texts += [repr(result), str(result), repr(getattr(result, "timing", None))]
                except Exception as exc:  # noqa: BLE001
                    texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(exc.__dict__)]
            stream = client.stream_chat(Q, user=USER)
            texts.append(repr(stream))
            if cls is AsyncDifyClient:
                await client.aclose()
            else:
                client.close()
    texts += [r.getMessage() for r in caplog.records] + seen
    blob = "\n".join(texts)
    assert "503" in blob and "Access token is invalid" in blob  # the failures really happened
    assert secret not in blob and bad not in blob
    assert "app-…chat" in blob and "app-…9876" in blob


# -- a URL that is not a Dify API -------------------------------------------------------------------------------------------------


@pytest.fixture
def html_server():
    """A web page, as when the base URL points at Dify's web UI instead of its API."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def _page(self):
            body = b"<!DOCTYPE html><html><head><title>Dify</title></head><body><div id='__next'></div></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _page

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_an_html_answer_says_the_url_is_not_a_dify_api(api, html_server):
    from lib.dify import NotDifyAPIError

    a = api(url=html_server)
    with pytest.raises(NotDifyAPIError) as info:
        await a("info")
    assert "does not look like a Dify API" in str(info.value) and "/v1" in str(info.value)
    with pytest.raises(NotDifyAPIError):
        await a.stream("stream_chat", Q, user=USER)


async def test_a_base_url_without_v1_gets_a_hint(api, sim):
    from lib.dify import NotFoundError

    with pytest.raises(NotFoundError) as info:
        await api(url=sim.url.removesuffix("/v1"))("info")
    assert "should end in /v1" in str(info.value)


async def test_waits_for_the_rate_limit_are_reported(api):
    waits = []
    a = api(rate_limit=10.0, hooks=Hooks(on_rate_limit_wait=lambda kind, seconds: waits.append((kind, seconds))))
    for _ in range(3):
        await a("info")
    assert [k for k, _ in waits] == ["rate", "rate"] and all(0 < s <= 0.1 for _, s in waits)


# -- leaving early ----------------------------------------------------------------------------------------------------------------


async def test_cancelling_or_leaving_a_stream_releases_its_slot_and_closes_its_record(sim):
    outcomes = []
    hooks = Hooks(on_complete=lambda route, timing, error: outcomes.append(timing.outcome))
    slow = fault(ttft_ms=10, tokens_per_s=50)
    async with AsyncDifyClient(sim.url, "app-sim-chat", max_concurrency=1, hooks=hooks) as client:

        async def read_forever():
            async for _ in client.stream_chat(Q, user=USER, headers=slow):
                pass

        task = asyncio.create_task(read_forever())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with client.stream_chat(Q, user=USER, headers=slow) as stream:
            async for event in stream:
                if event.text:
                    break  # leave after the first token
        result = await asyncio.wait_for(client.chat(Q, user=USER), 5)  # the slot is free again
    assert result.answer and outcomes == ["abandoned", "abandoned", "ok"]


def test_leaving_a_sync_stream_early(sim):
    outcomes = []
    with DifyClient(
        sim.url, "app-sim-chat", max_concurrency=1, hooks=Hooks(on_complete=lambda r, t, e: outcomes.append(t.outcome))
    ) as client:
        with client.stream_chat(Q, user=USER) as stream:
            for _event in stream:
                break
        assert client.chat(Q, user=USER, timeouts=Timeouts(total=5)).answer
    assert outcomes == ["abandoned", "ok"]


def test_a_closed_client_refuses_calls(sim):
    client = DifyClient(sim.url, "app-sim-chat")
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.info()


def test_an_async_client_belongs_to_one_event_loop(sim):
    client = AsyncDifyClient(sim.url, "app-sim-chat")  # built outside any loop: fine

    async def use():
        return (await client.info()).mode

    assert asyncio.run(use()) == "chat"
    with pytest.raises(RuntimeError, match="one AsyncDifyClient per event loop"):
        asyncio.run(use())

    async def use_and_close():
        async with AsyncDifyClient(sim.url, "app-sim-chat") as fresh:
            return (await fresh.info()).mode

    assert asyncio.run(use_and_close()) == "chat"  # the pattern for Streamlit: create and close inside asyncio.run


async def test_the_async_client_on_httpxs_own_transport_follows_the_same_rules(sim):
    async with AsyncDifyClient(sim.url, "app-sim-chat", transport="httpx", retry=FAST_RETRY, timeouts=Timeouts(idle=0.5)) as client:
        result = await client.stream_chat(Q, user=USER).collect()
        assert result.answer and result.usage
        key = new_key()
        with pytest.raises(DifyConnectionError) as info:
            await client.chat(Q, user=USER, headers=fault("reset", key=key))
        assert count(sim, key) == 1 and info.value.may_have_been_processed
        key = new_key()
        assert (await client.info(headers=fault("reset", key=key, times=1))).mode == "chat" and count(sim, key) == 2
        key = new_key()
        with pytest.raises(StreamInterruptedError):
            await client.stream_chat(Q, user=USER, headers=fault("drop", key=key)).collect()
        assert count(sim, key) == 1
        key = new_key()
        with pytest.raises(IdleTimeoutError):
            await client.stream_chat(Q, user=USER, headers=fault("stall", key=key)).collect()
        assert count(sim, key) == 1
