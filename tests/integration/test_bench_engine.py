"""The load engine against real simulators: measured figures match the configured latency, failures
are classified (HTTP 200 streams included), every app mode works, runs stop, warm up and cancel."""
from __future__ import annotations

import threading
import time

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
    server = start_simulator(tmp_path_factory.mktemp("paced"), "--ttft-ms", str(TTFT_MS), "--tokens-per-s", str(TOKENS_PER_S), "--jitter", "0")
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
    for a, b in zip(order, order[1:]):
        assert (frame[a] <= frame[b] + 1e-6).all(), (a, b)
    assert (frame["itl_ms"].map(len) == frame["chunks"] - 1).all()
    assert frame["warmup"].any() and (frame.loc[frame["warmup"], "t_scheduled"] < 500).all()
    # the store holds every request, and the same summary
    assert store.request_count(outcome.run_id) == len(frame)
    info = store.get(outcome.run_id)
    assert info.status == "finished" and info.summary["ttft_ms"] == s["ttft_ms"]
    assert s["selfcheck"]["loop_lag_ms"]["p99"] is not None and s["cost"]["total"] > 0 and s["cost"]["currency"] == "USD"


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


def test_blocking_mode_has_no_streaming_figures(sim, store):
    outcome = run_benchmark(RunConfig(base_url=sim.url, concurrency=2, requests=3, mode="blocking"), "app-sim-chat", store=store)
    frame = outcome.frame()
    assert outcome.summary["succeeded"] == 3
    assert (frame["ttft_ms"] == frame["e2e_ms"]).all()  # the whole answer arrives at once
    assert frame["tpot_ms"].isna().all() and (frame["itl_ms"].map(len) == 0).all()


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
    on = run_benchmark(RunConfig(base_url=sim.url, concurrency=1, requests=1, retries=2, headers={**headers, "X-Sim-Fault-Key": "bench-on"}),
                       "app-sim-chat", store=store)
    assert off.summary["errors"] == {"GatewayError": 1}
    assert on.summary["succeeded"] == 1 and on.summary["retries"] == 1 and on.records[0].attempts == 2


def test_cancel_stops_the_run_and_keeps_what_was_measured(paced, store):
    cancel, progress, box = threading.Event(), Progress(), {}
    config = RunConfig(base_url=paced.url, concurrency=4, duration_s=60)
    thread = threading.Thread(target=lambda: box.update(o=run_benchmark(config, "app-sim-chat", store=store, progress=progress, cancel=cancel)))
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
