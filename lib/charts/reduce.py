"""Bounded chart data: what a figure of a long run draws instead of one point per request (numpy only, no plotly).

A figure draws raw values up to MAX_POINTS; beyond, it draws what a reader can see anyway: histogram counts
in bins, a CDF through CDF_POINTS quantiles, per-bucket quantiles over time, and the gaps of an evenly spread
sample of requests. Counts, quantiles and percentile lines are computed over every value, so a long run's
figure is its exact histogram or CDF, only smaller; the sample and the buckets are said on the figure.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["CDF_POINTS", "GAP_SAMPLE", "MAX_BUCKETS", "MAX_POINTS", "bucket_seconds", "bucket_stats", "cdf_points",
           "histogram", "nice_edges", "spread"]

MAX_POINTS = 5_000  # raw values a figure draws; a run of up to this many requests looks as it always did
CDF_POINTS = 1_000  # steps of share a reduced CDF is drawn through (0, 0.001, …, 1), plus PERCENTILE_QS
PERCENTILE_QS = (0.5, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999)  # on the line exactly, the far tail included
MAX_BUCKETS = 600  # time buckets an over-time figure draws at most (1 s each up to a 10-minute run)
GAP_SAMPLE = 5_000  # requests whose inter-chunk gaps the distribution reads, per run
_NICE = (1.0, 2.0, 2.5, 5.0, 10.0)
_NICE_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


def nice_edges(values: Sequence[float] | np.ndarray, nbins: int) -> np.ndarray:
    """Bin edges at a round step (1, 2, 2.5 or 5 × 10^k) giving at most about `nbins` bins over the values'
    range, as plotly.js picks its own histogram bins; one bin of width 1 around a single value."""
    a = _finite(values)
    if a.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.array([lo - 0.5, lo + 0.5])
    raw = (hi - lo) / max(1, nbins)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in _NICE if m * magnitude >= raw * (1 - 1e-9))
    start = math.floor(lo / step) * step
    count = int((hi - start) // step) + 1  # the last edge above hi: every bin half-open, as plotly.js bins
    return start + step * np.arange(count + 1)


def histogram(values: Sequence[float] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of the (finite) values in the bins [edges[i], edges[i+1]) (numpy's, the last bin closed)."""
    counts, _ = np.histogram(_finite(values), bins=edges)
    return counts


def cdf_points(values: Sequence[float] | np.ndarray, points: int = CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, share): the values' quantiles (numpy's linear) at shares 0, 1/points, …, 1 and PERCENTILE_QS, so the
    line is the empirical CDF through them. Empty arrays when there are no values."""
    a = _finite(values)
    if a.size == 0:
        return np.empty(0), np.empty(0)
    qs = np.union1d(np.round(np.linspace(0.0, 1.0, max(1, points) + 1), 12), PERCENTILE_QS)
    return np.quantile(a, qs), qs


def bucket_seconds(span_s: float, max_buckets: int = MAX_BUCKETS) -> float:
    """The time bucket of an over-time figure: 1 s, or the smallest round step above (2, 5, 10, 15, 30 s, 1 min…)
    that keeps a run of `span_s` seconds within `max_buckets` buckets."""
    if not math.isfinite(span_s) or span_s <= max_buckets:
        return 1.0
    need = span_s / max_buckets
    return float(next((s for s in _NICE_SECONDS if s >= need), math.ceil(need / 3600) * 3600))


def bucket_stats(t_s: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, bucket_s: float,
                 qs: Sequence[float] = (0.05, 0.5, 0.95)) -> pd.DataFrame:
    """Per time bucket (its start, floor(t / bucket_s) · bucket_s, in t's unit): `n` values and their quantiles
    (columns `q0.05`, `q0.5`, …; numpy's linear), over the pairs where both t and the value are finite."""
    t, v = np.asarray(t_s, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(t) & np.isfinite(v)
    frame = pd.DataFrame({"t": np.floor(t[keep] / bucket_s) * bucket_s, "v": v[keep]})
    columns = ["t", "n", *(f"q{q:g}" for q in qs)]
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    grouped = frame.groupby("t", sort=True)["v"]
    out = grouped.quantile(list(qs)).unstack()
    out.columns = [f"q{q:g}" for q in out.columns]
    out.insert(0, "n", grouped.size())
    return out.reset_index()[columns]


def spread(n: int, k: int) -> np.ndarray:
    """Positions of an evenly spread sample of k of n items (all of them when n ≤ k), first and last included."""
    if n <= k:
        return np.arange(n)
    if k <= 0:
        return np.empty(0, dtype=int)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))
