"""Unit tests of lib.dify's sans-IO core: SSE decoding, events, errors, retry rules, resilience primitives."""
from __future__ import annotations

import asyncio
import itertools
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest

from lib.dify import (
    AgentThoughtEvent,
    ApiKey,
    AppModeError,
    AuthenticationError,
    CircuitBreaker,
    ConcurrencyLimit,
    ConversationNotFoundError,
    DifyConnectionError,
    FirstEventTimeoutError,
    GatewayError,
    Hooks,
    InvalidParamError,
    MessageEndEvent,
    MessageEvent,
    NodeEvent,
    NotDifyAPIError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamError,
    StreamInterruptedError,
    TextChunkEvent,
    Timeouts,
    TokenBucket,
    UnknownEvent,
    WorkflowFinishedEvent,
    mask,
)
from lib.dify.core import Call, ClientCore, Spec, parse_retry_after
from lib.dify.errors import api_error
from lib.dify.stream import StreamState
from tests.support.clock import FakeClock

KEY = "app-Zq9SecretKeyValue1234"


def frame(d: dict) -> bytes:
    return b"data: " + orjson.dumps(d) + b"\n\n"


def make_core(**kw) -> ClientCore:
    kw.setdefault("breaker", None)
    return ClientCore("http://dify.test/v1", KEY, **kw)


def stream_state(mode: str = "chat", core: ClientCore | None = None, **spec_kw) -> StreamState:
    core = core or make_core()
    spec = Spec("POST", "/chat-messages", "POST /chat-messages", kind="stream", stream_mode=mode, generation=True, **spec_kw)
    call = core.call(spec, {})
    call.attempt = 1
    call.sent()
    return StreamState(call)


def feed_all(state: StreamState, chunks: list[bytes]) -> list:
    out = []
    for c in chunks:
        out.extend(state.feed(c))
    return out


CHAT = [
    {"event": "message", "task_id": "t1", "id": "m1", "message_id": "m1", "conversation_id": "c1", "answer": "สวัสดี ", "created_at": 1},
    {"event": "message", "task_id": "t1", "id": "m1", "message_id": "m1", "conversation_id": "c1", "answer": "👋 hi", "created_at": 1},
    {"event": "message_end", "task_id": "t1", "id": "m1", "message_id": "m1", "conversation_id": "c1",
     "metadata": {"usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "total_price": "0.0001", "currency": "USD",
                            "latency": 0.5}}},
]


# -- SSE decoding and events ---------------------------------------------------------------------------------


def test_chat_stream_events_state_and_timing():
    state = stream_state()
    body = b"event: ping\n\n" + b"".join(frame(e) for e in CHAT)
    events = feed_all(state, [body])
    state.eof()
    assert [e.event for e in events] == ["message", "message", "message_end"]
    assert isinstance(events[0], MessageEvent) and events[0].text == "สวัสดี " and events[0].message_id == "m1"
    assert isinstance(events[2], MessageEndEvent) and events[2].usage.total_tokens == 7
    assert state.answer == "สวัสดี 👋 hi"
    assert (state.conversation_id, state.message_id, state.task_id) == ("c1", "m1", "t1")
    t = state.timing
    assert t.pings == 1 and t.events == 3 and len(t.content) == 2
    assert t.first_event is not None and t.first_content is not None and t.end is not None
    assert t.usage.total_price == pytest.approx(0.0001)
    result = state.result()
    assert result.answer == state.answer and result.conversation_id == "c1" and result.usage.prompt_tokens == 5


def test_any_chunking_gives_the_same_events():
    body = b"event: ping\n\n" + b"".join(frame(e) for e in CHAT)
    reference = [e.raw for e in feed_all(stream_state(), [body])]
    for size in (1, 2, 3, 5, 7, 64):  # cuts inside frames, separators and multi-byte UTF-8
        state = stream_state()
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert [e.raw for e in feed_all(state, chunks)] == reference
        assert state.answer == "สวัสดี 👋 hi"
        assert state.timing.pings == 1


