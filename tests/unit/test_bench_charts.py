"""lib.charts' benchmark figures are functions of per-request DataFrames (the page and notebook share them)."""
from __future__ import annotations

import pandas as pd

from lib import charts
from lib.bench.engine import records_frame
from lib.bench.records import RequestRecord
from lib.bench.stats import summaries_frame


def frame(run: str, ttft: float, n: int = 20, failures: int = 2) -> pd.DataFrame:
    rows = [RequestRecord(seq=i, warmup=i == 0, worker=0, prompt=0, t_scheduled=100.0 * i, t_end=100.0 * i + 1000 + i,
                          ttft_ms=ttft + i, e2e_ms=1000.0 + i, tpot_ms=9.0, itl_ms=[9.0, 10.0, 11.0], chunks=4, output_tokens=4,
                          output_tokens_source="usage", ok=True) for i in range(n)]
    rows += [RequestRecord(seq=n + j, warmup=False, worker=0, prompt=0, t_scheduled=50.0, t_end=60.0, ok=False,
                           error_class="StreamError", error_phase="stream") for j in range(failures)]
    df = records_frame(rows)
    df.insert(0, "run", run)
    return df


def test_single_run_figures():
    df = frame("a", 150.0)
    hist = charts.latency_histogram(df, "ttft_ms")
    assert len(hist.data) == 1 and len(hist.data[0].x) == 19  # warm-up and failures left out
    assert hist.layout.xaxis.title.text == "TTFT (ms)" and len(hist.layout.shapes) == 3  # p50/p95/p99 lines
    assert len(charts.itl_distribution(df).data[0].x) == 19 * 3  # every gap
    assert charts.latency_cdf(df, "e2e_ms").layout.yaxis.tickformat == ".0%"
    over = charts.latency_over_time(df)
    assert {t.name for t in over.data} >= {"TTFT", "end-to-end", "failed"}
    thr = charts.throughput_over_time(df)
    assert {t.name for t in thr.data} >= {"succeeded req/s", "output tokens/s", "failed req/s"}
    errors = charts.errors_by_class(df)
    assert list(errors.data[0].x) == ["StreamError"] and list(errors.data[0].y) == [2]


def test_overlays_and_empty_inputs():
    df = pd.concat([frame("a", 150.0), frame("b", 300.0, failures=0)], ignore_index=True)
    assert {t.name for t in charts.latency_cdf(df).data} == {"a", "b"}
    assert len(charts.latency_histogram(df).data) == 2
    summaries = {"a": {"ttft_ms": {"p50": 150, "p95": 160}, "request_throughput": 3.0, "level": 1},
                 "b": {"ttft_ms": {"p50": 300, "p95": 380}, "request_throughput": 5.0, "level": 2}}
    assert len(charts.percentile_bars(summaries).data) == 2
    curve = charts.sweep_curve(summaries_frame(summaries))
    assert list(curve.data[0].x) == [3.0, 5.0] and list(curve.data[0].text) == ["1", "2"]
    assert list(charts.ranking_bar([{"label": "a", "value": 1.0}, {"label": "b", "value": None}], "ttft_ms.p95").data[0].y) == ["a"]
    empty = frame("a", 1.0).iloc[0:0]
    for fig in (charts.latency_histogram(empty), charts.latency_cdf(empty), charts.errors_by_class(empty),
                charts.latency_over_time(empty), charts.throughput_over_time(empty)):
        assert fig.layout.annotations  # a note instead of an error


def test_a_histograms_percentile_labels_do_not_cover_each_other():
    df = frame("a", 150.0)  # p95 and p99 a few ms apart, as they often are
    labels = charts.latency_histogram(df, "ttft_ms").layout.annotations
    assert [a.text.split()[0] for a in labels] == ["p50", "p95", "p99"]
    assert len({a.y for a in labels}) == 3  # a row each: side by side they would overlap
