"""Every exchange recorded from a real Dify 1.12.1 (../shared/dify-captures/1.12.1), replayed through the client.

Each capture's recorded status, headers and body bytes (a stream in the chunks it arrived in) are served
by an httpx.MockTransport to the real client, sync and async, called the way an application would call
it (`chat`, `stream_workflow`, ...); the test asserts the typed result or error each must give. The
transport is the only stand-in: the bytes are a real server's, and everything from the response on is
the client's own path (SSE framing, events, results, error mapping, hints). Where the client has no
method that sends a capture's request (a malformed body, a missing `user`), the same route is called
through `Spec`, the client's raw-request form. An oracle that reads the frames with plain `json`
gives the expected event names and answer text, so the stream checks do not repeat the parser.

CI keeps `shared/` beside the repository clone: a missing captures folder fails here, it is not skipped.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from lib.dify import (
    AppInfo,
    AppMeta,
    AppModeError,
    AppParameters,
    AppSite,
    AsyncDifyClient,
    AsyncEventStream,
    AuthenticationError,
    BadRequestError,
    ChatResult,
    Conversation,
    ConversationNotFoundError,
    DifyAPIError,
    DifyClient,
    EventStream,
    InvalidParamError,
    Message,
    ModelError,
    NotFoundError,
    NumberedPage,
    Page,
    PayloadError,
    RetryPolicy,
    RunFailedError,
    Spec,
    Success,
    UploadedFile,
    WorkflowResult,
    WorkflowRun,
)
from lib.dify.core import ClientCore
from lib.dify.stream import StreamState
from lib.dify.timing import clock

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO.parent / "shared" / "dify-captures" / "1.12.1"
BASE = "http://dify.replay/v1"
KEY = "app-replay0000000000000000000"
USER = "capture-user"
INPUTS = {"topic": "testing", "audience": "Engineers"}
WF_INPUTS = {"topic": "testing", "audience": "Engineers", "max_points": 3}
INPUTS_HINT = "check the inputs"


# -- the captures ------------------------------------------------------------------------------------------------------


@dataclass
class Capture:
    file: str
    method: str
    path: str  # with the query string, as recorded
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    chunks: list[bytes]
    request_body: bytes

    @property
    def content_type(self) -> str:
        return dict(self.headers).get("content-type", "")

    def frames(self) -> list[dict[str, Any]]:
        """The oracle: each `data: {json}` frame read with plain json (pings and other lines left out)."""
        out = []
        for frame in self.body.decode().split("\n\n"):
            frame = frame.strip()
            if frame.startswith("data: "):
                out.append(json.loads(frame[6:]))
        return out


def _load() -> dict[str, Capture]:
    if not CAPTURES.is_dir():
        return {}
    captures = {}
    for entry in json.loads((CAPTURES / "index.json").read_text()):
        raw = (CAPTURES / entry["file"]).read_bytes()
        request, _, response = raw.partition(b"### RESPONSE\n")
        request_body = request.partition(b"\n\n")[2].strip()
        body = response.partition(b"\n\n")[2]  # the bytes as the server sent them
        sizes = [n for _, n in entry.get("chunk_times") or []]
        chunks, at = [], 0
        for n in sizes:
            chunks.append(body[at:at + n])
            at += n
        if at < len(body) or not chunks:
            chunks.append(body[at:])
        captures[entry["file"]] = Capture(
            entry["file"], entry["method"], entry["path"], entry["status"], [tuple(h) for h in entry["headers"]],
            body, chunks, request_body,
        )
    return captures


ALL = _load()


class _Replay(httpx.SyncByteStream, httpx.AsyncByteStream):
    """The recorded body, chunk by chunk, for either client."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self):
        yield from self.chunks

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk


