"""Per-node waterfall charts: pure functions of lib.waterfall's frames -> plotly Figures.

`request_waterfall_figure` draws one request (`lib.waterfall.request_waterfall(...)`): a horizontal bar
per segment on a time axis in ms since the request was sent, Dify's own overhead in its own colour, a
failed node in red and crossed, TTFT and the end as dashed lines. `node_stats_figure` draws a run
(`lib.waterfall.node_stats(...)`): each segment's p50 as a bar with a whisker up to its p95.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from lib.waterfall import LABELS, Waterfall

__all__ = ["COLORS", "node_stats_figure", "request_waterfall_figure"]

COLORS = {"dify": "#F58518", "node": "#4C78A8", "gap": "#BAB0AC", "tail": "#54A24B", "failed": "#E45756"}
KIND_NAMES = {"dify": LABELS["dify"], "node": "node", "gap": LABELS["gap"], "tail": LABELS["tail"], "failed": "failed node"}
_LAYOUT: dict[str, Any] = {"template": "plotly_white", "margin": {"l": 40, "r": 20, "t": 50, "b": 40},
                           "legend": {"orientation": "h", "y": -0.2}}
# Lines of title and subtitle that fit a half-width chart (the reports' two columns) beside the mode bar.
_TITLE_CHARS, _SUBTITLE_CHARS = 48, 60


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _title(text: str, sub: str = "") -> dict[str, object]:
    """The title and the figures' subtitle broken at words into lines that fit a half-width chart: plotly
    neither wraps a title nor shrinks it, so a long one ran under the mode bar and off the chart."""
    head, tail = _wrap(text, _TITLE_CHARS), _wrap(sub, _SUBTITLE_CHARS) if sub else []
    title: dict[str, object] = {"text": "<br>".join(head), "x": 0, "xanchor": "left"}
    if tail:
        title["subtitle"] = {"text": "<br>".join(tail)}
    return {"title": title, "margin": {**_LAYOUT["margin"], "t": max(50, 40 + 22 * len(head) + 18 * len(tail))}}


def _empty(title: str, note: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(**{**_LAYOUT, **_title(title)}, xaxis_visible=False, yaxis_visible=False)
    return fig


def _kind_of(row: pd.Series) -> str:
    return "failed" if row["kind"] == "node" and bool(row["failed"]) else str(row["kind"])


def _fmt(v: object, unit: str = " ms") -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{float(v):,.1f}{unit}"  # type: ignore[arg-type]


def request_waterfall_figure(wf: Waterfall, title: str = "Where the request's time went") -> go.Figure:
    """One request's waterfall: a bar per segment (start -> end, ms since sent), earliest at the top."""
    seg = wf.segments
    if seg.empty:
        return _empty(title, wf.note or "no segments")
    seg = seg.assign(_kind=seg.apply(_kind_of, axis=1))
    small = 0.01 * float(wf.e2e_ms or 0.0)  # gaps shorter than this carry no label: they would crowd their row
    fig = go.Figure()
    for kind in ("dify", "node", "failed", "gap", "tail"):
        part = seg[seg["_kind"] == kind]
        if part.empty:
            continue
        hover = [
            f"<b>{r.label}</b><br>{_fmt(r.start_ms)} → {_fmt(r.end_ms)} ({_fmt(r.duration_ms)})"
            + (f"<br>{r.node_type} · {r.status}" if r.kind == "node" else "")
            + (f"<br>Dify's elapsed {_fmt(r.dify_elapsed_ms)}" if _fmt(r.dify_elapsed_ms) else "")
            + (f"<br>{int(r.tokens):,} tokens" if _fmt(r.tokens, "") else "")
            + (f"<br>{str(r.error)[:120]}" if isinstance(r.error, str) and r.error else "")
            for r in part.itertuples()
        ]
        fig.add_trace(go.Bar(
            y=part["label"], x=part["duration_ms"], base=part["start_ms"], orientation="h", name=KIND_NAMES[kind],
            marker={"color": COLORS[kind], "pattern": {"shape": "x"} if kind == "failed" else None},
            text=[f"✗ {_fmt(d)}" if kind == "failed" else "" if kind == "gap" and d < small else _fmt(d)
                  for d in part["duration_ms"]], textposition="auto",
            hovertext=hover, hoverinfo="text",
        ))
    order = list(dict.fromkeys(seg["label"]))  # first appearance: time order, gaps on one row
    for at, name in ((wf.ttft_ms, "first token"), (wf.e2e_ms, "end")):
        if at is not None:
            fig.add_vline(x=at, line={"dash": "dash", "color": "#555", "width": 1}, annotation_text=f"{name} {_fmt(at)}",
                          annotation_position="top")
    failed = f" · failed in {wf.failed_node}" if wf.failed_node else ""
    fig.update_layout(
        **{**_LAYOUT, **_title(title, f"{_fmt(wf.e2e_ms)} end-to-end{failed}")}, barmode="overlay", xaxis_title="ms since sent",
        yaxis={"categoryorder": "array", "categoryarray": order[::-1], "title": None, "automargin": True}, bargap=0.25,
    )
    return fig


