"""Open loop: arrivals keep their schedule (constant and Poisson, seeded), and queueing is never hidden."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from lib.bench import BenchStore, RunConfig, run_benchmark
from lib.bench.config import Stage
from lib.bench.engine import arrivals, schedule_block
from lib.bench.prompts import PromptError, read_trace, synthetic


@pytest.fixture
def store(tmp_path):
    return BenchStore(tmp_path / "bench.sqlite")


def test_constant_arrivals_keep_the_rate(sim, store):
    config = RunConfig(base_url=sim.url, load="open", rate=40, arrival="constant", duration_s=2)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    frame = outcome.frame().sort_values("seq")
    assert len(frame) == 80  # slots at 0, 25, ... 1975 ms
    assert np.allclose(np.diff(frame["t_scheduled"]), 25.0, atol=0.01)
    check = outcome.summary["selfcheck"]
    assert abs(check["achieved_rate"] / 40 - 1) <= 0.1, check
    assert check["late_ms"]["p50"] < 10, check  # picked up on time, typically well under a millisecond
    assert outcome.summary["succeeded"] == 80


def test_poisson_arrivals_follow_the_seeded_schedule(sim, store):
    config = RunConfig(base_url=sim.url, load="open", rate=30, arrival="poisson", duration_s=3, seed=11)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    scheduled = np.sort(outcome.frame()["t_scheduled"].to_numpy()) / 1000.0
    expected = np.array(list(itertools.takewhile(lambda t: t < 3.0, arrivals(30, "poisson", 11, block=schedule_block(config)))))
    assert np.allclose(scheduled, expected, atol=1e-6)  # the very schedule the seed draws
    assert len(expected) == 90  # rescaled: exactly rate x duration arrivals in the window
    gaps = np.diff(expected)
    assert gaps.std() / gaps.mean() > 0.6  # exponential gaps: cv ~ 1
    again = list(itertools.islice(arrivals(30, "poisson", 11, block=90), 50))
    other = list(itertools.islice(arrivals(30, "poisson", 12, block=90), 50))
    assert again == list(expected[:50]) and again != other
    check = outcome.summary["selfcheck"]
    drawn = (len(expected) - 1) / (expected[-1] - expected[0])
    assert check["scheduled_rate"] == pytest.approx(drawn, rel=1e-3)
    assert abs(check["achieved_rate"] / drawn - 1) <= 0.15, check
    assert outcome.summary["request_throughput"] == pytest.approx(30, rel=0.02)


@pytest.mark.parametrize(("burstiness", "cv"), [(1.0, (0.8, 1.2)), (0.25, (1.6, 2.4)), (4.0, (0.4, 0.6))])
def test_the_schedule_offers_exactly_the_rate_whatever_the_seed_and_burstiness(burstiness, cv):
    # 30 s at 10/s: every seed gives exactly 300 arrivals in the window (an unscaled draw strays by ~±6%),
    # and the gaps' spread follows the gamma shape (cv = 1/sqrt(burstiness)).
    for seed in range(20):
        offsets = np.array(list(itertools.islice(arrivals(10, "poisson", seed, burstiness=burstiness, block=300), 301)))
        assert (offsets < 30.0).sum() == 300 and offsets[300] == pytest.approx(30.0)
    gaps = np.diff(np.array(list(itertools.islice(arrivals(10, "poisson", 1, burstiness=burstiness, block=5000), 5000))))
    assert cv[0] <= gaps.std() / gaps.mean() <= cv[1]
    assert gaps.mean() == pytest.approx(0.1, rel=0.01)


def test_bursty_arrivals_run_and_say_so(sim, store):
    config = RunConfig(base_url=sim.url, load="open", rate=20, arrival="poisson", burstiness=0.5, duration_s=1.5, seed=2)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    assert outcome.summary["requests"] == 30 and outcome.summary["succeeded"] == 30
    assert "burstiness 0.5" in outcome.summary["description"]


@pytest.mark.parametrize("ttft_ms", ["0", "400"])
def test_a_constant_rate_run_whose_every_request_is_served_reports_the_offered_rate(sim, store, ttft_ms):
    # 15/s for 3 s: 45 sends in the window. With 400 ms answers the last ones end in the drain after the
    # window: they belong to it (sent in it), and the drain's time does not dilute the rate.
    config = RunConfig(base_url=sim.url, load="open", rate=15, arrival="constant", duration_s=3,
                       headers={"X-Sim-TTFT-Ms": ttft_ms})
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    s = outcome.summary
    assert s["succeeded"] == s["requests"] == 45 and s["abandoned"] == 0 and s["dropped"] == 0
    assert s["request_throughput"] == pytest.approx(15, rel=0.02), s
    assert s["duration_s"] == pytest.approx(3.0, rel=0.01) and s["window_end_ms"] == pytest.approx(3000, abs=30)
    assert s["output_tokens_per_s"] == pytest.approx(s["output_tokens"] / 3.0, rel=0.02)
    if ttft_ms != "0":
        assert s["last_end_ms"] > 3300  # the drain tail, outside the window


def test_each_sweep_level_reports_its_offered_rate(sim, store):
    config = RunConfig(base_url=sim.url, load="open", rate=1, arrival="constant", duration_s=2, sweep=[5, 10],
                       headers={"X-Sim-TTFT-Ms": "300"})
    outcomes = run_benchmark(config, "app-sim-chat", store=store)
    assert [o.summary["requests"] for o in outcomes] == [10, 20]
    for o, rate in zip(outcomes, (5, 10), strict=True):
        assert o.summary["request_throughput"] == pytest.approx(rate, rel=0.02), o.summary


def test_queueing_behind_the_in_flight_cap_counts_in_latency(sim, store):
    # Each answer takes ~100 ms (X-Sim-TTFT-Ms on the fast simulator); arrivals every 50 ms; one at a time.
    config = RunConfig(base_url=sim.url, load="open", rate=20, arrival="constant", duration_s=1, max_in_flight=1,
                       headers={"X-Sim-TTFT-Ms": "100"})
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    frame = outcome.frame().sort_values("seq")
    assert outcome.summary["succeeded"] == 20
    queue = frame["queue_ms"].to_numpy()
    assert queue[-1] > 600 and (np.diff(queue[2:]) > 0).mean() > 0.8  # the queue grows ~50 ms an arrival
    assert frame["ttft_ms"].iloc[-1] > 700  # counted from the scheduled time, so the wait shows
    service = (frame["ttft_ms"] - frame["queue_ms"]).median()  # from the actual send: the answer's own time
    assert 80 <= service <= 160, service
    assert outcome.summary["selfcheck"]["cap_waits"] >= 15


# -- load shapes ------------------------------------------------------------------------------------------


def test_an_open_loop_ramp_up_rises_linearly_to_the_rate(sim, store):
    # 0 -> 20/s over the first second (10 arrivals), then 20/s for a second (20 more)
    config = RunConfig(base_url=sim.url, load="open", rate=20, arrival="constant", duration_s=2, ramp_up_s=1)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    t = np.sort(outcome.frame()["t_scheduled"].to_numpy()) / 1000.0
    assert len(t) == 30 and outcome.summary["succeeded"] == 30 and (t < 1.0).sum() == 10
    assert np.allclose(np.diff(t[t >= 1.0]), 0.05, atol=1e-3)  # then the full rate
    gaps = np.diff(t[:10])
    assert (np.diff(gaps) < 0).all()  # arriving ever faster during the ramp
    assert "ramp-up 1 s" in outcome.summary["description"]


def test_open_loop_stages_follow_their_rates(sim, store):
    stages = [Stage(duration_s=1, level=10), Stage(duration_s=1, level=10)]
    config = RunConfig(base_url=sim.url, load="open", arrival="constant", stages=stages)
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    t = np.sort(outcome.frame()["t_scheduled"].to_numpy()) / 1000.0
    assert len(t) == 15 and (t < 1.0).sum() == 5 and outcome.summary["description"].startswith("open, stages 1s→10 1s→10")


def test_closed_loop_stages_start_and_stop_users(sim, store):
    # 0 -> 2 users over 0.5 s, 2 users for 1 s, back to 0 over 0.5 s
    stages = [Stage(duration_s=0.5, level=2), Stage(duration_s=1.0, level=2), Stage(duration_s=0.5, level=0)]
    config = RunConfig(base_url=sim.url, stages=stages, headers={"X-Sim-TTFT-Ms": "50"})
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    frame = outcome.frame()
    assert config.concurrency == 2 and set(frame["worker"]) == {0, 1} and outcome.summary["failed"] == 0
    first = frame[frame["worker"] == 1]["t_scheduled"]
    assert first.min() >= 250 and first.max() < 1750  # user 2 is on while the level is above 1: 0.25 s .. 1.75 s
    assert first.max() > 1550
    user1 = frame[frame["worker"] == 0]["t_scheduled"]
    assert user1.min() < 30 and user1.max() > 1750


def test_a_trace_is_replayed_at_its_times(sim, store, tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp,other\n1700000000100,x\n1700000000000,y\n1700000000150,z\n1700000000600,w\n")
    offsets = read_trace(trace, "ms")
    assert offsets == pytest.approx([0.0, 0.1, 0.15, 0.6])
    config = RunConfig(base_url=sim.url, load="open", trace=offsets, trace_source="trace.csv")
    outcome = run_benchmark(config, "app-sim-chat", store=store)
    t = np.sort(outcome.frame()["t_scheduled"].to_numpy())
    assert np.allclose(t, [0, 100, 150, 600], atol=0.01) and outcome.summary["succeeded"] == 4
    assert "trace trace.csv (4 arrivals)" in outcome.summary["description"]


def test_traces_in_every_format_and_bad_ones_say_where(tmp_path):
    plain, jsonl, bad = tmp_path / "t.txt", tmp_path / "t.jsonl", tmp_path / "bad.txt"
    plain.write_text("# seconds\n0.5\n0\n0.25\n")
    jsonl.write_text('{"timestamp": 10}\n{"timestamp": 12.5}\n')
    bad.write_text("0\nsoon\n")
    assert read_trace(plain) == [0.0, 0.25, 0.5] and read_trace(jsonl) == [0.0, 2.5]
    with pytest.raises(PromptError, match="line 2"):
        read_trace(bad)


def test_synthetic_prompts_follow_the_length_distribution():
    prompts = synthetic(400, (60, 15), (30, 0), seed=4)
    lengths = np.array([len(p.query.split(". ", 1)[1].split()) for p in prompts])
    assert abs(lengths.mean() - 60) < 3 and abs(lengths.std() - 15) < 3
    assert all(p.query.startswith("Reply in about 30 words. ") for p in prompts)
    assert synthetic(5, (10, 2), seed=1) == synthetic(5, (10, 2), seed=1) != synthetic(5, (10, 2), seed=2)
