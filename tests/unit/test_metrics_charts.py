"""lib/charts/metrics.py and lib/metrics/panels.py helpers: pure functions, tested directly."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd

from lib.charts.metrics import latest_values, result_figure, timeseries_figure
from lib.metrics.panels import PANELS, rate_window, render, selector, series_name, step_seconds
from lib.metrics.queries import instant_frame, range_frame

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def frame() -> pd.DataFrame:
    rows = [{"timestamp": T0 + timedelta(seconds=i), "value": float(i), "series": s} for s in ("gateway", "simulator") for i in range(5)]
    return pd.DataFrame(rows)


def test_a_line_per_series_with_the_units_axis():
    fig = timeseries_figure(frame(), "Request rate", "req/s", x_range=(T0, T0 + timedelta(minutes=5)))
    assert [t.name for t in fig.data] == ["gateway", "simulator"]
    assert list(fig.data[0].y) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert fig.layout.yaxis.title.text == "requests/s" and fig.layout.showlegend
    assert tuple(fig.layout.xaxis.range) == (T0, T0 + timedelta(minutes=5))
    state = timeseries_figure(frame(), "Breaker", "state")
    assert list(state.layout.yaxis.ticktext) == ["closed", "half-open", "open"] and state.data[0].line.shape == "hv"


def test_an_empty_frame_says_there_is_no_data():
    fig = timeseries_figure(pd.DataFrame(columns=["timestamp", "value", "series"]), "TTFT", "s")
    assert not fig.data and "No data" in fig.layout.annotations[0].text
    assert result_figure(frame(), "up").layout.title.text == "up"
    assert latest_values(frame()) == {"gateway": 4.0, "simulator": 4.0}
    assert latest_values(pd.DataFrame(columns=["timestamp", "value", "series"])) == {}


def test_prometheus_results_become_frames_and_empty_is_not_an_error():
    assert range_frame([]).empty
    result = [{"metric": {"job": "gateway"}, "values": [[1.0, "1"], [2.0, "NaN"], [3.0, "2.5"]]}]
    f = range_frame(result)
    assert list(f["value"]) == [1.0, 2.5] and list(f["job"]) == ["gateway", "gateway"]  # NaN dropped: a gap
    assert str(f["timestamp"].dt.tz) == "UTC"
    i = instant_frame([{"metric": {"job": "a"}, "value": [1.0, "3"]}])
    assert i.loc[0, "job"] == "a" and i.loc[0, "value"] == 3.0
    assert instant_frame([]).empty
    assert instant_frame([1.0, "7"]).loc[0, "value"] == 7.0  # a scalar result


def test_selectors_windows_and_legends():
    assert selector() == 'job=~".+"'
    assert selector(["gateway", "simulator"], ["127.0.0.1:8080"]) == 'job=~"gateway|simulator",instance=~"127\\\\.0\\\\.0\\\\.1:8080"'
    assert rate_window(300) == "10s" and rate_window(86400) == "300s" and rate_window(60, scrape_interval=1) == "4s"
    assert step_seconds(900) == 4 and step_seconds(60) == 2
    assert series_name("p95 {job}", {"job": "gateway"}) == "p95 gateway"
    assert series_name("{job} {target}", {"job": "gateway"}) == "gateway"
    for panel in PANELS:  # every query fills both placeholders
        for q in panel.queries:
            text = render(q.expr, selector(), "1m")
            assert "SEL" not in text and "WINDOW" not in text and text.count("(") == text.count(")")