def node_stats_figure(stats: pd.DataFrame, title: str = "Time per node across the run", *, show_e2e: bool = False) -> go.Figure:
    """Each segment's p50 per request (bar) with a whisker up to its p95, in run order; its `share_of_e2e`
    after its name. The end-to-end row is left out unless `show_e2e`."""
    if stats.empty:
        return _empty(title, "no requests with node events")
    df = stats if show_e2e else stats[stats["kind"] != "e2e"]
    df = df.assign(
        _kind=["failed" if k == "node" and (f or 0) > 0 else k for k, f in zip(df["kind"], df["failed"], strict=True)],
        # the share in the row's name: beside the bar it would sit on the p95 whisker
        _row=[f"{lab} · {s:.0%}" if pd.notna(s) else str(lab) for lab, s in zip(df["label"], df["share_of_e2e"], strict=True)],
    )
    fig = go.Figure()
    for kind in ("dify", "node", "failed", "gap", "tail", "e2e"):
        part = df[df["_kind"] == kind]
        if part.empty:
            continue
        p50 = part["p50_ms"].astype(float)
        p95 = part["p95_ms"].astype(float)
        share = part["share_of_e2e"].astype(float)
        fig.add_trace(go.Bar(
            y=part["_row"], x=p50, orientation="h", name=KIND_NAMES.get(kind, kind),
            marker={"color": COLORS.get(kind, "#72B7B2"), "pattern": {"shape": "x"} if kind == "failed" else None},
            error_x={"type": "data", "symmetric": False, "array": (p95 - p50).clip(lower=0), "arrayminus": [0] * len(part),
                     "thickness": 1.5, "width": 6},
            customdata=list(zip(p95, part["mean_ms"].astype(float), share, part["requests"], part["failed"], strict=True)),
            hovertemplate="<b>%{y}</b><br>p50 %{x:,.1f} ms · p95 %{customdata[0]:,.1f} ms · mean %{customdata[1]:,.1f} ms"
                          "<br>%{customdata[2]:.1%} of end-to-end · %{customdata[3]} requests · %{customdata[4]} failed"
                          "<extra></extra>",
        ))
    order = list(df["_row"])
    e2e = stats[stats["kind"] == "e2e"]
    e2e_text = f"end-to-end p50 {_fmt(e2e['p50_ms'].iloc[0])}, p95 {_fmt(e2e['p95_ms'].iloc[0])} · " if not e2e.empty else ""
    fig.update_layout(
        **{**_LAYOUT, **_title(title, e2e_text + "after each name: its share")}, xaxis_title="ms per request (bar p50, whisker p95)",
        yaxis={"categoryorder": "array", "categoryarray": order[::-1], "title": None, "automargin": True},
    )
    return fig