def test_crlf_multiline_id_and_comment_frames():
    state = stream_state()
    data = orjson.dumps(CHAT[0])
    body = (
        b": a comment\r\n\r\n"
        b"event: ping\r\n\r\n"
        b"id: 17\r\ndata: " + data + b"\r\n\r\n"
        + b"data:" + data + b"\r\n\r\n"  # no space after the colon
        + b'data: {"event": "message", "answer":\ndata: "x"}\n\n'  # JSON split over two data lines
    )
    events = feed_all(state, [body[: len(body) // 2], body[len(body) // 2 :]])
    assert [e.event for e in events] == ["message", "message", "message"]
    assert events[2].text == "x"
    assert state.timing.pings == 1


def test_ping_variants_are_counted_never_yielded():
    state = stream_state()
    body = b"event: ping\n\n" + frame({"event": "ping"}) + b"data: ping\n\n" + frame(CHAT[2])
    events = feed_all(state, [body])
    assert [e.event for e in events] == ["message_end"]
    assert state.timing.pings == 3 and state.timing.events == 1


def test_unknown_event_is_generic_not_an_error():
    state = stream_state()
    events = feed_all(state, [frame({"event": "quantum_leap", "task_id": "t9", "x": 1}), frame(CHAT[2])])
    assert isinstance(events[0], UnknownEvent) and events[0].event == "quantum_leap" and events[0].raw["x"] == 1
    state.eof()


def test_malformed_frame_is_skipped_counted_and_reported():
    seen = []
    state = stream_state(core=make_core(hooks=Hooks(on_malformed=lambda route, data: seen.append((route, data)))))
    body = frame(CHAT[0]) + b'data: {"event": "message", "answer": "unterminated\n\n' + frame(CHAT[1]) + frame(CHAT[2])
    events = feed_all(state, [body])
    assert [e.event for e in events] == ["message", "message", "message_end"]
    assert state.malformed == 1 and seen and seen[0][0] == "POST /chat-messages"


def test_error_event_raises_after_the_events_before_it():
    state = stream_state()
    err = {"event": "error", "message_id": "m1", "status": 400, "code": "completion_request_error", "message": "provider overloaded"}
    got = state.feed(frame(CHAT[0]) + frame(err))
    assert [e.event for e in got] == ["message"]
    with pytest.raises(StreamError) as info:
        state.eof()
    e = info.value
    assert (e.code, e.status, e.message) == ("completion_request_error", 400, "provider overloaded")
    assert "model failed" in str(e) and "provider overloaded" in str(e)
    assert e.partial == "สวัสดี "
    # alone in its chunk, it raises at once
    state2 = stream_state()
    with pytest.raises(StreamError):
        state2.feed(frame(err))


def test_chatflow_may_end_with_workflow_finished_and_no_message_end():
    state = stream_state(mode="chat")
    run = "r1"
    body = b"".join(frame(e) for e in [
        {"event": "workflow_started", "task_id": "t", "workflow_run_id": run, "data": {"id": run}},
        {"event": "node_started", "task_id": "t", "workflow_run_id": run, "data": {"node_id": "llm", "node_type": "llm", "title": "LLM"}},
        {"event": "message", "task_id": "t", "message_id": "m", "conversation_id": "c", "answer": "hello"},
        {"event": "node_finished", "task_id": "t", "workflow_run_id": run, "data": {"node_id": "llm", "status": "succeeded"}},
        {"event": "workflow_finished", "task_id": "t", "workflow_run_id": run,
         "data": {"status": "succeeded", "total_tokens": 9, "outputs": {}}},
    ])
    events = feed_all(state, [body])
    state.eof()
    assert isinstance(events[1], NodeEvent) and events[1].title == "LLM"
    assert isinstance(events[3], NodeEvent) and events[3].status == "succeeded"
    assert isinstance(events[4], WorkflowFinishedEvent) and events[4].total_tokens == 9
    assert state.answer == "hello" and state.workflow_run_id == run and state.usage.total_tokens == 9


def test_message_end_before_or_after_workflow_finished_both_end_cleanly():
    for order in (("message_end", "workflow_finished"), ("workflow_finished", "message_end")):
        state = stream_state()
        finished = {"event": "workflow_finished", "workflow_run_id": "r", "data": {"status": "succeeded"}}
        evs = {"message_end": CHAT[2], "workflow_finished": finished}
        feed_all(state, [frame(CHAT[0])] + [frame(evs[name]) for name in order])
        state.eof()
        assert state.usage.total_tokens == 7


def test_workflow_stream_result_and_text_chunks():
    state = stream_state(mode="workflow")
    body = b"event: ping\n\n" + b"".join(frame(e) for e in [
        {"event": "workflow_started", "task_id": "t", "workflow_run_id": "r", "data": {"id": "r", "workflow_id": "w"}},
        {"event": "text_chunk", "task_id": "t", "workflow_run_id": "r", "data": {"text": "one "}},
        {"event": "text_chunk", "task_id": "t", "workflow_run_id": "r", "data": {"text": "two"}},
        {"event": "workflow_finished", "task_id": "t", "workflow_run_id": "r",
         "data": {"id": "r", "workflow_id": "w", "status": "succeeded", "outputs": {"text": "one two"}, "total_steps": 3,
                  "elapsed_time": 0.1}},
    ])
    events = feed_all(state, [body])
    state.eof()
    assert isinstance(events[1], TextChunkEvent) and events[1].text == "one "
    result = state.result()
    assert result.status == "succeeded" and result.outputs == {"text": "one two"} and result.text == "one two"
    assert result.workflow_run_id == "r" and result.task_id == "t" and result.total_steps == 3
    assert len(state.timing.content) == 2


def test_agent_thought_and_message_replace():
    state = stream_state()
    events = feed_all(state, [
        frame({"event": "agent_thought", "id": "a", "position": 1, "thought": "use calc", "tool": "calculator", "tool_input": "{}",
               "message_files": []}),
        frame({"event": "agent_message", "message_id": "m", "answer": "bad words"}),
        frame({"event": "message_replace", "answer": "[moderated]", "reason": "policy"}),
        frame(CHAT[2]),
    ])
    assert isinstance(events[0], AgentThoughtEvent) and events[0].tool == "calculator"
    assert state.answer == "[moderated]"


def test_stream_without_a_final_event_is_interrupted():
    state = stream_state()
    feed_all(state, [frame(CHAT[0])])
    with pytest.raises(StreamInterruptedError) as info:
        state.eof()
    assert info.value.may_have_been_processed and info.value.partial == "สวัสดี "
    assert "may already have processed" in str(info.value)


def test_first_event_deadline_is_checked_on_every_chunk():
    core = make_core(timeouts=Timeouts(first_event=0.05))
    state = stream_state(core=core)
    time.sleep(0.08)
    with pytest.raises(FirstEventTimeoutError) as info:
        state.feed(b"event: ping\n\n")
    assert info.value.may_have_been_processed


# -- errors -------------------------------------------------------------------------------------------------------------


def test_api_error_mapping_reads_as_an_actionable_sentence():
    e = api_error(401, "unauthorized", "Access token is invalid", route="GET /info")
    assert isinstance(e, AuthenticationError) and "API key" in str(e) and e.status == 401
    e = api_error(404, "not_found", "Conversation Not Exists.", route="POST /chat-messages")
    assert isinstance(e, ConversationNotFoundError)
    assert "new conversation" in str(e) and "`user`" in str(e)
    e = api_error(400, "not_chat_app", "Please check if your app mode matches the right API route.")
    assert isinstance(e, AppModeError) and "run_workflow" in str(e)
    e = api_error(400, "invalid_param", "Agent Chat App does not support blocking mode")
    assert isinstance(e, InvalidParamError) and "stream_chat" in str(e)
    e = api_error(500, "internal_server_error", "boom")
    assert isinstance(e, ServerError)
    assert repr(e) == "ServerError(code='internal_server_error', status=500, message='boom')"


def test_errors_survive_pickling_with_their_fields():
    e = api_error(429, "too_many_requests", "Too many requests.")
    e.attempts = 3
    back = pickle.loads(pickle.dumps(e))
    assert isinstance(back, RateLimitError) and back.code == "too_many_requests" and back.attempts == 3 and str(back) == str(e)


def _call(spec: Spec | None = None, **core_kw) -> Call:
    core = make_core(**core_kw)
    call = core.call(spec or Spec("GET", "/info", "GET /info", idempotent=True), {})
    call.attempt = 1
    return call


def test_html_and_non_json_answers_say_the_url_is_not_a_dify_api():
    call = _call()
    html = b"<!DOCTYPE html><html><head><title>Dify</title></head><body>app</body></html>"
    with pytest.raises(NotDifyAPIError) as info:
        call.error_response(404, httpx.Headers({"content-type": "text/html"}), html)
    assert "does not look like a Dify API" in str(info.value) and "/v1" in str(info.value)
    call = _call()
    with pytest.raises(NotDifyAPIError):
        call.result(200, httpx.Headers({"content-type": "text/html"}), html)


def test_proxy_pages_map_to_gateway_and_rate_limit_errors():
    page = b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>nginx</body></html>"
    call = _call(retry=RetryPolicy(max_attempts=1))
    with pytest.raises(GatewayError) as info:
        call.error_response(503, httpx.Headers({"content-type": "text/html"}), page)
    assert "503" in str(info.value) and "<html>" not in str(info.value)
    call = _call(retry=RetryPolicy(max_attempts=1))
    with pytest.raises(RateLimitError):
        call.error_response(429, httpx.Headers({"content-type": "text/plain", "retry-after": "1"}), b"Too Many Requests")


def test_the_key_is_redacted_from_server_text():
    call = _call(retry=RetryPolicy(max_attempts=1))
    body = orjson.dumps({"code": "unauthorized", "message": f"bad token Bearer {KEY} ({KEY})", "status": 401})
    with pytest.raises(AuthenticationError) as info:
        call.error_response(401, httpx.Headers({"content-type": "application/json"}), body)
    assert KEY not in str(info.value) and KEY not in info.value.message and "app-…1234" in str(info.value)


def test_api_key_is_masked_everywhere():
    key = ApiKey(KEY)
    assert repr(key) == str(key) == "app-…1234" == mask(KEY)
    assert KEY not in f"{key} {key!r} {[key]}"
    with pytest.raises(TypeError):
        pickle.dumps(key)
    core = make_core()
    assert KEY not in repr(core) and KEY not in repr(core.call(Spec("GET", "/info", "GET /info"), {}).request())
    with pytest.raises(ValueError):
        ApiKey("  ")


# -- the retry rules ----------------------------------------------------------------------------------------------------


POLICY = RetryPolicy(max_attempts=3, base=0.01, cap=0.02)
CHAT_POST = dict(method="POST", path="/chat-messages", route="POST /chat-messages", generation=True)


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("no SYN-ACK")])
def test_connect_failures_are_retried_for_any_request(exc):
    call = _call(Spec(kind="json", **CHAT_POST), retry=POLICY)
    assert 0 <= call.transport_failed(exc) <= 0.02


def test_connect_errors_are_retried_up_to_max_attempts_for_any_request():
    call = _call(Spec(kind="json", **CHAT_POST), retry=POLICY)
    for attempt in (1, 2):
        call.attempt = attempt
        assert 0 <= call.transport_failed(httpx.ConnectError("refused")) <= 0.02
    call.attempt = 3
    with pytest.raises(DifyConnectionError) as info:
        call.transport_failed(httpx.ConnectError("refused"))
    assert not info.value.may_have_been_processed and info.value.attempts == 3


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("t"), httpx.RemoteProtocolError("closed"), httpx.ReadError("reset")])
def test_a_generation_post_is_never_resent_once_sent(exc):
    call = _call(Spec(kind="json", **CHAT_POST), retry=POLICY)
    with pytest.raises(DifyConnectionError) as info:
        call.transport_failed(exc)
    assert info.value.may_have_been_processed and "not sent again" in str(info.value)


