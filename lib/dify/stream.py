"""SSE bytes -> typed events, and the state of one stream: answer, ids, usage, timing, its end.

Sans-IO: the clients feed it chunks (`feed`) and tell it how the stream ended (`eof`, `broken`,
`timed_out`); it raises the typed errors and keeps the record the playground and benchmark read.
"""
from __future__ import annotations

import logging
from typing import Any

import httpx
from httpx_sse import EventSource
from orjson import JSONDecodeError, dumps, loads

from . import errors as E
from .core import Call
from .events import (
    PARSERS,
    TERMINAL_EVENTS,
    AgentMessageEvent,
    ErrorEvent,
    Event,
    MessageEndEvent,
    MessageEvent,
    NodeEvent,
    UnknownEvent,
    WorkflowFinishedEvent,
)
from .hooks import fire
from .models import ChatResult, CompletionResult, WorkflowResult
from .resilience import min_timeout
from .timing import clock, node_usage
from .usage import Usage

log = logging.getLogger("lib.dify")

# httpx-sse's public API decodes only a response: a frame off the fast path (none of Dify's) is wrapped
# in one, ~50 µs a frame where its private SSEDecoder took ~4.
_SSE_HEADERS = httpx.Headers({"content-type": "text/event-stream; charset=utf-8"})


