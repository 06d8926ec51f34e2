"""Fault injection, stop, pings, the latency model and the concurrency limit, over real HTTP."""
from __future__ import annotations

import concurrent.futures
import itertools
import statistics
import time
import uuid

import httpx
import pytest

from tests.support.sse import stream

CHAT = {"query": "Tell me a story", "user": "faulty", "inputs": {}, "response_mode": "streaming"}
WORKFLOW = {"inputs": {"topic": "faults"}, "user": "faulty", "response_mode": "streaming"}


@pytest.fixture
def client(sim):
    with httpx.Client(base_url=sim.url, timeout=30) as c:
        yield c


def host_of(sim) -> str:
    return sim.url.removesuffix("/v1")


def url(client, path: str) -> str:
    return str(client.base_url).rstrip("/") + path


def fault(name: str, **extra: str) -> dict:
    return {"X-Sim-Fault": name, **{f"X-Sim-{k.replace('_', '-')}": v for k, v in extra.items()}}


def post(client, path="/chat-messages", key="app-sim-chat", body=None, headers=None):
    body = body or {**CHAT, "response_mode": "blocking"}
    return client.post(path, json=body, headers={"Authorization": f"Bearer {key}", **(headers or {})})


def test_429_is_difys_own_without_retry_after(client):
    r = post(client, headers=fault("429"))
    assert r.status_code == 429 and r.json()["code"] == "too_many_requests" and "retry-after" not in r.headers


def test_429_retry_after_is_a_proxys(client):
    r = post(client, headers=fault("429-retry-after", retry_after="3"))
    assert r.status_code == 429 and r.headers["retry-after"] == "3" and r.headers["content-type"].startswith("text/plain")


def test_500_is_difys_internal_error(client):
    r = post(client, headers=fault("500"))
    assert r.status_code == 500 and r.json()["code"] == "internal_server_error"


@pytest.mark.parametrize("status", ["502", "503", "504"])
def test_gateway_errors_are_html_pages(client, status):
    r = post(client, headers=fault(status))
    assert r.status_code == int(status) and r.headers["content-type"].startswith("text/html") and "nginx" in r.text


def test_faults_apply_to_any_endpoint_and_streaming_requests(client):
    assert client.get("/parameters", headers={"Authorization": "Bearer app-sim-chat", **fault("503")}).status_code == 503
    r = stream(client, "/chat-messages", "app-sim-chat", CHAT, headers=fault("502"))
    assert r.status == 502 and not r.frames


def test_reset_closes_the_connection_before_headers(client):
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(client, headers=fault("reset"))


@pytest.mark.parametrize("path,key,body", [("/chat-messages", "app-sim-chat", CHAT), ("/workflows/run", "app-sim-workflow", WORKFLOW)])
def test_drop_cuts_the_stream_midway(client, path, key, body):
    r = stream(client, path, key, body, headers=fault("drop", drop_after="4"))
    assert r.status == 200 and not r.complete
    assert len(r.events) == 4


def test_drop_in_blocking_mode_loses_the_response(client):
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(client, headers=fault("drop"))


def test_stall_stops_sending_but_keeps_the_connection(client):
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        stream(client, "/chat-messages", "app-sim-chat", CHAT, headers=fault("stall", drop_after="2"), timeout=1.0)
    assert time.monotonic() - start < 5


def test_error_event_ends_a_200_stream(client):
    r = stream(client, "/chat-messages", "app-sim-chat", CHAT, headers=fault("error-event", drop_after="3"))
    assert r.status == 200 and r.complete and r.names[:3] == ["message"] * 3
    err = r.events[-1]
    assert err["event"] == "error" and err["code"] == "completion_request_error" and err["status"] == 400 and err["message"]
    assert "message_end" not in r.names and "task_id" not in err


def test_error_event_in_a_workflow_fails_the_run_first(client):
    r = stream(client, "/workflows/run", "app-sim-workflow", WORKFLOW, headers=fault("error-event"))
    assert r.names[-2:] == ["workflow_finished", "error"]
    assert r.events[-2]["data"]["status"] == "failed" and r.events[-1]["workflow_run_id"]


def test_error_event_in_blocking_mode_is_a_json_error(client):
    r = post(client, headers=fault("error-event"))
    assert r.status_code == 400 and r.json()["code"] == "completion_request_error"


def test_malformed_event_then_the_stream_goes_on(client):
    r = stream(client, "/chat-messages", "app-sim-chat", CHAT, headers=fault("malformed-event", drop_after="2"))
    kinds = [f.kind for f in r.frames]
    assert kinds[2] == "malformed" and r.names[-1] == "message_end" and r.complete


