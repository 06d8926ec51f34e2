"""The figures of a run, defined once: per-request formulas, percentiles, the summary, goodput, SLO checks.

The page, the CLI, the notebook and the Locust integration all read these functions, and the page
shows `FORMULAS[...]` next to each figure, so a number and its definition never drift apart.

Inputs are per-request DataFrames as `lib.bench.store.BenchStore.requests()` returns them (one row
per request; instants in ms since the run's start; `itl_ms` a list per row). Latency figures are
computed over the *succeeded, measured* requests (warm-up excluded); failures are counted apart.
Percentiles interpolate linearly between order statistics (numpy's default). A long engine run is
summed as its answers arrive instead (`RunTally`): exact counts and sums, percentiles from
lib.bench.sketch within its relative error (FORMULAS["percentiles"]).
"""
from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from .config import LATENCY_METRICS, STATS, Threshold, pct_key
from .sketch import RELATIVE_ERROR, LogSketch

EXACT_UP_TO = 5_000  # an engine run of up to this many requests keeps its records: exact percentiles
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
    "request_throughput": "Request throughput = succeeded requests / window. Open loop: the requests sent in the window "
                          "(a constant-rate run whose every request is served reports its offered rate). Closed loop: each "
                          "answer counts for the share of its time in flight inside the window (its users are busy all the "
                          "window, with answers begun in the warm-up and ending in the drain). A run of N requests: all N.",
    "output_tokens_per_s": "Output tokens/s = output tokens / window: open loop, of the succeeded requests sent in the window; "
                           "closed loop, those that arrived inside it; a run of N requests, all of them.",
    "success_rate": "Success rate = succeeded / (succeeded + failed). A stream with an `error` event, or one "
                    "that ends without its final event, is a failure even with HTTP 200.",
    "goodput": "Goodput = succeeded requests within every per-request SLO limit (TTFT, end-to-end, TPOT) / window, "
               "counted as request throughput counts requests.",
    "time_to_response": "Blocking mode: the answer arrives whole, so there is no first token: end-to-end is the time to "
                        "response (origin → the answer), and TTFT, inter-chunk and TPOT are not reported.",
    "abandoned": "Abandoned = requests still in flight when the run stopped waiting (the drain limit after the window, "
                 "or the grace after a cancel): neither succeeded nor failed, left out of every figure and counted apart.",
    "over_saturated": "Over-saturated (open loop; stops the run): over the last 5 s the backlog of requests issued and not "
                      "yet answered rose by at least a tenth of the arrival rate, and holds more than twice rate × the "
                      "median service time (actual send → end) of the answers so far: the target cannot keep up. A target "
                      "that has answered nothing yet is not judged; the drain limit ends that run.",
    "dropped": "Dropped = arrivals due inside the window that were never sent (the generator fell behind its schedule "
               "past the window's end, or they still waited for the in-flight cap when the run ended), as k6's "
               "dropped_iterations.",
    "percentiles": f"Percentiles interpolate linearly between the values (numpy's) in a run of up to {EXACT_UP_TO:,} "
                   f"requests; in a longer one (summed as answers arrive, without keeping them) they come from a "
                   f"log-bucket sketch and are within {RELATIVE_ERROR:.0%} relative error; min, max, mean, std and every count are exact, "
                   "and the peak output tokens/s is read from 10 ms bins.",
    "cost": "Cost = sum of Dify's usage total_price over all requests that reported one, per currency "
            "(prices in different currencies are not added).",
}

PER_REQUEST = ("ttft_ms", "e2e_ms", "tpot_ms", "ttfb_ms", "queue_ms")


# -- per request ---------------------------------------------------------------------------------------



def cost_summary(by_currency: dict[str, float], n_ok: int) -> dict[str, Any]:
    """A run's cost: `total` and `per_request` (over the succeeded requests) in its one `currency`. Prices in
    several currencies (a target per model vendor) are not added into one meaningless figure: `currency` is
    then "mixed", `total` and `per_request` None, and `by_currency` holds each currency's sum."""
    by = {c: round(v, 8) for c, v in sorted(by_currency.items())}
    if len(by) > 1:
        return {"total": None, "currency": "mixed", "per_request": None, "by_currency": by}
    currency, total = next(iter(by.items()), (None, 0.0))
    return {"total": total, "currency": currency, "per_request": round(total / n_ok, 8) if n_ok else None,
            "by_currency": by}

