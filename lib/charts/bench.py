"""Benchmark charts: pure functions of DataFrames -> plotly Figures (the page and notebooks share them).

`df` is always per-request rows as `BenchStore.requests(ids, label=True)` returns them (instants in
ms since the run's start, a `run` label column when several runs are drawn together), or the few columns
the charts read (lib.bench.chartdata). Latency figures use succeeded, measured requests only (warm-up
dropped), as lib.bench.stats does.

A figure's size does not grow with a long run (lib.charts.reduce): up to MAX_POINTS values it draws
each one; beyond, histograms are binned counts of every value, CDFs go through quantiles, latency over
time is per-bucket quantiles, and the inter-chunk distribution reads an evenly spread sample of requests.
A figure drawn from a sample or buckets says so under its title.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

from . import reduce
from .reduce import GAP_SAMPLE, MAX_POINTS

__all__ = [
    "LATENCY_LABELS", "RUN_FIGURES", "errors_by_class", "itl_distribution", "latency_cdf", "latency_histogram",
    "latency_over_time", "percentile_bars", "ranking_bar", "run_figures", "sweep_curve", "throughput_over_time",
]

LATENCY_LABELS = {
    "ttft_ms": "TTFT (ms)", "e2e_ms": "end-to-end (ms)", "itl_ms": "inter-chunk latency (ms)", "tpot_ms": "TPOT (ms)",
    "ttfb_ms": "time to headers (ms)", "queue_ms": "queue (ms)",
}


def _flat_template() -> go.layout.Template:
    """plotly_white's 2-D part: the charts look the same, and a figure takes ~7 ms to get it, not the ~27 ms of
    validating the whole template's 3-D, polar, geo and other traces' defaults (eight figures a run view)."""
    white = pio.templates["plotly_white"]
    layout = {k: v for k, v in white.layout.to_plotly_json().items()
              if k not in ("polar", "ternary", "scene", "geo", "coloraxis", "colorscale")}
    return go.layout.Template(layout=layout, data={k: white.data[k] for k in ("bar", "histogram", "scatter", "scattergl")})


_LAYOUT = dict(template=_flat_template(), margin=dict(l=40, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.2))
_PALETTE = px.colors.qualitative.Plotly


def _layout(title: str, note: str | None = None, **more: Any) -> dict[str, Any]:
    """A figure's whole layout, set in one update (each update_layout validates: ~5-10 ms). `note`: a line under
    the title saying how a long run's figure was reduced (a sample, buckets)."""
    if note is None:
        return {"title": title, **_LAYOUT, **more}
    return {**_LAYOUT, "title": {"text": title, "subtitle": {"text": note}}, "margin": {**_LAYOUT["margin"], "t": 80}, **more}


def _counted(df: pd.DataFrame) -> pd.Series:
    """Per row: succeeded and measured (not warm-up)."""
    keep = df["ok"].astype(bool)
    if "warmup" in df:
        keep &= ~df["warmup"].astype(bool)
    return keep


def _measured_ok(df: pd.DataFrame, columns: Sequence[str | None] | None = None) -> pd.DataFrame:
    """The succeeded measured rows (of only `columns` when given: a long run's rows are not copied whole)."""
    if df.empty:
        return df
    if columns is None:
        return df[_counted(df)]
    return df.loc[_counted(df), list(dict.fromkeys(c for c in columns if c is not None and c in df))]


def _by(df: pd.DataFrame, by: str | None) -> str | None:
    return by if by and by in df and df[by].nunique() > 1 else None


