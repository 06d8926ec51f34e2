"""The Metrics page's TTFT p50 (Prometheus' histogram_quantile over our buckets) agrees with the load engine's
exact p50 within 5%: buckets too coarse around 0.2-1 s once read a 305 ms TTFT as 400 ms."""
from __future__ import annotations

import time

import httpx

from lib.bench import RunConfig, run_benchmark
from lib.metrics.panels import PANELS
from tests.support.procs import start_simulator
from tests.support.prometheus import start_prometheus

TTFT_MS = 305


def _ttft_p50_query() -> str:
    panel = next(p for p in PANELS if p.key == "ttft")
    p50 = next(q for q in panel.queries if q.legend.startswith("p50"))
    return p50.expr.replace("SEL", 'job="simulator"').replace("WINDOW", "1m")


def _wait_for_scrapes(prom_url: str, n: int) -> None:
    """Until Prometheus has scraped the simulator `n` times (its target discovery alone takes ~5 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = httpx.get(f"{prom_url}/api/v1/query", params={"query": 'count_over_time(up{job="simulator"}[1m])'}, timeout=5).json()
        result = body["data"]["result"]
        if result and float(result[0]["value"][1]) >= n:
            return
        time.sleep(0.3)
    raise AssertionError("Prometheus did not scrape the simulator within 30 s")


def test_prometheus_ttft_p50_matches_the_engines(tmp_path):
    sim = start_simulator(tmp_path, "--ttft-ms", str(TTFT_MS), "--tokens-per-s", "200", "--jitter", "0")
    prom = None
    try:
        prom = start_prometheus(tmp_path, {"simulator": [sim.url.removeprefix("http://").removesuffix("/v1")]})
        _wait_for_scrapes(prom.url, 2)  # a baseline before the load, so rate() over the window sees all of it
        config = RunConfig(base_url=sim.url, target="buckets", concurrency=4, duration_s=3.0, seed=1)
        outcome = run_benchmark(config, "app-sim-chat")
        engine_p50_s = outcome.summary["ttft_ms"]["p50"] / 1000
        assert outcome.summary["failed"] == 0 and outcome.summary["requests"] >= 8

        deadline = time.monotonic() + 20
        value = None
        while time.monotonic() < deadline:
            body = httpx.get(f"{prom.url}/api/v1/query", params={"query": _ttft_p50_query()}, timeout=5).json()
            result = body["data"]["result"]
            if result and result[0]["value"][1] not in ("NaN", "+Inf"):
                value = float(result[0]["value"][1])
                break
            time.sleep(0.5)
        assert value is not None, "Prometheus never had the simulator's TTFT histogram"
        assert abs(value - engine_p50_s) <= 0.05 * engine_p50_s, (value, engine_p50_s)
    finally:
        if prom is not None:
            prom.stop()
        sim.stop()
