"""The gateway over real HTTP: caller keys, the Dify key swap, streaming passthrough, limits, CORS, /ready."""
from __future__ import annotations

import json
import sys
import threading
import time
from itertools import pairwise

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from lib.dify import AuthenticationError, DifyClient, MessageEndEvent, RateLimitError, RetryPolicy, StreamInterruptedError
from tests.support.gateway import CALLER_KEY, OTHER_KEY, auth, start_gateway
from tests.support.procs import free_port, start_process

DIFY_KEY = "app-sim-chat"
CHAT = {"query": "Hello gateway", "user": "gw-tester", "inputs": {}}


@pytest.fixture(scope="module")
def gw(sim, tmp_path_factory):
    """A gateway in front of the session simulator's chat app."""
    server = start_gateway(tmp_path_factory.mktemp("gw"), sim.url)
    yield server
    server.stop()


def wait_until(condition, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout:.0f} s")


# -- callers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {CALLER_KEY}"},
                                     {"Authorization": f"Bearer {DIFY_KEY}"}, {"Authorization": "Bearer"}])
def test_refuses_callers_without_a_valid_gateway_key(gw, headers):
    r = httpx.post(f"{gw.url}/v1/chat-messages", json=CHAT, headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized" and r.json()["status"] == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["x-request-id"]


def test_a_dify_client_works_unchanged_through_the_gateway(gw):
    """lib.dify's client, pointed at the gateway with a caller key: chat, stream, history, feedback, files, stop."""
    with DifyClient(f"{gw.url}/v1", CALLER_KEY) as client:
        assert client.parameters().user_input_form is not None
        first = client.chat("Hello through the gateway", user="gw-client")
        assert first.answer and first.conversation_id
        events = list(client.stream_chat("And again", user="gw-client", conversation_id=first.conversation_id))
        assert isinstance(events[-1], MessageEndEvent) and "".join(e.text or "" for e in events[:-1])
        history = client.messages(first.conversation_id, user="gw-client")
        assert len(history.data) == 2
        assert any(c.id == first.conversation_id for c in client.conversations(user="gw-client").data)
        assert client.feedback(first.message_id, "like", user="gw-client").result == "success"
        uploaded = client.upload_file(b"hello file", filename="note.txt", mime_type="text/plain", user="gw-client")
        assert uploaded.id and uploaded.name == "note.txt"
        assert client.stop_chat(events[0].task_id, user="gw-client").result == "success"
        client.rename_conversation(first.conversation_id, "renamed", user="gw-client")
        client.delete_conversation(first.conversation_id, user="gw-client")
    with DifyClient(f"{gw.url}/v1", "not-a-gateway-key") as client:
        with pytest.raises(AuthenticationError):
            client.parameters()


def test_workflow_routes_pass_through(sim, tmp_path):
    server = start_gateway(tmp_path, sim.url, "app-sim-workflow")
    try:
        with DifyClient(f"{server.url}/v1", OTHER_KEY) as client:
            result = client.run_workflow({"topic": "gateways"}, user="gw-wf")
            assert result.status == "succeeded"
            events = list(client.stream_workflow({"topic": "streams"}, user="gw-wf"))
            assert events[-1].event == "workflow_finished"
            assert client.workflow_run(result.workflow_run_id).status == "succeeded"
    finally:
        server.stop()


def test_unknown_routes_and_methods_get_difys_envelope(gw):
    r = httpx.get(f"{gw.url}/v1/admin/secrets", headers=auth())
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = httpx.get(f"{gw.url}/v1/chat-messages", headers=auth())
    assert r.status_code == 405
    r = httpx.get(f"{gw.url}/v1/")
    assert r.status_code == 200 and r.json()["api_version"] == "v1"


# -- streaming --------------------------------------------------------------------------------------------------


def test_streams_pass_through_unbuffered(gw):
    """The first event reaches the caller long before upstream finishes the stream (~4 s at this pace)."""
    pace = {"X-Sim-TTFT-Ms": "100", "X-Sim-Tokens-Per-S": "25"}
    body = {**CHAT, "response_mode": "streaming"}
    arrivals: list[float] = []
    t0 = time.monotonic()
    with httpx.stream("POST", f"{gw.url}/v1/chat-messages", json=body, headers={**auth(), **pace}, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-accel-buffering"] == "no"
        assert r.headers["x-request-id"]
        for line in r.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic() - t0)
                last = json.loads(line[5:])
    assert last["event"] == "message_end"
    first, end = arrivals[0], arrivals[-1]
    assert first < 1.5, f"first event after {first:.2f} s"
    assert end - first > 2.0, f"the stream arrived in one burst ({end - first:.2f} s from first to last event)"
    # Events arrive spread over the stream, not clumped: most 40 ms gaps show up as gaps.
    gaps = [b - a for a, b in pairwise(arrivals)]
    assert sum(g > 0.015 for g in gaps) > len(gaps) / 2


def test_a_caller_leaving_mid_stream_releases_the_upstream_generation(sim_factory, tmp_path):
    """Closing the caller's stream early closes the upstream one: the simulator's generation ends.
    A simulator of its own: the session's may hold other tests' stalled generations."""
    own = sim_factory("--fast")
    gw = start_gateway(tmp_path, own.url)
    metrics_url = own.url.removesuffix("/v1") + "/metrics"

    def active() -> float:
        text = httpx.get(metrics_url).text
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("dify_sim_active_generations{"))

    body = {**CHAT, "response_mode": "streaming"}
    pace = {"X-Sim-TTFT-Ms": "50", "X-Sim-Tokens-Per-S": "5"}  # ~17 s if read to the end
    try:
        with httpx.stream("POST", f"{gw.url}/v1/chat-messages", json=body, headers={**auth(), **pace}, timeout=30) as r:
            lines = r.iter_lines()  # held: an abandoned iterator would close the response at once
            assert any(line.startswith("data:") for line in lines)
            assert active() == 1
            # leaving the block closes the caller's connection mid-stream
        wait_until(lambda: active() == 0, timeout=10, what="upstream generation released")
        wait_until(lambda: 'stream": "caller_left"' in gw.log(), timeout=10, what="the caller_left log line")
    finally:
        gw.stop()