def replay_transport(cap: Capture, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(cap.status, headers=cap.headers, stream=_Replay(cap.chunks))

    return httpx.MockTransport(handle)


# -- running one capture through a client --------------------------------------------------------------------------------


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None
    events: list[Any] | None = None  # streams: what was yielded before the end (or the error)
    stream: Any = None


async def run(client: DifyClient | AsyncDifyClient, make: Callable[[Any], Any]) -> Outcome:
    out = Outcome()
    try:
        got = make(client)
        if isinstance(got, (EventStream, AsyncEventStream)):
            out.stream, out.events = got, []
            if isinstance(got, AsyncEventStream):
                async for ev in got:
                    out.events.append(ev)
            else:
                for ev in got:
                    out.events.append(ev)
            out.value = got.result()
        else:
            out.value = await got if isinstance(client, AsyncDifyClient) else got
    except Exception as exc:  # noqa: BLE001 - the expectation inspects it
        out.error = exc
    return out


def raw(method: str, path: str, *, kind: str = "json", mode: str | None = None, json_body: Any = None,
        params: dict | None = None, route: str | None = None) -> Callable[[Any], Any]:
    """Send a request the client has no method for (a missing user, a malformed body) on a real route."""
    def make(client: Any) -> Any:
        spec = Spec(method, path, route or f"{method} {path}", json=json_body, params=params, kind=kind,
                    stream_mode=mode, generation=kind == "stream")
        return client._stream(spec, {}) if kind == "stream" else client._call(spec, {})
    return make


def chat(query: str, streaming: bool = False, **kw: Any) -> Callable[[Any], Any]:
    kw.setdefault("inputs", INPUTS)
    return lambda c: (c.stream_chat if streaming else c.chat)(query, user=USER, **kw)


def workflow(streaming: bool = False, inputs: dict | None = None) -> Callable[[Any], Any]:
    return lambda c: (c.stream_workflow if streaming else c.run_workflow)(inputs if inputs is not None else WF_INPUTS, user=USER)


CONV = "7103f5a9-e9f7-440e-a5a0-10c1edfb274b"
MSG = "93a06d28-691e-4b7f-ae0a-3d0afae323aa"
ZERO = "00000000-0000-0000-0000-000000000000"
RUN = "2275ac80-59e2-4bf3-bd76-99c2c3371196"

# How an application makes each recorded request.
CALLS: dict[str, Callable[[Any], Any]] = {
    "01": lambda c: c.info(), "02": lambda c: c.parameters(), "03": lambda c: c.meta(), "04": lambda c: c.site(),
    "05": chat("hello blocking"), "06": chat("hello streaming", True), "07": chat("second turn", True, conversation_id=CONV),
    "08": chat("no response_mode given"),
    "09": lambda c: c.conversations(user=USER, limit=20),
    "10": raw("GET", "/conversations", params={"limit": 20}, route="GET /conversations"),
    "11": lambda c: c.messages(CONV, user=USER, limit=20),
    "12": lambda c: c.conversation_variables(CONV, user=USER),
    "13": lambda c: c.rename_conversation(CONV, "renamed", user=USER),
    "14": lambda c: c.rename_conversation(CONV, user=USER, auto_generate=True),
    "15": raw("GET", "/messages", params={"user": USER}),
    "16": lambda c: c.messages(ZERO, user=USER),
    "17": lambda c: c.feedback(MSG, "like", user=USER), "18": lambda c: c.feedback(MSG, None, user=USER),
    "19": lambda c: c.feedback(MSG, "meh", user=USER),
    "20": lambda c: c.suggested(MSG, user=USER),
    "21": lambda c: c.feedback(ZERO, "like", user=USER),
    "22": lambda c: c.app_feedbacks(page=1, limit=20),
    "23": chat("x", conversation_id=ZERO),
    "24": raw("POST", "/chat-messages", json_body={"query": "x", "inputs": {}, "response_mode": "blocking"}),
    "25": raw("POST", "/chat-messages", json_body={"inputs": {}, "user": USER, "response_mode": "blocking"}),
    "26": raw("POST", "/chat-messages", json_body={"query": "x", "user": USER, "response_mode": "blocking"}),
    "27": raw("POST", "/chat-messages", json_body={"query": "x", "inputs": {}, "user": USER, "response_mode": "fast"}),
    "28": raw("POST", "/chat-messages"), "29": raw("POST", "/chat-messages"),
    "30": chat("x", inputs={"topic": "t" * 150}), "31": chat("x", inputs={"audience": "Aliens"}),
    "32": chat("x"), "33": lambda c: c.info(),
    "34": raw("GET", "/info", route="GET /info"), "35": raw("GET", "/info", route="GET /info"),
    "36": workflow(inputs={}), "37": lambda c: c.completion({}, user=USER),
    "38": lambda c: c.stop_chat(ZERO, user=USER),
    "39": raw("POST", f"/chat-messages/{ZERO}/stop", json_body={}, route="POST /chat-messages/{task_id}/stop"),
    "40": raw("GET", "/no-such-endpoint"), "41": raw("GET", "/chat-messages"),
    "42": lambda c: c.upload_file(b"hello world", user=USER, filename="hello.txt"),
    "43": lambda c: c.upload_file(b"\x89PNG\r\n\x1a\n", user=USER, filename="pixel.png"),
    "44": raw("POST", "/files/upload", route="POST /files/upload"), "45": raw("POST", "/files/upload", route="POST /files/upload"),
    "46": chat("with file", files=[{"type": "document", "transfer_method": "local_file", "upload_file_id": "c603719e"}]),
    "47": lambda c: c.delete_conversation(CONV, user=USER), "48": lambda c: c.delete_conversation(CONV, user=USER),
    "49": lambda c: c.info(), "50": lambda c: c.parameters(),
    "51": workflow(), "52": workflow(True),
    "53": lambda c: c.workflow_run(RUN),
    "54": lambda c: c.stream_workflow_events(RUN, user=USER),
    "55": lambda c: c.workflow_run(ZERO),
    "56": lambda c: c.workflow_logs(page=1, limit=5),
    "57": workflow(inputs={}),
    "58": raw("POST", "/workflows/run", json_body={"inputs": {"topic": "x"}, "response_mode": "blocking"}),
    "59": raw("POST", "/workflows/run"),
    "60": chat("x"), "61": lambda c: c.conversations(user=USER),
    "62": lambda c: c.stop_workflow(ZERO, user=USER),
    "63": chat("please wait", True), "64": chat("please wait", True),
    "65": lambda c: c.stop_chat("8a02a502-4915-4894-b9b7-c666bc6369e9", user=USER),
    "66": chat("please wait"),
    "67": workflow(True), "68": workflow(True),
    "69": lambda c: c.stop_workflow("ee15ff29-796b-436f-b0d7-7984d9363604", user=USER),
    "70": workflow(),
    "71": workflow(), "72": workflow(True), "73": chat("fail please"), "74": chat("fail please", True),
    "75": lambda c: c.parameters(), "76": chat("hi", inputs={}), "77": chat("hi", True, inputs={}),
    "78": lambda c: c.parameters(),
    "79": lambda c: c.completion({"topic": "x"}, user=USER), "80": lambda c: c.stream_completion({"topic": "x"}, user=USER),
}


# -- what each must give ---------------------------------------------------------------------------------------------------


def is_ok(out: Outcome, cls: type, **attrs: Any) -> Any:
    assert out.error is None, f"expected a {cls.__name__}, got {type(out.error).__name__}: {out.error}"
    assert isinstance(out.value, cls), type(out.value)
    for name, want in attrs.items():
        assert getattr(out.value, name) == want, (name, getattr(out.value, name), want)
    return out.value


def is_error(out: Outcome, cls: type, *, code: Any = ..., status: Any = ..., says: tuple[str, ...] = (),
             never: tuple[str, ...] = (INPUTS_HINT,), exact: bool = True) -> BaseException:
    err = out.error
    assert err is not None, f"expected {cls.__name__}, got a result: {out.value!r}"
    assert (type(err) is cls) if exact else isinstance(err, cls), f"expected {cls.__name__}, got {type(err).__name__}: {err}"
    if code is not ...:
        assert err.code == code, err.code
    if status is not ...:
        assert err.status == status, err.status
    sentence = str(err)
    assert sentence.endswith(".") and err.hint, sentence  # a sentence with what to do
    for words in says:
        assert words in sentence, (words, sentence)
    for words in never:
        assert words not in sentence, (words, sentence)
    assert "Traceback" not in sentence and KEY not in sentence and KEY not in repr(err.__dict__)
    return err


def dify_message(cap: Capture) -> str:
    return json.loads(cap.body)["message"]


def streamed_as_recorded(out: Outcome, cap: Capture) -> None:
    """Every recorded event yielded, in order (pings counted, never yielded; `error` raised, not yielded),
    with the recorded answer text."""
    frames = cap.frames()
    assert [e.event for e in out.events] == [f["event"] for f in frames if f["event"] != "error"]
    text = "".join(f.get("answer") or "" for f in frames if f["event"] == "message")
    text += "".join((f.get("data") or {}).get("text") or "" for f in frames if f["event"] == "text_chunk")
    assert out.stream.answer == text
    assert out.stream.timing.pings == cap.body.count(b"event: ping")
    assert out.stream.task_id == frames[0]["task_id"]


def usage_as_recorded(usage: Any, cap_usage: dict) -> None:
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        cap_usage["prompt_tokens"], cap_usage["completion_tokens"], cap_usage["total_tokens"])
    assert usage.total_price == float(cap_usage["total_price"]) and usage.currency == cap_usage["currency"]
    assert usage.time_to_first_token == cap_usage["time_to_first_token"]  # 1.12's own field, kept


