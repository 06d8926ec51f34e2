"""What the Benchmark charts read from the store (lib.bench.chartdata): a few columns of every request, the gaps
of an evenly spread sample of the succeeded measured ones, looked up by seq; and the run view built from them."""
from __future__ import annotations

from array import array

import numpy as np

from lib import charts
from lib.bench import BenchStore
from lib.bench.chartdata import CHART_COLUMNS, chart_data
from lib.bench.records import RequestRecord
from lib.charts.reduce import spread


def row(i: int, n_gaps: int = 5) -> RequestRecord:
    ok = i % 10 != 3  # a failure every 10
    return RequestRecord(seq=i, warmup=i < 4, worker=0, prompt=0, t_scheduled=10.0 * i, t_end=10.0 * i + 500,
                         ttft_ms=100.0 + i if ok else None, e2e_ms=500.0 if ok else None, chunks=n_gaps + 1 if ok else 0,
                         itl_ms=array("d", [i + j / 10 for j in range(n_gaps)] if ok else []), output_tokens=n_gaps + 1,
                         ok=ok, error_class=None if ok else "StreamError", error_phase=None if ok else "stream")


def store_with(tmp_path, runs: dict[str, int]) -> tuple[BenchStore, list[str]]:
    store = BenchStore(tmp_path / "bench.sqlite")
    ids = []
    for k, (name, n) in enumerate(runs.items()):
        run_id = f"20261203-12000{k}-abcde{k}"
        store.create_run(run_id, config={"base_url": "http://x/v1"}, environment={}, name=name.rstrip("*"))
        store.add_requests(run_id, [row(i) for i in range(n)])
        ids.append(run_id)
    return store, ids


def test_rows_are_the_chart_columns_and_gaps_a_spread_sample_read_by_seq(tmp_path):
    store, (run_id,) = store_with(tmp_path, {"long": 400})
    data = chart_data(store, run_id, gap_sample=50)
    assert set(data.rows.columns) == {"run_id", "run", *CHART_COLUMNS} and len(data.rows) == 400  # no itl_ms, no blob
    counted = data.rows[data.rows["ok"] & ~data.rows["warmup"]]
    assert data.gaps_of == len(counted) == 357 and data.gaps_sampled
    expected = counted["seq"].to_numpy()[spread(len(counted), 50)]
    assert data.gaps["seq"].tolist() == expected.tolist() and set(data.gaps["run"]) == {"long"}
    every = store.requests(run_id).set_index("seq")["itl_ms"]
    for seq, gaps in zip(data.gaps["seq"], data.gaps["itl_ms"], strict=True):  # each sampled request's own gaps, whole
        assert np.array_equal(gaps, every[seq])
    fig = charts.itl_distribution(data.gaps, of=data.gaps_of)
    assert f"sample: 50 of {len(counted)} succeeded requests" in fig.layout.title.subtitle.text


def test_a_short_runs_gaps_are_all_of_them(tmp_path):
    store, (run_id,) = store_with(tmp_path, {"short": 40})
    data = chart_data(store, run_id)
    assert not data.gaps_sampled and len(data.gaps) == data.gaps_of == 33
    figs = charts.run_figures(data.rows, data.gaps, gaps_of=data.gaps_of)
    assert figs["itl"].layout.title.text == "Inter-chunk latency (every gap)" and len(figs["itl"].data[0].x) == 33 * 5
    assert list(figs["errors"].data[0].y) == [3]  # 3 measured failures (one more in the warm-up, not counted)
    assert len(figs["ttft_hist"].data[0].x) == 33  # each request, as the page always drew them


def test_runs_compared_keep_their_unique_labels_and_a_sample_each(tmp_path):
    store, ids = store_with(tmp_path, {"same": 120, "same*": 60})  # two runs named alike: labels told apart
    data = chart_data(store, ids, gap_sample=20)
    labels = store.labels(ids)
    assert dict(zip(data.gaps["run_id"], data.gaps["run"], strict=True)) == labels
    assert data.gaps.groupby("run_id").size().to_dict() == {ids[0]: 20, ids[1]: 20}
    assert data.gaps_of == 105 + 51
    fig = charts.itl_distribution(data.gaps, of=data.gaps_of)
    assert {t.name for t in fig.data} == set(labels.values()) and "(≤ 20 a run)" in fig.layout.title.subtitle.text


def test_rows_by_seq_and_whether_a_column_holds_anything(tmp_path):
    store, (run_id,) = store_with(tmp_path, {"r": 30})
    picked = store.requests(run_id, columns=["itl_ms"], seqs=[29, 0, 7, 999])
    assert picked["seq"].tolist() == [0, 7, 29] and list(picked["itl_ms"][1]) == [7.0, 7.1, 7.2, 7.3, 7.4]
    assert store.requests(run_id, seqs=[]).empty
    assert store.has_values(run_id, "ttft_ms") and not store.has_values(run_id, "waterfall")
    assert not store.has_values("no-such-run", "ttft_ms")
    empty = chart_data(store, "no-such-run")
    assert empty.rows.empty and empty.gaps.empty and empty.gaps_of == 0
