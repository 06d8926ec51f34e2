"""Open loop: arrivals keep their schedule (constant and Poisson, seeded), and queueing is never hidden."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from lib.bench import BenchStore, RunConfig, run_benchmark
from lib.bench.engine import arrivals, schedule_block


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
    for o, rate in zip(outcomes, (5, 10)):
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