def tpot_ms(e2e_ms: float | None, ttft_ms: float | None, output_tokens: int | None) -> float | None:
    """Time per output token after the first: (e2e − TTFT) / (output tokens − 1); None below 2 tokens."""
    if e2e_ms is None or ttft_ms is None or not output_tokens or output_tokens < 2:
        return None
    return (e2e_ms - ttft_ms) / (output_tokens - 1)


def gaps_ms(content_s: Sequence[float]) -> list[float]:
    """Every gap between consecutive content chunks, in ms."""
    return [(b - a) * 1000.0 for a, b in pairwise(content_s)]


# -- distributions -------------------------------------------------------------------------------------


def latency_stats(values: Iterable[float] | np.ndarray, extra: Sequence[float] = ()) -> dict[str, float | None]:
    """min, p50, p90, p95, p99, p99.9, mean, std (population), max of `values` (NaN and None dropped),
    plus a `pNN` key per `extra` percentile; all None when empty."""
    a = np.asarray([v for v in values if v is not None] if not isinstance(values, np.ndarray) else values, dtype=float)
    a = a[~np.isnan(a)]
    keys = [*STATS, *(pct_key(q) for q in extra if pct_key(q) not in STATS)]
    if a.size == 0:
        return {k: None for k in keys}
    qs = [50, 90, 95, 99, 99.9, *extra]
    pcts = dict(zip((pct_key(q) for q in qs), np.percentile(a, qs), strict=True))
    out = {"min": _r(a.min()), **{k: _r(v) for k, v in pcts.items()}, "mean": _r(a.mean()), "std": _r(a.std()), "max": _r(a.max())}
    return {k: out[k] for k in keys}


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
    # float32, as stored: a long run has millions of gaps, and ms need no more precision
    return np.concatenate([np.asarray(x, dtype=np.float32) for x in lists]) if lists else np.empty(0, dtype=np.float32)


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


TOKEN_BATCH = 5_000  # rows at a time: bounds the memory of the chunk-time arrays on large runs


def token_times(ok: pd.DataFrame) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """When the output tokens of these rows arrived (ms) and how many at each instant, in batches of
    rows: a streamed answer's tokens spread evenly over its content chunks (first content + the
    running sum of its inter-chunk gaps), a blocking answer's all at its end. Vectorized per batch."""
    for at in range(0, len(ok), TOKEN_BATCH):
        part = ok.iloc[at:at + TOKEN_BATCH]
        tokens = pd.to_numeric(part["output_tokens"], errors="coerce").fillna(0).to_numpy(dtype=float)
        first = pd.to_numeric(part["t_first_content"], errors="coerce").to_numpy(dtype=float)
        end = pd.to_numeric(part["t_end"], errors="coerce").to_numpy(dtype=float)
        chunks = pd.to_numeric(part["chunks"], errors="coerce").fillna(0).to_numpy(dtype=float)
        streamed = (tokens > 0) & (chunks > 0) & ~np.isnan(first)
        whole = (tokens > 0) & ~streamed & ~np.isnan(end)
        gaps = [np.asarray(g, dtype=float) for g, keep in zip(part["itl_ms"], streamed, strict=True) if keep]
        lens = np.array([g.size for g in gaps], dtype=np.int64)
        f, w_row = first[streamed], tokens[streamed] / (lens + 1)
        times, weights = [f, end[whole]], [w_row, tokens[whole]]
        if lens.sum():
            flat = np.concatenate(gaps)
            run = np.cumsum(flat)
            starts = np.cumsum(lens) - lens
            base = np.where(starts > 0, run[np.maximum(starts - 1, 0)], 0.0)
            times.append(np.repeat(f - base, lens) + run)
            weights.append(np.repeat(w_row, lens))
        yield np.concatenate(times), np.concatenate(weights)


def peak_output_tokens_per_s(ok: pd.DataFrame, start_ms: float, bucket_ms: float = 1000.0) -> float | None:
    """The most output tokens received in one 1 s bucket from the window's start (drain included)."""
    counts: dict[int, float] = {}
    for t, w in token_times(ok):
        if not t.size:
            continue
        buckets = np.floor((t - start_ms) / bucket_ms).astype(np.int64)
        low = int(buckets.min())
        for i, v in enumerate(np.bincount(buckets - low, weights=w)):
            if v:
                counts[low + i] = counts.get(low + i, 0.0) + float(v)
    if not counts:
        return None
    return _r(max(counts.values()) * (1000.0 / bucket_ms))