def test_an_upstream_stream_cut_midway_reaches_the_caller_as_a_cut(gw):
    """Upstream drops the connection after 3 events: the caller must see a broken stream, never a clean end
    it would take for a complete answer."""
    body = {**CHAT, "response_mode": "streaming"}
    fault = {"X-Sim-Fault": "drop", "X-Sim-Drop-After": "3"}
    events = []
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", f"{gw.url}/v1/chat-messages", json=body, headers={**auth(), **fault}, timeout=30) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data:"):
                    events.append(line)
    assert 1 <= len(events) <= 3
    with DifyClient(f"{gw.url}/v1", CALLER_KEY, headers=fault) as client:
        with pytest.raises(StreamInterruptedError):
            list(client.stream_chat("cut me", user="gw-client"))
    assert 'dify_gateway_upstream_errors_total{kind="broken",route="/chat-messages"}' in httpx.get(f"{gw.url}/metrics").text


# -- limits, CORS, errors -----------------------------------------------------------------------------------------


def test_rate_limits_are_per_caller(sim, tmp_path):
    server = start_gateway(tmp_path, sim.url, env={"GATEWAY_RATE_LIMIT": "0.5", "GATEWAY_RATE_BURST": "2"})
    try:
        statuses = [httpx.get(f"{server.url}/v1/parameters", headers=auth()).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = httpx.get(f"{server.url}/v1/parameters", headers=auth())
        assert refused.json()["code"] == "too_many_requests" and int(refused.headers["retry-after"]) >= 1
        assert httpx.get(f"{server.url}/v1/parameters", headers=auth(OTHER_KEY)).status_code == 200  # another caller
        with DifyClient(f"{server.url}/v1", CALLER_KEY, retry=RetryPolicy(max_attempts=1)) as once:
            with pytest.raises(RateLimitError):  # Dify's envelope: the client reads it as Dify's own 429
                once.parameters()
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'dify_gateway_rate_limited_total{caller="web"}' in metrics
    finally:
        server.stop()


def test_cors_allows_listed_origins_only(sim, tmp_path):
    server = start_gateway(tmp_path, sim.url, env={"GATEWAY_CORS_ORIGINS": "https://shop.example.com"})
    try:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
        ok = httpx.options(f"{server.url}/v1/chat-messages", headers={"Origin": "https://shop.example.com", **preflight})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://shop.example.com"
        bad = httpx.options(f"{server.url}/v1/chat-messages", headers={"Origin": "https://evil.example.net", **preflight})
        assert "access-control-allow-origin" not in bad.headers
        refused = httpx.post(f"{server.url}/v1/chat-messages", json=CHAT, headers={"Origin": "https://shop.example.com"})
        assert refused.status_code == 401  # a browser can read the refusal, with its CORS header
        assert refused.headers["access-control-allow-origin"] == "https://shop.example.com"
    finally:
        server.stop()


def test_ready_flips_when_upstream_goes_down_and_back(tmp_path):
    port = free_port()
    sim_args = [sys.executable, "-m", "lib.simulator", "--port", str(port), "--fast"]
    upstream = f"http://127.0.0.1:{port}/v1"
    sim = start_process(sim_args, f"{upstream}/", tmp_path / "sim-a.log")
    server = start_gateway(tmp_path, upstream, env={"GATEWAY_BREAKER_FAILURES": "3", "GATEWAY_BREAKER_RECOVERY": "1"})
    try:
        assert httpx.get(f"{server.url}/ready").status_code == 200
        sim.terminate()
        sim.wait(timeout=10)
        r = httpx.get(f"{server.url}/ready")
        assert r.status_code == 503 and "unreachable" in r.json()["reason"]
        assert httpx.get(f"{server.url}/health").status_code == 200  # alive, just not ready
        down = httpx.post(f"{server.url}/v1/chat-messages", json=CHAT, headers=auth())
        assert down.status_code in (502, 503) and down.json()["code"] in ("bad_gateway", "service_unavailable")
        # Repeated failures open the breaker: /ready says so without probing, /metrics shows state 2.
        wait_until(lambda: httpx.get(f"{server.url}/ready").json()["reason"].startswith("circuit breaker open"),
                   timeout=10, what="breaker open")
        assert "dify_gateway_circuit_breaker_state 2.0" in httpx.get(f"{server.url}/metrics").text
        sim = start_process(sim_args, f"{upstream}/", tmp_path / "sim-b.log")
        wait_until(lambda: httpx.get(f"{server.url}/ready").status_code == 200, timeout=20, interval=0.3,
                   what="/ready back to 200")
        assert httpx.post(f"{server.url}/v1/chat-messages", json=CHAT, headers=auth()).status_code == 200
    finally:
        server.stop()
        if sim.poll() is None:
            sim.terminate()
            sim.wait(timeout=10)


def test_logs_are_json_with_request_ids_and_no_secrets(gw):
    rid = "test-request-42"
    httpx.post(f"{gw.url}/v1/chat-messages", json=CHAT, headers={**auth(), "X-Request-ID": rid})
    httpx.post(f"{gw.url}/v1/chat-messages", json=CHAT, headers={"Authorization": "Bearer guessed-key-123"})

    def logged():
        lines = [json.loads(line) for line in gw.log().splitlines() if line.startswith("{")]
        return lines if any(e.get("request_id") == rid for e in lines) else None

    entries = wait_until(logged, timeout=10, what="the request's log line")
    mine = next(e for e in entries if e.get("request_id") == rid)
    assert mine["caller"] == "web" and mine["status"] == 200 and mine["route"] == "/chat-messages"
    text = gw.log()
    for secret in (CALLER_KEY, OTHER_KEY, DIFY_KEY, "guessed-key-123", "gw-tester"):
        assert secret not in text


# -- the Dify key swap, seen from upstream ------------------------------------------------------------------------


@pytest.fixture
def recording_upstream():
    """A tiny Dify-shaped upstream that records the headers it receives (a real server, in a thread)."""
    seen: list[dict[str, str]] = []

    async def chat(request: Request):
        seen.append(dict(request.headers))
        await request.body()

        async def events():
            yield b'data: {"event": "message", "answer": "hi"}\n\n'
            yield b'data: {"event": "message_end", "metadata": {}}\n\n'

        return StreamingResponse(events(), media_type="text/event-stream")

    async def welcome(request: Request):
        return JSONResponse({"welcome": "Dify OpenAPI"})

    app = Starlette(routes=[Route("/v1/chat-messages", chat, methods=["POST"]), Route("/v1/", welcome)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="recording upstream started")
    yield f"http://127.0.0.1:{port}/v1", seen
    server.should_exit = True
    thread.join(timeout=10)


def test_upstream_gets_the_dify_key_and_never_the_callers(recording_upstream, tmp_path):
    upstream, seen = recording_upstream
    server = start_gateway(tmp_path, upstream, "app-upstream-secret")
    try:
        r = httpx.post(f"{server.url}/v1/chat-messages", json={**CHAT, "response_mode": "streaming"},
                       headers={**auth(), "Cookie": "session=abc", "X-Request-ID": "rid-7"})
        assert r.status_code == 200 and "message_end" in r.text
    finally:
        server.stop()
    (headers,) = seen
    assert headers["authorization"] == "Bearer app-upstream-secret"
    assert CALLER_KEY not in json.dumps(headers)
    assert "cookie" not in headers
    assert headers["x-request-id"] == "rid-7"
