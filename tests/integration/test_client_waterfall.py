"""Node spans in the client's timing record, the per-node waterfall (lib/waterfall.py) and its charts.

Real HTTP against a simulator whose nodes take known time (--node-overhead-ms, --node-ms, no jitter);
the pure functions also on hand-built records for shapes the simulator does not make (parallel
branches, iterations, a node_finished without its node_started).
"""
from __future__ import annotations

import asyncio
import itertools
import json

import pandas as pd
import pytest

from lib.charts.waterfall import COLORS, node_stats_figure, request_waterfall_figure
from lib.dify import AsyncDifyClient, DifyClient, NodeEvent, RunFailedError, Timing
from lib.waterfall import (
    FORMULAS,
    KINDS,
    NO_NODES,
    SEGMENT_COLUMNS,
    STATS_COLUMNS,
    WaterfallInputError,
    node_stats,
    request_waterfall,
    slowest_node,
    waterfall_record,
)
from tests.support.procs import start_simulator

OVERHEAD_MS, NODE_MS, TTFT_MS = 40.0, 15.0, 150.0
CHATFLOW, WORKFLOW, CHAT = "app-sim-advanced-chat", "app-sim-workflow", "app-sim-chat"


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    server = start_simulator(
        tmp_path_factory.mktemp("sim-nodes"), "--ttft-ms", str(TTFT_MS), "--tokens-per-s", "400", "--jitter", "0",
        "--node-overhead-ms", str(OVERHEAD_MS), "--node-ms", str(NODE_MS), "--seed", "3",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chatflow(paced):
    with DifyClient(paced.url, CHATFLOW) as client:
        client.stream_chat("warm up", user="wf").collect()  # the first request also opens the connection
        yield client


def _chatflow_timings(client: DifyClient, n: int) -> list[Timing]:
    return [client.stream_chat(f"where does the time go? {i}", user="wf").collect().timing for i in range(n)]


def _assert_spans_line_up(t: Timing, node_ids: list[str]) -> None:
    assert t.nodes is not None and [s.node_id for s in t.nodes] == node_ids
    assert all(s.status == "succeeded" and s.finished is not None for s in t.nodes)
    assert t.sent < t.nodes[0].started
    for a, b in itertools.pairwise(t.nodes):
        assert a.started <= a.finished <= b.started  # one after the other, in order
    assert t.nodes[-1].finished <= t.end


# -- the timing record -----------------------------------------------------------------------------------


def test_a_chatflow_stream_keeps_each_node_span(chatflow):
    result = chatflow.stream_chat("which node is slow?", user="wf").collect()
    t = result.timing
    _assert_spans_line_up(t, ["start", "knowledge", "llm", "tmpl", "answer"])
    start, knowledge, llm, template, answer = t.nodes
    assert (start.title, start.type, knowledge.type, llm.type) == ("Start", "start", "knowledge-retrieval", "llm")
    assert start.elapsed == template.elapsed == answer.elapsed == NODE_MS / 1000  # Dify's own elapsed_time, as reported
    assert llm.started <= t.first_content <= llm.finished  # the answer streams from the LLM node
    assert llm.tokens == result.usage.total_tokens and llm.price == pytest.approx(result.usage.total_price)
    assert llm.currency == "USD" and start.tokens is None and start.price is None
    assert all(s.execution_id for s in t.nodes) and len({s.execution_id for s in t.nodes}) == 5
    assert "nodes=5" in repr(t)


def test_a_workflow_stream_on_the_async_client_keeps_its_spans(paced):
    async def run() -> Timing:
        async with AsyncDifyClient(paced.url, WORKFLOW) as client:
            return (await client.stream_workflow({"topic": "spans"}, user="wf").collect()).timing

    t = asyncio.run(run())
    _assert_spans_line_up(t, ["start", "llm", "tmpl", "end"])
    assert [s.type for s in t.nodes] == ["start", "llm", "template-transform", "end"]


def test_chat_apps_and_blocking_calls_have_no_spans(paced, chatflow):
    with DifyClient(paced.url, CHAT) as chat:
        streamed = chat.stream_chat("no nodes here", user="wf").collect().timing
    blocking = chatflow.chat("blocking has no node events", user="wf").timing
    for t in (streamed, blocking):
        assert t.nodes is None
        wf = request_waterfall(t)
        assert wf.segments.empty and wf.note == NO_NODES and wf.e2e_ms == pytest.approx(t.e2e * 1000)
        assert list(wf.segments.columns) == list(SEGMENT_COLUMNS)
    assert waterfall_record(blocking)["nodes"] is None
    assert node_stats([streamed, blocking]).empty


def test_a_failed_node_is_kept_and_marked(paced):
    with DifyClient(paced.url, WORKFLOW) as client, pytest.raises(RunFailedError) as caught:
        client.stream_workflow({"topic": "fail"}, user="wf", headers={"X-Sim-Fault": "node-failed"}).collect()
    t = caught.value.timing
    assert [s.node_id for s in t.nodes] == ["start", "llm", "tmpl"]  # the Template node after the LLM fails
    failed = t.nodes[-1]
    assert failed.status == "failed" and "sandbox" in failed.error and failed.finished is not None
    wf = request_waterfall(t)
    assert wf.failed_node == "Template" and wf.outcome == "error"
    assert wf.segments.loc[wf.segments["title"] == "Template", "failed"].item() is True
    fig = request_waterfall_figure(wf)
    marked = [tr for tr in fig.data if tr.name == "failed node"]
    assert len(marked) == 1 and marked[0].marker.color == COLORS["failed"] and marked[0].marker.pattern.shape == "x"
    assert "failed in Template" in fig.layout.title.subtitle.text
    stats = node_stats([t])
    assert stats.loc[stats["node_id"] == "tmpl", "failed"].item() == 1
    assert node_stats([t], ok_only=True).empty


def test_a_stopped_run_leaves_the_running_node_unfinished(paced):
    with DifyClient(paced.url, WORKFLOW) as client:
        stream = client.stream_workflow({"topic": "stop"}, user="wf", headers={"X-Sim-TTFT-Ms": "3000"})
        for ev in stream:
            if isinstance(ev, NodeEvent) and ev.event == "node_started" and ev.node_id == "llm":
                stream.stop()
        t = stream.timing
    assert stream.result().status == "stopped"
    llm = t.nodes[-1]
    assert llm.node_id == "llm" and llm.finished is None and llm.status is None
    wf = request_waterfall(t)
    row = wf.segments[wf.segments["node_id"] == "llm"].iloc[0]
    assert row["status"] == "unfinished" and row["end_ms"] == pytest.approx(wf.e2e_ms)
    assert wf.segments["own_ms"].sum() == pytest.approx(wf.e2e_ms, abs=1.0)


# -- one request's segments ----------------------------------------------------------------------------------


def test_segments_of_a_request_add_up_to_its_end_to_end(chatflow):
    t = _chatflow_timings(chatflow, 1)[0]
    wf = request_waterfall(t)
    seg = wf.segments
    assert wf.e2e_ms == pytest.approx(t.e2e * 1000) and wf.ttft_ms == pytest.approx(t.ttft * 1000)
    assert seg["kind"].iloc[0] == "dify" and seg["kind"].iloc[-1] == "tail" and set(seg["kind"]) <= set(KINDS)
    assert seg["own_ms"].sum() == pytest.approx(wf.e2e_ms, abs=1.0)  # within a ms (float sums: far closer)
    assert seg["start_ms"].is_monotonic_increasing and (seg["duration_ms"] >= 0).all()
    dify = seg.iloc[0]
    assert dify["start_ms"] == 0 and dify["end_ms"] == pytest.approx((t.nodes[0].started - t.sent) * 1000)
    assert dify["duration_ms"] >= OVERHEAD_MS  # the simulator's platform overhead before the first node
    nodes = seg[seg["kind"] == "node"]
    assert list(nodes["title"]) == ["Start", "Knowledge Retrieval", "LLM", "Template", "Answer"]
    assert (nodes["duration_ms"] == nodes["own_ms"]).all()  # one after the other: nothing overlaps
    b = wf.breakdown()
    assert b["slowest_node"] == "LLM" and b["failed_node"] is None
    assert sum(b[f"{k}_ms"] for k in KINDS) == pytest.approx(wf.e2e_ms, abs=1.0)


def test_a_record_survives_json_as_stores_keep_it(chatflow):
    timings = _chatflow_timings(chatflow, 3)
    stored = [json.dumps(waterfall_record(t)) for t in timings]  # a JSON column, as a store keeps it
    pd.testing.assert_frame_equal(request_waterfall(stored[0]).segments, request_waterfall(timings[0]).segments)
    pd.testing.assert_frame_equal(node_stats(stored), node_stats([json.loads(s) for s in stored]))
    pd.testing.assert_frame_equal(node_stats(stored), node_stats(timings))


def test_bad_input_is_a_clear_sentence():
    with pytest.raises(WaterfallInputError, match="a waterfall needs a lib.dify Timing or a waterfall_record"):
        request_waterfall(42)  # type: ignore[arg-type]
    with pytest.raises(WaterfallInputError, match="a stored waterfall record is not valid JSON"):
        request_waterfall('{"e2e_ms": 1')


# -- a run ---------------------------------------------------------------------------------------------------


def test_node_stats_over_a_run_match_the_configured_node_times(chatflow):
    stats = node_stats(_chatflow_timings(chatflow, 5))
    assert list(stats.columns) == list(STATS_COLUMNS) and stats.attrs == {"requests": 5, "skipped": 0}
    assert list(stats["kind"]) == ["dify", "node", "node", "node", "node", "node", "gap", "tail", "e2e"]
    by = stats.set_index("label")
    assert list(stats.loc[stats["kind"] == "node", "node_id"]) == ["start", "knowledge", "llm", "tmpl", "answer"]
    # Arrival times carry the network and the server's scheduling: a few ms either way on a busy machine.
    assert OVERHEAD_MS <= by.loc["Dify before the first node", "p50_ms"] < OVERHEAD_MS + 40
    for title in ("Start", "Template", "Answer"):
        assert NODE_MS - 8 <= by.loc[title, "p50_ms"] < NODE_MS + 25
        assert by.loc[title, "dify_elapsed_p50_ms"] == pytest.approx(NODE_MS)
    assert 0.3 * TTFT_MS - 8 <= by.loc["Knowledge Retrieval", "p50_ms"] < 0.3 * TTFT_MS + 25
    llm = by.loc["LLM"]
    assert llm["p50_ms"] == pytest.approx(llm["dify_elapsed_p50_ms"], abs=25) and llm["tokens_mean"] > 0
    assert llm["p50_ms"] <= llm["p95_ms"] <= llm["max_ms"] and (stats["requests"] == 5).all()
    assert slowest_node(stats)["title"] == "LLM"
    parts = stats[stats["kind"] != "e2e"]
    assert parts["share_of_e2e"].sum() == pytest.approx(1.0, abs=0.002)  # sequential nodes: the parts make the whole
    assert by.loc["end-to-end", "share_of_e2e"] == 1.0


def test_iterations_and_parallel_branches():
    """Hand-built records of shapes the simulator does not make: a node run twice (an iteration) and two
    nodes running at once (parallel branches)."""
    def node(node_id, title, start, end, **kw):
        return {"node_id": node_id, "title": title, "type": kw.pop("type", "code"), "start_ms": start, "end_ms": end,
                "status": kw.pop("status", "succeeded"), **kw}

    rec = {"e2e_ms": 100.0, "ttft_ms": None, "ttfb_ms": 5.0, "outcome": "ok", "nodes": [
        node("it", "Loop body", 10.0, 30.0, elapsed_ms=19.0), node("it", "Loop body", 30.0, 50.0, elapsed_ms=19.0),
        node("a", "Branch A", 55.0, 90.0), node("b", "Branch B", 60.0, 80.0),
    ]}
    wf = request_waterfall(rec)
    seg = wf.segments
    assert list(seg["label"]) == ["Dify before the first node", "Loop body", "Loop body (2)", "between nodes",
                                  "Branch A", "Branch B", "after the last node"]
    assert seg.set_index("label").loc["Branch B", "own_ms"] == 0.0  # inside Branch A's time: counted once
    assert seg["own_ms"].sum() == pytest.approx(100.0)
    stats = node_stats([rec, rec]).set_index("label")
    assert stats.loc["Loop body", "runs"] == 4 and stats.loc["Loop body", "requests"] == 2
    assert stats.loc["Loop body", "p50_ms"] == 40.0 and stats.loc["Loop body", "dify_elapsed_p50_ms"] == 38.0
    assert stats.loc["between nodes", "p50_ms"] == 5.0 and stats.loc["after the last node", "p50_ms"] == 10.0


def test_the_record_tolerates_odd_node_event_orders():
    t = Timing()
    t.sent = t.start
    t.node_event("node_finished", {"id": "x1", "node_id": "late", "title": "Joined late", "status": "succeeded"}, t.start + 0.01)
    t.node_event("node_started", {"id": "x2", "node_id": "http", "title": "HTTP", "node_type": "http-request"}, t.start + 0.02)
    t.node_event("node_retry", {"id": "x2", "node_id": "http"}, t.start + 0.03)
    t.node_event("node_finished", {"id": "x2", "node_id": "http", "status": "succeeded", "elapsed_time": 0.02,
                                   "execution_metadata": {"total_tokens": "7", "total_price": "0.5", "currency": "RMB"}},
                 t.start + 0.04)
    t.end = t.start + 0.05
    late, http = t.nodes
    assert late.started == late.finished and late.title == "Joined late"
    assert http.retries == 1 and http.elapsed == 0.02 and (http.tokens, http.price, http.currency) == (7, 0.5, "RMB")
    assert request_waterfall(t).segments["own_ms"].sum() == pytest.approx(50.0)


# -- figures ---------------------------------------------------------------------------------------------------


def test_the_request_figure_draws_each_segment_on_the_time_axis(chatflow):
    wf = request_waterfall(_chatflow_timings(chatflow, 1)[0])
    fig = request_waterfall_figure(wf)
    by_name = {tr.name: tr for tr in fig.data}
    assert set(by_name) == {"Dify before the first node", "node", "between nodes", "after the last node"}
    dify = by_name["Dify before the first node"]
    assert dify.marker.color == COLORS["dify"] != by_name["node"].marker.color
    assert dify.orientation == "h" and tuple(dify.base) == (0.0,) and dify.x[0] == pytest.approx(wf.segments["duration_ms"].iloc[0])
    nodes = wf.segments[wf.segments["kind"] == "node"]
    assert list(by_name["node"].y) == list(nodes["label"]) and list(by_name["node"].base) == list(nodes["start_ms"])
    assert fig.layout.yaxis.categoryarray[-1] == "Dify before the first node"  # the earliest at the top
    assert [s.x0 for s in fig.layout.shapes] == [wf.ttft_ms, wf.e2e_ms]  # first token and end, dashed
    assert "end-to-end" in fig.layout.title.subtitle.text


def test_a_long_title_is_broken_into_lines_that_fit_a_half_width_chart(chatflow):
    """In the reports' two columns a one-line title ran under the mode bar and off the chart."""
    wf = request_waterfall(_chatflow_timings(chatflow, 1)[0])
    name = "Slowest answer: a-case-id-that-someone-wrote-out-in-full · the students variant #3 turn 2"
    fig = request_waterfall_figure(wf, name)
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) > 1 and " ".join(lines) == name and max(map(len, lines)) <= 48
    assert fig.layout.margin.t >= 40 + 22 * len(lines)  # the plot moves down to make room
    sub = node_stats_figure(node_stats(_chatflow_timings(chatflow, 2))).layout.title.subtitle.text
    assert "end-to-end p50" in sub and max(len(line) for line in sub.split("<br>")) <= 60


