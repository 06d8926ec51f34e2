"""Load runs against a Dify app with honest latency figures, saved run by run.

    from lib.bench import RunConfig, BenchStore, run_benchmark
    outcome = run_benchmark(RunConfig(base_url="http://127.0.0.1:5001/v1", concurrency=8, duration_s=20), "app-sim-chat",
                            store=BenchStore())
    outcome.summary["ttft_ms"]["p95"]

Modules: config (RunConfig), prompts, engine (closed/open loop, sweep, compare), records (one row per
request), stats (the formulas and the summary), selfcheck (is the generator the bottleneck?), store
(SQLite), export (CSV/JSON/Parquet), guard (production guard), jobs (background runs for the page),
locustfile (Locust integration); `python -m lib.bench --help` is the CLI.
"""
from .config import DEFAULT_QUERY, Prompt, RunConfig, Threshold
from .engine import BenchError, Progress, RunOutcome, TargetSpec, compare_targets, run_async, run_benchmark, run_sweep
from .stats import FORMULAS, compare_summaries, percentile_table, rank, summarize
from .store import BenchStore, RunInfo, StoreError

__all__ = [
    "BenchError", "BenchStore", "DEFAULT_QUERY", "FORMULAS", "Progress", "Prompt", "RunConfig", "RunInfo", "RunOutcome",
    "StoreError", "TargetSpec", "Threshold", "compare_summaries", "compare_targets", "percentile_table", "rank", "run_async",
    "run_benchmark", "run_sweep", "summarize",
]
