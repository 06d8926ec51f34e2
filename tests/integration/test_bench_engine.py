"""The load engine against real simulators: measured figures match the configured latency, failures
are classified (HTTP 200 streams included), every app mode works, runs stop, warm up and cancel."""
from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lib.bench import BenchStore, Prompt, RunConfig, run_benchmark
from lib.bench.engine import Progress
from lib.bench.selfcheck import LoopMonitor, assess
from tests.support.procs import start_simulator

TTFT_MS, TOKENS_PER_S = 150.0, 100.0
TOL = 0.15  # the machine is small and shared: 15% on medians


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    """A simulator with exact timing: TTFT 150 ms, then 100 tokens/s (a gap of 10 ms)."""
    server = start_simulator(tmp_path_factory.mktemp("paced"), "--ttft-ms", str(TTFT_MS), "--tokens-per-s", str(TOKENS_PER_S),
                             "--jitter", "0")
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path):
    return BenchStore(tmp_path / "bench.sqlite")


def close(value, expected, tol=TOL):
    return value is not None and abs(value - expected) <= tol * expected


def test_closed_loop_measures_the_configured_latency(paced, store):
    config = RunConfig(base_url=paced.url, target="paced", concurrency=6, duration_s=2.5, warmup_s=0.5, seed=3)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    s = outcome.summary
    assert outcome.status == "finished" and s["failed"] == 0 and s["requests"] >= 6
    assert s["output_tokens_source"] == "usage"
    assert close(s["ttft_ms"]["p50"], TTFT_MS), s["ttft_ms"]
    gap = 1000.0 / TOKENS_PER_S
    assert close(s["tpot_ms"]["p50"], gap), s["tpot_ms"]
    assert close(s["itl_ms"]["p50"], gap, 0.3), s["itl_ms"]
    frame = outcome.frame()
    measured = frame[~frame["warmup"]]
    # end-to-end = TTFT + (tokens - 1) gaps, request by request
    expected_e2e = TTFT_MS + (measured["output_tokens"] - 1) * gap
    assert ((measured["e2e_ms"] - expected_e2e).abs() <= TOL * expected_e2e).mean() >= 0.9
    # every instant in order, on one clock; one gap fewer than chunks
    order = ["t_scheduled", "t_dispatched", "t_sent", "t_headers", "t_first_event", "t_first_content", "t_last_content", "t_end"]
    for a, b in itertools.pairwise(order):
        assert (frame[a] <= frame[b] + 1e-6).all(), (a, b)
    assert (frame["itl_ms"].map(len) == frame["chunks"] - 1).all()
    assert frame["warmup"].any() and (frame.loc[frame["warmup"], "t_scheduled"] < 500).all()
    # the store holds every request, and the same summary
    assert store.request_count(outcome.run_id) == len(frame)
    info = store.get(outcome.run_id)
    assert info.status == "finished" and info.summary["ttft_ms"] == s["ttft_ms"]
    assert s["selfcheck"]["loop_lag_ms"]["p99"] is not None and s["cost"]["total"] > 0 and s["cost"]["currency"] == "USD"
    # 6 users streaming 100 tokens/s each: the busiest second holds at most ~600 tokens, at least the average
    assert s["output_tokens_per_s"] <= s["output_tokens_per_s_peak"] <= 6 * TOKENS_PER_S * (1 + TOL), s["output_tokens_per_s_peak"]
    assert s["input_tokens_per_s"] > 0 and s["total_tokens_per_s"] > s["output_tokens_per_s"]
    user = s["user_output_tokens_per_s"]["p50"]  # tokens / e2e of one answer: below the stream's 100/s (the TTFT counts)
    assert 0.5 * TOKENS_PER_S < user < TOKENS_PER_S, user


def test_a_closed_loop_reports_users_over_answer_time_as_its_throughput(sim, store):
    # 4 users, answers of ~300 ms: 4 / 0.3 s ≈ 13 req/s. The answers in flight at the window's edges count
    # for their time inside it, so neither the warm-up's nor the drain's answers inflate or dilute it.
    config = RunConfig(base_url=sim.url, concurrency=4, duration_s=3, warmup_s=0.5, headers={"X-Sim-TTFT-Ms": "300"})
    s = run_benchmark(config, "app-sim-chat", store=store).summary
    expected = 4 / (s["e2e_ms"]["mean"] / 1000.0)
    assert s["request_throughput"] == pytest.approx(expected, rel=0.05), (s["request_throughput"], expected)
    assert s["throughput_attribution"] == "time in window" and s["duration_s"] <= 3.0