def test_the_run_figure_draws_p50_bars_with_p95_whiskers(chatflow):
    stats = node_stats(_chatflow_timings(chatflow, 3))
    fig = node_stats_figure(stats)
    labels = [y for tr in fig.data for y in tr.y]
    assert not any(y.startswith("end-to-end") for y in labels) and len(labels) == len(stats) - 1
    llm = stats.set_index("label").loc["LLM", "share_of_e2e"]
    assert f"LLM · {llm:.0%}" in labels and list(fig.layout.yaxis.categoryarray)[-1].startswith("Dify before")
    nodes = next(tr for tr in fig.data if tr.name == "node")
    rows = stats[stats["kind"] == "node"]
    assert list(nodes.x) == pytest.approx(list(rows["p50_ms"]))
    assert list(nodes.error_x.array) == pytest.approx(list(rows["p95_ms"] - rows["p50_ms"]))
    assert "end-to-end p50" in fig.layout.title.subtitle.text
    assert len([y for tr in node_stats_figure(stats, show_e2e=True).data for y in tr.y]) == len(stats)


def test_empty_figures_say_why():
    fig = request_waterfall_figure(request_waterfall({"e2e_ms": 10.0, "nodes": None}))
    assert fig.layout.annotations[0].text == NO_NODES and not fig.data
    assert node_stats_figure(node_stats([])).layout.annotations[0].text == "no requests with node events"