def blocking_chat(out: Outcome, cap: Capture) -> None:
    body = json.loads(cap.body)
    r = is_ok(out, ChatResult, answer=body["answer"], message_id=body["message_id"], conversation_id=body["conversation_id"])
    assert r.answer.startswith("You said: ")
    usage_as_recorded(r.usage, body["metadata"]["usage"])
    assert r.metadata["annotation_reply"] is None and r.retriever_resources == []
    assert r.timing is not None and r.timing.outcome == "ok"


def streamed_chat(out: Outcome, cap: Capture, status: str = "succeeded") -> None:
    r = is_ok(out, ChatResult)
    streamed_as_recorded(out, cap)
    end = [f for f in cap.frames() if f["event"] == "message_end"][0]
    assert r.message_id == end["message_id"] and r.conversation_id == end["conversation_id"]
    usage_as_recorded(r.usage, end["metadata"]["usage"])
    names = [e.event for e in out.events]
    assert names[-2:] == ["workflow_finished", "message_end"]  # 1.12's order
    assert out.stream.state.workflow.status == status and out.stream.finished
    assert out.stream.timing.outcome == "ok"


def streamed_workflow(out: Outcome, cap: Capture, status: str = "succeeded") -> WorkflowResult:
    r = is_ok(out, WorkflowResult, status=status)
    streamed_as_recorded(out, cap)
    done = [f for f in cap.frames() if f["event"] == "workflow_finished"][0]["data"]
    assert r.outputs == done["outputs"] and r.error == done["error"] and r.workflow_run_id == done["id"]
    assert r.text == out.stream.answer and r.total_tokens == 0
    return r


