"""The simulator's 1.12 profile against a real Dify 1.12.1: every capture replayed, shapes diffed.

Each capture in ../shared/dify-captures/1.12.1 is sent again (same method, path and body; the ids the real
server handed out mapped to the simulator's) to a simulator started with `--dify-version 1.12`, and the two
answers are compared as tests/support/shapes.py defines a shape. Any difference fails unless ALLOWED lists
it with the reason it is deliberate; an ALLOWED entry that no longer matches anything fails too.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

import httpx
import pytest

from tests.support.procs import start_simulator
from tests.support.shapes import (
    CONTENT_EVENTS,
    Answer,
    Diff,
    Exchange,
    answer_from,
    diff,
    dify_headers,
    load_captures,
    media_type,
)
from tests.support.sse import stream

CHATFLOW, WORKFLOW, CHAT, COMPLETION = "app-sim-advanced-chat", "app-sim-workflow", "app-sim-chat", "app-sim-completion"
SLOW = {"X-Sim-TTFT-Ms": "600", "X-Sim-Tokens-Per-S": "200"}  # the captured slow apps wait in an HTTP node
NODE_FAILED = {"X-Sim-Fault": "node-failed"}  # the captured template apps fail in their Template node, the sim's too
NO_MODEL = {"X-Sim-Fault": "no-model"}  # the captured basic apps had no model provider
ID_KEYS = frozenset({"id", "conversation_id", "message_id", "task_id", "workflow_run_id"})


def target(name: str) -> tuple[str, dict[str, str]]:
    """The simulator app standing in for the captured app, and the headers that make it behave alike."""
    if name.startswith("wrong_key_"):
        return "app-not-a-sim-key", {}
    if name.startswith(("wf_", "slowwf_", "wftemplate_")) or name.endswith("_with_wf_key"):
        key = WORKFLOW
    elif name.startswith("plainchat_"):
        key = CHAT
    elif name.startswith("completion_"):
        key = COMPLETION
    else:
        key = CHATFLOW
    if name.startswith(("slowchat_", "slowwf_")):
        return key, dict(SLOW)
    if name.startswith(("wftemplate_", "chattemplate_")):
        return key, dict(NODE_FAILED)
    if name in ("plainchat_blocking", "plainchat_streaming", "completion_blocking", "completion_streaming"):
        return key, dict(NO_MODEL)
    return key, {}


# A stopped stream and the stop call the capture made while it ran: when to send the stop.
STOPS = {
    "slowchat_streaming_stopped": ("slowchat_stop_call", lambda events: any(e["event"] in CONTENT_EVENTS for e in events)),
    "slowwf_streaming_stopped": ("slowwf_stop_call", lambda events: [e["event"] for e in events].count("node_started") == 2),
}


def _glob(pattern: str) -> re.Pattern:
    """`*` matches anything; every other character is literal (field paths are full of `[]`)."""
    return re.compile(".*".join(map(re.escape, pattern.split("*"))), re.DOTALL)


@dataclass(frozen=True)
class Allowed:
    captures: str  # pattern over capture names
    kind: str  # pattern over Diff.kind
    detail: str  # pattern over the difference's detail
    reason: str

    def matches(self, d: Diff) -> bool:
        return all(_glob(p).fullmatch(v) for p, v in ((self.captures, d.capture), (self.kind, d.kind), (self.detail, d.detail)))


_CHATFLOW_GRAPH = "Start -> Knowledge Retrieval -> LLM -> Template -> Answer: the answer streams from an LLM node"
_WORKFLOW_GRAPH = "Start -> LLM -> Template -> End: the text streams from an LLM node"
# Every deliberate difference between the simulator's 1.12 profile and the real Dify 1.12.1, with its reason.
# They all come from the apps, not from the protocol: the captured apps echo their inputs with no LLM, the
# simulator's demo apps simulate one (with citations, conversation variables, a richer form and features).
ALLOWED: list[Allowed] = [
    # The node graphs. The sequence without node events is still compared exactly.
    Allowed("chat_streaming*", "graph", "real start answer sim start knowledge-retrieval llm template-transform answer",
            "the captured chatflow is Start -> Answer echo; the sim's is " + _CHATFLOW_GRAPH),
    Allowed("slowchat_streaming_full", "graph",
            "real start http-request answer sim start knowledge-retrieval llm template-transform answer",
            "the captured slow chatflow waits in an HTTP node; the sim's waits for its model: " + _CHATFLOW_GRAPH),
    Allowed("slowchat_streaming_stopped", "graph", "real start http-request sim start knowledge-retrieval llm",
            "stopped while the slow node ran: the captured app's HTTP node, the sim's LLM node"),
    Allowed("chattemplate_streaming", "graph", "real start template-transform sim start knowledge-retrieval llm template-transform",
            "node-failed: the sim's chatflow answers from its LLM, then its own Template node fails as the captured one"),
    # node-failed in the sim's workflow: its LLM runs (its text streams, as in every run), then its Template fails.
    Allowed("wftemplate_streaming", "graph", "real start template-transform sim start llm template-transform",
            "node-failed: the captured workflow is Start -> Template; the sim's Template node follows its LLM: " + _WORKFLOW_GRAPH),
    Allowed("wftemplate_streaming", "sequence", "real * | sim * text_chunk *",
            "node-failed: the sim's LLM node streams its text before the Template node fails"),
    Allowed("wftemplate_streaming", "only-sim", "text_chunk:*", "node-failed: the sim's LLM text (see above)"),
    Allowed("wf_streaming", "graph", "real start end sim start llm template-transform end",
            "the captured workflow is Start -> End passthrough; the sim's is " + _WORKFLOW_GRAPH),
    Allowed("slowwf_streaming_full", "graph", "real start http-request end sim start llm template-transform end",
            "the captured slow workflow waits in an HTTP node; the sim's is " + _WORKFLOW_GRAPH),
    # What those extra nodes report.
    Allowed("*", "types", "node_finished:.data.execution_metadata real ['null'] sim ['null', 'object']",
            "the sim's LLM node reports its tokens and price in execution_metadata; the captured apps have no LLM node"),
    Allowed("*", "only-sim", "node_finished:.data.execution_metadata.*", "the sim's LLM node usage (see above)"),
    Allowed("*", "only-sim", "node_finished:.data.outputs.text ['str']", "the sim's LLM node output"),
    Allowed("*streaming*", "only-sim", "node_finished:.data.outputs.output ['str']", "the sim's Template node output"),
    Allowed("*", "only-sim", "node_finished:.data.inputs.text ['str']",
            "the sim's Template node formats the LLM's `text`; the captured one formats the Start inputs"),
    Allowed("*chat*", "only-sim", "node_finished:.data.inputs.query ['str']", "the sim's Knowledge Retrieval node input"),
    Allowed("*chat*", "only-sim", "node_finished:.data.outputs.result*", "the sim's Knowledge Retrieval node output"),
    Allowed("*", "only-sim", "*.retriever_resources[]*",
            "the sim's chatflow cites its knowledge base; the captured app has none (its list is empty)"),
    Allowed("slow*", "only-real", "*.inputs.seconds ['int']", "the captured slow apps have a `seconds` input"),
    Allowed("slow*", "only-real", "node_finished:.data.outputs.seconds ['int']", "the captured slow apps' Start output"),
    Allowed("slow*_streaming_full", "only-real", "node_finished:.data.outputs.*",
            "the captured slow apps' HTTP Request node outputs (status_code, body, headers, files)"),
    Allowed("slow*_streaming_full", "only-real", "node_finished:.data.process_data.request ['str']",
            "the captured HTTP Request node's process data"),
    Allowed("wf_blocking", "only-real", "body.data.outputs.audience ['str']", "the captured End node outputs `audience` too"),
    Allowed("wf_streaming", "only-real", "workflow_finished:.data.outputs.audience ['str']", "as wf_blocking"),
    # Error sentences.
    Allowed("*_unknown_conversation", "message",
            "real 'Conversation Not Exists. You have requested this URI [*] but did you mean *' sim 'Conversation Not Exists.'",
            "Flask-RESTX appends close matches from Dify's whole URL map (console /api routes too), which the sim has not"),
    # App configuration.
    Allowed("*_info", "only-sim", "body.tags[] ['str']", "the sim's demo apps are tagged"),
    Allowed("conversation_variables", "only-sim", "body.data[]*", "the sim's demo chatflow declares conversation variables"),
    Allowed("suggested_questions", "*", "*",
            "the sim's demo chatflow enables suggested questions after an answer; the captured one disables them (400)"),
    Allowed("plainchat_parameters", "only-sim", "body.*",
            "the sim's demo chatbot has an input form, uploads, text to speech and suggestions; the captured one none"),
    Allowed("plainchat_parameters", "types", "body.opening_statement real ['null'] sim ['str']",
            "the sim's demo chatbot has an opening statement"),
    Allowed("completion_parameters", "only-sim", "body.user_input_form[]*",
            "the sim's demo text generator has a richer form (topic, style, words) than the captured one (query)"),
]


# --- replay ------------------------------------------------------------------------------------
def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def learn_ids(real, sim, ids: dict[str, str]) -> None:
    """Pair the ids of a real answer with the simulator's at the same place (the first pairing wins)."""
    if isinstance(real, dict) and isinstance(sim, dict):
        for key, value in real.items():
            if key not in sim:
                continue
            if key in ID_KEYS and isinstance(value, str) and isinstance(sim[key], str) and _is_uuid(value):
                ids.setdefault(value, sim[key])
            else:
                learn_ids(value, sim[key], ids)
    elif isinstance(real, list) and isinstance(sim, list):
        for r, s in zip(real, sim, strict=False):  # the shorter list: lengths are compared elsewhere
            learn_ids(r, s, ids)


