"""Per-request node spans in benchmark runs (issue 10 item 4): real runs against a paced simulator keep each
workflow/chatflow request's waterfall in its row, chat apps and blocking calls keep none, and the run's
per-node statistics name the slowest node."""
from __future__ import annotations

import orjson
import pytest

from lib.bench import BenchStore, RunConfig, nodes, run_benchmark
from lib.waterfall import request_waterfall, slowest_node


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    from tests.support.procs import start_simulator

    # Dify's own 30 ms before the first node, 5 ms a plain node; the LLM node spans the generation
    server = start_simulator(tmp_path_factory.mktemp("nodes-sim"), "--ttft-ms", "60", "--tokens-per-s", "400", "--jitter", "0",
                             "--node-overhead-ms", "30", "--node-ms", "5")
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path):
    return BenchStore(tmp_path / "bench.sqlite")


@pytest.mark.parametrize("key", ["app-sim-workflow", "app-sim-advanced-chat"])
def test_a_workflow_or_chatflow_run_keeps_each_requests_node_spans(paced, store, key):
    outcome = run_benchmark(RunConfig(base_url=paced.url, concurrency=2, requests=4), key, store=store)
    assert outcome.summary["succeeded"] == 4, outcome.summary["errors"]
    rows = store.requests(outcome.run_id, columns=["t_sent", "t_end", "waterfall"])
    assert list(rows.columns) == ["run_id", "seq", "t_sent", "t_end", "waterfall"] and rows["waterfall"].notna().all()
    for row in rows.itertuples():
        rec = orjson.loads(row.waterfall)
        assert rec["e2e_ms"] == pytest.approx(row.t_end - row.t_sent, abs=0.01)  # the row's end: the answer-ending event
        wf = request_waterfall(row.waterfall)
        assert wf.note is None and wf.segments["own_ms"].sum() == pytest.approx(rec["e2e_ms"], abs=0.01)
        assert wf.breakdown()["dify_ms"] >= 25  # the simulator's 30 ms before the first node
    frame = nodes.spans(store, outcome.run_id)
    stats = nodes.run_node_stats(frame)
    assert stats.attrs["requests"] == 4 and not stats.attrs["sampled"]
    assert slowest_node(stats)["title"] == "LLM"  # it spans the generation
    row, wf = nodes.pick(frame, "slowest")
    assert row["wf_e2e_ms"] == frame["wf_e2e_ms"].max() and not wf.segments.empty
    median, _ = nodes.pick(frame, "median")
    assert median["wf_e2e_ms"] == sorted(frame["wf_e2e_ms"])[1]  # the lower median of 4
    assert nodes.pick(frame, "request", int(frame["seq"].iloc[2]))[0]["seq"] == frame["seq"].iloc[2]
    assert nodes.pick(frame, "request", 10_000) is None


@pytest.mark.parametrize(("key", "mode"), [("app-sim-chat", "streaming"), ("app-sim-workflow", "blocking")])
def test_chat_apps_and_blocking_calls_keep_no_spans(paced, store, key, mode):
    outcome = run_benchmark(RunConfig(base_url=paced.url, concurrency=2, requests=3, mode=mode), key, store=store)
    assert outcome.summary["succeeded"] == 3
    assert store.requests(outcome.run_id, columns=["waterfall"])["waterfall"].isna().all()
    assert not nodes.has_spans(store, outcome.run_id)


def test_a_long_runs_statistics_come_from_an_even_sample(paced, store):
    outcome = run_benchmark(RunConfig(base_url=paced.url, concurrency=4, requests=12), "app-sim-workflow", store=store)
    frame = nodes.spans(store, outcome.run_id)
    stats = nodes.run_node_stats(frame, limit=5)
    assert stats.attrs == {**stats.attrs, "requests": 5, "of": 12, "sampled": True}
    with pytest.raises(ValueError, match="median, the slowest or a request"):
        nodes.pick(frame, "fastest")