def blocking_workflow(out: Outcome, cap: Capture) -> None:
    data = json.loads(cap.body)["data"]
    r = is_ok(out, WorkflowResult, status="succeeded", outputs=data["outputs"], workflow_run_id=data["id"],
              workflow_id=data["workflow_id"], total_steps=data["total_steps"])
    assert r.elapsed_time == data["elapsed_time"]


def failed_node_stream(out: Outcome, cap: Capture, mode: str) -> None:
    """A run whose Template node failed: every event yielded, then RunFailedError naming the node."""
    frames = cap.frames()
    node = [f["data"] for f in frames if f["event"] == "node_finished" and f["data"]["status"] == "failed"][0]
    error = [f for f in frames if f["event"] == "error"]
    err = is_error(out, RunFailedError, says=(f"'{node['title']}' ({node['node_type']})", node["error"], "run failed"))
    assert [e.event for e in out.events] == [f["event"] for f in frames if f["event"] != "error"]
    assert out.events[-1].event == "workflow_finished"
    assert (err.node_id, err.node_title, err.node_type) == (node["node_id"], "Template", "template-transform")
    assert err.workflow_run_id == frames[0]["workflow_run_id"] and err.partial == out.stream.answer
    if error:  # chatflow: Dify's own "Run failed: ..." from the error event, its code kept
        assert (err.code, err.status, err.message) == (error[0]["code"], error[0]["status"], error[0]["message"])
        assert isinstance(err.result, ChatResult) and err.result.answer == "Prefix fail please then "
    else:  # workflow: no error event, the message is workflow_finished's
        assert err.message == node["error"] and isinstance(err.result, WorkflowResult) and err.result.status == "failed"
    assert f"The {mode} run failed" in str(err)
    assert out.stream.timing.outcome == "error" and out.stream.timing.end is not None


