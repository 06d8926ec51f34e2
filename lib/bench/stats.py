"""The figures of a run, defined once: per-request formulas, percentiles, the summary, goodput, SLO checks.

The page, the CLI, the notebook and the Locust integration all read these functions, and the page
shows `FORMULAS[...]` next to each figure, so a number and its definition never drift apart.

Inputs are per-request DataFrames as `lib.bench.store.BenchStore.requests()` returns them (one row
per request; instants in ms since the run's start; `itl_ms` a list per row). Latency figures are
computed over the *succeeded, measured* requests (warm-up excluded); failures are counted apart.
Percentiles interpolate linearly between order statistics (numpy's default).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .config import LATENCY_METRICS, STATS, Threshold

ABANDONED = "Abandoned"  # error_class of a request still in flight when the run stopped waiting for it

FORMULAS: dict[str, str] = {
    "origin": "A request's origin is its scheduled time: in an open loop the arrival slot it was due at "
              "(so time spent waiting to be sent counts), in a closed loop the moment its user sent it.",
    "ttft_ms": "TTFT = first content chunk − origin.",
    "e2e_ms": "End-to-end = end of the answer (its final event) − origin.",
    "itl_ms": "Inter-chunk latency = every gap between two consecutive content chunks of an answer. "
              "Dify streams pieces of text, not tokens, so this is per chunk, not per token.",
    "tpot_ms": "TPOT = (end-to-end − TTFT) / (output tokens − 1), per request with at least 2 output tokens; "
               "output tokens from Dify's usage (completion_tokens), or the chunk count where Dify reports none "
               "(labelled 'chunks').",
    "ttfb_ms": "Time to headers = response headers − actual send.",
    "queue_ms": "Queue = actual send − origin: late scheduling, the in-flight cap and the client's own queue.",
    "window": "Measurement window = first counted request's origin → end of the window: in a run with a duration, "
              "the end of its sending window (warm-up + duration, or the moment a cancel or a stop rule stopped sending); "
              "in a run of N requests, the end of the last counted answer (all N sent and answered, as vLLM counts). "
              "Requests counted = those sent inside the window, whenever they finished: answers that end in the drain "
              "after the window belong to it, since they were sent in it.",
    "duration_s": "Duration = the measurement window (see window), in seconds.",
    "request_throughput": "Request throughput = succeeded requests sent in the window / window. A constant-rate open "
                          "loop whose every request is served reports its offered rate.",
    "output_tokens_per_s": "Output tokens/s = output tokens of the succeeded requests sent in the window / window.",
    "success_rate": "Success rate = succeeded / (succeeded + failed). A stream with an `error` event, or one "
                    "that ends without its final event, is a failure even with HTTP 200.",
    "goodput": "Goodput = succeeded requests within every per-request SLO limit (TTFT, end-to-end, TPOT) / window.",
    "time_to_response": "Blocking mode: the answer arrives whole, so there is no first token: end-to-end is the time to "
                        "response (origin → the answer), and TTFT, inter-chunk and TPOT are not reported.",
    "abandoned": "Abandoned = requests still in flight when the run stopped waiting (the drain limit after the window, "
                 "or the grace after a cancel): neither succeeded nor failed, left out of every figure and counted apart.",
    "dropped": "Dropped = arrivals due inside the window that were never sent (the generator fell behind its schedule "
               "past the window's end, or they still waited for the in-flight cap when the run ended), as k6's "
               "dropped_iterations.",
    "cost": "Cost = sum of Dify's usage total_price over all requests that reported one.",
}

PER_REQUEST = ("ttft_ms", "e2e_ms", "tpot_ms", "ttfb_ms", "queue_ms")


# -- per request ---------------------------------------------------------------------------------------


def tpot_ms(e2e_ms: float | None, ttft_ms: float | None, output_tokens: int | None) -> float | None:
    """Time per output token after the first: (e2e − TTFT) / (output tokens − 1); None below 2 tokens."""
    if e2e_ms is None or ttft_ms is None or not output_tokens or output_tokens < 2:
        return None
    return (e2e_ms - ttft_ms) / (output_tokens - 1)


def gaps_ms(content_s: Sequence[float]) -> list[float]:
    """Every gap between consecutive content chunks, in ms."""
    return [(b - a) * 1000.0 for a, b in zip(content_s, content_s[1:])]


# -- distributions -------------------------------------------------------------------------------------


def latency_stats(values: Iterable[float] | np.ndarray) -> dict[str, float | None]:
    """p50, p90, p95, p99, mean, max of `values` (NaN and None dropped); all None when empty."""
    a = np.asarray([v for v in values if v is not None] if not isinstance(values, np.ndarray) else values, dtype=float)
    a = a[~np.isnan(a)]
    if a.size == 0:
        return {k: None for k in STATS}
    p50, p90, p95, p99 = np.percentile(a, [50, 90, 95, 99])
    return {"p50": _r(p50), "p90": _r(p90), "p95": _r(p95), "p99": _r(p99), "mean": _r(a.mean()), "max": _r(a.max())}


def _r(x: float) -> float:
    return round(float(x), 3)


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The requests that count: warm-up excluded."""
    if df.empty or "warmup" not in df:
        return df
    return df[~df["warmup"].astype(bool)]