def test_a_request_count_stops_the_run_and_warm_up_is_not_counted(sim, store):
    config = RunConfig(base_url=sim.url, concurrency=3, requests=7, warmup_s=0.2)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    frame = outcome.frame()
    assert outcome.summary["requests"] == 7 == (~frame["warmup"]).sum()
    assert outcome.summary["warmup_requests"] == frame["warmup"].sum() > 0


@pytest.mark.parametrize(
    ("fault", "error_class", "phase", "http_status"),
    [
        ("error-event", "StreamError", "stream", 200),  # an `error` event in a 200 stream
        ("drop", "StreamInterruptedError", "stream", 200),  # cut before the final event
        ("503", "GatewayError", "response", 503),
    ],
)
def test_failures_are_classified_by_class_phase_and_status(sim, store, fault, error_class, phase, http_status):
    config = RunConfig(base_url=sim.url, concurrency=2, requests=3, headers={"X-Sim-Fault": fault, "X-Sim-Drop-After": "3"})
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    s, frame = outcome.summary, outcome.frame()
    assert s["succeeded"] == 0 and s["errors"] == {error_class: 3} and s["errors_by_phase"] == {phase: 3}
    assert (frame["http_status"] == http_status).all() and frame["error_message"].str.len().gt(0).all()
    assert s["ttft_ms"]["p50"] is None  # latency figures come from succeeded requests only


@pytest.mark.parametrize(("key", "kind"), [("app-sim-completion", "completion"), ("app-sim-workflow", "workflow"),
                                           ("app-sim-agent", "chat"), ("app-sim-advanced-chat", "chat")])
def test_every_app_mode_streams(sim, store, key, kind):
    outcome = run_benchmark(RunConfig(base_url=sim.url, concurrency=2, requests=2), key, store=store)
    s = outcome.summary
    assert s["app"] == kind and s["succeeded"] == 2, s["errors"]
    # workflows report only a total, so output tokens fall back to the (labelled) chunk count
    assert s["output_tokens_source"] == ("chunks" if kind == "workflow" else "usage")


@pytest.mark.parametrize("key", ["app-sim-chat", "app-sim-workflow"])
def test_blocking_mode_reports_time_to_response_not_ttft(sim, store, key):
    outcome = run_benchmark(RunConfig(base_url=sim.url, concurrency=2, requests=3, mode="blocking"), key, store=store)
    frame, s = outcome.frame(), outcome.summary
    assert s["succeeded"] == 3 and s["e2e_label"] == "time to response" and s["e2e_ms"]["p50"] > 0
    # the whole answer arrives at once: no first token, no chunks, no TPOT (not a TTFT equal to e2e)
    assert frame["ttft_ms"].isna().all() and s["ttft_ms"]["p50"] is None
    assert frame["tpot_ms"].isna().all() and (frame["itl_ms"].map(len) == 0).all() and (frame["chunks"] == 0).all()
    if key == "app-sim-chat":  # Dify's usage gives the output tokens
        assert s["output_tokens_source"] == "usage" and (frame["output_tokens"] > 1).all()
    else:  # a workflow reports only a total: unknown, never the one "chunk" of a blocking body
        assert frame["output_tokens"].isna().all() and s["output_tokens"] == 0 and s["output_tokens_source"] is None


def test_prompts_fill_inputs_and_their_order_follows_the_seed(sim, store, tmp_path):
    prompts = [Prompt(inputs={"topic": f"topic {i}"}) for i in range(5)]
    runs = [run_benchmark(RunConfig(base_url=sim.url, concurrency=1, requests=10, prompts=prompts, seed=seed), "app-sim-workflow",
                          store=store) for seed in (5, 5, 6)]
    orders = [list(r.frame().sort_values("seq")["prompt"]) for r in runs]
    assert all(r.summary["succeeded"] == 10 for r in runs)
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[0][:5]) == list(range(5))  # each prompt once before any repeats


def test_retries_are_off_by_default_and_recorded_when_enabled(sim, store):
    headers = {"X-Sim-Fault": "503", "X-Sim-Fault-Times": "1"}
    off = run_benchmark(RunConfig(base_url=sim.url, concurrency=1, requests=1, headers={**headers, "X-Sim-Fault-Key": "bench-off"}),
                        "app-sim-chat", store=store)
    on = run_benchmark(RunConfig(base_url=sim.url, concurrency=1, requests=1, retries=2,
                                 headers={**headers, "X-Sim-Fault-Key": "bench-on"}),
                       "app-sim-chat", store=store)
    assert off.summary["errors"] == {"GatewayError": 1}
    assert on.summary["succeeded"] == 1 and on.summary["retries"] == 1 and on.records[0].attempts == 2