def no_model(out: Outcome, cap: Capture) -> None:
    err = is_error(out, ModelError, code="invalid_param", status=400,
                   says=("This app has no model configured in Dify", "Settings, Model Provider"))
    assert err.message == dify_message(cap)  # Dify's whole message kept on the error


def run_detail(out: Outcome, cap: Capture) -> None:
    body = json.loads(cap.body)
    r = is_ok(out, WorkflowRun, id=body["id"], status="succeeded")
    assert isinstance(body["inputs"], str) and isinstance(body["outputs"], str)  # 1.12 sends JSON text
    assert r.inputs == json.loads(body["inputs"]) and r.inputs["topic"] == "testing"
    assert r.outputs == {"text": "testing", "audience": "Engineers"}


EXPECT: dict[str, Callable[[Outcome, Capture], None]] = {
    "01": lambda o, c: is_ok(o, AppInfo, mode="advanced-chat", name="realdify-advanced-chat", tags=[]),
    "02": lambda o, c: (is_ok(o, AppParameters, opening_statement="Hello from the real-Dify echo chatflow (no LLM)."),
                        _fields(o.value, ["control", "variable"], [("text-input", "topic"), ("select", "audience")]),
                        _assert(o.value.file_upload["fileUploadConfig"]["file_size_limit"] == 15)),
    "03": lambda o, c: is_ok(o, AppMeta, tool_icons={}),
    "04": lambda o, c: is_ok(o, AppSite, title="realdify-advanced-chat", description=None, default_language="en-US"),
    "05": blocking_chat, "06": streamed_chat, "07": streamed_chat, "08": blocking_chat,
    "09": lambda o, c: _assert(is_ok(o, Page).data[0].name == "no response_mode given"
                               and all(isinstance(x, Conversation) for x in o.value.data) and len(o.value.data) >= 2),
    "10": lambda o, c: _assert(o.value == {"limit": 20, "has_more": False, "data": []}),
    "11": lambda o, c: _assert(isinstance(is_ok(o, Page).data[0], Message) and o.value.data[0].query == "hello streaming"
                               and o.value.data[0].parent_message_id == ZERO),
    "12": lambda o, c: _assert(is_ok(o, Page).data == [] and o.value.has_more is False),
    "13": lambda o, c: is_ok(o, Conversation, id=CONV, name="renamed"),
    "14": lambda o, c: is_ok(o, Conversation, id=CONV, name="renamed"),
    "15": lambda o, c: is_error(o, InvalidParamError, code="invalid_param", says=("MessageListQuery",)),
    "16": lambda o, c: is_error(o, ConversationNotFoundError, status=404, says=("Start a new conversation",)),
    "17": lambda o, c: is_ok(o, Success, result="success"), "18": lambda o, c: is_ok(o, Success, result="success"),
    "19": lambda o, c: is_error(o, InvalidParamError, code="invalid_param", says=("'like' or 'dislike'",)),
    "20": lambda o, c: is_error(o, BadRequestError, code="bad_request", says=("Suggested Questions Is Disabled", "follow-up")),
    "21": lambda o, c: is_error(o, NotFoundError, code="not_found", status=404, says=("Message Not Exists",)),
    "22": lambda o, c: _assert(is_ok(o, Page).data == []),
    "23": lambda o, c: is_error(o, ConversationNotFoundError, code="not_found", says=("Conversation Not Exists",)),
    "24": lambda o, c: is_error(o, InvalidParamError, says=("Arg user must be provided",)),
    "25": lambda o, c: is_error(o, InvalidParamError, says=("query", "Field required")),
    "26": lambda o, c: is_error(o, InvalidParamError, says=("inputs", "Field required")),
    "27": lambda o, c: is_error(o, InvalidParamError, says=("'blocking' or 'streaming'",)),
    "28": lambda o, c: is_error(o, BadRequestError, code="bad_request", status=400, says=("could not read the request",)),
    "29": lambda o, c: is_error(o, PayloadError, code="unsupported_media_type", status=415, says=("application/json",)),
    "30": lambda o, c: is_error(o, InvalidParamError, says=("less than 100 characters", INPUTS_HINT), never=()),
    "31": lambda o, c: is_error(o, InvalidParamError, says=("must be one of the following", INPUTS_HINT), never=()),
    "32": lambda o, c: is_error(o, AuthenticationError, code="unauthorized", status=401, says=("Access token is invalid", "API Access")),
    "33": lambda o, c: is_error(o, AuthenticationError, code="unauthorized", status=401, says=("API Access",)),
    "34": lambda o, c: is_error(o, AuthenticationError, status=401, says=("Authorization header must be provided",)),
    "35": lambda o, c: is_error(o, AuthenticationError, status=401, says=("scheme must be 'Bearer'",)),
    "36": lambda o, c: is_error(o, AppModeError, code="not_workflow_app", says=("chat/stream_chat",)),
    "37": lambda o, c: is_error(o, AppModeError, code="app_unavailable", says=("app's configuration",)),
    "38": lambda o, c: is_ok(o, Success, result="success"),
    "39": lambda o, c: is_error(o, InvalidParamError, says=("Arg user must be provided",)),
    "40": lambda o, c: is_error(o, NotFoundError, status=404, says=("no such route", "end in /v1", "Dify version")),
    "41": lambda o, c: is_error(o, DifyAPIError, code="method_not_allowed", status=405, says=("Dify version",)),
    "42": lambda o, c: is_ok(o, UploadedFile, name="hello.txt", mime_type="text/plain", size=11, extension="txt"),
    "43": lambda o, c: is_ok(o, UploadedFile, name="pixel.png", mime_type="image/png", size=70),
    "44": lambda o, c: is_error(o, BadRequestError, code="no_file_uploaded", says=("Please upload your file", "'file'")),
    "45": lambda o, c: is_error(o, BadRequestError, code="no_file_uploaded", says=("Please upload your file",)),
    "46": blocking_chat,
    "47": lambda o, c: is_ok(o, Success, result="success"), "48": lambda o, c: is_ok(o, Success, result="success"),
    "49": lambda o, c: is_ok(o, AppInfo, mode="workflow"),
    "50": lambda o, c: _assert(is_ok(o, AppParameters, opening_statement="").input_fields()[0]["variable"] == "topic"),
    "51": blocking_workflow, "52": streamed_workflow, "53": run_detail,
    "54": lambda o, c: is_error(o, NotFoundError, status=404, says=("Dify 1.13 or newer",)),
    "55": lambda o, c: is_error(o, NotFoundError, says=("no workflow run", ZERO, "Check the run id")),
    "56": lambda o, c: _assert(is_ok(o, NumberedPage, total=4, page=1).data[0]["workflow_run"]["status"] == "succeeded"),
    "57": lambda o, c: is_error(o, InvalidParamError, says=("topic is required in input form", INPUTS_HINT), never=()),
    "58": lambda o, c: is_error(o, InvalidParamError, says=("Arg user must be provided",)),
    "59": lambda o, c: is_error(o, BadRequestError, code="bad_request"),
    "60": lambda o, c: is_error(o, AppModeError, code="not_chat_app", says=("run_workflow",)),
    "61": lambda o, c: is_error(o, AppModeError, code="not_chat_app"),
    "62": lambda o, c: is_ok(o, Success, result="success"),
    "63": lambda o, c: (streamed_chat(o, c), _assert(o.stream.answer == "You said: please wait | waited: ok")),
    "64": lambda o, c: (streamed_chat(o, c, status="stopped"), _assert(o.stream.state.workflow.error == "Stopped by user.")),
    "65": lambda o, c: is_ok(o, Success, result="success"),
    "66": lambda o, c: _assert(is_ok(o, ChatResult).answer == json.loads(c.body)["answer"]),
    "67": lambda o, c: _assert(streamed_workflow(o, c).outputs == {"text": "ok"}),
    "68": lambda o, c: _assert(streamed_workflow(o, c, status="stopped").error == "Stopped by user."),  # stopped: not a failure
    "69": lambda o, c: is_ok(o, Success, result="success"),
    "70": blocking_workflow,
    "71": lambda o, c: _failed_blocking_workflow(o, c),
    "72": lambda o, c: failed_node_stream(o, c, "workflow"),
    "73": lambda o, c: _failed_blocking_chatflow(o, c),
    "74": lambda o, c: failed_node_stream(o, c, "chatflow"),
    "75": lambda o, c: is_ok(o, AppParameters, opening_statement=None, user_input_form=[]),
    "76": no_model, "77": no_model,
    "78": lambda o, c: _assert(is_ok(o, AppParameters).input_fields()[0]["control"] == "paragraph"),
    "79": no_model, "80": no_model,
}