def tokens_between(ok: pd.DataFrame, start_ms: float, end_ms: float) -> float:
    """Output tokens of these rows that arrived inside [start_ms, end_ms]."""
    return float(sum(w[(t >= start_ms) & (t <= end_ms)].sum() for t, w in token_times(ok)))


def in_window_share(df: pd.DataFrame, start_ms: float, end_ms: float) -> pd.Series:
    """Per row, the share of its time in flight (origin → end) that lies inside [start_ms, end_ms]."""
    if df.empty:
        return pd.Series(dtype=float)
    a = pd.to_numeric(df["t_scheduled"], errors="coerce")
    b = pd.to_numeric(df["t_end"], errors="coerce")
    inside = (b.clip(upper=end_ms) - a.clip(lower=start_ms)).clip(lower=0.0)
    span = b - a
    share = (inside / span.where(span > 0)).where(span > 0, ((a >= start_ms) & (a <= end_ms)).astype(float))
    return share.fillna(0.0)


def user_tokens_per_s(ok: pd.DataFrame) -> np.ndarray:
    """Per succeeded request: output tokens / end-to-end (s): the pace one user sees, waiting included."""
    if ok.empty:
        return np.empty(0)
    tokens = pd.to_numeric(ok["output_tokens"], errors="coerce")
    e2e = pd.to_numeric(ok["e2e_ms"], errors="coerce")
    rate = (tokens / (e2e / 1000.0))[(tokens > 0) & (e2e > 0)]
    return rate.dropna().to_numpy(dtype=float)


def _sum(df: pd.DataFrame, column: str) -> int:
    return int(pd.to_numeric(df[column], errors="coerce").fillna(0).sum()) if not df.empty and column in df else 0