def test_idempotent_calls_are_retried_after_any_transport_error():
    call = _call(retry=POLICY)
    assert call.transport_failed(httpx.ReadTimeout("t")) >= 0


@pytest.mark.parametrize("status,kind,retried", [
    (429, "json", True), (502, "json", True), (503, "json", True), (504, "stream", True),
    (504, "json", False),  # a blocking run behind a timed-out proxy goes on: no resend
    (500, "json", False), (400, "json", False), (401, "json", False),
])
def test_which_statuses_are_retried(status, kind, retried):
    call = _call(Spec(kind=kind, **CHAT_POST), retry=POLICY)
    body = orjson.dumps({"code": "x", "message": "m", "status": status})
    headers = httpx.Headers({"content-type": "application/json"})
    if retried:
        assert call.error_response(status, headers, body) >= 0
    else:
        with pytest.raises(Exception) as info:
            call.error_response(status, headers, body)
        if status == 504:
            assert info.value.may_have_been_processed


def test_retry_after_is_honoured_and_capped():
    call = _call(retry=RetryPolicy(max_attempts=3, max_retry_after=5))
    headers = httpx.Headers({"content-type": "text/plain", "retry-after": "2"})
    assert call.error_response(429, headers, b"slow down") == 2.0
    call = _call(retry=RetryPolicy(max_attempts=3, max_retry_after=5))
    with pytest.raises(RateLimitError) as info:
        call.error_response(429, httpx.Headers({"retry-after": "120"}), b"")
    assert "120" in str(info.value) and info.value.retry_after == 120


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after(http_date) <= 31


