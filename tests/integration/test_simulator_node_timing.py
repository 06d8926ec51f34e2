"""The simulator's workflow/chatflow node timing (--node-overhead-ms, --node-ms, X-Sim-Node-*), over real HTTP."""
from __future__ import annotations

import httpx
import pytest

from lib.simulator.__main__ import config_from, parse_args
from tests.support.sse import stream

WORKFLOW_BODY = {"inputs": {"topic": "timing"}, "user": "nodes", "response_mode": "streaming"}
CHATFLOW_BODY = {"query": "how long do nodes take?", "inputs": {"topic": "timing"}, "user": "nodes", "response_mode": "streaming"}


def _elapsed(result) -> dict[str, float]:
    return {e["data"]["node_id"]: e["data"]["elapsed_time"] for e in result.events if e["event"] == "node_finished"}


def _at(result, name: str, node_id: str | None = None) -> float:
    return next(f.at for f in result.frames if f.kind == "data" and f.event["event"] == name
                and (node_id is None or f.event["data"]["node_id"] == node_id))


def test_nodes_take_the_configured_time(sim_factory):
    server = sim_factory("--ttft-ms", "200", "--tokens-per-s", "400", "--jitter", "0", "--node-overhead-ms", "60", "--node-ms", "25")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        stream(c, "/workflows/run", "app-sim-workflow", WORKFLOW_BODY)  # a warm connection and server
        wf = stream(c, "/workflows/run", "app-sim-workflow", WORKFLOW_BODY)
        chat = stream(c, "/chat-messages", "app-sim-advanced-chat", CHATFLOW_BODY)
    # Dify's own time before the run: workflow_started and the first node come after the overhead.
    assert 0.06 <= _at(wf, "workflow_started") < 0.06 + 0.1  # upper bounds leave room for a busy machine
    assert _at(wf, "node_started", "start") >= 0.06
    elapsed = _elapsed(wf)
    assert elapsed["start"] == elapsed["tmpl"] == elapsed["end"] == 0.025
    # The LLM node spans the generation: its first token at the TTFT, it ends with the last token.
    assert 0.2 <= _at(wf, "text_chunk") < 0.3
    last_chunk = [f.at for f in wf.frames if f.kind == "data" and f.event["event"] == "text_chunk"][-1]
    assert 0 <= _at(wf, "node_finished", "llm") - last_chunk < 0.03
    assert elapsed["llm"] == pytest.approx(last_chunk - _at(wf, "node_started", "llm"), abs=0.03)
    chat_elapsed = _elapsed(chat)
    assert chat_elapsed["start"] == chat_elapsed["tmpl"] == chat_elapsed["answer"] == 0.025
    assert chat_elapsed["knowledge"] == pytest.approx(0.3 * 0.2, abs=0.001)  # 30% of the TTFT
    assert 0.2 <= _at(chat, "message") < 0.3  # the pre-LLM nodes fit in the TTFT: it is unchanged


def test_fast_mode_has_no_node_time_and_a_request_may_ask_for_some(sim):
    with httpx.Client(base_url=sim.url, timeout=30) as c:
        stream(c, "/workflows/run", "app-sim-workflow", WORKFLOW_BODY)  # a warm connection: no figure pays the connect
        fasts = [stream(c, "/workflows/run", "app-sim-workflow", WORKFLOW_BODY) for _ in range(3)]
        slow = stream(c, "/workflows/run", "app-sim-workflow", WORKFLOW_BODY,
                      headers={"X-Sim-Node-Overhead-Ms": "80", "X-Sim-Node-Ms": "30"})
    assert all(set(_elapsed(fast).values()) == {0.0} for fast in fasts)
    # The overhead counts from the request's arrival (as Dify's own time does), so workflow_started is at least
    # 80 ms after the request was sent (`at`'s zero). Counted from the opening ping instead, the figure lost the
    # time between the arrival and the body's first step, and fell short of 80 ms (0.0797 s) for no fault.
    assert _at(slow, "workflow_started") >= 0.08
    # Fast mode waits for nothing: its workflow_started comes as soon as a request's round trip. The quickest of
    # three, so one late wake-up of a loaded machine in a fast request cannot pass for node time.
    assert min(_at(fast, "workflow_started") for fast in fasts) < _at(slow, "workflow_started") - 0.05
    assert _elapsed(slow)["end"] == 0.03 and _elapsed(slow)["llm"] == 0.0  # --fast: no model time


def test_node_failure_still_ends_the_run_after_its_node_time(sim):
    with httpx.Client(base_url=sim.url, timeout=30) as c:
        r = stream(c, "/workflows/run", "app-sim-workflow", WORKFLOW_BODY,
                   headers={"X-Sim-Fault": "node-failed", "X-Sim-Node-Ms": "20"})
    nodes = [n for n in r.names if n != "text_chunk"]  # Start, LLM (its text streams), then Template fails
    assert nodes == ["workflow_started", *["node_started", "node_finished"] * 3, "workflow_finished"]
    failed = r.events[-2]["data"]
    assert failed["status"] == "failed" and failed["elapsed_time"] == 0.02


def test_the_cli_flags_and_their_defaults():
    cfg = config_from(parse_args([]))
    assert (cfg.nodes.overhead_s, cfg.nodes.step_s) == (0.03, 0.004)
    cfg = config_from(parse_args(["--node-overhead-ms", "120", "--node-ms", "7"]))
    assert (cfg.nodes.overhead_s, cfg.nodes.step_s) == (0.12, 0.007)
    assert config_from(parse_args(["--fast"])).node_timing_for(None, None).overhead_s == 0.0


def test_a_negative_node_time_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(["--node-ms", "-1"])
    assert exc.value.code == 2
    assert "--node-overhead-ms and --node-ms must be 0 or more" in capsys.readouterr().err