def _mapped(text: str, ids: dict[str, str]) -> str:
    for real_id, sim_id in ids.items():
        text = text.replace(real_id, sim_id)
    return text


class Replayer:
    def __init__(self, client: httpx.Client, exchanges: list[Exchange], version_header: dict[str, str]):
        self.client, self.version_header = client, version_header
        self.by_name = {x.name: x for x in exchanges}
        self.ids: dict[str, str] = {}
        self.answers: dict[str, Answer] = {}

    def request_parts(self, x: Exchange) -> tuple[str, dict[str, str], bytes | None]:
        key, extra = target(x.name)
        headers = {k: v.replace("app-REDACTED", key) for k, v in x.headers.items()}
        headers.update(extra)
        headers.update(self.version_header)
        body = _mapped(x.body.decode(), self.ids).encode() if x.body is not None else None
        return _mapped(x.path, self.ids), headers, body

    def send(self, x: Exchange) -> Answer:
        path, headers, body = self.request_parts(x)
        if x.multipart is not None:
            files, data = x.multipart
            contents = {".txt": b"hello world", ".png": b"\x89PNG\r\n\x1a\n" + bytes(62)}
            parts = [(fieldname, (fname, contents.get(fname[-4:], b"x"), mime)) for fieldname, fname, mime in files]
            r = self.client.request(x.method, path, headers=headers, files=parts, data=data)
        else:
            r = self.client.request(x.method, path, headers=headers, content=body)
        answer = answer_from(r.status_code, r.headers.get("content-type"), r.text, r.headers.multi_items())
        learn_ids(x.answer.body, answer.body, self.ids)
        return answer

    def send_stream(self, x: Exchange) -> Answer:
        path, headers, body = self.request_parts(x)
        key = headers.pop("Authorization").split(" ", 1)[1]
        firsts: dict[str, dict] = {}
        for e in x.answer.events:
            firsts.setdefault(e["event"], e)
        stop = STOPS.get(x.name)

        def on_frame(frame, result):
            if frame.kind != "data":
                return
            if frame.event["event"] in firsts:
                learn_ids(firsts[frame.event["event"]], frame.event, self.ids)
            if stop and stop[0] not in self.answers and stop[1](result.events):
                self.answers[stop[0]] = self.send(self.by_name[stop[0]])

        result = stream(self.client, path, key, json.loads(body), headers=headers, on_frame=on_frame)
        if media_type(result.headers.get("content-type")) != "text/event-stream":
            return answer_from(result.status, result.headers.get("content-type"), result.error or "", result.headers.multi_items())
        assert result.complete, f"{x.name}: the simulator's stream broke: {result.error}"
        return Answer(result.status, "text/event-stream", frames=[(f.kind, f.event) for f in result.frames],
                      headers=dify_headers(result.headers.multi_items()))

    def replay(self) -> dict[str, Answer]:
        for x in self.by_name.values():
            if x.name in self.answers:
                continue  # a stop call already sent while its stream ran
            streaming = x.method == "POST" and x.body and b'"response_mode": "streaming"' in x.body
            self.answers[x.name] = self.send_stream(x) if streaming else self.send(x)
        return self.answers