def test_every_segment_kind_has_a_formula():
    assert set(KINDS) | {"e2e", "share_of_e2e", "percentiles", "dify_elapsed"} <= set(FORMULAS)


def test_spans_from_a_real_dify_1_12_stream():
    """The bytes a real Dify 1.12.1 sent for a workflow that fails in its Template node (capture 72)."""
    from tests.support.replay import replay_server

    with replay_server() as url, DifyClient(url, "app-replay-failing-workflow") as client, pytest.raises(RunFailedError) as caught:
        client.stream_workflow({"topic": "x"}, user="wf").collect()
    t = caught.value.timing
    assert [(s.node_id, s.type, s.status) for s in t.nodes] == [("start", "start", "succeeded"),
                                                                ("tmpl", "template-transform", "failed")]
    assert t.nodes[0].elapsed is not None and t.nodes[1].error.startswith("Failed to execute code")
    wf = request_waterfall(t)
    assert wf.failed_node == "Template" and wf.segments["own_ms"].sum() == pytest.approx(wf.e2e_ms, abs=1.0)


def test_a_node_error_never_keeps_the_key():
    """Dify's node error is server text that may echo anything; the record keeps it redacted (sans-IO feed)."""
    from lib.dify.core import ClientCore, Spec
    from lib.dify.stream import StreamState

    key = "app-SecretKey0123456789abcd"
    core = ClientCore("http://dify.invalid/v1", key, breaker=None)
    state = StreamState(core.call(Spec("POST", "/workflows/run", "POST /workflows/run", kind="stream", stream_mode="workflow"), {}))
    node = {"id": "e1", "node_id": "http", "node_type": "http-request", "title": "HTTP"}
    frames = [{"event": "node_started", "data": node},
              {"event": "node_finished", "data": {**node, "status": "failed", "error": f"401 for Bearer {key}"}}]
    for f in frames:
        state.feed(b"data: " + json.dumps(f).encode() + b"\n\n")
    (span,) = state.timing.nodes
    assert key not in span.error and "app-…abcd" in span.error and span.status == "failed"
