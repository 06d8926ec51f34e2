"""The recorder keeps Dify's node and run errors, with any token in them masked before the page shows them."""
from lib.dify import mask, parse_event, redact_tokens
from lib.playground.recorder import TurnRecorder
from lib.playground.transcript import Turn

KEY = "app-Zq8RkT2mLw9XvB4nC7pD1sFa"


def test_redact_tokens_masks_bearer_and_dify_keys_and_keeps_the_rest():
    text = f"HTTP node got 401 with Authorization: Bearer sk-live-123456789abc; key {KEY} refused. ไทย 🎉"
    out = redact_tokens(text)
    assert KEY not in out and "sk-live-123456789abc" not in out
    assert mask(KEY) in out and "ไทย 🎉" in out and "HTTP node got 401" in out
    assert redact_tokens("no token here: app-short") == "no token here: app-short"


def test_node_error_and_failed_run_are_shown_without_the_key():
    turn = Turn(query="q", kind="workflow")
    rec = TurnRecorder(turn)
    node = {"id": "n1", "node_id": "n1", "title": "Fetch", "node_type": "http-request", "index": 1}
    rec.apply(parse_event({"event": "node_started", "data": node}))
    rec.apply(parse_event({"event": "node_finished", "data": {**node, "status": "failed", "elapsed_time": 0.2,
                                                               "error": f"upstream echoed {KEY}"}}))
    rec.apply(parse_event({"event": "workflow_finished", "data": {"id": "r1", "status": "failed",
                                                                  "error": f"Node Fetch failed: {KEY}"}}))
    assert turn.nodes[0].error == f"upstream echoed {mask(KEY)}"
    assert turn.error is not None and KEY not in turn.error and mask(KEY) in turn.error and "'Fetch'" in turn.error


def test_node_rows_are_the_client_spans_with_the_whole_masked_error():
    from tests.unit.test_dify_workflow_cost import RUN, frame, llm_meta, node, state_for

    state = state_for("workflow")
    turn = Turn(query="", kind="workflow")
    rec = TurnRecorder(turn)
    long_error = f"upstream said {KEY} " + "x" * 400
    failing = node("fetch", "http-request", None)
    failing[1]["data"].update(status="failed", error=long_error)
    events = [*node("llm", "llm", llm_meta(12, "0.0003")), *failing,
              {"event": "workflow_finished", "workflow_run_id": RUN, "data": {"id": RUN, "status": "failed", "error": "boom"}}]
    for ev in state.feed(b"".join(frame(e) for e in events)):
        rec.apply(ev, state.timing)
    spans = state.timing.nodes
    assert [(n.title, n.node_type, n.status) for n in turn.nodes] == [(s.title, s.type, s.status) for s in spans]
    assert [n.started_s for n in turn.nodes] == [s.started - state.timing.sent for s in spans]
    assert turn.nodes[0].price == spans[0].price == 0.0003 and turn.nodes[0].tokens == 12 and turn.nodes[0].elapsed_s == 0.1
    # the span keeps 300 characters; the Playground shows Dify's whole text, the key masked
    assert len(spans[1].error) == 300 and turn.nodes[1].error == redact_tokens(long_error) and KEY not in turn.nodes[1].error