@pytest.fixture(scope="module")
def exchanges() -> list[Exchange]:
    return load_captures()  # raises when ../shared/dify-captures is missing: that is a failure, not a skip


@pytest.fixture(scope="module")
def sim_112(tmp_path_factory):
    server = start_simulator(tmp_path_factory.mktemp("sim-1.12"), "--fast", "--seed", "7", "--dify-version", "1.12")
    yield server
    server.stop()


def replay(server, exchanges, version_header: dict[str, str]) -> dict[str, Answer]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return Replayer(client, exchanges, version_header).replay()


def diffs_of(exchanges, answers: dict[str, Answer]) -> list[Diff]:
    return [d for x in exchanges for d in diff(x.name, x.answer, answers[x.name])]


@pytest.fixture(scope="module")
def answers_112(sim_112, exchanges) -> dict[str, Answer]:
    return replay(sim_112, exchanges, {})


@pytest.fixture(scope="module")
def diffs_112(exchanges, answers_112) -> list[Diff]:
    return diffs_of(exchanges, answers_112)


def _run_status(answer: Answer) -> str | None:
    finished = [e for e in answer.events if e["event"] == "workflow_finished"]
    return finished[-1]["data"]["status"] if finished else None


def test_every_capture_is_replayed_as_it_ran(exchanges, answers_112):
    assert len(exchanges) == 80 and set(answers_112) == {x.name for x in exchanges}
    for x in exchanges:  # the stops landed mid-stream and the faults played: the runs ended as the real ones
        if x.answer.frames:
            assert _run_status(answers_112[x.name]) == _run_status(x.answer), x.name
    assert _run_status(answers_112["slowwf_streaming_stopped"]) == "stopped"
    real = {x.name: x.answer for x in exchanges}
    assert answers_112["chattemplate_blocking"].body["message"] == real["chattemplate_blocking"].body["message"]
    assert answers_112["wftemplate_blocking"].body["data"]["error"] == real["wftemplate_blocking"].body["data"]["error"]