def succeeded(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["ok"].astype(bool)] if not df.empty else df


def itl_values(df: pd.DataFrame) -> np.ndarray:
    """All inter-chunk gaps (ms) of the rows, flattened."""
    if df.empty or "itl_ms" not in df:
        return np.empty(0)
    lists = [x for x in df["itl_ms"] if x is not None and len(x)]
    return np.concatenate([np.asarray(x, dtype=float) for x in lists]) if lists else np.empty(0)


def metric_values(df: pd.DataFrame, metric: str) -> np.ndarray:
    """A latency metric's values over the succeeded rows of `df` (all gaps for itl_ms)."""
    ok = succeeded(df)
    if metric == "itl_ms":
        return itl_values(ok)
    if ok.empty or metric not in ok:
        return np.empty(0)
    return pd.to_numeric(ok[metric], errors="coerce").dropna().to_numpy(dtype=float)


# -- a run ----------------------------------------------------------------------------------------------


def duration_s(df: pd.DataFrame, window_end_ms: float | None = None) -> float:
    """The measurement window in seconds: first measured origin → `window_end_ms` (the end of a
    duration run's sending window), or → the last measured end when not given (count runs). 0 when
    nothing was measured."""
    if df.empty:
        return 0.0
    start = df["t_scheduled"].min()
    end = window_end_ms if window_end_ms is not None else df["t_end"].max()
    if pd.isna(start) or end is None or pd.isna(end) or end <= start:
        return 0.0
    return float(end - start) / 1000.0


def within_slo(df: pd.DataFrame, thresholds: Sequence[Threshold]) -> pd.Series:
    """Per row: succeeded and within each per-request SLO limit (TTFT, end-to-end, TPOT)."""
    good = df["ok"].astype(bool)
    for t in thresholds:
        metric = t.per_request_metric
        if metric is None or metric not in df:
            continue
        values = pd.to_numeric(df[metric], errors="coerce")
        # A request without the figure (e.g. TPOT of a one-token answer) is not held against it.
        good &= values.isna() | (values <= t.limit)
    return good


def summarize(df: pd.DataFrame, thresholds: Sequence[Threshold] = (), *, window_end_ms: float | None = None,
              streaming: bool | None = None) -> dict[str, Any]:
    """The run's figures from its per-request rows (warm-up and abandoned rows are dropped here).
    `window_end_ms`: the end of a duration run's sending window (see FORMULAS["window"]); `streaming`
    False marks a blocking run (its end-to-end is the time to response; see FORMULAS)."""
    m = measured(df)
    gone = (m["error_class"] == ABANDONED) if not m.empty else pd.Series(dtype=bool)
    abandoned = int(gone.sum()) if not m.empty else 0
    if abandoned:
        m = m[~gone]
    ok = succeeded(m)
    n, n_ok = len(m), len(ok)
    start = m["t_scheduled"].min() if n else None
    dur = duration_s(m, window_end_ms)
    last_end = m["t_end"].max() if n else None
    out_tokens = int(pd.to_numeric(ok["output_tokens"], errors="coerce").fillna(0).sum()) if n_ok else 0
    sources = sorted(set(ok["output_tokens_source"].dropna())) if n_ok else []
    summary: dict[str, Any] = {
        "requests": n,
        "succeeded": n_ok,
        "failed": n - n_ok,
        "success_rate": _r(n_ok / n) if n else None,
        "duration_s": _r(dur),
        "request_throughput": _r(n_ok / dur) if dur else 0.0,
        "output_tokens": out_tokens,
        "output_tokens_per_s": _r(out_tokens / dur) if dur else 0.0,
        "output_tokens_source": sources[0] if len(sources) == 1 else ("mixed" if sources else None),
        "warmup_requests": int(len(df) - len(measured(df))),
        "abandoned": abandoned,
        "window_start_ms": _r(start) if start is not None and not pd.isna(start) else None,
        "window_end_ms": _r(start + dur * 1000.0) if start is not None and not pd.isna(start) else None,
        "last_end_ms": _r(last_end) if last_end is not None and not pd.isna(last_end) else None,
        "e2e_label": "time to response" if streaming is False else "end-to-end",
    }
    for metric in LATENCY_METRICS:
        summary[metric] = latency_stats(metric_values(m, metric))
    errors = m.loc[~m["ok"].astype(bool), "error_class"].fillna("Unknown").value_counts() if n else pd.Series(dtype=int)
    summary["errors"] = {str(k): int(v) for k, v in errors.items()}
    phases = m.loc[~m["ok"].astype(bool), "error_phase"].fillna("unknown").value_counts() if n else pd.Series(dtype=int)
    summary["errors_by_phase"] = {str(k): int(v) for k, v in phases.items()}
    summary["retries"] = int(pd.to_numeric(m["retries"], errors="coerce").fillna(0).sum()) if n else 0
    prices = pd.to_numeric(m["price"], errors="coerce") if n else pd.Series(dtype=float)
    currency = m["currency"].dropna().iloc[0] if n and m["currency"].notna().any() else None
    total_price = float(prices.fillna(0).sum()) if n else 0.0
    summary["cost"] = {"total": round(total_price, 8), "currency": currency,
                       "per_request": round(total_price / n_ok, 8) if n_ok else None}
    per_request = [t for t in thresholds if t.per_request_metric]
    if per_request and n:
        good = int(within_slo(m, per_request).sum())
        summary["goodput"] = {"slo": [str(t) for t in per_request], "good": good,
                              "rate": _r(good / dur) if dur else 0.0, "share": _r(good / n)}
    else:
        summary["goodput"] = None
    summary["goodput_rate"] = summary["goodput"]["rate"] if summary["goodput"] else None
    summary["goodput_share"] = summary["goodput"]["share"] if summary["goodput"] else None
    return summary


