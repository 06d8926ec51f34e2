"""Typed SSE events of a Dify stream (contract §9).

Every event has `.event` (Dify's event name), `.raw` (the JSON object as sent) and `.text` (the
answer text it adds: "" for events that add none). Events are slotted dataclasses filled by hand
from the decoded dict: this runs once per event on the load engine's hot path, where a pydantic
model nearly doubles the per-event cost (1.4 -> 2.6 µs with framing and JSON; see
benchmarks/client_overhead.py --micro). Unknown event names become `UnknownEvent`, so a newer Dify
never breaks a reader. `error` events are not yielded: the stream raises `StreamError` instead
(`RunFailedError` when the run failed in a node: then after every event before it, workflow_finished included).
`event: ping` frames are counted (`Timing.pings`), never yielded.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .usage import Usage


@dataclass(slots=True)
class Event:
    event: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def text(self) -> str:
        return ""

    @property
    def task_id(self) -> str | None:
        return self.raw.get("task_id")


@dataclass(slots=True)
class UnknownEvent(Event):
    """An event this client does not know (a newer Dify); read its fields from `.raw`."""


# -- chat, agent and completion apps -------------------------------------------------------------


@dataclass(slots=True)
class MessageEvent(Event):
    """A piece of the answer (`message`; `agent_message` in agent apps). The hottest event: only
    `answer` is copied out of the dict, the ids are read from `raw` when asked for."""

    answer: str = ""

    @property
    def text(self) -> str:
        return self.answer

    @property
    def message_id(self) -> str | None:
        return self.raw.get("message_id") or self.raw.get("id")

    @property
    def conversation_id(self) -> str | None:
        return self.raw.get("conversation_id")  # absent for completion apps

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> MessageEvent:
        return cls(d["event"], d, d.get("answer") or "")


@dataclass(slots=True)
class AgentMessageEvent(MessageEvent):
    pass


@dataclass(slots=True)
class AgentThoughtEvent(Event):
    id: str | None = None
    position: int | None = None
    thought: str = ""
    observation: str = ""
    tool: str = ""  # tool names joined by ';'
    tool_input: str = ""  # a JSON string
    message_files: list[str] = field(default_factory=list)

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> AgentThoughtEvent:
        return cls(
            d["event"], d, d.get("id"), d.get("position"), d.get("thought") or "", d.get("observation") or "",
            d.get("tool") or "", d.get("tool_input") or "", list(d.get("message_files") or []),
        )


@dataclass(slots=True)
class MessageFileEvent(Event):
    id: str | None = None
    type: str | None = None
    belongs_to: str | None = None
    url: str | None = None

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> MessageFileEvent:
        return cls(d["event"], d, d.get("id"), d.get("type"), d.get("belongs_to"), d.get("url"))


@dataclass(slots=True)
class MessageReplaceEvent(Event):
    """Output moderation replaced the whole answer so far with `answer`."""

    answer: str = ""
    reason: str | None = None

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> MessageReplaceEvent:
        return cls(d["event"], d, d.get("answer") or "", d.get("reason"))


@dataclass(slots=True)
class MessageEndEvent(Event):
    message_id: str | None = None
    conversation_id: str | None = None
    usage: Usage | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def retriever_resources(self) -> list[dict[str, Any]]:
        return self.metadata.get("retriever_resources") or []

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> MessageEndEvent:
        meta = d.get("metadata") or {}
        return cls(d["event"], d, d.get("message_id") or d.get("id"), d.get("conversation_id"), Usage.from_dict(meta.get("usage")), meta)


@dataclass(slots=True)
class TTSMessageEvent(Event):
    """A base64 MP3 chunk (`tts_message`), or the end of the audio (`tts_message_end`, `audio` "")."""

    audio: str = ""

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> TTSMessageEvent:
        return cls(d["event"], d, d.get("audio") or "")


# -- workflow and chatflow apps: the payload is in `data` ----------------------------------------


@dataclass(slots=True)
class WorkflowEvent(Event):
    """Any workflow/chatflow event (`workflow_started`, `iteration_next`, `agent_log`, ...)."""

    workflow_run_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> WorkflowEvent:
        return cls(d["event"], d, d.get("workflow_run_id"), d.get("data") or {})


@dataclass(slots=True)
class NodeEvent(WorkflowEvent):
    """`node_started`, `node_finished`, `node_retry`: `status` is set once the node finished."""

    node_id: str | None = None
    node_type: str | None = None
    title: str | None = None
    status: str | None = None

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> NodeEvent:
        data = d.get("data") or {}
        return cls(d["event"], d, d.get("workflow_run_id"), data, data.get("node_id"), data.get("node_type"), data.get("title"),
                   data.get("status"))


@dataclass(slots=True)
class TextChunkEvent(WorkflowEvent):
    """A piece of a workflow's text output (`text_chunk`)."""

    chunk: str = ""

    @property
    def text(self) -> str:
        return self.chunk

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> TextChunkEvent:
        data = d.get("data") or {}
        return cls(d["event"], d, d.get("workflow_run_id"), data, data.get("text") or "")