def test_the_1_12_profile_has_the_shapes_of_a_real_dify_1_12(diffs_112):
    unexpected = [d for d in diffs_112 if not any(a.matches(d) for a in ALLOWED)]
    assert not unexpected, "shapes that differ from the real Dify 1.12.1 and are not in ALLOWED:\n" + "\n".join(map(str, unexpected))


def test_every_allowed_difference_still_exists(diffs_112):
    stale = [a for a in ALLOWED if not any(a.matches(d) for d in diffs_112)]
    assert not stale, "ALLOWED entries that match no difference any more (remove them):\n" + "\n".join(map(repr, stale))


# Where 1.13 answers differently from the real 1.12 (the contract's newer behaviour): the same replay with
# X-Sim-Dify-Version: 1.13 must show exactly these on top of ALLOWED, which also proves the diff can fail.
_HISTORY_1_13 = ("extra_contents", "message_tokens", "answer_tokens", "total_tokens", "provider_response_latency",
                 "total_price", "currency")
VERSION_DIFFERENCES: list[Allowed] = [
    Allowed("*", "header", "x-version real '1.12.0' sim '1.13.3'", "the release in Dify's X-Version header"),
    Allowed("*", "opening-ping", "real False sim True", "1.13 relays workflow/chatflow streams from Redis: an opening ping"),
    Allowed("*chat*_streaming*", "sequence", "* | sim *message_end workflow_finished",
            "1.13 chatflow sends message_end before workflow_finished"),
    Allowed("*", "only-sim", "workflow_started:.data.reason ['str']", "1.13 workflow_started.reason (initial/resumption)"),
    Allowed("*_parameters", "only-sim", "body.user_input_form[].*.hint ['str']", "1.13 workflow forms carry hint"),
    Allowed("*_parameters", "only-sim", "body.user_input_form[].*.placeholder ['str']", "1.13 workflow forms carry placeholder"),
    Allowed("conversations_list_no_user", "only-sim", "body.data[]*", "1.13 lists conversations without `user`"),
    *[Allowed("messages_list", "only-sim", f"body.data[].{name} *", "1.13 history items carry tokens, price, extra_contents")
      for name in _HISTORY_1_13],
    Allowed("unknown_route", "media-type", "real text/html sim application/json", "1.13 sim: JSON 404 envelope"),
    Allowed("unknown_route", "body", "real text sim JSON", "1.13 sim: JSON 404 envelope"),
    *[Allowed("files_upload_*", "types", f"body.{name} real ['null'] sim ['str']", "1.13 upload answer fills it")
      for name in ("file_key", "preview_url", "user_id")],
    Allowed("files_upload_*", "only-sim", "body.reference ['null']", "1.13 upload answer has `reference`"),
    Allowed("conversation_delete_again", "*", "*", "1.13: 404 Conversation Not Exists. for an unknown conversation"),
    Allowed("wf_run_detail", "types", "body.outputs real ['str'] sim ['object']", "1.13 run detail: outputs as an object"),
    Allowed("wf_run_detail", "only-sim", "body.outputs.*", "1.13 run detail: outputs as an object"),
    Allowed("wf_events_reopen", "*", "*", "1.13 has GET /workflow/:id/events"),
    Allowed("wf_run_detail_unknown", "*", "*", "1.13 sim: 404 not_found for an unknown run"),
    Allowed("*", "message", "*", "1.13 sim: its own validation sentences (1.12 has pydantic's; no 1.13 capture to copy)"),
]


def test_the_1_13_profile_differs_from_1_12_exactly_where_the_releases_do(sim_factory, exchanges):
    # A fresh --dify-version 1.12 server (the replay's history must not leak in), switched by the header.
    server = sim_factory("--fast", "--seed", "7", "--dify-version", "1.12")
    diffs_113 = diffs_of(exchanges, replay(server, exchanges, {"X-Sim-Dify-Version": "1.13"}))
    beyond_112 = [d for d in diffs_113 if not any(a.matches(d) for a in ALLOWED)]
    unexplained = [d for d in beyond_112 if not any(v.matches(d) for v in VERSION_DIFFERENCES)]
    assert not unexplained, "1.13 differs from 1.12 where no release does:\n" + "\n".join(map(str, unexplained))
    missing = [v for v in VERSION_DIFFERENCES if not any(v.matches(d) for d in beyond_112)]
    assert not missing, "1.13 no longer shows these version differences:\n" + "\n".join(map(repr, missing))
