"""Benchmark charts: pure functions of DataFrames -> plotly Figures (the page and notebooks share them).

`df` is always per-request rows as `BenchStore.requests(ids, label=True)` returns them (instants in
ms since the run's start, a `run` label column when several runs are drawn together). Latency figures
use succeeded, measured requests only (warm-up dropped), as lib.bench.stats does.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = [
    "LATENCY_LABELS", "errors_by_class", "itl_distribution", "latency_cdf", "latency_histogram", "latency_over_time",
    "percentile_bars", "ranking_bar", "sweep_curve", "throughput_over_time",
]

LATENCY_LABELS = {
    "ttft_ms": "TTFT (ms)", "e2e_ms": "end-to-end (ms)", "itl_ms": "inter-chunk latency (ms)", "tpot_ms": "TPOT (ms)",
    "ttfb_ms": "time to headers (ms)", "queue_ms": "queue (ms)",
}
_LAYOUT = dict(template="plotly_white", margin=dict(l=40, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.2))


def _measured_ok(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    keep = df["ok"].astype(bool)
    if "warmup" in df:
        keep &= ~df["warmup"].astype(bool)
    return df[keep]


def _by(df: pd.DataFrame, by: str | None) -> str | None:
    return by if by and by in df and df[by].nunique() > 1 else None


def _empty(title: str, note: str = "no succeeded requests yet") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, **_LAYOUT)
    return fig


def _values(df: pd.DataFrame, metric: str, by: str | None) -> pd.DataFrame:
    """Long form (value[, by]) of a metric; itl_ms flattened to every gap."""
    if metric == "itl_ms":
        cols = ["itl_ms"] + ([by] if by else [])
        long = df[cols].explode("itl_ms").rename(columns={"itl_ms": "value"})
    else:
        long = df[[metric] + ([by] if by else [])].rename(columns={metric: "value"})
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.dropna(subset=["value"])


def _latency_values(
    df: pd.DataFrame, metric: str, by: str | None, title: str | None, kind: str
) -> tuple[str, str, str | None, pd.DataFrame]:
    """What a latency histogram and CDF both start from: the axis label, the title, the grouping, the values."""
    label = LATENCY_LABELS.get(metric, metric)
    ok = _measured_ok(df)
    by = _by(ok, by)
    name = label.split(" (")[0]
    return label, title or f"{name[:1].upper()}{name[1:]} {kind}", by, _values(ok, metric, by)


def latency_histogram(df: pd.DataFrame, metric: str = "ttft_ms", by: str | None = "run", nbins: int = 60,
                      title: str | None = None) -> go.Figure:
    """Histogram of a latency; one overlaid colour per run, or p50/p95/p99 lines for one run."""
    label, title, by, long = _latency_values(df, metric, by, title, "distribution")
    if long.empty:
        return _empty(title)
    fig = px.histogram(long, x="value", color=by, nbins=nbins, barmode="overlay", opacity=0.65 if by else 0.9,
                       labels={"value": label})
    if by is None:
        # p95 and p99 often sit a few ms apart: each label on a row of its own, right of its line, so none covers another.
        for row, (q, dash) in enumerate(((50, "solid"), (95, "dash"), (99, "dot"))):
            v = float(np.percentile(long["value"], q))
            fig.add_vline(x=v, line_dash=dash, line_color="#d62728", annotation_text=f"p{q} {v:,.0f}",
                          annotation_position="top right", annotation_y=1.0 - 0.1 * row, annotation_yanchor="top",
                          annotation_bgcolor="rgba(255,255,255,0.8)", annotation_font_size=11)
    fig.update_layout(title=title, yaxis_title="requests" if metric != "itl_ms" else "gaps", **_LAYOUT)
    return fig


def latency_cdf(df: pd.DataFrame, metric: str = "ttft_ms", by: str | None = "run", title: str | None = None) -> go.Figure:
    """Empirical CDF of a latency: the share of requests at or below each value, one line per run."""
    label, title, by, long = _latency_values(df, metric, by, title, "CDF")
    if long.empty:
        return _empty(title)
    fig = px.ecdf(long, x="value", color=by, labels={"value": label})
    for q in (0.5, 0.95, 0.99):
        fig.add_hline(y=q, line_dash="dot", line_color="#999", annotation_text=f"p{int(q * 100)}", annotation_position="right")
    fig.update_layout(title=title, yaxis_title="share of requests", yaxis_tickformat=".0%", **_LAYOUT)
    return fig


def itl_distribution(df: pd.DataFrame, by: str | None = "run", nbins: int = 80) -> go.Figure:
    """Every gap between consecutive content chunks (Dify streams text pieces, not tokens)."""
    return latency_histogram(df, "itl_ms", by=by, nbins=nbins, title="Inter-chunk latency (every gap)")


def latency_over_time(df: pd.DataFrame, metrics: Sequence[str] = ("ttft_ms", "e2e_ms"), by: str | None = "run",
                      window: int = 25) -> go.Figure:
    """Each succeeded request's latency at the moment it ended (s since its run started), with a
    rolling median; failures marked on the time axis. Warm-up requests shown faded."""
    title = "Latency over time"
    if df.empty:
        return _empty(title)
    by = _by(df, by)
    fig = go.Figure()
    groups = df.groupby(by, sort=False) if by else [(None, df)]
    palette = px.colors.qualitative.Plotly
    i = 0
    for name, g in groups:
        g = g.sort_values("t_end")
        ok = g[g["ok"].astype(bool)]
        t = ok["t_end"] / 1000.0
        for metric in metrics:
            color = palette[i % len(palette)]
            i += 1
            label = LATENCY_LABELS.get(metric, metric).split(" (")[0] + (f" · {name}" if name is not None else "")
            y = pd.to_numeric(ok[metric], errors="coerce")
            warm = ok["warmup"].astype(bool) if "warmup" in ok else pd.Series(False, index=ok.index)
            fig.add_trace(go.Scattergl(x=t, y=y, mode="markers", name=label, marker=dict(size=4, color=color),
                                       marker_opacity=np.where(warm, 0.15, 0.5), legendgroup=label))
            if len(y) >= 3:
                fig.add_trace(go.Scatter(x=t, y=y.rolling(min(window, len(y)), min_periods=1).median(), mode="lines",
                                         line=dict(color=color, width=2), name=f"{label} rolling median",
                                         legendgroup=label, showlegend=False))
        bad = g[~g["ok"].astype(bool)]
        if not bad.empty:
            failed = "failed" + (f" · {name}" if name is not None else "")
            fig.add_trace(go.Scatter(x=bad["t_end"] / 1000.0, y=[0] * len(bad), mode="markers", name=failed,
                                     marker=dict(symbol="x", color="#d62728", size=8),
                                     text=bad["error_class"], hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="seconds since start (answer ended)", yaxis_title="ms", **_LAYOUT)
    return fig


def throughput_over_time(df: pd.DataFrame, bin_s: float = 1.0, by: str | None = "run") -> go.Figure:
    """Answers completed and output tokens per second, in `bin_s` bins of the time they ended."""
    title = "Throughput over time"
    if df.empty or df["t_end"].isna().all():
        return _empty(title, "no answers yet")
    by = _by(df, by)
    d = df.dropna(subset=["t_end"]).copy()
    d["t"] = (d["t_end"] / 1000.0 // bin_s) * bin_s
    d["ok_i"] = d["ok"].astype(bool).astype(int)
    d["tokens"] = pd.to_numeric(d["output_tokens"], errors="coerce").fillna(0) * d["ok_i"]
    keys = ["t"] + ([by] if by else [])
    agg = d.groupby(keys).agg(succeeded=("ok_i", "sum"), requests=("ok_i", "size"), tokens=("tokens", "sum")).reset_index()
    agg["failed"] = agg["requests"] - agg["succeeded"]
    for c in ("succeeded", "failed", "tokens"):
        agg[c] = agg[c] / bin_s
    fig = go.Figure()
    palette = px.colors.qualitative.Plotly
    for i, (name, g) in enumerate(agg.groupby(by, sort=False) if by else [(None, agg)]):
        suffix = f" · {name}" if name is not None else ""
        color = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=g["t"], y=g["succeeded"], name="succeeded req/s" + suffix, mode="lines+markers", line=dict(color=color)))
        if g["failed"].any():
            fig.add_trace(go.Scatter(x=g["t"], y=g["failed"], name="failed req/s" + suffix, mode="lines",
                                     line=dict(color=color, dash="dot")))
        fig.add_trace(go.Scatter(x=g["t"], y=g["tokens"], name="output tokens/s" + suffix, mode="lines", yaxis="y2",
                                 line=dict(color=color, dash="dash")))
    fig.update_layout(title=title, xaxis_title="seconds since start", yaxis_title="requests/s",
                      yaxis2=dict(title="output tokens/s", overlaying="y", side="right", showgrid=False), **_LAYOUT)
    return fig


def errors_by_class(df: pd.DataFrame, by: str | None = "run") -> go.Figure:
    """Failed requests by error class, coloured by the phase they failed in."""
    title = "Errors by class"
    bad = df[~df["ok"].astype(bool)] if not df.empty else df
    if "warmup" in bad:
        bad = bad[~bad["warmup"].astype(bool)]
    if bad.empty:
        return _empty(title, "no errors")
    by = _by(bad, by)
    counts = bad.assign(error_class=bad["error_class"].fillna("Unknown"), error_phase=bad["error_phase"].fillna("unknown"))
    counts = counts.groupby(["error_class", "error_phase"] + ([by] if by else [])).size().reset_index(name="requests")
    fig = px.bar(counts, x="error_class", y="requests", color="error_phase", facet_col=by, barmode="stack",
                 labels={"error_class": "error class", "error_phase": "failed while"})
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def percentile_bars(
    summaries: dict[str, dict[str, Any]], metric: str = "ttft_ms", stats: Sequence[str] = ("p50", "p90", "p95", "p99")
) -> go.Figure:
    """One latency's percentiles, grouped by run: the comparison view."""
    label = LATENCY_LABELS.get(metric, metric)
    rows = [{"run": run, "stat": s, "value": (summ.get(metric) or {}).get(s)} for run, summ in summaries.items() for s in stats]
    frame = pd.DataFrame(rows).dropna(subset=["value"])
    if frame.empty:
        return _empty(f"{label} percentiles", "no figures")
    fig = px.bar(frame, x="stat", y="value", color="run", barmode="group", labels={"value": label, "stat": ""})
    fig.update_layout(title=f"{label.split(' (')[0]} percentiles by run", **_LAYOUT)
    return fig


