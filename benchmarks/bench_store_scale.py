"""The run store at scale: a 100k-request streaming run on disk, and how fast its figures come back.

Writes N synthetic streaming rows (100 content chunks 10 ms apart, usage tokens, a real run id) into
a fresh store through the engine's RunWriter, then prints:
- bytes on disk per row and in all (target: 100k rows under 120 MB);
- seconds to load the saved summary, and the page's chart columns (`requests(columns=CHART_COLUMNS)`),
  and every row with its inter-chunk gaps (target: summary and chart columns under 1 s);
- seconds and peak RSS to compute the summary from the rows (a crashed run's `show`, and a long
  engine run's end: past KEEP_RECORDS it reads its rows back instead of keeping them).
With `--engine URL` it runs the engine itself instead, for N requests against that simulator (start
one with `python -m lib.simulator --fast`), in this fresh process, and prints its peak RSS (target:
under 200 MB at 100k) beside the RSS of the imports alone.

    .venv/bin/python benchmarks/bench_store_scale.py [--rows 100000] [--engine http://127.0.0.1:5001/v1]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.bench import BenchStore, RunConfig, run_benchmark  # noqa: E402
from lib.bench.engine import new_run_id  # noqa: E402
from lib.bench.records import RequestRecord  # noqa: E402

CHART_COLUMNS = ("seq", "warmup", "ok", "t_scheduled", "t_end", "ttft_ms", "e2e_ms", "tpot_ms", "output_tokens", "error_class")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic(n: int):
    for i in range(n):
        start = i * 10.0
        yield RequestRecord(seq=i, warmup=False, worker=i % 64, prompt=i % 7, t_scheduled=start, t_dispatched=start + 0.1,
                            t_sent=start + 0.2, t_headers=start + 5.0, t_first_event=start + 150.0, t_first_content=start + 300.0,
                            t_last_content=start + 1290.0, t_end=start + 1300.0, ttft_ms=300.0 + (i % 13), e2e_ms=1300.0 + (i % 17),
                            ttfb_ms=4.8, queue_ms=0.2, client_queue_ms=0.0, late_ms=0.1, tpot_ms=10.0, chunks=100,
                            itl_ms=array("d", [10.0 + (j % 3) * 0.01 for j in range(99)]), output_tokens=100,
                            output_tokens_source="usage", prompt_tokens=20, total_tokens=120, price=0.0001, currency="USD",
                            ok=True, http_status=200, attempts=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--engine", help="a simulator's base URL: also run the engine for --rows requests")
    args = ap.parse_args()
    if args.engine:
        return engine(args.engine, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        store = BenchStore(path)
        run_id = new_run_id()
        config = RunConfig(base_url="http://127.0.0.1:1/v1", concurrency=64, requests=args.rows)
        store.create_run(run_id, config=config.model_dump(mode="json"), environment={}, base_url=config.base_url)
        t = time.perf_counter()
        writer = store.writer(run_id)
        for rec in synthetic(args.rows):
            writer.add(rec)
        writer.close()
        write_s = time.perf_counter() - t
        before, t = rss_mb(), time.perf_counter()
        summary = store.summary(run_id)  # as for a crashed run, or a long engine run at its end: from the rows
        print(f"summary computed from the rows: {time.perf_counter() - t:.3f} s, peak RSS {rss_mb():.0f} MB "
              f"(before {before:.0f} MB)")
        store.finish_run(run_id, "finished", summary=summary)
        store.checkpoint()
        size = sum(p.stat().st_size for p in Path(tmp).glob("bench.sqlite*"))
        print(f"rows {args.rows}: {size / 1e6:.1f} MB on disk, {size / args.rows:.0f} bytes a row (written in {write_s:.1f} s)")
        t = time.perf_counter()
        s = store.summary(run_id)
        print(f"saved summary: {time.perf_counter() - t:.3f} s (ttft p50 {s['ttft_ms']['p50']})")
        t = time.perf_counter()
        charts = store.requests(run_id, columns=CHART_COLUMNS)
        print(f"chart columns ({len(charts.columns)}): {time.perf_counter() - t:.3f} s")
        t = time.perf_counter()
        every = store.requests(run_id)
        print(f"every row with its gaps: {time.perf_counter() - t:.3f} s")
        del every, charts


def engine(url: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        before = rss_mb()
        t = time.perf_counter()
        out = run_benchmark(RunConfig(base_url=url, concurrency=64, requests=n), "app-sim-chat",
                            store=BenchStore(Path(tmp) / "bench.sqlite"))
        print(f"engine run of {n} streaming requests: {out.summary['succeeded']} ok in {time.perf_counter() - t:.1f} s, "
              f"peak RSS {rss_mb():.0f} MB (the imports alone: {before:.0f} MB)")


if __name__ == "__main__":
    main()