def figure(summary: dict[str, Any], name: str) -> float | None:
    """A summary figure by name: `ttft_ms.p95`, `success_rate`..."""
    metric, _, stat = name.partition(".")
    value = summary.get(metric)
    if stat:
        value = value.get(stat) if isinstance(value, dict) else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def check_thresholds(summary: dict[str, Any], thresholds: Sequence[Threshold]) -> list[dict[str, Any]]:
    """Each threshold with the measured value and whether it passed (a missing figure fails)."""
    checks = []
    for t in thresholds:
        value = figure(summary, t.metric)
        ok = value is not None and (value <= t.limit if t.op == "<=" else value >= t.limit)
        checks.append({"slo": str(t), "metric": t.metric, "op": t.op, "limit": t.limit, "value": value, "ok": ok})
    return checks


# -- many runs ------------------------------------------------------------------------------------------


def percentile_table(summary: dict[str, Any], metrics: Sequence[str] = ("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms")) -> pd.DataFrame:
    """Rows: metrics; columns: p50 … max (ms)."""
    rows = {m: {s: (summary.get(m) or {}).get(s) for s in STATS} for m in metrics}
    return pd.DataFrame.from_dict(rows, orient="index")[list(STATS)]


COMPARE_FIGURES = (
    "requests", "success_rate", "request_throughput", "output_tokens_per_s",
    "ttft_ms.p50", "ttft_ms.p95", "ttft_ms.p99", "e2e_ms.p50", "e2e_ms.p95", "e2e_ms.p99",
    "itl_ms.p50", "itl_ms.p99", "tpot_ms.p50", "tpot_ms.p95",
)


def compare_summaries(summaries: dict[str, dict[str, Any]], figures: Sequence[str] = COMPARE_FIGURES) -> pd.DataFrame:
    """Rows: figures; one column per run label, plus `change` (last vs first, relative) for two or more."""
    table = pd.DataFrame({label: [figure(s, f) for f in figures] for label, s in summaries.items()}, index=list(figures))
    if len(summaries) >= 2:
        first, last = table.iloc[:, 0], table.iloc[:, -1]
        table["change"] = ((last - first) / first.where(first != 0)).round(4)
    return table


def rank(summaries: dict[str, dict[str, Any]], by: str = "ttft_ms.p95") -> list[dict[str, Any]]:
    """Labels ordered best first by one figure (lower is better for latencies, higher for throughput);
    runs without the figure come last."""
    higher_better = by.partition(".")[0] in ("success_rate", "request_throughput", "output_tokens_per_s", "goodput_rate", "goodput_share")
    rows = [{"label": label, "value": figure(s, by)} for label, s in summaries.items()]
    present = sorted((r for r in rows if r["value"] is not None), key=lambda r: r["value"], reverse=higher_better)
    ranked = present + [r for r in rows if r["value"] is None]
    for i, r in enumerate(ranked, 1):
        r["rank"] = i if r["value"] is not None else None
    best = present[0]["value"] if present else None
    for r in ranked:
        r["vs_best"] = round(r["value"] / best, 4) if best and r["value"] is not None else None
    return ranked


def summaries_frame(summaries: dict[str, dict[str, Any]], levels: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per run: label, level, throughputs, success rate and every `metric.stat` latency
    (the input of lib.charts.sweep_curve and the page's history table)."""
    rows = []
    for label, s in summaries.items():
        row: dict[str, Any] = {"run": label, "level": (levels or {}).get(label, s.get("level")),
                               "requests": s.get("requests"), "success_rate": s.get("success_rate"),
                               "request_throughput": s.get("request_throughput"), "output_tokens_per_s": s.get("output_tokens_per_s")}
        for metric in LATENCY_METRICS:
            for stat in STATS:
                row[f"{metric}.{stat}"] = (s.get(metric) or {}).get(stat)
        rows.append(row)
    return pd.DataFrame(rows)