def _empty(title: str, note: str = "no succeeded requests yet") -> go.Figure:
    return go.Figure(layout=_layout(title, xaxis_visible=False, yaxis_visible=False, annotations=[
        dict(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")]))


def _groups(df: pd.DataFrame, by: str | None) -> Any:
    """(name, rows) per group in order of appearance (as plotly express colours them), or one (None, df)."""
    return df.groupby(by, sort=False) if by else [(None, df)]


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _values(df: pd.DataFrame, metric: str, by: str | None) -> pd.DataFrame:
    """Long form (value[, by]) of a metric; itl_ms flattened to every gap."""
    if metric == "itl_ms":
        arrays = [np.asarray(x, dtype=float) if hasattr(x, "__len__") else np.empty(0) for x in df["itl_ms"]]
        lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
        long = pd.DataFrame({"value": np.concatenate(arrays) if arrays else np.empty(0)})
        if by:
            long[by] = np.repeat(df[by].to_numpy(), lengths)
    else:
        long = df[[metric] + ([by] if by else [])].rename(columns={metric: "value"})
        long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.dropna(subset=["value"])


def _latency_values(
    df: pd.DataFrame, metric: str, by: str | None, title: str | None, kind: str
) -> tuple[str, str, str | None, pd.DataFrame]:
    """What a latency histogram and CDF both start from: the axis label, the title, the grouping, the values."""
    label = LATENCY_LABELS.get(metric, metric)
    ok = _measured_ok(df, [metric, by])
    by = _by(ok, by)
    name = label.split(" (")[0]
    return label, title or f"{name[:1].upper()}{name[1:]} {kind}", by, _values(ok, metric, by)


def latency_histogram(df: pd.DataFrame, metric: str = "ttft_ms", by: str | None = "run", nbins: int = 60,
                      title: str | None = None, note: str | None = None) -> go.Figure:
    """Histogram of a latency; one overlaid colour per run, or p50/p95/p99 lines for one run. Beyond MAX_POINTS
    values, the same bins' counts of every value (_binned_histogram). `note`: a line under the title."""
    label, title, by, long = _latency_values(df, metric, by, title, "distribution")
    if long.empty:
        return _empty(title)
    if len(long) <= MAX_POINTS:
        fig = px.histogram(long, x="value", color=by, nbins=nbins, barmode="overlay", opacity=0.65 if by else 0.9,
                           labels={"value": label})
    else:
        fig = _binned_histogram(long, by, nbins, label)
    more: dict[str, Any] = {}
    if by is None:
        # p95 and p99 often sit a few ms apart: each label on a row of its own, right of its line, so none covers
        # another. Shapes and labels set with the layout: add_vline costs ~10 ms a line.
        pcts = [(q, dash, float(v)) for (q, dash), v in
                zip(((50, "solid"), (95, "dash"), (99, "dot")), np.percentile(long["value"], [50, 95, 99]), strict=True)]
        more["shapes"] = [dict(type="line", xref="x", yref="paper", x0=v, x1=v, y0=0, y1=1,
                               line=dict(dash=dash, color="#d62728")) for q, dash, v in pcts]
        more["annotations"] = [dict(x=v, xref="x", y=1.0 - 0.1 * row, yref="paper", text=f"p{q} {v:,.0f}", showarrow=False,
                                    xanchor="left", yanchor="top", bgcolor="rgba(255,255,255,0.8)", font=dict(size=11))
                               for row, (q, dash, v) in enumerate(pcts)]
    fig.update_layout(**_layout(title, note, yaxis_title="requests" if metric != "itl_ms" else "gaps", **more))
    return fig


def _binned_histogram(long: pd.DataFrame, by: str | None, nbins: int, label: str) -> go.Figure:
    """What px.histogram draws, from counts: one bin edge set for every group (overlays line up), each bin sent
    once as its centre and count (plotly.js sums them into the same bins), so the figure holds ~nbins points."""
    edges = reduce.nice_edges(long["value"].to_numpy(), nbins)
    centres, size = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
    traces = []
    for i, (name, g) in enumerate(_groups(long, by)):
        counts = reduce.histogram(g["value"].to_numpy(), edges)
        full = counts > 0
        traces.append(go.Histogram(
            x=centres[full], y=counts[full], histfunc="sum", xbins=dict(start=float(edges[0]), end=float(edges[-1]), size=size),
            name=str(name) if name is not None else label, legendgroup=str(name), showlegend=name is not None,
            marker_color=_PALETTE[i % len(_PALETTE)], opacity=0.65 if by else 0.9,
            hovertemplate=(f"{by}={name}<br>" if name is not None else "") + f"{label}=%{{x}}<br>count=%{{y}}<extra></extra>"))
    return go.Figure(data=traces, layout=dict(barmode="overlay", xaxis_title=label, legend_title_text=by or ""))


def latency_cdf(df: pd.DataFrame, metric: str = "ttft_ms", by: str | None = "run", title: str | None = None) -> go.Figure:
    """Empirical CDF of a latency: the share of requests at or below each value, one line per run (of a long
    run, the line through reduce.CDF_POINTS of its quantiles)."""
    label, title, by, long = _latency_values(df, metric, by, title, "CDF")
    if long.empty:
        return _empty(title)
    note = None
    if len(long) <= MAX_POINTS:
        fig = px.ecdf(long, x="value", color=by, labels={"value": label})
    else:
        traces = []
        for i, (name, g) in enumerate(_groups(long, by)):
            x, share = reduce.cdf_points(g["value"].to_numpy())
            traces.append(go.Scatter(x=x, y=share, mode="lines", name=str(name) if name is not None else label,
                                     showlegend=name is not None, line=dict(color=_PALETTE[i % len(_PALETTE)]),
                                     hovertemplate=f"{label}=%{{x:,.1f}}<br>share=%{{y:.2%}}<extra>{name or ''}</extra>"))
        fig = go.Figure(data=traces, layout=dict(xaxis_title=label, legend_title_text=by or ""))
        note = (f"Drawn through {reduce.CDF_POINTS:,} quantiles of each run's values ({len(long):,} in all)." if by
                else f"Drawn through {reduce.CDF_POINTS:,} quantiles of the run's {len(long):,} values.")
    qs = (0.5, 0.95, 0.99)
    fig.update_layout(**_layout(
        title, note, yaxis_title="share of requests", yaxis_tickformat=".0%",
        shapes=[dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=q, y1=q, line=dict(dash="dot", color="#999")) for q in qs],
        annotations=[dict(x=1, xref="paper", y=q, yref="y", text=f"p{int(q * 100)}", showarrow=False, xanchor="left",
                          yanchor="middle") for q in qs]))
    return fig


def itl_distribution(df: pd.DataFrame, by: str | None = "run", nbins: int = 80, *, of: int | None = None,
                     sample: int = GAP_SAMPLE) -> go.Figure:
    """Every gap between consecutive content chunks (Dify streams text pieces, not tokens) of the succeeded,
    measured requests of `df`; of a run with more than `sample` of them, the gaps of an evenly spread sample of
    `sample` (by row order, a run at a time). `of`: how many such requests there were when `df` holds a sample
    of them already (lib.bench.chartdata), so the figure says so."""
    ok = _measured_ok(df, ["itl_ms", "ok", "warmup", by])
    of = max(of or 0, len(ok))
    group = _by(ok, by)
    if any(len(g) > sample for _, g in _groups(ok, group)):
        ok = pd.concat([g.iloc[reduce.spread(len(g), sample)] for _, g in _groups(ok, group)])
    if len(ok) >= of:
        return latency_histogram(ok, "itl_ms", by=by, nbins=nbins, title="Inter-chunk latency (every gap)")
    return latency_histogram(ok, "itl_ms", by=by, nbins=nbins, title="Inter-chunk latency (a sample's gaps)",
                             note=f"The gaps of an evenly spread sample: {len(ok):,} of {of:,} succeeded requests"
                                  + (f" (≤ {max(len(g) for _, g in _groups(ok, group)):,} a run)." if group else "."))


def latency_over_time(df: pd.DataFrame, metrics: Sequence[str] = ("ttft_ms", "e2e_ms"), by: str | None = "run",
                      window: int = 25) -> go.Figure:
    """Each succeeded request's latency at the moment it ended (s since its run started), with a
    rolling median; failures marked on the time axis. Warm-up requests shown faded. Beyond MAX_POINTS
    succeeded requests, per time bucket: the median and the p5-p95 band, failures counted (_latency_buckets)."""
    title = "Latency over time"
    if df.empty:
        return _empty(title)
    by = _by(df, by)
    if int(df["ok"].astype(bool).sum()) > MAX_POINTS:
        return _latency_buckets(df, metrics, by, title)
    traces: list[Any] = []
    i = 0
    for name, g in _groups(df, by):
        g = g.sort_values("t_end")
        ok = g[g["ok"].astype(bool)]
        t = ok["t_end"] / 1000.0
        for metric in metrics:
            color = _PALETTE[i % len(_PALETTE)]
            i += 1
            label = LATENCY_LABELS.get(metric, metric).split(" (")[0] + (f" · {name}" if name is not None else "")
            y = pd.to_numeric(ok[metric], errors="coerce")
            warm = ok["warmup"].astype(bool) if "warmup" in ok else pd.Series(False, index=ok.index)
            traces.append(go.Scattergl(x=t, y=y, mode="markers", name=label, marker=dict(size=4, color=color),
                                       marker_opacity=np.where(warm, 0.15, 0.5), legendgroup=label))
            if len(y) >= 3:
                traces.append(go.Scatter(x=t, y=y.rolling(min(window, len(y)), min_periods=1).median(), mode="lines",
                                         line=dict(color=color, width=2), name=f"{label} rolling median",
                                         legendgroup=label, showlegend=False))
        bad = g[~g["ok"].astype(bool)]
        if not bad.empty:
            failed = "failed" + (f" · {name}" if name is not None else "")
            traces.append(go.Scatter(x=bad["t_end"] / 1000.0, y=[0] * len(bad), mode="markers", name=failed,
                                     marker=dict(symbol="x", color="#d62728", size=8),
                                     text=bad["error_class"], hovertemplate="%{text}<extra></extra>"))
    return go.Figure(data=traces, layout=_layout(title, xaxis_title="seconds since start (answer ended)", yaxis_title="ms"))


def _latency_buckets(df: pd.DataFrame, metrics: Sequence[str], by: str | None, title: str) -> go.Figure:
    """latency_over_time of a long run: per time bucket of the answers' ends (reduce.bucket_seconds), each latency's
    median as a line in its p5-p95 band over the succeeded measured requests; failures counted per bucket at 0;
    the warm-up shaded."""
    t_end = pd.to_numeric(df["t_end"], errors="coerce").to_numpy(dtype=float) / 1000.0
    bucket = reduce.bucket_seconds(float(np.nanmax(t_end) - np.nanmin(t_end)) if np.isfinite(t_end).any() else 0.0)
    traces: list[Any] = []
    shapes, annotations = [], []
    i = 0
    for name, g in _groups(df, by):
        at = df.index.get_indexer(g.index)
        t = t_end[at]
        ok = g["ok"].astype(bool).to_numpy()
        warm = g["warmup"].astype(bool).to_numpy() if "warmup" in g else np.zeros(len(g), dtype=bool)
        counted = ok & ~warm
        for metric in metrics:
            color = _PALETTE[i % len(_PALETTE)]
            i += 1
            label = LATENCY_LABELS.get(metric, metric).split(" (")[0] + (f" · {name}" if name is not None else "")
            b = reduce.bucket_stats(t[counted], pd.to_numeric(g[metric], errors="coerce").to_numpy(dtype=float)[counted], bucket)
            x = b["t"].to_numpy()
            traces += [
                go.Scatter(x=x, y=b["q0.95"].to_numpy(), mode="lines", line=dict(width=0, color=color), legendgroup=label,
                           showlegend=False, hoverinfo="skip"),
                go.Scatter(x=x, y=b["q0.05"].to_numpy(), mode="lines", line=dict(width=0, color=color), fill="tonexty",
                           fillcolor=_rgba(color, 0.2), legendgroup=label, showlegend=False, hoverinfo="skip"),
                go.Scatter(x=x, y=b["q0.5"].to_numpy(), mode="lines", name=label, legendgroup=label,
                           line=dict(color=color, width=2), customdata=b[["q0.05", "q0.95", "n"]].to_numpy(),
                           hovertemplate="%{x:g} s: median %{y:,.1f} ms (p5 %{customdata[0]:,.1f}, p95 %{customdata[1]:,.1f}) "
                                         "of %{customdata[2]:,} requests<extra>" + label + "</extra>"),
            ]
        if (~ok).any():
            failed_t = t[~ok]
            starts, counts = np.unique(np.floor(failed_t[np.isfinite(failed_t)] / bucket) * bucket, return_counts=True)
            traces.append(go.Scatter(x=starts, y=np.zeros(len(starts)), mode="markers", customdata=counts,
                                     name="failed" + (f" · {name}" if name is not None else ""),
                                     marker=dict(symbol="x", color="#d62728", size=8),
                                     hovertemplate="%{x:g} s: %{customdata:,} failed<extra></extra>"))
    warm_all = df["warmup"].astype(bool).to_numpy() if "warmup" in df else np.zeros(len(df), dtype=bool)
    if np.isfinite(t_end[warm_all]).any():  # one shade over the warm-up (of every run drawn)
        x0, x1 = float(np.nanmin(t_end[warm_all])), float(np.nanmax(t_end[warm_all]))
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, fillcolor="#999", opacity=0.12,
                           line_width=0, layer="below"))
        annotations.append(dict(x=x0, xref="x", y=1, yref="paper", text="warm-up", showarrow=False, xanchor="left",
                                yanchor="top"))
    note = f"Per {bucket:g} s bucket: the median in its p5-p95 band, of {int(_counted(df).sum()):,} succeeded requests."
    return go.Figure(data=traces, layout=_layout(title, note, xaxis_title="seconds since start (answer ended)",
                                                 yaxis_title="ms", shapes=shapes, annotations=annotations))


def throughput_over_time(df: pd.DataFrame, bin_s: float | None = None, by: str | None = "run") -> go.Figure:
    """Answers completed and output tokens per second, in `bin_s` bins of the time they ended (by default 1 s,
    or a round step that keeps a long run within reduce.MAX_BUCKETS bins)."""
    title = "Throughput over time"
    t_all = pd.to_numeric(df["t_end"], errors="coerce").to_numpy(dtype=float) / 1000.0 if not df.empty else np.empty(0)
    if not np.isfinite(t_all).any():
        return _empty(title, "no answers yet")
    by = _by(df, by)
    step = bin_s if bin_s is not None else reduce.bucket_seconds(float(np.nanmax(t_all) - np.nanmin(t_all)))
    tokens_all = pd.to_numeric(df["output_tokens"], errors="coerce").fillna(0).to_numpy(dtype=float)
    traces: list[Any] = []
    for i, (name, g) in enumerate(_groups(df, by)):
        at = df.index.get_indexer(g.index)
        t, tokens = t_all[at], tokens_all[at]
        ok = g["ok"].astype(bool).to_numpy()
        keep = np.isfinite(t)
        if not keep.any():
            continue
        idx = np.floor(t[keep] / step).astype(np.int64)
        low = int(idx.min())
        requests = np.bincount(idx - low)
        present = np.flatnonzero(requests)  # buckets without an answer are not drawn (a gap, not a zero)
        succeeded = np.bincount(idx - low, weights=ok[keep])[present] / step
        failed = requests[present] / step - succeeded
        out_tokens = np.bincount(idx - low, weights=tokens[keep] * ok[keep])[present] / step
        x = (present + low) * step
        suffix = f" · {name}" if name is not None else ""
        color = _PALETTE[i % len(_PALETTE)]
        traces.append(go.Scatter(x=x, y=succeeded, name="succeeded req/s" + suffix, mode="lines+markers", line=dict(color=color)))
        if failed.any():
            traces.append(go.Scatter(x=x, y=failed, name="failed req/s" + suffix, mode="lines", line=dict(color=color, dash="dot")))
        traces.append(go.Scatter(x=x, y=out_tokens, name="output tokens/s" + suffix, mode="lines", yaxis="y2",
                                 line=dict(color=color, dash="dash")))
    note = f"Per second, averaged over {step:g} s buckets." if bin_s is None and step != 1.0 else None
    return go.Figure(data=traces, layout=_layout(
        title, note, xaxis_title="seconds since start", yaxis_title="requests/s",
        yaxis2=dict(title="output tokens/s", overlaying="y", side="right", showgrid=False)))


RUN_FIGURES = ("ttft_hist", "e2e_hist", "ttft_cdf", "e2e_cdf", "over_time", "throughput", "itl", "errors")


def run_figures(rows: pd.DataFrame, gaps: pd.DataFrame | None = None, *, gaps_of: int | None = None) -> dict[str, go.Figure]:
    """Every chart of one run's view, by name (RUN_FIGURES): the Benchmark page and the HTML report draw these.
    `rows`: the run's requests (lib.bench.chartdata.CHART_COLUMNS, or every column); `gaps`: the requests whose
    inter-chunk gaps are drawn (default: `rows`' own itl_ms); `gaps_of`: as itl_distribution's `of`."""
    return {
        "ttft_hist": latency_histogram(rows, "ttft_ms"), "e2e_hist": latency_histogram(rows, "e2e_ms"),
        "ttft_cdf": latency_cdf(rows, "ttft_ms"), "e2e_cdf": latency_cdf(rows, "e2e_ms"),
        "over_time": latency_over_time(rows), "throughput": throughput_over_time(rows),
        "itl": itl_distribution(rows if gaps is None else gaps, of=gaps_of), "errors": errors_by_class(rows),
    }


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
    counts = counts.groupby(([by] if by else []) + ["error_class", "error_phase"], sort=False).size().reset_index(name="requests")
    traces = []  # one stacked bar per phase; several runs side by side on a two-level axis (run, class)
    for i, (phase, g) in enumerate(counts.groupby("error_phase", sort=False)):
        x = [g[by].astype(str).tolist(), g["error_class"].tolist()] if by else g["error_class"].tolist()
        traces.append(go.Bar(x=x, y=g["requests"].to_numpy(), name=str(phase), marker_color=_PALETTE[i % len(_PALETTE)],
                             showlegend=True,
                             hovertemplate="%{x}: %{y:,} failed while " + str(phase) + "<extra></extra>"))
    return go.Figure(data=traces, layout=_layout(title, barmode="stack", xaxis_title="error class", yaxis_title="requests",
                                                 legend_title_text="failed while"))


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
