"""lib.charts.reduce against numpy on known data, and the benchmark charts of a long run drawn from it: exact
counts and quantiles in a figure whose size does not grow with the run."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib import charts
from lib.charts import reduce

RNG = np.random.default_rng(14)


def test_histogram_bins_are_round_cover_every_value_and_count_each_once():
    values = RNG.lognormal(mean=5.5, sigma=0.4, size=50_000)
    values[:3] = np.nan  # dropped, as the charts drop them
    edges = reduce.nice_edges(values, 60)
    step = edges[1] - edges[0]
    assert np.allclose(np.diff(edges), step)
    mantissa = step / 10 ** np.floor(np.log10(step))
    assert any(np.isclose(mantissa, m) for m in (1, 2, 2.5, 5))  # a step a reader can read off the axis
    finite = values[np.isfinite(values)]
    assert edges[0] <= finite.min() and edges[-1] > finite.max() and len(edges) - 1 <= 61
    counts = reduce.histogram(values, edges)
    assert counts.sum() == finite.size
    assert np.array_equal(counts, np.histogram(finite, bins=edges)[0])


def test_histogram_of_one_value_or_none():
    assert reduce.histogram([7.0, 7.0], reduce.nice_edges([7.0, 7.0], 60)).tolist() == [2]
    assert reduce.histogram([], reduce.nice_edges([], 60)).sum() == 0


def test_cdf_points_are_numpys_quantiles_from_min_to_max():
    values = RNG.gamma(2.0, 150.0, size=30_000)
    x, share = reduce.cdf_points(values, points=500)
    assert share[0] == 0.0 and share[-1] == 1.0 and np.all(np.diff(share) > 0)
    assert 501 <= len(share) <= 501 + len(reduce.PERCENTILE_QS)
    assert set(reduce.PERCENTILE_QS) <= set(share)  # p50 .. p99.99 on the line exactly, the far tail included
    assert np.allclose(x, np.quantile(values, share))
    assert x[0] == values.min() and x[-1] == values.max() and np.all(np.diff(x) >= 0)
    for q in (0.5, 0.95, 0.999, 0.9999):
        assert x[np.searchsorted(share, q)] == pytest.approx(np.quantile(values, q))
    assert [len(a) for a in reduce.cdf_points([np.nan])] == [0, 0]


@pytest.mark.parametrize(("span_s", "bucket_s"), [(0, 1), (59.5, 1), (600, 1), (601, 2), (1000, 2), (3000, 5),
                                                  (5000, 10), (86_400, 300)])
def test_buckets_are_one_second_until_a_run_would_need_more_than_the_limit(span_s, bucket_s):
    assert reduce.bucket_seconds(span_s) == bucket_s
    assert span_s / bucket_s <= reduce.MAX_BUCKETS


def test_bucket_stats_are_each_buckets_count_and_quantiles():
    t = RNG.uniform(0, 100, size=20_000)
    v = 100 + t * 2 + RNG.normal(0, 5, size=t.size)
    v[::97] = np.nan  # a value missing (a failed request's TTFT): not counted
    stats = reduce.bucket_stats(t, v, 10.0)
    assert stats["t"].tolist() == [float(x) for x in range(0, 100, 10)]
    assert stats["n"].sum() == np.isfinite(v).sum()
    for _, row in stats.iterrows():
        inside = v[(t >= row["t"]) & (t < row["t"] + 10) & np.isfinite(v)]
        assert row["n"] == inside.size
        for q in (0.05, 0.5, 0.95):
            assert row[f"q{q:g}"] == pytest.approx(np.quantile(inside, q))
    assert reduce.bucket_stats([], [], 1.0).empty


def test_spread_takes_first_last_and_evenly_between():
    picked = reduce.spread(100_000, 5_000)
    assert len(picked) == 5_000 and picked[0] == 0 and picked[-1] == 99_999
    assert np.all(np.diff(picked) >= 19) and np.all(np.diff(picked) <= 21)
    assert reduce.spread(30, 5_000).tolist() == list(range(30))


# -- the charts of a long run --------------------------------------------------------------------------


def long_run(n: int, failures: int = 50, warmup: int = 100, gaps: int = 0, run: str = "long") -> pd.DataFrame:
    """n requests, one every 20 ms (n=40k: a 13-minute run), as lib.bench.chartdata reads them (+ gaps if asked)."""
    t_end = np.arange(n) * 20.0 + 1_300.0
    ok = np.ones(n, dtype=bool)
    ok[RNG.choice(n, failures, replace=False)] = False
    df = pd.DataFrame({
        "run_id": "r-" + run, "run": run, "seq": np.arange(n), "warmup": np.arange(n) < warmup, "ok": ok, "t_end": t_end,
        "ttft_ms": np.where(ok, RNG.gamma(4.0, 75.0, n), np.nan), "e2e_ms": np.where(ok, RNG.gamma(9.0, 150.0, n), np.nan),
        "output_tokens": np.where(ok, 100.0, np.nan), "error_class": np.where(ok, None, "StreamError"),
        "error_phase": np.where(ok, None, "stream"),
    })
    if gaps:
        df["itl_ms"] = [RNG.exponential(10.0, gaps).astype(np.float32) for _ in range(n)]
    return df


def counted(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["ok"] & ~df["warmup"]]


def size(fig) -> int:
    return len(fig.to_json())


def test_a_long_runs_histogram_counts_every_value_in_few_bins():
    df = long_run(40_000)
    ttft = counted(df)["ttft_ms"].to_numpy()
    fig = charts.latency_histogram(df, "ttft_ms")
    (trace,) = fig.data
    assert trace.type == "histogram" and trace.histfunc == "sum" and len(trace.x) <= 61
    assert np.asarray(trace.y).sum() == ttft.size  # every succeeded measured request, counted once
    edges = reduce.nice_edges(ttft, 60)
    assert (trace.xbins.start, trace.xbins.end, trace.xbins.size) == (edges[0], edges[-1], edges[1] - edges[0])
    counts = np.histogram(ttft, edges)[0]
    assert np.array_equal(np.asarray(trace.y), counts[counts > 0])  # the empty bins are not sent
    assert np.allclose(np.asarray(trace.x), ((edges[:-1] + edges[1:]) / 2)[counts > 0])
    lines = [s.x0 for s in fig.layout.shapes]
    assert np.allclose(lines, np.percentile(ttft, [50, 95, 99]))  # p50/p95/p99 over every value, not the bins
    assert size(fig) < 20_000


def test_a_long_runs_cdf_goes_through_its_quantiles():
    df = pd.concat([long_run(20_000, run="a"), long_run(12_000, run="b")], ignore_index=True)
    fig = charts.latency_cdf(df, "e2e_ms")
    assert [t.name for t in fig.data] == ["a", "b"]
    for trace in fig.data:
        e2e = counted(df[df["run"] == trace.name])["e2e_ms"].to_numpy()
        assert np.allclose(np.asarray(trace.x), np.quantile(e2e, np.asarray(trace.y)))
        assert len(trace.x) <= reduce.CDF_POINTS + 1 + len(reduce.PERCENTILE_QS)
    assert "1,000 quantiles" in fig.layout.title.subtitle.text


def test_a_long_runs_latency_over_time_is_per_bucket_and_says_so():
    df = long_run(40_000)  # 800 s: 2 s buckets
    fig = charts.latency_over_time(df)
    medians = {t.name: t for t in fig.data if t.name in ("TTFT", "end-to-end")}
    assert set(medians) == {"TTFT", "end-to-end"}
    ttft = medians["TTFT"]
    assert len(ttft.x) <= reduce.MAX_BUCKETS and np.diff(ttft.x).min() == 2.0
    c = counted(df)
    first = c[(c["t_end"] / 1000 >= ttft.x[5]) & (c["t_end"] / 1000 < ttft.x[5] + 2)]["ttft_ms"]
    assert ttft.y[5] == pytest.approx(first.median()) and ttft.customdata[5][2] == len(first)
    assert np.asarray(ttft.customdata)[:, 2].sum() == len(c)
    (failed,) = [t for t in fig.data if t.name == "failed"]
    assert np.asarray(failed.customdata).sum() == (~df["ok"]).sum()  # every failure counted in its bucket
    assert "Per 2 s bucket" in fig.layout.title.subtitle.text
    assert [a.text for a in fig.layout.annotations] == ["warm-up"]
    assert size(fig) < 200_000


def test_throughput_buckets_count_every_answer():
    df = long_run(40_000)
    fig = charts.throughput_over_time(df)
    ok = next(t for t in fig.data if t.name == "succeeded req/s")
    failed = next(t for t in fig.data if t.name == "failed req/s")
    assert np.diff(ok.x).min() == 2.0 and len(ok.x) <= reduce.MAX_BUCKETS
    assert np.asarray(ok.y).sum() * 2.0 == pytest.approx(df["ok"].sum())  # rates per second over 2 s buckets
    assert np.asarray(failed.y).sum() * 2.0 == pytest.approx((~df["ok"]).sum())
    assert "2 s buckets" in fig.layout.title.subtitle.text
    short = charts.throughput_over_time(long_run(2_000))  # 40 s: 1 s buckets, as before, no note
    assert np.diff(short.data[0].x).min() == 1.0 and short.layout.title.subtitle.text is None


def test_the_gap_distribution_of_a_long_run_is_a_sample_and_says_so():
    df = long_run(12_000, gaps=20)
    fig = charts.itl_distribution(df, sample=3_000)
    picked = counted(df).iloc[reduce.spread(len(counted(df)), 3_000)]
    gaps = np.concatenate(picked["itl_ms"].to_list())
    assert np.asarray(fig.data[0].y).sum() == gaps.size == 3_000 * 20
    assert np.allclose([s.x0 for s in fig.layout.shapes], np.percentile(gaps.astype(float), [50, 95, 99]))
    assert fig.layout.title.subtitle.text == (f"The gaps of an evenly spread sample: 3,000 of {len(counted(df)):,} "
                                              "succeeded requests.")
    # Rows that are a sample already (lib.bench.chartdata): `of` says of how many.
    already = charts.itl_distribution(picked, of=len(counted(df)))
    assert f"3,000 of {len(counted(df)):,}" in already.layout.title.subtitle.text
    whole = charts.itl_distribution(long_run(300, gaps=20, failures=0, warmup=0))  # all the gaps: no note
    assert whole.layout.title.text == "Inter-chunk latency (every gap)" and whole.layout.title.subtitle.text is None


def test_a_run_views_figures_do_not_grow_with_the_run():
    small, large = long_run(20_000, gaps=10), long_run(40_000, gaps=10)
    sizes = [{k: size(f) for k, f in charts.run_figures(df).items()} for df in (small, large)]
    assert list(sizes[0]) == list(charts.RUN_FIGURES)
    for name in charts.RUN_FIGURES:  # twice the requests; the same figure, give or take its buckets
        assert sizes[1][name] < 2.0 * sizes[0][name] + 2_000 and sizes[1][name] < 200_000, (name, sizes)
    assert sum(sizes[1].values()) < 500_000


def test_a_short_run_is_drawn_request_by_request_as_before():
    df = long_run(3_000, gaps=0)
    hist = charts.latency_histogram(df, "ttft_ms")
    assert len(hist.data[0].x) == len(counted(df)) and hist.data[0].histfunc is None  # each value, plotly bins them
    assert len(charts.latency_cdf(df, "ttft_ms").data[0].x) == len(counted(df))
    over = charts.latency_over_time(df)
    assert len(over.data[0].x) == df["ok"].sum() and over.layout.title.subtitle.text is None