def summarize(df: pd.DataFrame, thresholds: Sequence[Threshold] = (), *, window_end_ms: float | None = None,
              streaming: bool | None = None, percentiles: Sequence[float] = (), load: str | None = None) -> dict[str, Any]:
    """The run's figures from its per-request rows (warm-up and abandoned rows are dropped here).
    `window_end_ms`: the end of a duration run's sending window (see FORMULAS["window"]); `load`
    "closed" attributes a closed loop's requests and tokens to the window by their time in it;
    `streaming` False marks a blocking run (its end-to-end is the time to response; see FORMULAS)."""
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
    in_tokens, all_tokens = _sum(ok, "prompt_tokens"), _sum(ok, "total_tokens")
    # What each rate counts over the window (FORMULAS["window"]): by default the requests sent in it.
    served, out_w, in_w, all_w = float(n_ok), float(out_tokens), float(in_tokens), float(all_tokens)
    closed_window = load == "closed" and window_end_ms is not None and dur > 0
    if closed_window:
        # A closed loop's users are busy the whole window, with answers begun before it (warm-up) and
        # ending after it (drain): each answer counts for its share of time in the window, its tokens
        # when they arrived. (Counting the sends would overstate it by up to one answer a user.)
        w0 = float(start or 0.0)  # dur > 0: start is set
        w1 = w0 + dur * 1000.0
        every = df[df["error_class"] != ABANDONED] if not df.empty else df
        every_ok = succeeded(every)
        share = in_window_share(every_ok, w0, w1)
        served = float(share.sum())
        out_w = tokens_between(every_ok, w0, w1)
        in_w = float((pd.to_numeric(every_ok["prompt_tokens"], errors="coerce").fillna(0) * share).sum()) if not every_ok.empty else 0.0
        all_w = float((pd.to_numeric(every_ok["total_tokens"], errors="coerce").fillna(0) * share).sum()) if not every_ok.empty else 0.0
    summary: dict[str, Any] = {
        "requests": n,
        "succeeded": n_ok,
        "failed": n - n_ok,
        "success_rate": _r(n_ok / n) if n else None,
        "duration_s": _r(dur),
        "request_throughput": _r(served / dur) if dur else 0.0,
        "output_tokens": out_tokens,
        "output_tokens_per_s": _r(out_w / dur) if dur else 0.0,
        "output_tokens_source": sources[0] if len(sources) == 1 else ("mixed" if sources else None),
        "warmup_requests": int(len(df) - len(measured(df))),
        "abandoned": abandoned,
        "window_start_ms": _r(start) if start is not None and not pd.isna(start) else None,
        "window_end_ms": _r(start + dur * 1000.0) if start is not None and not pd.isna(start) else None,
        "last_end_ms": _r(last_end) if last_end is not None and not pd.isna(last_end) else None,
        "e2e_label": "time to response" if streaming is False else "end-to-end",
    }
    summary.update({
        "input_tokens": in_tokens,
        "input_tokens_per_s": _r(in_w / dur) if dur else 0.0,
        "total_tokens": all_tokens,
        "total_tokens_per_s": _r(all_w / dur) if dur else 0.0,
        "throughput_attribution": _attribution(closed_window, window_end_ms),
        "output_tokens_per_s_peak": peak_output_tokens_per_s(ok, float(start)) if n_ok and start is not None else None,
        "user_output_tokens_per_s": latency_stats(user_tokens_per_s(ok), percentiles),
        "malformed_frames": _sum(m, "malformed"),
        "percentiles": [pct_key(q) for q in percentiles],
        "percentile_method": "exact",
    })
    for metric in LATENCY_METRICS:
        summary[metric] = latency_stats(metric_values(m, metric), percentiles)
    errors = m.loc[~m["ok"].astype(bool), "error_class"].fillna("Unknown").value_counts() if n else pd.Series(dtype=int)
    summary["errors"] = {str(k): int(v) for k, v in errors.items()}
    phases = m.loc[~m["ok"].astype(bool), "error_phase"].fillna("unknown").value_counts() if n else pd.Series(dtype=int)
    summary["errors_by_phase"] = {str(k): int(v) for k, v in phases.items()}
    summary["retries"] = int(pd.to_numeric(m["retries"], errors="coerce").fillna(0).sum()) if n else 0
    by_currency: dict[str, float] = {}
    if n:
        priced = pd.DataFrame({"price": pd.to_numeric(m["price"], errors="coerce"),
                               "currency": m["currency"].astype(object).where(m["currency"].notna(), "USD")}).dropna()
        by_currency = {str(k): float(v) for k, v in priced.groupby("currency")["price"].sum().items()}
    summary["cost"] = cost_summary(by_currency, n_ok)
    per_request = [t for t in thresholds if t.per_request_metric]
    if per_request and n:
        good = int(within_slo(m, per_request).sum())
        good_w = float(good)
        if closed_window:
            good_w = float((in_window_share(every, w0, w1) * within_slo(every, per_request)).sum())
        summary["goodput"] = {"slo": [str(t) for t in per_request], "good": good,
                              "rate": _r(good_w / dur) if dur else 0.0, "share": _r(good / n)}
    else:
        summary["goodput"] = None
    summary["goodput_rate"] = summary["goodput"]["rate"] if summary["goodput"] else None
    summary["goodput_share"] = summary["goodput"]["share"] if summary["goodput"] else None
    return summary


# -- a long run, summed as it goes ---------------------------------------------------------------------

BIN_MS = 10.0  # output tokens binned by arrival: the peak's 1 s buckets and a closed loop's window read these