class StreamState:
    """Turns SSE bytes into typed events and keeps the stream's answer, ids, usage and timing.

    SSE framing is split by hand on b"\\n\\n" with orjson on the payload: Dify writes exactly one
    shape of data frame (`data: {json}` on one line), and this fast path is ~1.5 µs an event with all
    the bookkeeping, against ~2.2 µs for httpx-sse's line decoder alone plus the same parsing
    (benchmarks/client_overhead.py --micro). Anything else (an `id:` line, multi-line data, CRLF,
    comments) takes the spec-complete path through httpx-sse's EventSource.
    """

    __slots__ = (
        "_buf", "_cr", "_deadline", "_first_deadline", "_on_event", "call", "conversation_id", "error", "failed_node",
        "finished", "hooks", "malformed", "message_id", "metadata", "parts", "route", "task_id", "terminal_at",
        "timing", "usage", "workflow", "workflow_run_id",
    )

    def __init__(self, call: Call) -> None:
        self.call = call
        self.route = call.spec.route
        self.hooks = call.core.hooks
        self.timing = call.timing
        self._buf = b""
        self._cr = False
        fe = call.timeouts.first_event
        self._first_deadline = (call.timing.sent or clock()) + fe if fe else None
        self._deadline = _min_abs(self._first_deadline, call.deadline)
        self.parts: list[str] = []
        self.conversation_id: str | None = None
        self.message_id: str | None = None
        self.task_id: str | None = None
        self.workflow_run_id: str | None = None
        self.usage: Usage | None = None
        self.metadata: dict[str, Any] = {}
        self.workflow: WorkflowFinishedEvent | None = None
        self.finished = False
        self.malformed = 0
        self._on_event = call.core.hooks.on_event  # read once: the per-event path stays lean
        self.error: E.DifyError | None = None  # an error event seen after other events of its chunk
        self.failed_node: NodeEvent | None = None  # the node_finished with status failed, if one came
        self.terminal_at: float | None = None  # when the last terminal event came: the stream's end

    @property
    def answer(self) -> str:
        return "".join(self.parts)

    @property
    def deadline(self) -> float | None:
        """The perf_counter instant the next event must come by (first event or total), or None."""
        return self._deadline

    def feed(self, chunk: bytes) -> list[Event]:
        """The events this chunk completes, in order. An `error` event raises StreamError (RunFailedError
        for a failed run): at once if it is the chunk's first event, else on the next feed/eof, after the
        events before it."""
        if self.error is not None:
            raise self.error
        now = clock()
        if self._deadline is not None and now > self._deadline and not self.finished:
            raise self.timed_out()
        if self._cr or b"\r" in chunk:
            chunk = self._crlf(chunk)
        if self._buf:
            chunk = self._buf + chunk
        frames = chunk.split(b"\n\n")
        self._buf = frames.pop()
        if len(frames) == 1:  # the usual chunk: one event
            ev = self._frame(frames[0], now)
            return [ev] if ev is not None else []
        out: list[Event] = []
        for frame in frames:
            try:
                ev = self._frame(frame, now)
            except E.DifyError as err:  # an error event: raised after the events before it
                if not out:
                    raise
                self.error = err
                break
            if ev is not None:
                out.append(ev)
        return out

    def _crlf(self, chunk: bytes) -> bytes:
        if self._cr:
            chunk, self._cr = b"\r" + chunk, False
        if chunk.endswith(b"\r"):  # may be half of a CRLF
            chunk, self._cr = chunk[:-1], True
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _frame(self, frame: bytes, now: float) -> Event | None:
        d: Any = None
        if frame[:6] == b"data: ":  # Dify's one data-frame shape: `data: {json}` on one line
            payload: bytes | str = frame[6:]
            try:
                d = loads(payload)
            except JSONDecodeError:
                if b"\n" in frame:  # several lines (multi-line data, an id: line): the full SSE rules
                    payload = self._slow_frame(frame) or b""
                    d = _loads_or_none(payload)
        elif frame == b"event: ping":
            self._ping()
            return None
        else:
            slow = self._slow_frame(frame)
            if slow is None:
                return None
            payload = slow
            d = _loads_or_none(payload)
        if d.__class__ is not dict:
            if payload in (b"ping", "ping"):  # Dify 0.6.x briefly sent `data: ping`
                self._ping()
            else:
                self._malformed(frame)
            return None
        name = d.get("event")
        t = self.timing
        t.events += 1
        if name == "message" or name == "agent_message":  # the hot path: one per token
            text = d.get("answer") or ""
            ev: Event = (MessageEvent if name == "message" else AgentMessageEvent)(name, d, text)
            if t.first_event is None:
                self._first(d, now)
        else:
            if name.__class__ is not str:
                ev = UnknownEvent(str(name) if name is not None else "unknown", d)
                name = ev.event
            elif name == "ping":
                t.events -= 1
                self._ping()
                return None
            else:
                ev = PARSERS.get(name, _unknown)(d)
            if t.first_event is None:
                self._first(d, now)
            if name == "text_chunk":
                text = ev.text
            elif name == "error":
                raise self.error_event(ev, now)  # type: ignore[arg-type]
            else:
                self._other(name, ev, d, now)
                text = ""
        if text:
            if t.first_content is None:
                t.first_content = now
                if self.message_id is None:
                    self.message_id = d.get("message_id") or d.get("id")
                if self.conversation_id is None:
                    self.conversation_id = d.get("conversation_id")
            t.content.append(now)
            self.parts.append(text)
        if self._on_event is not None:
            fire(self._on_event, self.route, ev)
        return ev

    def _first(self, d: dict[str, Any], now: float) -> None:
        self.timing.first_event = now
        self._first_deadline = None
        self._deadline = self.call.deadline
        self.task_id = d.get("task_id")

    @property
    def events(self) -> int:
        return self.timing.events

    def _other(self, name: str, ev: Event, d: dict[str, Any], now: float) -> None:
        if name in TERMINAL_EVENTS:
            self.finished = True
            self.terminal_at = now  # Dify 1.12 ends a chatflow workflow_finished then message_end; others the reverse
        if name == "node_started" or name == "node_finished" or name == "node_retry":
            span = self.timing.node_event(name, ev.data, now)  # type: ignore[attr-defined]
            if span is not None and span.error:  # Dify's text, which may echo anything: the key never stays in it
                span.error = self.call.core.redact(span.error)
            if name == "node_finished" and ev.status == "failed" and self.failed_node is None:  # type: ignore[attr-defined]
                self.failed_node = ev  # type: ignore[assignment]
        elif name == "message_end":
            assert isinstance(ev, MessageEndEvent)
            # Dify's usage block is the truth (a chatflow's holds all its LLM nodes'); without one, a chatflow
            # keeps the nodes' sum its workflow_finished (before message_end in 1.12) gave.
            if ev.usage is not None or self.usage is None:
                self.usage = self.timing.usage = ev.usage
            self.metadata = ev.metadata
            self.message_id = ev.message_id or self.message_id
            self.conversation_id = ev.conversation_id or self.conversation_id
        elif name == "workflow_finished":
            assert isinstance(ev, WorkflowFinishedEvent)
            self.workflow = ev
            if self.usage is None:  # a workflow reports only a total of tokens and no price: its nodes tell the price
                total = ev.total_tokens
                self.usage = self.timing.usage = node_usage(self.timing.nodes, _int_or_none(total))
        elif name == "message_replace":
            self.parts = [ev.answer]  # type: ignore[attr-defined]
        if self.workflow_run_id is None:
            self.workflow_run_id = d.get("workflow_run_id")
        if self.conversation_id is None:
            self.conversation_id = d.get("conversation_id")

    def _slow_frame(self, frame: bytes) -> str | None:
        """The spec-complete path: returns the data to decode, or None for a ping, comment or empty frame."""
        response = httpx.Response(200, headers=_SSE_HEADERS, stream=httpx.ByteStream(frame + b"\n\n"))
        events = list(EventSource(response).iter_sse())  # one frame, so at most one event
        sse = events[-1] if events else None
        if sse is None:
            return None
        if not sse.data:
            if sse.event == "ping":
                self._ping()
            return None
        if sse.event and sse.event != "message" and not sse.data.lstrip().startswith("{"):
            return dumps({"event": sse.event, "data": sse.data}).decode()
        return sse.data

    def _ping(self) -> None:
        self.timing.pings += 1
        if self.hooks.on_ping is not None:
            fire(self.hooks.on_ping, self.route)

    def _malformed(self, frame: bytes) -> None:
        # Tolerated: a console must survive a broken frame; it is counted, logged and reported. The log
        # says only its size: a frame is server text that may echo anything, the key included.
        self.malformed += 1
        log.warning("skipped a malformed SSE frame on %s (%d bytes, not JSON)", self.route, len(frame))
        if self.hooks.on_malformed is not None:
            text = self.call.core.redact(frame[:200].decode("utf-8", "replace"))
            fire(self.hooks.on_malformed, self.route, text.encode("utf-8"))

    # endings

    def eof(self) -> None:
        """The server closed the stream cleanly. Raises if it never sent a final event, or RunFailedError
        when the run failed (workflow_finished with status failed and no error event after it)."""
        if self.error is not None:
            raise self.error
        if self._buf.strip():
            tail, self._buf = self._buf, b""
            self._frame(tail, clock())
        if not self.finished:
            raise self.interrupted(E.STREAM_ENDED_EARLY)
        if self.run_failed:
            raise self.run_failure(None)
        self.call._done(None, self.terminal_at or clock())

    @property
    def run_failed(self) -> bool:
        """The run failed inside Dify: its workflow_finished said status failed."""
        w = self.workflow
        return w is not None and w.status == "failed"

    def run_failure(self, ev: ErrorEvent | None, now: float | None = None) -> E.DifyError:
        """The RunFailedError of this stream: the failed node (from its node_finished), Dify's message
        (the error event's, else workflow_finished's `error`), what arrived as `.result`."""
        if self.error is not None:
            return self.error
        node, w = self.failed_node, self.workflow
        message = ((ev.message if ev is not None else "") or (w.error if w is not None else "")
                   or (node.data.get("error") if node else "") or "")
        mode = "chatflow" if self.call.spec.stream_mode == "chat" else "workflow"
        err = E.run_failed(
            self.call.core.redact(str(message)), code=ev.code if ev is not None else None,
            status=ev.status if ev is not None and isinstance(ev.status, int) else None, route=self.route, mode=mode,
            node_id=node.node_id if node else None, node_title=node.title if node else None,
            node_type=node.node_type if node else None, workflow_run_id=self.workflow_run_id,
        )
        err.partial = self.answer
        err.result = self.result()
        self.error = self.call.fail(err, now if now is not None else self.terminal_at)
        return self.error

    def broken(self, exc: Exception) -> E.DifyError | None:
        """The stream failed while being read: the typed error (never retried), or None when the
        final event had already come (the answer is whole; only the connection's close went wrong)."""
        if self.error is not None:
            return self.error
        if self.finished:
            log.debug("%s: connection ended with %s after the final event; the answer is complete", self.route, type(exc).__name__)
            return self.run_failure(None) if self.run_failed else None
        if isinstance(exc, httpx.TimeoutException):
            if self.timing.first_event is None or self.call.past_deadline():
                first = self._first_deadline
                return self.timed_out(silent=not (first is not None and clock() >= first - 0.002))
            err: E.DifyError = E.idle_timeout(
                self.route, self.call.timeouts.idle, self.events, may_have_been_processed=self.call.spec.generation,
            )
        else:
            detail = self.call.core.redact(str(exc) or type(exc).__name__)
            return self.interrupted(E.connection_broke(detail))
        return self._fail(err)

    def interrupted(self, why: str) -> E.DifyError:
        return self._fail(E.stream_interrupted(self.route, self.events, why, may_have_been_processed=self.call.spec.generation))

    def timed_out(self, silent: bool = False) -> E.DifyError:
        if self.error is not None:
            return self.error
        t, to = self.timing, self.call.timeouts
        if t.first_event is None and not self.call.past_deadline():
            budget = min_timeout(to.first_event, to.idle) if silent else to.first_event
            err: E.DifyError = E.first_event_timeout(self.route, budget, may_have_been_processed=self.call.spec.generation)
        else:
            err = E.stream_deadline(self.route, to.total, self.events, may_have_been_processed=self.call.spec.generation)
        return self._fail(err)

    def error_event(self, ev: ErrorEvent, now: float | None = None) -> E.DifyError:
        """An `error` event: RunFailedError when the run failed in a node (a workflow_finished failed came
        first, or Dify says "Run failed: ..."), else StreamError (the model failed mid-stream)."""
        if self.run_failed or (ev.message or "").startswith("Run failed:"):
            return self.run_failure(ev, now)
        message = self.call.core.redact(ev.message)
        status = ev.status if isinstance(ev.status, int) else None
        err = E.stream_error(self.route, ev.code, message, status)
        err.partial = self.answer
        return self.call.fail(err)

    def _fail(self, err: E.DifyError) -> E.DifyError:
        err.partial = self.answer
        return self.call.fail(err)

    # the stream as a result

    def result(self) -> ChatResult | CompletionResult | WorkflowResult:
        mode = self.call.spec.stream_mode
        if mode == "workflow" or (self.workflow is not None and mode != "chat"):
            w = self.workflow
            data = w.data if w is not None else {}
            return WorkflowResult(
                task_id=self.task_id, workflow_run_id=self.workflow_run_id, workflow_id=data.get("workflow_id"),
                status=data.get("status"), outputs=data.get("outputs") or {}, error=data.get("error"),
                elapsed_time=data.get("elapsed_time"), total_tokens=data.get("total_tokens"),
                total_steps=data.get("total_steps"), created_at=data.get("created_at"),
                finished_at=data.get("finished_at"), text=self.answer, timing=self.timing,
            )
        if mode == "chat":
            return ChatResult(
                answer=self.answer, message_id=self.message_id, task_id=self.task_id, usage=self.usage,
                metadata=self.metadata, timing=self.timing, conversation_id=self.conversation_id,
            )
        return CompletionResult(
            answer=self.answer, message_id=self.message_id, task_id=self.task_id, usage=self.usage,
            metadata=self.metadata, timing=self.timing,
        )

    def __repr__(self) -> str:
        chars = sum(map(len, self.parts))
        return f"StreamState(route={self.route!r}, events={self.events}, finished={self.finished}, answer_chars={chars})"


def _unknown(d: dict[str, Any]) -> Event:
    return UnknownEvent(d["event"], d)


def _int_or_none(v: Any) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def _loads_or_none(payload: bytes | str) -> Any:
    try:
        return loads(payload)
    except JSONDecodeError:
        return None


def _min_abs(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
