"""What the Benchmark charts read of one or more runs: a few columns of every request, and the inter-chunk gaps
of an evenly spread sample of them.

The page and the HTML report draw from this, never from `requests()` with every column: a 100k-request
streaming run holds ~10M gaps (most of its bytes), and its charts need the gaps of a few thousand requests
to show their distribution. The other columns are read column-wise for every request (histograms, CDFs and
over-time buckets are computed over all of them, lib.charts.reduce). Exports still read every row and gap.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lib import charts
from lib.charts.reduce import GAP_SAMPLE, spread

from .store import BenchStore

__all__ = ["CHART_COLUMNS", "ChartData", "chart_data", "run_charts"]

# What lib.charts.bench's run and comparison charts read: latencies, outcome, when it ended, tokens, errors.
CHART_COLUMNS = ("seq", "warmup", "ok", "t_end", "ttft_ms", "e2e_ms", "output_tokens", "error_class", "error_phase")


@dataclass
class ChartData:
    """`rows`: CHART_COLUMNS of every request (with `run_id`, `run`); `gaps`: run_id, run, seq, ok, warmup, itl_ms of the
    succeeded measured requests, or of an evenly spread sample of `gap_sample` of each run's; `gaps_of`: how
    many succeeded measured requests there were (the sample's size is len(gaps))."""

    rows: pd.DataFrame
    gaps: pd.DataFrame
    gaps_of: int

    @property
    def gaps_sampled(self) -> bool:
        return len(self.gaps) < self.gaps_of


def chart_data(store: BenchStore, run_ids: str | Sequence[str], *, gap_sample: int = GAP_SAMPLE) -> ChartData:
    """The charts' rows of the runs (label: the run's, as `requests(label=True)`), read column-wise, and the gaps
    of at most `gap_sample` succeeded measured requests a run, spread evenly over it by seq."""
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    rows = store.requests(ids, label=True, columns=CHART_COLUMNS)
    parts, of = [], 0
    for rid in ids:
        counted = rows[(rows["run_id"] == rid) & rows["ok"].astype(bool) & ~rows["warmup"].astype(bool)] if len(rows) else rows
        of += len(counted)
        if len(counted):
            seqs = counted["seq"].to_numpy()[spread(len(counted), gap_sample)]
            parts.append(store.requests(rid, columns=("ok", "warmup", "itl_ms"), seqs=seqs.tolist()))
    if not parts:
        return ChartData(rows=rows, gaps=_no_gaps(), gaps_of=0)
    gaps = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    gaps.insert(1, "run", gaps["run_id"].map(store.labels(ids)))  # the labels of `rows`: unique across the runs
    return ChartData(rows=rows, gaps=gaps, gaps_of=of)


def _no_gaps() -> pd.DataFrame:
    return pd.DataFrame({"run_id": pd.Series(dtype=str), "run": pd.Series(dtype=str), "seq": pd.Series(dtype=np.int64),
                         "ok": pd.Series(dtype=bool), "warmup": pd.Series(dtype=bool), "itl_ms": pd.Series(dtype=object)})


def run_charts(store: BenchStore, run_id: str) -> dict[str, go.Figure]:
    """Every chart of one run's view by name (lib.charts.RUN_FIGURES), as the Benchmark page and the HTML report
    draw them: chart_data, then lib.charts.run_figures (benchmarks/bench_store_scale.py times this at 100k)."""
    data = chart_data(store, run_id)
    return charts.run_figures(data.rows, data.gaps, gaps_of=data.gaps_of)