def test_cancel_stops_the_run_and_keeps_what_was_measured(paced, store):
    cancel, progress, box = threading.Event(), Progress(), {}
    config = RunConfig(base_url=paced.url, concurrency=4, duration_s=60)
    def run() -> None:
        box.update(o=run_benchmark(config, "app-sim-chat", store=store, progress=progress, cancel=cancel))

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    while progress.ok < 4 and time.monotonic() - started < 30:
        time.sleep(0.05)
    cancel.set()
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - started < 30
    outcome = box["o"]
    assert outcome.status == "cancelled" and outcome.summary["succeeded"] >= 4
    assert store.get(outcome.run_id).status == "cancelled" and store.request_count(outcome.run_id) == len(outcome.records)


def test_a_target_that_cannot_be_read_fails_the_run_with_a_reason(sim, store):
    outcome = run_benchmark(RunConfig(base_url=sim.url, concurrency=1, requests=1), "app-not-a-key", store=store)
    assert outcome.status == "failed" and "401" in outcome.error and "API key" in outcome.error
    assert store.get(outcome.run_id).status == "failed"


def test_an_overloaded_generator_says_it_is_client_bound(sim, store):
    # 40000 arrivals a second is far past what one Python event loop can dispatch (each request costs
    # about 2 ms of CPU), on a quiet machine too: 4000 was sometimes kept up with.
    config = RunConfig(base_url=sim.url, load="open", rate=40000, arrival="constant", duration_s=0.1, max_in_flight=64)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    s = outcome.summary
    assert s["client_bound"] is True and s["client_bound_reasons"], s["selfcheck"]
    assert s["selfcheck"]["late_share"] > 0.05 or s["selfcheck"]["achieved_rate"] < 0.95 * 40000


def test_assess_names_each_reason():
    monitor = LoopMonitor()
    monitor.lags, monitor.times = [0.05] * 100, [1.0] * 100  # 50 ms late, every sample
    monitor.cpu_s, monitor.wall_s = 9.8, 10.0
    check = assess(monitor, measure_from=0.0, ttft_p50_ms=150.0, open_loop=True, target_rate=100.0,
                   dispatch_late_ms=[50.0] * 50 + [0.0] * 50, dispatch_span_s=2.0)
    text = " ".join(check.reasons)
    assert check.client_bound and "event loop" in text and "lag" in text and "scheduled time" in text and "req/s" in text
    calm = LoopMonitor()
    calm.lags, calm.times, calm.cpu_s, calm.wall_s = [0.0005] * 100, [1.0] * 100, 1.0, 10.0
    assert not assess(calm, measure_from=0.0, ttft_p50_ms=150.0, open_loop=False).client_bound


# -- real Dify 1.12.1 answers, replayed over HTTP (../shared/dify-captures): failed runs and terminal orders ----

CAPTURES = Path(__file__).resolve().parents[2].parent / "shared" / "dify-captures" / "1.12.1" / "index.json"