def _assert(ok: bool) -> None:
    assert ok


def _fields(params: AppParameters, keys: list[str], want: list[tuple]) -> None:
    assert [tuple(f[k] for k in keys) for f in params.input_fields()] == want


def _failed_blocking_workflow(out: Outcome, cap: Capture) -> None:
    data = json.loads(cap.body)["data"]
    err = is_error(out, RunFailedError, says=("The workflow run failed", data["error"]))
    assert err.message == data["error"] and err.workflow_run_id == data["id"]
    assert isinstance(err.result, WorkflowResult) and err.result.status == "failed" and err.result.outputs == {}
    assert err.timing is not None and err.timing.outcome == "error"


def _failed_blocking_chatflow(out: Outcome, cap: Capture) -> None:
    message = dify_message(cap)
    says = ("The chatflow run failed", message.removeprefix("Run failed: "))
    err = is_error(out, RunFailedError, code="invalid_param", status=400, says=says)
    assert not isinstance(err, InvalidParamError) and err.message == message


# -- the tests ----------------------------------------------------------------------------------------------------------------


def test_the_captures_are_here_and_every_one_has_an_expectation():
    assert CAPTURES.is_dir(), f"the real-Dify captures are missing: expected them in {CAPTURES} (shared/ beside the clone)"
    files = sorted(p.name for p in CAPTURES.glob("*.http"))
    assert files and files == sorted(ALL), "index.json and the .http files disagree"
    prefixes = sorted(f[:2] for f in files)
    assert prefixes == sorted(CALLS) == sorted(EXPECT)


