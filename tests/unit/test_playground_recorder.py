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