class _Bins:
    """Output tokens by arrival time in BIN_MS bins from the run's start, growing as the run does."""

    def __init__(self) -> None:
        self.w = np.zeros(4096)

    def add(self, rec: Any) -> None:
        tokens, first, end = rec.output_tokens or 0, rec.t_first_content, rec.t_end
        if tokens <= 0:
            return
        if rec.chunks > 0 and first is not None:  # spread over the content chunks, as token_times does
            gaps = np.asarray(rec.itl_ms, dtype=float)
            t = np.concatenate(([first], first + np.cumsum(gaps))) if gaps.size else np.array([first])
            idx = np.maximum(0, (t // BIN_MS).astype(np.int64))
            weights = np.full(idx.size, tokens / idx.size)
        elif end is not None:
            idx, weights = np.array([max(0, int(end // BIN_MS))]), np.array([float(tokens)])
        else:
            return
        top = int(idx.max()) + 1
        if top > self.w.size:
            self.w = np.concatenate((self.w, np.zeros(max(top - self.w.size, self.w.size))))
        low = int(idx.min())
        self.w[low:top] += np.bincount(idx - low, weights=weights, minlength=top - low)

    def between(self, start_ms: float, end_ms: float) -> float:
        return float(self.w[max(0, int(start_ms // BIN_MS)):max(0, int(end_ms // BIN_MS) + 1)].sum())

    def peak(self, start_ms: float, bucket_ms: float = 1000.0) -> float | None:
        per = int(round(bucket_ms / BIN_MS))
        w = self.w[max(0, int(start_ms // BIN_MS)):]
        if not w.any():
            return None
        w = np.concatenate((w, np.zeros((-w.size) % per)))
        return _r(float(w.reshape(-1, per).sum(axis=1).max()) * (1000.0 / bucket_ms))


class RunTally:
    """A run's figures summed as its answers arrive, without keeping its records: what `summarize`
    returns (same keys), with exact counts, sums, min/max/mean/std, and percentiles from LogSketch
    (within its RELATIVE_ERROR). Memory: a few sketches and token bins, plus, for a closed loop only,
    5 floats per answer (its time in the window is known at the end)."""

    def __init__(self, thresholds: Sequence[Threshold] = (), *, percentiles: Sequence[float] = (), load: str | None = None) -> None:
        self.thresholds = [t for t in thresholds if t.per_request_metric]
        self.percentiles, self.load = tuple(percentiles), load
        self.sketches = {m: LogSketch() for m in (*LATENCY_METRICS, "user")}
        self.n = self.n_ok = self.warmup = self.abandoned = self.good = 0
        self.out_tokens = self.in_tokens = self.all_tokens = self.retries = self.malformed = 0
        self.prices: dict[str, float] = {}  # currency -> sum
        self.start, self.last_end = math.inf, -math.inf
        self.sources: set[str] = set()
        self.errors: dict[str, int] = {}
        self.phases: dict[str, int] = {}
        self.bins, self.every_bins = _Bins(), _Bins()
        self.every = array("d")  # closed loop: origin, end, prompt tokens, total tokens, good? per answer

    def _good(self, rec: Any) -> bool:
        if not rec.ok:
            return False
        for t in self.thresholds:
            v = getattr(rec, t.per_request_metric, None) if t.per_request_metric else None
            if v is not None and not (isinstance(v, float) and math.isnan(v)) and v > t.limit:
                return False
        return True

    def add(self, rec: Any) -> None:
        if rec.error_class == ABANDONED:
            self.abandoned += not rec.warmup
            return
        good = self._good(rec) if self.thresholds else rec.ok
        if self.load == "closed" and rec.ok:
            self.every.extend((rec.t_scheduled, np.nan if rec.t_end is None else rec.t_end, rec.prompt_tokens or 0,
                               rec.total_tokens or 0, float(good)))
            self.every_bins.add(rec)
        if rec.warmup:
            self.warmup += 1
            return
        self.n += 1
        self.start = min(self.start, rec.t_scheduled)
        if rec.t_end is not None:
            self.last_end = max(self.last_end, rec.t_end)
        self.retries += rec.retries or 0
        self.malformed += rec.malformed or 0
        if rec.price is not None:
            currency = rec.currency or "USD"  # Dify's default, as lib.dify.usage reads it
            self.prices[currency] = self.prices.get(currency, 0.0) + rec.price
        if not rec.ok:
            key = rec.error_class or "Unknown"
            self.errors[key] = self.errors.get(key, 0) + 1
            key = rec.error_phase or "unknown"
            self.phases[key] = self.phases.get(key, 0) + 1
            return
        self.n_ok += 1
        self.good += good
        self.out_tokens += rec.output_tokens or 0
        self.in_tokens += rec.prompt_tokens or 0
        self.all_tokens += rec.total_tokens or 0
        if rec.output_tokens_source is not None:
            self.sources.add(rec.output_tokens_source)
        for m in ("ttft_ms", "e2e_ms", "tpot_ms", "ttfb_ms", "queue_ms"):
            v = getattr(rec, m)
            if v is not None:
                self.sketches[m].add(v)
        if len(rec.itl_ms):
            self.sketches["itl_ms"].extend(rec.itl_ms)
        if rec.output_tokens and rec.e2e_ms and rec.e2e_ms > 0:
            self.sketches["user"].add(rec.output_tokens / (rec.e2e_ms / 1000.0))
        self.bins.add(rec)

    def summary(self, *, window_end_ms: float | None = None, streaming: bool | None = None) -> dict[str, Any]:
        """The figures, as `summarize(frame, ...)` would give them for the same records."""
        n, n_ok = self.n, self.n_ok
        start = self.start if n else None
        end = window_end_ms if window_end_ms is not None else (self.last_end if self.last_end > -math.inf else None)
        dur = float(end - start) / 1000.0 if start is not None and end is not None and end > start else 0.0
        served, good_w = float(n_ok), float(self.good)
        out_w, in_w, all_w = float(self.out_tokens), float(self.in_tokens), float(self.all_tokens)
        closed_window = self.load == "closed" and window_end_ms is not None and dur > 0
        if closed_window:
            w0 = float(start or 0.0)  # dur > 0: start is set
            w1 = w0 + dur * 1000.0
            e = np.frombuffer(self.every, dtype=float).reshape(-1, 5)
            a, b = e[:, 0], e[:, 1]
            span = b - a
            inside = np.clip(np.minimum(b, w1) - np.maximum(a, w0), 0.0, None)
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(span > 0, inside / np.where(span > 0, span, 1.0), ((a >= w0) & (a <= w1)).astype(float))
            share = np.nan_to_num(share)
            served, in_w, all_w = float(share.sum()), float((e[:, 2] * share).sum()), float((e[:, 3] * share).sum())
            out_w = self.every_bins.between(w0, w1)
            good_w = float((e[:, 4] * share).sum())
        keys = [*STATS, *(pct_key(q) for q in self.percentiles if pct_key(q) not in STATS)]
        qs = [50, 90, 95, 99, 99.9, *self.percentiles]
        sources = sorted(self.sources)
        summary: dict[str, Any] = {
            "requests": n, "succeeded": n_ok, "failed": n - n_ok, "success_rate": _r(n_ok / n) if n else None,
            "duration_s": _r(dur), "request_throughput": _r(served / dur) if dur else 0.0,
            "output_tokens": self.out_tokens, "output_tokens_per_s": _r(out_w / dur) if dur else 0.0,
            "output_tokens_source": sources[0] if len(sources) == 1 else ("mixed" if sources else None),
            "warmup_requests": self.warmup, "abandoned": self.abandoned,
            "window_start_ms": _r(start) if start is not None else None,
            "window_end_ms": _r(start + dur * 1000.0) if start is not None else None,
            "last_end_ms": _r(self.last_end) if n and self.last_end > -math.inf else None,
            "e2e_label": "time to response" if streaming is False else "end-to-end",
            "input_tokens": self.in_tokens, "input_tokens_per_s": _r(in_w / dur) if dur else 0.0,
            "total_tokens": self.all_tokens, "total_tokens_per_s": _r(all_w / dur) if dur else 0.0,
            "throughput_attribution": _attribution(closed_window, window_end_ms),
            "output_tokens_per_s_peak": self.bins.peak(float(start)) if n_ok and start is not None else None,
            "user_output_tokens_per_s": self.sketches["user"].stats(keys, qs),
            "malformed_frames": self.malformed,
            "percentiles": [pct_key(q) for q in self.percentiles],
            "percentile_method": f"sketch, within {RELATIVE_ERROR:.0%} relative error",
        }
        for metric in LATENCY_METRICS:
            summary[metric] = self.sketches[metric].stats(keys, qs)
        summary["errors"] = dict(sorted(self.errors.items(), key=lambda kv: -kv[1]))
        summary["errors_by_phase"] = dict(sorted(self.phases.items(), key=lambda kv: -kv[1]))
        summary["retries"] = self.retries
        summary["cost"] = cost_summary(self.prices, n_ok)
        if self.thresholds and n:
            summary["goodput"] = {"slo": [str(t) for t in self.thresholds], "good": self.good,
                                  "rate": _r(good_w / dur) if dur else 0.0, "share": _r(self.good / n)}
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


def _attribution(closed_window: bool, window_end_ms: float | None) -> str:
    """Which requests the throughput counts (FORMULAS["request_throughput"])."""
    if closed_window:
        return "time in window"
    return "sent in window" if window_end_ms is not None else "all, to the last end"


def rank(summaries: dict[str, dict[str, Any]], by: str = "ttft_ms.p95") -> list[dict[str, Any]]:
    """Labels ordered best first by one figure (lower is better for latencies, higher for throughput);
    runs without the figure come last."""
    higher_better = by.partition(".")[0] in ("success_rate", "request_throughput", "output_tokens_per_s", "goodput_rate", "goodput_share")
    rows: list[dict[str, Any]] = [{"label": label, "value": figure(s, by)} for label, s in summaries.items()]
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
