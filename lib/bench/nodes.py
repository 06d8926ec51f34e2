"""Where a benchmark run's time goes, per node: the stored node spans of its workflow/chatflow requests.

Each streamed workflow or chatflow request keeps `lib.waterfall.waterfall_record(timing)` as JSON in its
row (`waterfall`, records.py); chat apps and blocking calls keep none. Only that column and a few others
are read (`requests(columns=...)`), never the inter-chunk gaps.

lib.waterfall.node_stats costs a few ms a request (a frame of segments each), so a long run's statistics
come from an evenly spread sample of at most MAX_STATS_REQUESTS requests, and say so (`attrs`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd

from lib.waterfall import Waterfall, node_stats, request_waterfall

from .store import BenchStore

COLUMNS = ("seq", "warmup", "ok", "e2e_ms", "waterfall")
MAX_STATS_REQUESTS = 400
PICKS = ("median", "slowest", "request")
CLOCK_NOTE = ("The waterfall's clock starts when the request was sent; the benchmark's TTFT and end-to-end start at "
              "its scheduled time, so they also hold the wait before sending (queue).")


def spans(store: BenchStore, run_id: str, *, ok_only: bool = True) -> pd.DataFrame:
    """The run's measured requests (warm-up left out) that kept node spans: seq, ok, e2e_ms (the bench's, from the
    scheduled time), waterfall (JSON) and wf_e2e_ms (the waterfall's, from the send). Succeeded only unless not ok_only."""
    df = store.requests(run_id, columns=COLUMNS)
    if df.empty:
        return df.assign(wf_e2e_ms=pd.Series(dtype=float))
    df = df[df["waterfall"].notna() & ~df["warmup"].astype(bool)]
    if ok_only:
        df = df[df["ok"].astype(bool)]
    df = df.reset_index(drop=True)
    df["wf_e2e_ms"] = [orjson.loads(w).get("e2e_ms") for w in df["waterfall"]]
    return df


def has_spans(store: BenchStore, run_id: str) -> bool:
    return store.has_values(run_id, "waterfall")


def run_node_stats(frame: pd.DataFrame, limit: int = MAX_STATS_REQUESTS) -> pd.DataFrame:
    """lib.waterfall.node_stats over the requests of `spans(...)`, or an evenly spread sample of `limit` of them
    (by seq); `attrs`: requests, skipped, of (how many there were), sampled."""
    n = len(frame)
    chosen = frame if n <= limit else frame.iloc[np.unique(np.linspace(0, n - 1, limit).round().astype(int))]
    stats = node_stats(chosen["waterfall"])
    stats.attrs.update(of=n, sampled=n > limit)
    return stats


def pick(frame: pd.DataFrame, how: str = "median", seq: int | None = None) -> tuple[dict[str, Any], Waterfall] | None:
    """One request of `spans(...)` and its waterfall: the median or the slowest by the waterfall's end-to-end, or
    the request numbered `seq` (how="request"). None when there is none (or no such seq)."""
    if how not in PICKS:
        raise ValueError(f"pick the median, the slowest or a request by its number, not {how!r}")
    df = frame.dropna(subset=["wf_e2e_ms"])
    if df.empty:
        return None
    if how == "request":
        rows = df[df["seq"] == seq]
        if rows.empty:
            return None
        row = rows.iloc[0]
    else:
        ordered = df.sort_values(["wf_e2e_ms", "seq"], kind="stable")
        row = ordered.iloc[-1] if how == "slowest" else ordered.iloc[(len(ordered) - 1) // 2]  # the lower median
    return row.to_dict(), request_waterfall(row["waterfall"])