def test_slow_headers_delays_then_serves(client):
    start = time.monotonic()
    r = post(client, headers=fault("slow-headers", delay_ms="600"))
    assert r.status_code == 200 and time.monotonic() - start >= 0.55


def test_fault_times_and_request_counts(client, sim):
    key = uuid.uuid4().hex
    headers = {**fault("503"), "X-Sim-Fault-Times": "2", "X-Sim-Fault-Key": key}
    statuses = [post(client, headers=headers).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert httpx.get(f"{host_of(sim)}/_sim/requests", params={"key": key}).json() == {"key": key, "count": 4}


def test_unknown_fault_name_is_ignored(client):
    assert post(client, headers=fault("meteor")).status_code == 200


def test_the_simulator_survives_every_fault(client):
    from lib.simulator import FAULTS

    for name in FAULTS:
        try:
            stream(client, "/chat-messages", "app-sim-chat", CHAT, headers=fault(name, drop_after="1", delay_ms="10"), timeout=1.0)
        except httpx.HTTPError:
            pass
    assert post(client).status_code == 200


def test_fault_rates_from_flags(sim_factory):
    server = sim_factory("--fast", "--fault", "503=0.5", "--seed", "1")
    with httpx.Client(base_url=server.url) as c:
        statuses = [post(c).status_code for _ in range(200)]
        # Rates apply to generation calls only.
        assert all(c.get("/parameters", headers={"Authorization": "Bearer app-sim-chat"}).status_code == 200 for _ in range(20))
    assert 60 <= statuses.count(503) <= 140 and statuses.count(503) + statuses.count(200) == 200


def test_bad_fault_flag_is_refused():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "lib.simulator", "--fault", "meteor=0.1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unknown fault" in r.stderr


# --- stop -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path,key,body,stop_path,terminal",
    [
        ("/chat-messages", "app-sim-chat", CHAT, "/chat-messages/{}/stop", "message_end"),
        (
            "/completion-messages",
            "app-sim-completion",
            {"inputs": {"topic": "x", "style": "Tweet"}, "user": "faulty", "response_mode": "streaming"},
            "/completion-messages/{}/stop",
            "message_end",
        ),
        ("/workflows/run", "app-sim-workflow", WORKFLOW, "/workflows/tasks/{}/stop", "workflow_finished"),
    ],
)
def test_stop_really_ends_the_running_stream(client, path, key, body, stop_path, terminal):
    ttft, gap = 0.05, 0.05  # --fast has no jitter: piece k is due at exactly ttft + k * gap after the request
    slow = {"X-Sim-TTFT-Ms": str(int(ttft * 1000)), "X-Sim-Tokens-Per-S": str(int(1 / gap))}
    stopped = {}

    def on_frame(frame, result):
        contents = [e for e in result.events if e["event"] in ("message", "text_chunk")]
        if len(contents) == 3 and not stopped:
            task_id = contents[0]["task_id"]
            stopped["at"] = frame.at
            r = client.post(stop_path.format(task_id), json={"user": "faulty"}, headers={"Authorization": f"Bearer {key}"})
            assert r.json() == {"result": "success"}
            stopped["answered"] = time.monotonic() - result.sent_at

    r = stream(client, path, key, body, headers=slow, on_frame=on_frame)
    assert r.names[-1] == terminal and r.complete
    contents = [e for e in r.events if e["event"] in ("message", "text_chunk")]
    # Once the stop is answered no piece goes out: the pieces received are at most those due by then (the
    # request arrived after it was sent, so none was due earlier). Not a fixed count: on a loaded machine the
    # stop's round trip spans several 50 ms pieces, and pieces come in bursts, read before the stop was sent.
    due_by_stop = 1 + int((stopped["answered"] - ttft) / gap + 1e-9)
    assert 3 <= len(contents) <= due_by_stop, stopped
    assert len(contents) < 60  # at 20 tokens/s the full answer is 60+ pieces and 3 s
    assert r.frames[-1].at - stopped["at"] < 1.0
    if terminal == "message_end":
        assert r.events[-1]["metadata"]["usage"]["completion_tokens"] == len(contents)
    else:
        assert r.events[-1]["data"]["status"] == "stopped"


def test_stopped_answer_is_kept_in_history(client):
    def on_frame(frame, result):
        if len(result.events) == 2:
            httpx.post(
                url(client, f"/chat-messages/{result.events[0]['task_id']}/stop"),
                json={"user": "keeper"},
                headers={"Authorization": "Bearer app-sim-chat"},
            )

    r = stream(
        client,
        "/chat-messages",
        "app-sim-chat",
        {**CHAT, "user": "keeper"},
        headers={"X-Sim-TTFT-Ms": "10", "X-Sim-Tokens-Per-S": "20"},
        on_frame=on_frame,
    )
    cid = r.events[0]["conversation_id"]
    history = client.get(
        "/messages", params={"conversation_id": cid, "user": "keeper"}, headers={"Authorization": "Bearer app-sim-chat"}
    ).json()
    assert history["data"][0]["answer"] == r.text()