def _sent_as_recorded(cap: Capture, request: httpx.Request) -> None:
    want = urlsplit(cap.path)
    assert request.method == cap.method
    assert request.url.path == "/v1" + want.path
    assert sorted(parse_qsl(request.url.query.decode())) == sorted(parse_qsl(want.query))


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(ALL) or ["missing"])
async def test_replay(name, face):
    assert name in ALL, f"no captures in {CAPTURES}"
    cap = ALL[name]
    seen: list[httpx.Request] = []
    transport = replay_transport(cap, seen)
    one_try = RetryPolicy(max_attempts=1)
    if face == "sync":
        client: Any = DifyClient(BASE, KEY, transport=transport, retry=one_try)
    else:
        client = AsyncDifyClient(BASE, KEY, transport=transport, retry=one_try)
    try:
        out = await run(client, CALLS[name[:2]])
    finally:
        client.close() if face == "sync" else await client.aclose()
    assert len(seen) == 1, f"{len(seen)} requests"
    _sent_as_recorded(cap, seen[0])
    EXPECT[name[:2]](out, cap)


# -- the stream's end: the last terminal event, in either order -------------------------------------------------------------


def _state() -> StreamState:
    core = ClientCore(BASE, KEY, breaker=None)
    call = core.call(Spec("POST", "/chat-messages", "POST /chat-messages", kind="stream", stream_mode="chat", generation=True), {})
    call.attempt = 1
    call.sent()
    return StreamState(call)