@pytest.fixture(scope="module")
def replay():
    """An HTTP server answering with the bytes a real Dify 1.12.1 sent (index.json of the captures).
    `X-Replay: NAME` picks the capture of a generation call; streams go out frame by frame,
    `X-Replay-Gap-Ms` apart, with `X-Replay-Tail-Ms` of silence before the close; `X-Replay-Swap: 1`
    swaps the last two frames (a chatflow's terminal events in 1.13's order). The key picks the app:
    app-replay-wf a workflow, anything else the chatflow."""
    import asyncio as aio

    from aiohttp import web

    captures = {c["name"]: c for c in json.loads(CAPTURES.read_text())}

    def reply(c):
        ctype = dict(c["headers"]).get("content-type", "application/json")
        return web.Response(status=c["status"], body=c["body"].encode(), content_type=ctype.split(";")[0])

    async def meta(request):
        wf = "app-replay-wf" in request.headers.get("Authorization", "")
        return reply(captures[("wf_" if wf else "chat_") + request.path.rsplit("/", 1)[-1]])

    async def generate(request):
        c = captures[request.headers["X-Replay"]]
        body = await request.json()
        if body.get("response_mode") != "streaming" or c["status"] != 200:
            return reply(c)
        frames = [f + "\n\n" for f in c["body"].split("\n\n") if f.strip()]
        if request.headers.get("X-Replay-Swap"):
            frames[-2], frames[-1] = frames[-1], frames[-2]
        gap, tail = (float(request.headers.get(h, 0)) / 1000 for h in ("X-Replay-Gap-Ms", "X-Replay-Tail-Ms"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        for i, frame in enumerate(frames):
            if i and gap:
                await aio.sleep(gap)
            await resp.write(frame.encode())
        await aio.sleep(tail)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/v1/info", meta)
    app.router.add_get("/v1/parameters", meta)
    app.router.add_post("/v1/chat-messages", generate)
    app.router.add_post("/v1/workflows/run", generate)
    loop = aio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.mark.parametrize(("key", "capture", "mode"), [
    ("app-replay-wf", "wftemplate_streaming", "streaming"),  # 200, workflow_finished failed, no error event
    ("app-replay-wf", "wftemplate_blocking", "blocking"),  # 200 with data.status failed
    ("app-replay-chat", "chattemplate_streaming", "streaming"),  # workflow_finished failed, then `error`
    ("app-replay-chat", "chattemplate_blocking", "blocking"),  # 400 invalid_param "Run failed: ..."
])
def test_a_failed_workflow_or_chatflow_run_is_a_failure_with_the_nodes_message(replay, store, key, capture, mode):
    config = RunConfig(base_url=replay, concurrency=1, requests=2, mode=mode, headers={"X-Replay": capture})
    outcome = run_benchmark(config, key, store=store)
    s, frame = outcome.summary, outcome.frame()
    assert s["succeeded"] == 0 and s["errors"] == {"RunFailedError": 2} and s["errors_by_phase"] == {"run": 2}, s["errors"]
    assert frame["error_message"].str.contains("Failed to execute code", regex=False).all()  # Dify's own message
    if mode == "streaming":  # the failed node's name comes from its node_finished event
        assert frame["error_message"].str.contains("'Template' (template-transform)", regex=False).all(), frame["error_message"][0]
    assert list(frame["http_status"]) == [400 if capture == "chattemplate_blocking" else 200] * 2


@pytest.mark.parametrize("swap", [False, True])
def test_the_e2e_ends_at_the_last_terminal_event_in_either_order(replay, store, swap):
    # 1.12's chatflow ends workflow_finished then message_end (swap: 1.13's order); the server then
    # keeps the connection open for 800 ms: that silence is not part of the answer.
    headers = {"X-Replay": "chat_streaming", "X-Replay-Gap-Ms": "40", "X-Replay-Tail-Ms": "800", **({"X-Replay-Swap": "1"} if swap else {})}
    outcome = run_benchmark(RunConfig(base_url=replay, concurrency=1, requests=2, headers=headers), "app-replay-chat", store=store)
    s, frame = outcome.summary, outcome.frame()
    frames = [f for f in json.loads(CAPTURES.read_text())[5]["body"].split("\n\n") if f.strip()]
    last_frame_ms = (len(frames) - 1) * 40
    assert s["succeeded"] == 2, s["errors"]
    ends = frame["e2e_ms"]
    assert (ends >= last_frame_ms - 5).all() and (ends < last_frame_ms + 300).all(), (last_frame_ms, list(ends))
    assert (frame["t_end"] - frame["t_last_content"] < 300).all()


def test_a_run_failed_error_from_the_client_is_classified_as_a_failed_run():
    # The client raises RunFailedError for failed runs (#9): classified by the record, whatever the transport.
    from lib.bench.records import build
    from lib.dify import RunFailedError, Timing

    t = Timing()
    t.sent = t.first_byte = t.first_event = t.start + 0.01
    t.end = t.start + 0.05
    err = RunFailedError("The chatflow run failed in node LLM", node_title="LLM", node_type="llm", message="rate limited by provider")
    rec = build(seq=0, warmup=False, worker=0, prompt=0, t0=t.start, scheduled=t.start, dispatched=t.start, timing=t, error=err)
    assert (rec.ok, rec.error_class, rec.error_phase, rec.http_status) == (False, "RunFailedError", "run", 200)
    assert rec.error_message == "node 'LLM' (llm) failed: rate limited by provider"


# -- stop rules: the run ends, and says what it left out ----------------------------------------------------


def test_an_overloaded_open_loop_drops_the_arrivals_it_could_not_send_in_the_window(sim, store):
    # 20000/s is far past what one event loop sends: once the window has closed, the arrivals still due are
    # dropped (k6's dropped_iterations) instead of being sent late, so the run ends with the window.
    config = RunConfig(base_url=sim.url, load="open", rate=20000, arrival="constant", duration_s=0.2)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    s = outcome.summary
    assert s["dropped"] > 0 and s["stop_reason"] == "duration"
    assert s["requests"] + s["abandoned"] + s["dropped"] == 4000  # every slot of the window is accounted for
    assert len(outcome.records) == s["requests"] + s["abandoned"]


def test_the_drain_limit_abandons_answers_still_in_flight(sim, store):
    config = RunConfig(base_url=sim.url, concurrency=2, duration_s=0.3, drain_s=0.5, headers={"X-Sim-TTFT-Ms": "20000"})
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    s = outcome.summary
    assert outcome.status == "finished" and s["drain_limited"] is True
    assert s["abandoned"] == 2 and s["requests"] == 0 and s["failed"] == 0  # neither succeeded nor failed: counted apart
    assert store.summary(outcome.run_id)["abandoned"] == 2
    frame = store.requests(outcome.run_id)
    assert list(frame["error_class"]) == ["Abandoned", "Abandoned"] and frame["t_end"].isna().all()


def test_an_open_loop_the_target_cannot_keep_up_with_stops_as_over_saturated(sim, store):
    # Two answers at a time of ~300 ms each serve ~6.5/s; arrivals come at 20/s: the queue grows by ~13 a second.
    config = RunConfig(base_url=sim.url, load="open", rate=20, arrival="constant", duration_s=30, max_in_flight=2, drain_s=0,
                       headers={"X-Sim-TTFT-Ms": "300"})
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    s = outcome.summary
    assert s["stop_reason"] == "over_saturated" and "over-saturated" in s["stop_detail"], s["stop_detail"]
    assert s["duration_s"] < 15 and s["dropped"] > 20  # stopped after ~5 s of growth, not the 30 s asked; the queue dropped


def test_long_answers_are_not_taken_for_over_saturation(sim, store):
    # 20/s with 2 s answers: 40 in flight at steady state, as Little's law expects: the backlog grows only at the start
    config = RunConfig(base_url=sim.url, load="open", rate=20, arrival="constant", duration_s=7, headers={"X-Sim-TTFT-Ms": "2000"})
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    assert outcome.summary["stop_reason"] == "duration" and outcome.summary["succeeded"] == 140


def test_max_error_rate_stops_the_run(sim, store):
    config = RunConfig(base_url=sim.url, concurrency=2, duration_s=30, max_error_rate=0.5, headers={"X-Sim-Fault": "503"})
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    s = outcome.summary
    assert s["stop_reason"] == "max_error_rate" and s["requests"] < 40 and "--max-error-rate 0.5" in s["stop_detail"]


def test_malformed_frames_are_counted(sim, store):
    outcome = run_benchmark(RunConfig(base_url=sim.url, concurrency=1, requests=3, headers={"X-Sim-Fault": "malformed-event"}),
                            "app-sim-chat", store=store)
    s = outcome.summary
    assert s["succeeded"] == 3 and s["malformed_frames"] == 3  # skipped, the answer went on
    assert list(store.requests(outcome.run_id)["malformed"]) == [1, 1, 1]


def test_a_long_run_keeps_only_the_first_records_in_memory_and_sums_the_rest_as_they_arrive(sim, store, monkeypatch):
    from lib.bench import engine
    from lib.bench.stats import summarize

    monkeypatch.setattr(engine, "KEEP_RECORDS", 5)
    outcome = run_benchmark(RunConfig(base_url=sim.url, concurrency=2, requests=12), "app-sim-chat", store=store)
    assert len(outcome.records) == 5 and outcome.summary["requests"] == 12 and outcome.summary["succeeded"] == 12
    s = outcome.summary
    assert s["percentile_method"].startswith("sketch") and store.summary(outcome.run_id)["percentile_method"] == s["percentile_method"]
    exact = summarize(outcome.frame())  # the same rows read back: the tally agrees within the sketch's error
    assert s["output_tokens"] == exact["output_tokens"] and s["itl_ms"]["max"] == exact["itl_ms"]["max"]
    frame = outcome.frame()
    # The sketch gives a value at the quantile's rank (rounded down) within its 1%; with 12 answers numpy's
    # interpolation between two ranks can differ by more than that, so compare at the rank.
    at_rank = float(np.percentile(frame["ttft_ms"].dropna(), 50, method="lower"))
    assert s["ttft_ms"]["p50"] == pytest.approx(at_rank, rel=0.015), (s["ttft_ms"]["p50"], at_rank, exact["ttft_ms"]["p50"])
    assert len(frame) == 12 and sorted(frame["seq"]) == list(range(12)) and frame["itl_ms"].map(len).gt(0).all()
