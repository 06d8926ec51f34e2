"""Does the load engine measure the target, or itself? The engine against a raw aiohttp loop, one run.

Drives `python -m lib.simulator` (true TTFT 200 ms, 100 tokens/s, jitter 0, pinned to core 1) from
this process (pinned to core 0) with, at 50, 100 and 200 concurrent closed-loop streams:

- raw aiohttp: the floor, as in benchmarks/simulator_capacity.py (TTFT = send to the first chunk
  holding a `message` event);
- the engine (lib.bench, AsyncDifyClient on FastTransport, saving every row to a temporary store).

Also printed: the load generator's CPU time per request (process CPU / requests) for each, which a
busy neighbour does not change much: the engine's own cost beside the floor's.

Both run on the same event loop implementation, with the same warm-up and window, and throughput is
counted the same way for both: each answer's share of its time in flight inside the measurement
window, summed, / the window's length (the engine's own `request_throughput`, the same formula over its
own window, from the first measured send, is printed beside it). TTFT is over the requests sent
inside the window. Prints the engine/raw throughput ratio and measured/true TTFT at p50 and p99, and
the verdict at the highest level against the targets: throughput >= 0.9x raw, TTFT p50 within 5% of
the truth, TTFT p99 within 15% of raw's p99 (raw itself reads ~1.3x the truth at p99 at 200 streams
on this machine: that is the floor).

    .venv/bin/python benchmarks/load_engine.py [--levels 50,100,200] [--seconds 8] [--warmup 2] [--rounds 1]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator_capacity import pin, start_paced_simulator  # noqa: E402  (same folder: the shared server and core helpers)

from lib.bench import BenchStore, RunConfig, run_benchmark  # noqa: E402
from lib.bench.stats import in_window_share  # noqa: E402

TTFT_S = 0.2
TOKENS_PER_S = 100.0
KEY = "app-sim-chat"
QUERY = "Benchmark the simulator please"
clock = time.perf_counter


def runner() -> asyncio.Runner:
    import uvloop

    return asyncio.Runner(loop_factory=uvloop.new_event_loop)  # the engine's loop: the same for both


async def raw_loop(url: str, concurrency: int, warmup: float, seconds: float) -> list[tuple[float, float | None, float]]:
    """Closed loop on raw aiohttp; (sent, first message chunk, end) per request, relative to start."""
    body = orjson.dumps({"query": QUERY, "user": "bench-raw", "inputs": {}, "response_mode": "streaming"})
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    rows: list[tuple[float, float | None, float]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        t0 = clock()
        stop = t0 + warmup + seconds

        async def worker() -> None:
            while clock() < stop:
                sent = clock()
                first = None
                async with session.post(url, data=body, headers=headers) as resp:
                    async for chunk in resp.content.iter_any():
                        if first is None and b'"event":"message"' in chunk:
                            first = clock()
                rows.append((sent - t0, None if first is None else first - t0, clock() - t0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rows


def window_figures(rows: list[tuple[float, float | None, float]], warmup: float, seconds: float) -> tuple[float, np.ndarray]:
    """(answers in the window / its length, TTFTs in ms of requests sent in the window). Each answer
    counts for the share of its time in flight inside the window, as the engine's closed-loop
    `request_throughput` does: counting completions is biased here, since every stream starts at
    once and the answers end in waves (50 streams of 1.1 s answers counted 48.6 req/s in a window
    that held 45.3)."""
    w0, w1 = warmup, warmup + seconds
    spans = pd.DataFrame([(sent, end) for sent, _, end in rows], columns=["t_scheduled", "t_end"])
    done = float(in_window_share(spans, w0, w1).sum())
    ttft = np.array([(f - s) * 1000 for s, f, _ in rows if w0 <= s < w1 and f is not None])
    return done / seconds, ttft


def engine_run(base_url: str, concurrency: int, warmup: float, seconds: float, store: BenchStore) -> tuple[float, np.ndarray, dict, float]:
    config = RunConfig(base_url=base_url, concurrency=concurrency, duration_s=seconds, warmup_s=warmup,
                       prompts=[{"query": QUERY}], app="chat", drain_s=30)
    cpu = time.process_time()
    outcome = run_benchmark(config, KEY, store=store)
    cpu_ms = (time.process_time() - cpu) * 1000 / max(1, len(outcome.records))
    rows = [(r.t_scheduled / 1000, None if r.t_first_content is None else r.t_first_content / 1000,
             (r.t_end or 0) / 1000) for r in outcome.records if r.ok]
    throughput, _ = window_figures(rows, warmup, seconds)
    ttft = np.array([r.ttft_ms for r in outcome.records if r.ok and not r.warmup and r.ttft_ms is not None])
    return throughput, ttft, outcome.summary, cpu_ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="50,100,200")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=1, help="repeat each level; medians are reported")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with contextlib.ExitStack() as stack:
        sim, base = start_paced_simulator(stack, "engine-sim.log")
        pin(sim.pid, 1)
        pin(0, 0)
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        store = BenchStore(Path(tmp) / "bench.sqlite")
        print(f"true TTFT {TTFT_S * 1000:.0f} ms, {TOKENS_PER_S:.0f} tokens/s; warm-up {args.warmup:g} s, {args.seconds:g} s measured; "
              f"simulator on core 1, load generator on core 0; uvloop for both\n")
        print(f"{'streams':>7} | {'driver':<6} | {'req/s':>7} | {'reported':>8} | {'TTFT p50':>9} | {'p50/true':>8} | {'TTFT p99':>9} | "
              f"{'p99/true':>8} | {'bound':>5}")
        print("-" * 92)
        results: dict[tuple[int, str], tuple[float, float, float]] = {}
        for n in levels:
            raw_runs, eng_runs = [], []
            for _ in range(args.rounds):
                cpu = time.process_time()
                with runner() as r:
                    rows = r.run(raw_loop(base + "/chat-messages", n, args.warmup, args.seconds))
                raw_cpu = (time.process_time() - cpu) * 1000 / max(1, len(rows))
                thr, ttft = window_figures(rows, args.warmup, args.seconds)
                raw_runs.append((thr, *np.percentile(ttft, [50, 99]), raw_cpu))
                thr_e, ttft_e, summary, eng_cpu = engine_run(base, n, args.warmup, args.seconds, store)
                eng_runs.append((thr_e, *np.percentile(ttft_e, [50, 99]), summary["request_throughput"], eng_cpu, summary["client_bound"]))
            raw = tuple(statistics.median(x[i] for x in raw_runs) for i in range(4))
            eng = tuple(statistics.median(x[i] for x in eng_runs) for i in range(5))
            bound = any(x[5] for x in eng_runs)
            results[(n, "raw")], results[(n, "engine")] = raw[:3], eng[:3]
            table = (("raw", raw[:3], "", ""), ("engine", eng[:3], f"{eng[3]:.1f}", "yes" if bound else "no"))
            for name, (thr, p50, p99), reported, b in table:
                print(f"{n:>7} | {name:<6} | {thr:>7.1f} | {reported:>8} | {p50:>7.1f}ms | {p50 / (TTFT_S * 1000):>8.3f} | "
                      f"{p99:>7.1f}ms | {p99 / (TTFT_S * 1000):>8.3f} | {b:>5}")
            print(f"{'':>7}   engine/raw: throughput {eng[0] / raw[0]:.3f}, TTFT p50 {eng[1] / raw[1]:.3f}, "
                  f"TTFT p99 {eng[2] / raw[2]:.3f}; "
                  f"CPU per request {eng[4]:.2f} ms against raw {raw[3]:.2f} ms")
        n = max(levels)
        (rt, _, r99), (et, e50, e99) = results[(n, "raw")], results[(n, "engine")]
        ok_thr = et >= 0.9 * rt
        ok_p50 = abs(e50 / (TTFT_S * 1000) - 1) <= 0.05
        ok_p99 = e99 <= 1.15 * r99
        verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
        print(f"\nat {n} streams: throughput engine/raw = {et / rt:.3f} (target >= 0.90: {verdict(ok_thr)}); "
              f"TTFT p50 / true = {e50 / (TTFT_S * 1000):.3f} (target within 5%: {verdict(ok_p50)}); "
              f"TTFT p99 engine/raw = {e99 / r99:.3f} (target <= 1.15: {verdict(ok_p99)})")
        return 0 if ok_thr and ok_p50 and ok_p99 else 1


if __name__ == "__main__":
    sys.exit(main())
