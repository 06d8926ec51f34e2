"""A workflow's cost: workflow_finished carries tokens and no price, so lib.dify sums its nodes' execution_metadata
(one currency; several are reported, not added), and a chatflow's message_end usage stays the truth."""
from __future__ import annotations

import orjson
import pytest

from lib.dify.core import ClientCore, Spec
from lib.dify.stream import StreamState
from lib.dify.timing import NodeSpan, node_usage

RUN = "run-1"


def frame(d: dict) -> bytes:
    return b"data: " + orjson.dumps(d) + b"\n\n"


def state_for(mode: str) -> StreamState:
    core = ClientCore("http://dify.test/v1", "app-Zq9SecretKeyValue1234", breaker=None)
    path = "/workflows/run" if mode == "workflow" else "/chat-messages"
    call = core.call(Spec("POST", path, f"POST {path}", kind="stream", stream_mode=mode, generation=True), {})
    call.attempt = 1
    call.sent()
    return StreamState(call)


def node(node_id: str, node_type: str, meta: dict | None, *, parent: str | None = None) -> list[dict]:
    """node_started + node_finished of one execution, fields as Dify 1.12.1 sends them (prices as decimal strings)."""
    data = {"id": f"exec-{node_id}", "node_id": node_id, "node_type": node_type, "title": node_id.upper(), "index": 1,
            "iteration_id": parent, "loop_id": None}
    return [{"event": "node_started", "workflow_run_id": RUN, "data": data},
            {"event": "node_finished", "workflow_run_id": RUN,
             "data": {**data, "status": "succeeded", "elapsed_time": 0.1, "execution_metadata": meta}}]


def llm_meta(tokens: int, price: str, currency: str = "USD") -> dict:
    return {"total_tokens": tokens, "total_price": price, "currency": currency}


def finished(total_tokens: int | None) -> dict:
    data: dict = {"id": RUN, "status": "succeeded", "outputs": {"text": "ok"}, "total_steps": 3}
    if total_tokens is not None:
        data["total_tokens"] = total_tokens
    return {"event": "workflow_finished", "workflow_run_id": RUN, "data": data}


def run(mode: str, events: list[dict]) -> StreamState:
    state = state_for(mode)
    state.feed(b"".join(frame(e) for e in events))
    state.eof()
    return state


def test_a_workflow_costs_the_sum_of_its_llm_nodes_and_keeps_difys_token_total():
    events = [*node("start", "start", None), *node("llm1", "llm", llm_meta(120, "0.0001500")),
              *node("llm2", "llm", llm_meta(80, "0.0000250")), *node("end", "end", None), finished(200)]
    usage = run("workflow", events).timing.usage
    assert usage is not None and usage.price_from == "nodes"
    assert usage.total_price == pytest.approx(0.000175) and usage.price == usage.total_price and usage.currency == "USD"
    assert usage.total_tokens == 200  # Dify's own total, not recounted
    d = run("workflow", events).timing.as_dict()
    assert d["total_price"] == pytest.approx(0.000175) and d["currency"] == "USD" and d["total_tokens"] == 200


def test_without_difys_total_the_tokens_are_the_nodes_sum_too():
    usage = run("workflow", [*node("llm1", "llm", llm_meta(120, "0.0001")), *node("llm2", "llm", llm_meta(30, "0.0001")),
                             finished(None)]).timing.usage
    assert usage is not None and usage.total_tokens == 150 and usage.total_price == pytest.approx(0.0002)


def test_a_workflow_without_a_spending_node_costs_zero_not_unknown():
    usage = run("workflow", [*node("start", "start", None), *node("end", "end", None), finished(0)]).timing.usage
    assert usage is not None and usage.price == 0.0 and usage.total_tokens == 0


def test_nodes_in_several_currencies_are_not_added():
    usage = run("workflow", [*node("gpt", "llm", llm_meta(10, "0.002", "USD")),
                             *node("qwen", "llm", llm_meta(10, "0.01", "RMB")), finished(20)]).timing.usage
    assert usage is not None and usage.price_from == "mixed" and usage.price is None
    assert usage.node_prices == pytest.approx({"USD": 0.002, "RMB": 0.01}) and usage.currency == "RMB+USD"
    assert usage.total_tokens == 20


def spans(*specs: tuple[str, float | None, int | None, str | None]) -> list[NodeSpan]:
    out = []
    for node_id, price, tokens, parent in specs:
        s = NodeSpan(node_id, node_id, "llm", None, f"e-{node_id}", 0.0, parent=parent)
        s.price, s.tokens, s.currency = price, tokens, "USD" if price is not None else None
        out.append(s)
    return out


def test_a_node_inside_an_iteration_that_reported_its_own_total_is_counted_once():
    counted_in_container = spans(("iter", 0.3, 30, None), ("inner", 0.1, 10, "iter"), ("inner", 0.2, 20, "iter"))
    u = node_usage(counted_in_container)
    assert u.total_price == pytest.approx(0.3) and u.total_tokens == 30
    container_without_totals = spans(("iter", None, None, None), ("inner", 0.1, 10, "iter"), ("inner", 0.2, 20, "iter"))
    u = node_usage(container_without_totals)
    assert u.total_price == pytest.approx(0.3) and u.total_tokens == 30


def test_a_chatflows_message_end_usage_stays_the_truth_in_either_order():
    message_end = {"event": "message_end", "id": "m1", "message_id": "m1", "conversation_id": "c1",
                   "metadata": {"usage": {"total_tokens": 99, "total_price": "0.0009", "currency": "USD"}}}
    llm = node("llm", "llm", llm_meta(99, "0.0009"))
    for tail in ([finished(99), message_end], [message_end, finished(99)]):  # 1.12 sends workflow_finished first
        usage = run("chat", [*llm, *tail]).timing.usage
        assert usage is not None and usage.price_from == "usage" and usage.total_price == pytest.approx(0.0009)
    # a message_end without a usage block keeps what the nodes said
    bare = {**message_end, "metadata": {}}
    usage = run("chat", [*llm, finished(99), bare]).timing.usage
    assert usage is not None and usage.price_from == "nodes" and usage.total_price == pytest.approx(0.0009)