def _frames_bytes(cap: Capture) -> list[bytes]:
    return [f.strip() + b"\n\n" for f in cap.body.split(b"\n\n") if f.strip()]


@pytest.mark.parametrize("order", ["workflow_finished first (1.12)", "message_end first"])
def test_a_chatflow_stream_ends_at_its_last_terminal_event_in_either_order(order):
    cap = ALL["06_chat_streaming.http"]
    frames = _frames_bytes(cap)
    names = [json.loads(f[6:])["event"] for f in frames]
    assert names[-2:] == ["workflow_finished", "message_end"]
    if order == "message_end first":
        frames[-2], frames[-1] = frames[-1], frames[-2]
    state = _state()
    events = []
    for f in frames[:-1]:
        events += state.feed(f)
    before_last = clock()
    events += state.feed(frames[-1])
    after_last = clock()
    time.sleep(0.01)  # the connection closes a moment after the last event: that is not the answer's end
    state.eof()
    t = state.timing
    assert before_last <= t.end <= after_last and t.end == state.terminal_at and t.outcome == "ok"
    result = state.result()
    assert result.answer == "You said: hello streaming (topic=testing, audience=Engineers)"
    assert result.usage.time_to_first_token == 1.016 and state.workflow.status == "succeeded"
    assert [e.event for e in events][-2:] == names[-2:][:: 1 if order.startswith("workflow") else -1]


def test_a_failed_workflow_stream_ends_and_raises_at_its_workflow_finished():
    cap = ALL["72_wftemplate_streaming.http"]
    frames = _frames_bytes(cap)
    core = ClientCore(BASE, KEY, breaker=None)
    call = core.call(Spec("POST", "/workflows/run", "POST /workflows/run", kind="stream", stream_mode="workflow", generation=True), {})
    call.attempt = 1
    call.sent()
    state = StreamState(call)
    events = []
    for f in frames:
        events += state.feed(f)  # every event comes out, the failed workflow_finished included
    after_last = clock()
    time.sleep(0.01)
    with pytest.raises(RunFailedError) as info:
        state.eof()
    assert events[-1].event == "workflow_finished" and events[-1].status == "failed"
    assert info.value.timing.end == state.terminal_at <= after_last and info.value.timing.outcome == "error"
    assert info.value.node_title == "Template" and info.value.result.status == "failed"