def test_full_jitter_backoff_stays_within_its_cap():
    p = RetryPolicy(base=0.5, cap=4.0)
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        values = [p.backoff(attempt) for _ in range(200)]
        assert all(0 <= v <= ceiling for v in values)
        assert max(values) > ceiling * 0.7  # really spread over [0, ceiling]


# -- resilience primitives ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_clock(monkeypatch):
    """Freeze resilience's clock: the bucket's arithmetic is checked exactly, whatever the machine's load."""
    from lib.dify import resilience

    clock = FakeClock()
    monkeypatch.setattr(resilience, "clock", clock)
    return clock


def test_token_bucket_spacing_is_exact(fake_clock):
    bucket = TokenBucket(rate=50, burst=1)
    waits = [bucket.reserve() for _ in range(101)]
    assert waits[0] == 0 and waits[-1] == pytest.approx(100 / 50)
    assert all(b - a == pytest.approx(0.02) for a, b in itertools.pairwise(waits))
    fake_clock.now += 10  # idle for a while: no credit beyond the burst
    assert bucket.reserve() == 0 and bucket.reserve() == pytest.approx(0.02)


def test_token_bucket_burst(fake_clock):
    bucket = TokenBucket(rate=10, burst=5)
    waits = [bucket.reserve() for _ in range(7)]
    assert waits[:5] == [0, 0, 0, 0, 0] and waits[5] == pytest.approx(0.1) and waits[6] == pytest.approx(0.2)
    fake_clock.now += 0.25  # the waiting ones were served; the next token is due at +0.3
    assert bucket.reserve() == pytest.approx(0.05)


