"""The formulas of lib.bench.stats and the config's validation, on hand-made records."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from lib.bench import RunConfig, Threshold
from lib.bench.engine import records_frame
from lib.bench.records import RequestRecord
from lib.bench.stats import check_thresholds, compare_summaries, gaps_ms, latency_stats, rank, summarize, tpot_ms


def rec(seq, ttft, e2e, tokens=11, ok=True, warmup=False, error=None, start=0.0):
    return RequestRecord(seq=seq, warmup=warmup, worker=0, prompt=0, t_scheduled=start, t_end=start + e2e, ttft_ms=ttft if ok else None,
                         e2e_ms=e2e if ok else None, tpot_ms=tpot_ms(e2e, ttft, tokens) if ok else None, output_tokens=tokens,
                         output_tokens_source="usage", itl_ms=[10.0] * (tokens - 1), chunks=tokens, ok=ok, error_class=error,
                         error_phase="stream" if error else None, price=0.001, currency="USD", attempts=1)


def test_tpot_is_the_time_after_the_first_token_per_further_token():
    assert tpot_ms(1150.0, 150.0, 101) == pytest.approx(10.0)
    assert tpot_ms(200.0, 150.0, 1) is None and tpot_ms(None, 150.0, 5) is None
    assert gaps_ms([1.0, 1.01, 1.03]) == pytest.approx([10.0, 20.0])


def test_percentiles_interpolate_and_empty_is_none():
    s = latency_stats(list(range(1, 101)))
    assert s == {"min": 1.0, "p50": 50.5, "p90": 90.1, "p95": 95.05, "p99": 99.01, "p99.9": 99.901, "mean": 50.5,
                 "std": 28.866, "max": 100.0}
    assert latency_stats([]) == dict.fromkeys(("min", "p50", "p90", "p95", "p99", "p99.9", "mean", "std", "max"))
    extra = latency_stats(list(range(1, 101)), [75, 99.99])
    assert extra["p75"] == 75.25 and extra["p99.99"] == pytest.approx(99.99, abs=1e-3) and list(extra)[-2:] == ["p75", "p99.99"]


def test_summary_counts_failures_apart_and_drops_warm_up():
    rows = [rec(i, 100 + i, 1000 + i, start=100.0 * i) for i in range(8)]
    rows += [rec(8, 0, 0, ok=False, error="StreamError", start=800.0), rec(9, 5000, 9000, warmup=True)]
    rows[8].t_end = 900.0
    s = summarize(records_frame(rows), [Threshold.parse("ttft_ms.p95<=105"), Threshold.parse("e2e_ms.p95<=5000")])
    assert (s["requests"], s["succeeded"], s["failed"], s["warmup_requests"]) == (9, 8, 1, 1)
    assert s["errors"] == {"StreamError": 1} and s["errors_by_phase"] == {"stream": 1}
    assert s["ttft_ms"]["max"] == 107 and s["tpot_ms"]["p50"] == pytest.approx(90.0)
    assert s["duration_s"] == pytest.approx(1.707)  # first origin 0 ms .. last end 1707 ms
    assert s["request_throughput"] == pytest.approx(8 / 1.707, rel=1e-3)
    assert s["output_tokens_per_s"] == pytest.approx(88 / 1.707, rel=1e-3)
    assert s["goodput"]["good"] == 6 and s["goodput"]["share"] == pytest.approx(6 / 9, abs=1e-3)  # TTFT 100..105
    assert s["cost"]["total"] == pytest.approx(0.009) and s["itl_ms"]["p50"] == 10.0


def test_thresholds_check_and_rank():
    s = {"ttft_ms": {"p95": 700.0}, "success_rate": 0.97, "request_throughput": 5.0}
    checks = check_thresholds(s, [Threshold.parse("ttft_ms.p95<=800"), Threshold.parse("success_rate>=0.99"),
                                  Threshold.parse("tpot_ms.p50<=20")])
    assert [c["ok"] for c in checks] == [True, False, False]  # a missing figure fails
    with pytest.raises(ValueError):
        Threshold.parse("ttft_ms.q42<=1")
    with pytest.raises(ValueError, match="--percentiles"):  # a percentile the run does not compute
        RunConfig(base_url="http://x/v1", slo=[Threshold.parse("ttft_ms.p42<=1")])
    assert RunConfig(base_url="http://x/v1", slo=[Threshold.parse("ttft_ms.p42<=1")], percentiles=[42]).percentiles == [42]
    ranked = rank({"a": {"ttft_ms": {"p95": 300.0}}, "b": {"ttft_ms": {"p95": 200.0}}, "c": {}}, "ttft_ms.p95")
    assert [(r["label"], r["rank"]) for r in ranked] == [("b", 1), ("a", 2), ("c", None)] and ranked[1]["vs_best"] == 1.5
    assert rank({"a": {"request_throughput": 1.0}, "b": {"request_throughput": 2.0}}, "request_throughput")[0]["label"] == "b"
    table = compare_summaries({"x": {"ttft_ms": {"p50": 100.0}}, "y": {"ttft_ms": {"p50": 150.0}}}, ["ttft_ms.p50"])
    assert table.loc["ttft_ms.p50", "change"] == pytest.approx(0.5)


def test_config_validates_and_round_trips():
    config = RunConfig(base_url="http://127.0.0.1:1/v1", load="open", rate=5, arrival="constant", requests=10,
                       slo=[Threshold.parse("ttft_ms.p95<=800")], sweep=[1, 2])
    again = RunConfig.from_json(config.to_json())
    assert again == config and "api_key" not in config.to_json()
    assert again.at_level(2).rate == 2 and again.at_level(2).sweep == []
    assert RunConfig(base_url="http://x/v1").duration_s == 30  # default stop rule
    for bad in ({"duration_s": 1, "requests": 1}, {"concurrency": 0}, {"rate": -1}, {"sweep": [1.5]}, {"prompts": []}):
        with pytest.raises(ValidationError):
            RunConfig(base_url="http://x/v1", **bad)


def test_summary_of_no_rows_is_empty_not_an_error():
    s = summarize(records_frame([]))
    assert s["requests"] == 0 and s["ttft_ms"]["p50"] is None and s["request_throughput"] == 0.0
    assert s["success_rate"] is None and s["errors"] == {} and s["goodput"] is None


def test_token_rates_peak_per_user_and_malformed_frames():
    rows = []
    for i in range(4):  # 4 answers of 11 tokens in 11 chunks 10 ms apart, first content at 100 ms, sent 500 ms apart
        r = rec(i, 100.0, 200.0, tokens=11, start=500.0 * i)
        r.t_first_content, r.prompt_tokens, r.total_tokens, r.malformed = 500.0 * i + 100.0, 30, 41, i % 2
        rows.append(r)
    s = summarize(records_frame(rows), window_end_ms=2000.0)
    assert s["duration_s"] == 2.0 and s["request_throughput"] == 2.0
    assert s["input_tokens"] == 120 and s["input_tokens_per_s"] == 60.0
    assert s["total_tokens"] == 164 and s["total_tokens_per_s"] == 82.0 and s["output_tokens_per_s"] == 22.0
    assert s["output_tokens_per_s_peak"] == 22.0  # two answers in each 1 s bucket
    assert s["user_output_tokens_per_s"]["p50"] == 55.0  # 11 tokens / 0.2 s
    assert s["malformed_frames"] == 2


def test_a_window_end_counts_requests_sent_in_it_whatever_their_end():
    # sent at 0, 250, 500, 750 ms of a 1 s window; the last ends at 2750 ms, in the drain
    rows = [rec(i, 100.0, 2000.0, start=250.0 * i) for i in range(4)]
    s = summarize(records_frame(rows), window_end_ms=1000.0)
    assert s["duration_s"] == 1.0 and s["request_throughput"] == 4.0 and s["last_end_ms"] == 2750.0
    assert summarize(records_frame(rows))["duration_s"] == 2.75  # no window (a count run): to the last end


def _varied(n, seed=7):
    """n records with spread latencies and gaps, some failures, a warm-up and an abandoned one."""
    from array import array

    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ttft = float(rng.lognormal(5.5, 0.6))
        gaps = rng.lognormal(2.3, 0.5, size=int(rng.integers(1, 60))).astype(np.float32)
        e2e = ttft + float(gaps.sum())
        r = rec(i, ttft, e2e, tokens=len(gaps) + 1, start=20.0 * i, warmup=i < 5, ok=i % 50 != 7,
                error=None if i % 50 != 7 else "StreamError")
        r.t_first_content, r.itl_ms, r.prompt_tokens, r.total_tokens = r.t_scheduled + ttft, array("f", gaps), 20, 20 + len(gaps) + 1
        r.ttfb_ms, r.queue_ms, r.retries, r.malformed = float(rng.uniform(1, 9)), float(rng.uniform(0, 3)), i % 3 == 0, i % 97 == 0
        rows.append(r)
    rows.append(rec(n, 0, 0, ok=False, error="Abandoned", start=20.0 * n))
    return rows


@pytest.mark.parametrize("load, window_end", [("open", None), ("open", 30_000.0), ("closed", 30_000.0)])
def test_a_tally_of_the_records_matches_the_exact_summary_within_the_sketch_error(load, window_end):
    from lib.bench.sketch import RELATIVE_ERROR
    from lib.bench.stats import FORMULAS, RunTally

    rows = _varied(2000)
    slo = [Threshold.parse("ttft_ms.p90<=400"), Threshold.parse("e2e_ms.p95<=5000")]
    tally = RunTally(slo, percentiles=[75], load=load)
    for r in rows:
        tally.add(r)
    got = tally.summary(window_end_ms=window_end)
    want = summarize(records_frame(rows), slo, window_end_ms=window_end, percentiles=[75], load=load)
    assert set(got) == set(want) and got["percentile_method"].startswith("sketch") and want["percentile_method"] == "exact"
    exact = ("requests", "succeeded", "failed", "warmup_requests", "abandoned", "output_tokens", "input_tokens", "total_tokens",
             "errors", "errors_by_phase", "retries", "malformed_frames", "output_tokens_source", "duration_s", "window_start_ms",
             "last_end_ms", "success_rate", "throughput_attribution", "percentiles")
    assert {k: got[k] for k in exact} == {k: want[k] for k in exact}
    assert got["goodput"]["good"] == want["goodput"]["good"] and got["cost"]["currency"] == want["cost"]["currency"]
    assert got["cost"]["by_currency"] == pytest.approx(want["cost"]["by_currency"])
    for k in ("request_throughput", "input_tokens_per_s", "total_tokens_per_s", "goodput_rate"):
        assert got[k] == pytest.approx(want[k], rel=1e-6), k
    # tokens binned by 10 ms: the rates that read arrival times agree within a bin's share
    assert got["output_tokens_per_s"] == pytest.approx(want["output_tokens_per_s"], rel=0.01)
    assert got["output_tokens_per_s_peak"] == pytest.approx(want["output_tokens_per_s_peak"], rel=0.05)
    for metric in ("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "ttfb_ms", "queue_ms", "user_output_tokens_per_s"):
        g, w = got[metric], want[metric]
        for stat in ("min", "max", "mean", "std"):
            assert g[stat] == pytest.approx(w[stat], rel=1e-4, abs=2e-3), (metric, stat)
        for stat in ("p50", "p90", "p95", "p99", "p75"):
            # within the sketch's error of a value at that rank (numpy interpolates between two neighbours)
            assert g[stat] == pytest.approx(w[stat], rel=2 * RELATIVE_ERROR + 0.005, abs=0.01), (metric, stat, g[stat], w[stat])
    assert f"{RELATIVE_ERROR:.0%} relative error" in FORMULAS["percentiles"]


def test_the_sketch_is_within_its_relative_error_at_every_rank_and_merges():
    import numpy as np

    from lib.bench.sketch import RELATIVE_ERROR, LogSketch

    values = np.random.default_rng(3).lognormal(3.0, 2.0, size=200_000)
    values[:100] = 0.0
    a, b = LogSketch(), LogSketch()
    for v in values[:1000]:
        a.add(float(v))
    b.extend(values[1000:])
    a.merge(b)
    ordered = np.sort(values)
    for q in (0.0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0):
        true = ordered[int(np.floor(q * (len(values) - 1)))]
        assert a.quantile(q) == pytest.approx(true, rel=RELATIVE_ERROR * 1.0001, abs=1e-9), q
    assert a.n == len(values) and a.low == 0.0 and a.high == ordered[-1]


def test_prices_in_different_currencies_are_not_added_into_one_figure():
    from lib.bench.stats import RunTally
    from lib.report.figures import cost_text

    rows = [rec(i, 100, 1000, start=10.0 * i) for i in range(4)]
    rows[1].currency = rows[3].currency = "RMB"
    rows[2].price = None  # no usage reported: no price, not 0 of some currency
    tally = RunTally([])
    for r in rows:
        tally.add(r)
    for s in (summarize(records_frame(rows), []), tally.summary()):
        cost = s["cost"]
        assert cost["total"] is None and cost["per_request"] is None and cost["currency"] == "mixed"
        assert cost["by_currency"] == pytest.approx({"RMB": 0.002, "USD": 0.001})
        assert cost_text(cost) == "0.002000 RMB + 0.001000 USD (mixed currencies: not added)"
    one = summarize(records_frame(rows[:1] + rows[2:3]), [])["cost"]
    assert (one["total"], one["currency"], one["per_request"]) == (pytest.approx(0.001), "USD", pytest.approx(0.0005))
    assert cost_text(one) == "0.001000 USD (0.000500 a request)"
    assert cost_text({"total": 0.5, "currency": "USD", "per_request": 0.25}) == "0.500000 USD (0.250000 a request)"  # a saved run
    assert cost_text(summarize(records_frame(rows[2:3]), [])["cost"]) is None
