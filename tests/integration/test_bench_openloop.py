"""Open loop: arrivals keep their schedule (constant and Poisson, seeded), and queueing is never hidden."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from lib.bench import BenchStore, RunConfig, run_benchmark
from lib.bench.engine import arrivals


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
    expected = np.array(list(itertools.takewhile(lambda t: t < 3.0, arrivals(30, "poisson", 11))))
    assert np.allclose(scheduled, expected, atol=1e-6)  # the very schedule the seed draws
    assert abs(len(expected) / 3.0 / 30 - 1) <= 0.35  # ~90 arrivals; a Poisson count varies by ~10%
    gaps = np.diff(expected)
    assert abs(gaps.mean() * 30 - 1) <= 0.35 and gaps.std() / gaps.mean() > 0.6  # exponential gaps: cv ~ 1
    again = list(itertools.islice(arrivals(30, "poisson", 11), 50))
    other = list(itertools.islice(arrivals(30, "poisson", 12), 50))
    assert again == list(expected[:50]) and again != other
    check = outcome.summary["selfcheck"]
    drawn = (len(expected) - 1) / (expected[-1] - expected[0])
    assert check["scheduled_rate"] == pytest.approx(drawn, rel=1e-3)
    assert abs(check["achieved_rate"] / drawn - 1) <= 0.15, check


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