def test_concurrency_limit_across_threads():
    limit = ConcurrencyLimit(3)
    active, peak, lock = [0], [0], threading.Lock()
    go = threading.Event()

    def work():
        go.wait()  # all threads contend at once, however slowly they started
        assert limit.acquire()
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        limit.release()

    with ThreadPoolExecutor(12) as pool:  # .result() re-raises a thread's failed assertion here
        futures = [pool.submit(work) for _ in range(12)]
        go.set()
        for f in futures:
            f.result()
    assert peak[0] == 3 and limit.active == 0


async def test_concurrency_limit_shared_by_threads_and_tasks():
    limit = ConcurrencyLimit(2)
    active, peak, lock = [0], [0], threading.Lock()

    def enter():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])

    def leave():
        with lock:
            active[0] -= 1

    def thread_work():
        assert limit.acquire()
        enter()
        time.sleep(0.02)
        leave()
        limit.release()

    async def task_work():
        await limit.acquire_async()
        enter()
        await asyncio.sleep(0.02)
        leave()
        limit.release()

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(thread_work) for _ in range(5)]
        await asyncio.gather(*(task_work() for _ in range(8)))
        for f in futures:
            await asyncio.wrap_future(f)  # re-raises what failed in the thread
    assert peak[0] == 2 and limit.active == 0


async def test_concurrency_limit_timeout_and_cancellation_pass_the_slot_on():
    limit = ConcurrencyLimit(1)
    await limit.acquire_async()
    assert await limit.acquire_async(timeout=0.02) is False
    waiter = asyncio.create_task(limit.acquire_async())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limit.release()
    assert limit.active == 0
    assert await limit.acquire_async(timeout=0.1) is True
    assert limit.acquire(timeout=0.01) is False
    limit.release()


def test_circuit_breaker_transitions():
    clock, changes = FakeClock(), []
    b = CircuitBreaker(failure_threshold=2, recovery_time=10, on_change=lambda old, new: changes.append((old, new)), clock=clock)
    assert b.allow() is None
    b.record_failure("503")
    assert b.state == "closed"
    b.record_failure("503")
    assert b.state == "open"
    assert b.allow() == pytest.approx(10)
    clock.now += 10
    assert b.state == "half_open"
    assert b.allow() is None  # the probe
    assert b.allow() == pytest.approx(10)  # others wait while it is out
    b.record_failure("503")  # the probe failed
    assert b.state == "open"
    clock.now += 10
    assert b.allow() is None
    b.record_success()
    assert b.state == "closed" and b.allow() is None
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_lost_probe_expires():
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=1, recovery_time=5, clock=clock)
    b.record_failure()
    clock.now += 5
    assert b.allow() is None  # probe that never reports back
    clock.now += 5
    assert b.allow() is None  # a new probe may go


def test_a_connection_cut_after_the_final_event_is_a_normal_end():
    state = stream_state()
    feed_all(state, [b"".join(frame(e) for e in CHAT)])
    assert state.broken(httpx.ReadError("reset after message_end")) is None
    state.eof()
    assert state.timing.outcome == "ok"
    state = stream_state()
    feed_all(state, [frame(CHAT[0])])
    assert isinstance(state.broken(httpx.ReadError("reset")), StreamInterruptedError)