@dataclass(slots=True)
class ReasoningChunkEvent(WorkflowEvent):
    reasoning: str = ""

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> ReasoningChunkEvent:
        data = d.get("data") or {}
        return cls(d["event"], d, d.get("workflow_run_id"), data, data.get("reasoning") or "")


@dataclass(slots=True)
class WorkflowFinishedEvent(WorkflowEvent):
    status: str | None = None  # succeeded | failed | stopped | partial-succeeded | paused
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> WorkflowFinishedEvent:
        data = d.get("data") or {}
        return cls(
            d["event"],
            d,
            d.get("workflow_run_id"),
            data,
            data.get("status"),
            data.get("outputs") or {},
            data.get("error"),
            data.get("elapsed_time"),
            data.get("total_tokens"),
            data.get("total_steps"),
        )


@dataclass(slots=True)
class ErrorEvent(Event):
    """A mid-stream failure. Never yielded: the stream raises `StreamError` carrying these fields."""

    code: str | None = None
    status: int | None = None
    message: str = ""

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> ErrorEvent:
        return cls(d["event"], d, d.get("code"), d.get("status"), d.get("message") or "")


def _unknown(d: dict[str, Any]) -> Event:
    return UnknownEvent(d["event"], d)


_WORKFLOW_NAMES = (
    "workflow_started",
    "iteration_started",
    "iteration_next",
    "iteration_completed",
    "loop_started",
    "loop_next",
    "loop_completed",
    "parallel_branch_started",
    "parallel_branch_finished",
    "agent_log",
    "human_input_required",
    "workflow_paused",
    "human_input_form_filled",
    "human_input_form_timeout",
)

PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "message": MessageEvent.from_raw,
    "agent_message": AgentMessageEvent.from_raw,
    "agent_thought": AgentThoughtEvent.from_raw,
    "message_file": MessageFileEvent.from_raw,
    "message_replace": MessageReplaceEvent.from_raw,
    "message_end": MessageEndEvent.from_raw,
    "tts_message": TTSMessageEvent.from_raw,
    "tts_message_end": TTSMessageEvent.from_raw,
    "node_started": NodeEvent.from_raw,
    "node_finished": NodeEvent.from_raw,
    "node_retry": NodeEvent.from_raw,
    "text_chunk": TextChunkEvent.from_raw,
    "reasoning_chunk": ReasoningChunkEvent.from_raw,
    "workflow_finished": WorkflowFinishedEvent.from_raw,
    "error": ErrorEvent.from_raw,
    **{name: WorkflowEvent.from_raw for name in _WORKFLOW_NAMES},
}

# Events that carry answer text: their arrival times are the timing record's tokens.
CONTENT_EVENTS = frozenset({"message", "agent_message", "text_chunk"})
# Events after which a stream may end normally (chatflows may end without message_end; a paused
# workflow ends with workflow_paused).
TERMINAL_EVENTS = frozenset({"message_end", "workflow_finished", "workflow_paused", "tts_message_end"})


def parse_event(d: dict[str, Any]) -> Event:
    """The typed event for one decoded SSE data object."""
    name = d.get("event")
    if not isinstance(name, str):
        d = {**d, "event": str(name) if name is not None else "unknown"}
        return UnknownEvent(d["event"], d)
    return PARSERS.get(name, _unknown)(d)