def test_stop_by_another_user_or_mode_is_ignored_or_refused(client):
    assert client.post(
        f"/chat-messages/{uuid.uuid4()}/stop", json={"user": "x"}, headers={"Authorization": "Bearer app-sim-chat"}
    ).json() == {"result": "success"}
    r = client.post(f"/chat-messages/{uuid.uuid4()}/stop", json={"user": "x"}, headers={"Authorization": "Bearer app-sim-workflow"})
    assert r.status_code == 400 and r.json()["code"] == "not_chat_app"
    r = client.post(f"/chat-messages/{uuid.uuid4()}/stop", json={}, headers={"Authorization": "Bearer app-sim-chat"})
    assert r.status_code == 400 and r.json()["message"] == "Arg user must be provided."


# --- pings and the latency model ------------------------------------------------------------
def test_pings_fill_quiet_gaps(sim_factory):
    server = sim_factory("--ttft-ms", "1000", "--tokens-per-s", "200", "--jitter", "0", "--ping-interval", "0.3")
    with httpx.Client(base_url=server.url) as c:
        r = stream(c, "/chat-messages", "app-sim-chat", CHAT)
    pings = [f for f in r.frames if f.kind == "ping"]
    first_data = next(f for f in r.frames if f.kind == "data")
    assert 2 <= len(pings) <= 4 and all(p.at < first_data.at for p in pings)
    assert r.names[-1] == "message_end"


def test_latency_model_is_exact_with_zero_jitter(sim_factory):
    server = sim_factory("--ttft-ms", "300", "--tokens-per-s", "50", "--jitter", "0")
    with httpx.Client(base_url=server.url) as c:
        r = stream(c, "/chat-messages", "app-sim-chat", CHAT)
    data = [f for f in r.frames if f.kind == "data" and f.event["event"] == "message"]
    assert 0.29 <= data[0].at <= 0.40
    gaps = [b.at - a.at for a, b in itertools.pairwise(data)]
    assert 0.018 <= statistics.median(gaps) <= 0.023
    expected_total = 0.3 + (len(data) - 1) / 50
    assert abs(data[-1].at - expected_total) < 0.1
    assert abs(r.events[-1]["metadata"]["usage"]["latency"] - expected_total) < 0.1


def test_jitter_spreads_ttft(sim_factory):
    server = sim_factory("--ttft-ms", "100", "--tokens-per-s", "1000", "--jitter", "0.3")
    with httpx.Client(base_url=server.url) as c:
        ttfts = []
        for _ in range(8):
            r = stream(c, "/chat-messages", "app-sim-chat", CHAT)
            ttfts.append(next(f.at for f in r.frames if f.kind == "data"))
    assert max(ttfts) - min(ttfts) > 0.02 and 0.05 < statistics.mean(ttfts) < 0.2


def test_concurrency_limit_answers_difys_429(sim_factory):
    server = sim_factory("--ttft-ms", "400", "--tokens-per-s", "100", "--jitter", "0", "--max-active-requests", "2")
    with httpx.Client(base_url=server.url, timeout=30) as c:

        def one(_):
            return post(c).status_code

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(one, range(4)))
        assert sorted(statuses) == [200, 200, 429, 429]
        r = post(c, headers={})
        assert r.status_code == 200  # slots were released
    with httpx.Client(base_url=server.url, timeout=30) as c:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:  # .result() re-raises what failed in a thread
            codes = [f.result() for f in [pool.submit(lambda: post(c).json()) for _ in range(3)]]
        err = next(b for b in codes if "code" in b)
        assert err["code"] == "too_many_requests" and "maximum concurrent requests" in err["message"]


def test_client_leaving_a_stream_frees_its_slot(sim_factory):
    server = sim_factory("--ttft-ms", "50", "--tokens-per-s", "10", "--jitter", "0", "--max-active-requests", "1")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        with c.stream("POST", "/chat-messages", json=CHAT, headers={"Authorization": "Bearer app-sim-chat"}) as resp:
            next(resp.iter_raw())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with c.stream("POST", "/chat-messages", json=CHAT, headers={"Authorization": "Bearer app-sim-chat"}) as again:
                if again.status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the slot of a disconnected stream was never released")


def test_port_in_use_fails_clearly(sim):
    import subprocess
    import sys

    port = int(sim.url.rsplit(":", 1)[1].split("/")[0])
    r = subprocess.run([sys.executable, "-m", "lib.simulator", "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "address already in use" in r.stderr and str(port) in r.stderr
    assert httpx.get(f"{sim.url}/").status_code == 200
