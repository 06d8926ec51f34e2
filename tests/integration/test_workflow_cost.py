"""A workflow's cost over real HTTP against the simulator: workflow_finished carries no price, so lib.dify sums
the LLM node's execution_metadata, and the benchmark's records, the evals' results and the Playground's stats all
carry that non-zero figure (a chatflow's comes from message_end's usage, the same amount)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.bench import BenchStore, RunConfig, run_benchmark
from lib.dify import DifyClient
from lib.evals import load_suite, run_suite
from lib.playground.live import LiveRun, RunRequest
from lib.playground.transcript import Turn
from lib.settings import Target
from tests.conftest import KEYS

ROOT = Path(__file__).resolve().parents[2]


def nodes_price(nodes: list[dict]) -> float:
    return sum(n["price"] for n in nodes if n.get("price") is not None)


@pytest.mark.parametrize("mode", ["workflow", "advanced-chat"])
def test_bench_records_carry_the_nodes_price(sim, tmp_path, mode):
    store = BenchStore(tmp_path / "bench.sqlite")
    outcome = run_benchmark(RunConfig(base_url=sim.url, concurrency=2, requests=4), KEYS[mode], store=store)
    assert outcome.summary["succeeded"] == 4, outcome.summary["errors"]
    saved = store.requests(outcome.run_id)
    assert len(saved) == 4
    for rec in saved.to_dict("records"):
        nodes = json.loads(rec["waterfall"])["nodes"]
        assert [n["type"] for n in nodes if n.get("price")] == ["llm"]  # the one node that spends
        assert rec["price"] > 0 and rec["price"] == pytest.approx(nodes_price(nodes)) and rec["currency"] == "USD"
    assert outcome.summary["cost"]["total"] == pytest.approx(saved["price"].sum()) and outcome.summary["cost"]["currency"] == "USD"


def test_eval_results_carry_the_nodes_price(sim):
    suite = load_suite(ROOT / "examples" / "simulator-workflow.yaml")
    run = run_suite(suite, [Target("Simulator · workflow", sim.url, KEYS["workflow"], "simulator")])
    assert run.results and run.passed, [r.reasons() for r in run.results]
    for result in run.results:
        (turn,) = result.turns
        node_sum = sum(n.cost for n in turn.nodes if n.cost is not None)
        assert node_sum > 0 and turn.timing["total_price"] == pytest.approx(node_sum)
        assert result.cost == pytest.approx(node_sum) and result.currency == "USD"
    assert run.summary()["cost"] == pytest.approx(sum(r.cost for r in run.results))


def test_the_playground_shows_the_nodes_price(sim):
    with DifyClient(sim.url, KEYS["workflow"]) as client:
        turn = Turn(query="", kind="workflow", inputs={"topic": "bridges"})
        LiveRun(client, RunRequest(kind="workflow", user="cost-test", inputs={"topic": "bridges"}), turn).run()
    assert turn.status == "done", turn.error
    node_sum = sum(n.price or 0.0 for n in turn.nodes)
    assert node_sum > 0 and turn.stats is not None and turn.stats.price == pytest.approx(node_sum)
    assert turn.stats.currency == "USD" and "$" in turn.stats.caption()