def sweep_curve(points: pd.DataFrame, latency: str = "ttft_ms", stats: Sequence[str] = ("p50", "p95")) -> go.Figure:
    """Throughput against latency over a sweep: one point per level (`level`, `request_throughput`
    and `{latency}.{stat}` columns, as lib.bench.stats.summaries_frame gives), joined in level order.
    The knee, where latency climbs while throughput stops growing, is the app's capacity."""
    label = LATENCY_LABELS.get(latency, latency)
    title = f"Throughput vs {label.split(' (')[0]} across the sweep"
    if points.empty:
        return _empty(title, "no sweep levels yet")
    pts = points.sort_values("level")
    fig = go.Figure()
    for s, dash in zip(stats, ("solid", "dash", "dot"), strict=False):  # three dashes: a fourth stat is not drawn
        col = f"{latency}.{s}"
        if col not in pts:
            continue
        fig.add_trace(go.Scatter(x=pts["request_throughput"], y=pts[col], mode="lines+markers+text", name=f"{s}",
                                 text=[f"{v:g}" for v in pts["level"]], textposition="top center", line=dict(dash=dash)))
    fig.update_layout(title=title, xaxis_title="throughput (succeeded req/s)", yaxis_title=label, **_LAYOUT)
    return fig


def ranking_bar(ranking: list[dict[str, Any]], by: str) -> go.Figure:
    """Targets ranked by one figure (best first)."""
    frame = pd.DataFrame([r for r in ranking if r.get("value") is not None])
    if frame.empty:
        return _empty(f"Ranked by {by}", "no figures")
    fig = px.bar(frame, x="value", y="label", orientation="h", text="value", labels={"value": by, "label": ""})
    fig.update_traces(texttemplate="%{text:.1f}")
    fig.update_layout(title=f"Ranked by {by} (best first)", yaxis=dict(autorange="reversed"), **_LAYOUT)
    return fig
