"""Figures for the Metrics page: Prometheus frames (lib/metrics/queries.py) -> plotly Figures. Pure functions."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

_AXIS: dict[str, dict[str, Any]] = {
    "s": dict(title="seconds", tickformat=".3~s", ticksuffix="s"),
    "ratio": dict(title="share", tickformat=".1%", rangemode="tozero"),
    "req/s": dict(title="requests/s", rangemode="tozero"),
    "tokens/s": dict(title="tokens/s", rangemode="tozero"),
    "count": dict(title="in flight", rangemode="tozero"),
    "per s": dict(title="per second", rangemode="tozero"),
    "state": dict(title="state", tickvals=[0, 1, 2], ticktext=["closed", "half-open", "open"], range=[-0.2, 2.2]),
}
_HOVER = {"s": "%{y:.3s}s", "ratio": "%{y:.2%}", "state": "%{y}"}


def timeseries_figure(frame: pd.DataFrame, title: str, unit: str, *, height: int = 300,
                      x_range: tuple[datetime, datetime] | None = None) -> go.Figure:
    """One line per `series` over `timestamp`; an empty frame gives an empty chart that says so.
    `x_range` pins the time axis to the range picked, so a young series does not fill the width."""
    fig = go.Figure()
    if frame.empty:
        fig.add_annotation(text="No data in this range yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                           font=dict(size=14, color="gray"))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    else:
        hover = _HOVER.get(unit, "%{y:.3~f}")
        shape = "hv" if unit == "state" else "linear"
        for name, part in frame.sort_values("timestamp").groupby("series", sort=True):
            fig.add_trace(go.Scatter(
                x=part["timestamp"], y=part["value"], name=str(name), mode="lines", line=dict(shape=shape, width=2),
                hovertemplate=f"{name}<br>%{{x|%H:%M:%S}}<br>{hover}<extra></extra>",
            ))
        fig.update_yaxes(**_AXIS.get(unit, dict(title=unit)))
        if x_range is not None:
            fig.update_xaxes(range=list(x_range))
        fig.update_xaxes(tickformat="%H:%M")  # no date line under the ticks: it collides with the legend
    fig.update_layout(
        title=dict(text=title, x=0, font=dict(size=15)), height=height, margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0), hovermode="x unified", template="plotly_white",
        showlegend=not frame.empty,  # also for a single series: the legend names its job
    )
    return fig


def result_figure(frame: pd.DataFrame, title: str = "", x_range: tuple[datetime, datetime] | None = None) -> go.Figure:
    """The PromQL box's range result: a line per series, the y axis left unitless."""
    return timeseries_figure(frame, title, unit="value", height=360, x_range=x_range)


def latest_values(frame: pd.DataFrame) -> dict[str, float]:
    """The last value of each series (for the headline numbers over the charts)."""
    if frame.empty:
        return {}
    last = frame.sort_values("timestamp").groupby("series")["value"].last()
    return {str(k): float(v) for k, v in last.items()}
