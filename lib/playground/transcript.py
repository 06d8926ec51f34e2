"""A conversation (or a list of text-generator / workflow runs) as turns, each with what it cost.

A `Turn` is one query and its answer, with the ids Dify gave it, its timing and usage (`TurnStats`),
agent steps, workflow nodes, citations, the user's feedback and suggested follow-ups. Turns are plain
dataclasses: Streamlit keeps them in session state, export.py writes them out. A turn being streamed
is written by its worker thread only (live.py), under that run's lock.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from lib.dify import Message, Timing, Usage

Status = Literal["streaming", "done", "stopped", "error"]
TurnKind = Literal["chat", "completion", "workflow"]


MIN_RATE_WINDOW_S = 0.25  # a stopped answer's tokens/s needs this much streaming time to mean anything


@dataclass
class TurnStats:
    """Under each answer: time to first token, total time, output tokens, tokens/s, price."""

    ttft_s: float | None = None
    total_s: float | None = None
    output_tokens: int | None = None
    tokens_estimated: bool = False  # counted from streamed pieces: Dify sent no usage (stopped, workflow)
    tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    total_tokens: int | None = None
    price: float | None = None  # only when Dify reports one (> 0)
    currency: str = "USD"
    measured_by: Literal["client", "dify"] = "client"  # history turns only have Dify's own latency
    stopped: bool = False  # stopped midway: the rate is over the streaming time, the usage is Dify's for the stopped run
    streamed_s: float | None = None  # first content event to the last
    price_note: str | None = None  # instead of a price: a workflow's nodes priced in several currencies, each's sum

    @classmethod
    def from_timing(cls, timing: Timing | None, usage: Usage | None, *, content_events: int | None = None,
                    stopped: bool = False) -> TurnStats:
        """Stats from the client's timing record and Dify's usage block (either may be missing).

        A stopped answer's rate is over what streamed (first token to last): its end-to-end time holds the
        wait for the stop, and Dify's usage counts what the model made before it stopped, not what arrived."""
        stats = cls(stopped=stopped)
        if timing is not None:
            stats.ttft_s = timing.ttft
            stats.total_s = timing.e2e
        if usage is not None and usage.completion_tokens > 0:
            stats.output_tokens = usage.completion_tokens
        elif content_events or (timing is not None and timing.content):
            stats.output_tokens = content_events if content_events is not None else len(timing.content)  # type: ignore[union-attr]
            stats.tokens_estimated = True
        if usage is not None:
            stats.prompt_tokens = usage.prompt_tokens or None
            stats.total_tokens = usage.total_tokens or None
            stats.currency = usage.currency or "USD"
        # A workflow's usage is the client's sum of its nodes' prices (lib.dify); nodes priced in several
        # currencies have no one price: the caption says each instead of a made-up total.
        price = usage.price if usage is not None else None
        stats.price = price if price else None
        if usage is not None and usage.price_from == "mixed":
            stats.price_note = " + ".join(format_price(v, c) for c, v in sorted(usage.node_prices.items())) + " (not added)"
        content = timing.content if timing is not None else []
        if len(content) >= 2:
            stats.streamed_s = content[-1] - content[0]
        if stopped:
            gaps = len(content) - 1  # pieces after the first, over the time they took to come
            # Over a few pieces that came together (a stop right after the first token) the quotient is noise
            # (a "1350 tokens/s"): no rate then, the caption keeps the times and Dify's usage.
            long_enough = stats.streamed_s is not None and stats.streamed_s >= MIN_RATE_WINDOW_S
            stats.tokens_per_s = gaps / stats.streamed_s if gaps > 0 and long_enough else None  # type: ignore[operator]
        else:
            stats.tokens_per_s = _rate(stats.output_tokens, stats.ttft_s, stats.total_s)
        return stats

    def caption(self) -> str:
        """`First token 212 ms · Total 2.41 s · 85 tokens · 38.7 tokens/s · $0.000185`."""
        parts = []
        if self.measured_by == "dify":
            if self.total_s is not None:
                parts.append(f"Model latency {format_seconds(self.total_s)} (Dify)")
        else:
            parts.append(f"First token {format_seconds(self.ttft_s)}" if self.ttft_s is not None else "No streamed text")
            if self.total_s is not None:
                parts.append(f"{'Stopped at' if self.stopped else 'Total'} {format_seconds(self.total_s)}")
        if self.stopped:
            return " · ".join(parts + self._stopped_parts())
        if self.output_tokens is not None:
            parts.append(f"{'≈' if self.tokens_estimated else ''}{self.output_tokens} output tokens")
        elif self.total_tokens:
            parts.append(f"{self.total_tokens} tokens")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:.1f} tokens/s")
        if self.price is not None:
            parts.append(format_price(self.price, self.currency))
        elif self.price_note:
            parts.append(self.price_note)
        return " · ".join(parts)

    def _stopped_parts(self) -> list[str]:
        parts = []
        if self.tokens_per_s is not None and self.streamed_s is not None:
            parts.append(f"{self.tokens_per_s:.1f} tokens/s while streaming ({format_seconds(self.streamed_s)})")
        dify = []
        if self.output_tokens is not None and not self.tokens_estimated:
            dify.append(f"{self.output_tokens} output tokens")
        elif self.total_tokens:
            dify.append(f"{self.total_tokens} tokens")
        if self.price is not None:
            dify.append(format_price(self.price, self.currency))
        elif self.price_note:
            dify.append(self.price_note)
        if dify:
            parts.append("Dify's usage for the stopped run: " + ", ".join(dify))
        elif self.output_tokens is not None:
            parts.append(f"≈{self.output_tokens} pieces arrived (Dify sent no usage)")
        return parts

    def as_dict(self) -> dict[str, Any]:
        return {
            "ttft_s": _round(self.ttft_s), "total_s": _round(self.total_s), "output_tokens": self.output_tokens,
            "tokens_estimated": self.tokens_estimated, "tokens_per_s": _round(self.tokens_per_s, 2),
            "prompt_tokens": self.prompt_tokens, "total_tokens": self.total_tokens,
            "price": self.price, "currency": self.currency if self.price is not None else None,
            "price_note": self.price_note,
            "measured_by": self.measured_by, "stopped": self.stopped, "streamed_s": _round(self.streamed_s),
        }


@dataclass
class AgentStep:
    """One `agent_thought`: a tool call with its input and observation, or the final thought."""

    id: str
    position: int
    thought: str = ""
    tool: str = ""
    tool_input: str = ""
    observation: str = ""

    @property
    def tools(self) -> list[str]:
        return [t for t in self.tool.split(";") if t]


@dataclass
class NodeRun:
    """One workflow node execution, for the timeline: when it started (s after the run was sent), how long."""

    node_id: str
    title: str
    node_type: str
    index: int = 0
    status: str = "running"  # running | succeeded | failed | stopped | exception
    started_s: float | None = None
    elapsed_s: float | None = None
    error: str | None = None
    tokens: int | None = None
    price: float | None = None
    currency: str | None = None


@dataclass
class Citation:
    position: int
    document_name: str
    dataset_name: str = ""
    score: float | None = None
    content: str = ""

    @classmethod
    def from_resource(cls, r: dict[str, Any]) -> Citation:
        score = r.get("score")
        return cls(
            position=int(r.get("position") or 0),
            document_name=str(r.get("document_name") or "document"),
            dataset_name=str(r.get("dataset_name") or ""),
            score=float(score) if isinstance(score, (int, float)) else None,
            content=str(r.get("content") or ""),
        )


@dataclass
class Turn:
    query: str
    kind: TurnKind = "chat"
    inputs: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # names of the files sent with it
    answer: str = ""
    status: Status = "streaming"
    error: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    task_id: str | None = None
    workflow_run_id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)  # workflow outputs
    stats: TurnStats | None = None
    thoughts: list[AgentStep] = field(default_factory=list)
    nodes: list[NodeRun] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    feedback: str | None = None  # like | dislike | None
    suggestions: list[str] = field(default_factory=list)
    target: str = ""  # the target's name (compare, export)
    label: str = ""  # compare: which lane ("A", "B · variant")
    source: Literal["live", "history"] = "live"
    created_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def finished(self) -> bool:
        return self.status != "streaming"

    @property
    def can_rate(self) -> bool:
        return self.message_id is not None and self.kind != "workflow" and self.status in ("done", "stopped")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (export, batch): everything but nothing secret (a turn never holds the key)."""
        return {
            "id": self.id, "kind": self.kind, "target": self.target or None, "label": self.label or None,
            "query": self.query, "inputs": self.inputs, "files": self.files, "answer": self.answer,
            "status": self.status, "error": self.error, "message_id": self.message_id,
            "conversation_id": self.conversation_id, "workflow_run_id": self.workflow_run_id,
            "outputs": self.outputs or None, "stats": self.stats.as_dict() if self.stats else None,
            "agent_thoughts": [vars(t) for t in self.thoughts], "nodes": [vars(n) for n in self.nodes],
            "citations": [vars(c) for c in self.citations], "feedback": self.feedback,
            "suggested_questions": self.suggestions, "source": self.source, "created_at": self.created_at,
        }


@dataclass
class Transcript:
    """The turns on screen: one conversation of a chat app, or the session's runs of another app."""

    turns: list[Turn] = field(default_factory=list)
    conversation_id: str | None = None
    name: str = ""
    earlier_cursor: str | None = None  # history: `first_id` for the page before the oldest turn loaded

    @property
    def has_earlier(self) -> bool:
        return self.earlier_cursor is not None

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None


def turn_from_message(m: Message) -> Turn:
    """A history message (GET /messages) as a turn: Dify's own latency and usage, no client timing."""
    extra = m.model_extra or {}
    price = _float(extra.get("total_price"))
    answer_tokens = extra.get("answer_tokens")
    stats = TurnStats(
        total_s=_float(extra.get("provider_response_latency")) or None,
        output_tokens=int(answer_tokens) if isinstance(answer_tokens, int) and answer_tokens > 0 else None,
        total_tokens=extra.get("total_tokens") if isinstance(extra.get("total_tokens"), int) else None,
        price=price if price > 0 else None,
        currency=str(extra.get("currency") or "USD"),
        measured_by="dify",
    )
    if stats.output_tokens and stats.total_s:
        stats.tokens_per_s = stats.output_tokens / stats.total_s
    status = m.status or "normal"
    return Turn(
        query=m.query,
        kind="chat",
        inputs=dict(m.inputs or {}),
        files=[str(f.get("filename") or f.get("name") or f.get("type") or "file")
               for f in m.message_files if f.get("belongs_to") != "assistant"],
        answer=m.answer,
        status="error" if status == "error" else "done",
        error=m.error,
        message_id=m.id,
        conversation_id=m.conversation_id,
        stats=stats,
        thoughts=[_step(t) for t in m.agent_thoughts if t.get("tool") or t.get("observation")],
        citations=[Citation.from_resource(r) for r in m.retriever_resources],
        feedback=(m.feedback or {}).get("rating"),
        source="history",
        created_at=float(m.created_at or time.time()),
        id=m.id[:12],
    )


def _step(t: dict[str, Any]) -> AgentStep:
    return AgentStep(
        id=str(t.get("id") or ""), position=int(t.get("position") or 0), thought=str(t.get("thought") or ""),
        tool=str(t.get("tool") or ""), tool_input=str(t.get("tool_input") or ""), observation=str(t.get("observation") or ""),
    )


# -- formatting ------------------------------------------------------------------------------------


def format_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def format_price(price: float, currency: str = "USD") -> str:
    """`$0.000185`, `¥0.0012`, `0.0012 EUR`: enough digits for sub-cent prices."""
    digits = 6 if price < 0.01 else 4
    text = f"{price:.{digits}f}".rstrip("0").rstrip(".")
    symbol = {"USD": "$", "RMB": "¥", "CNY": "¥"}.get((currency or "").upper())
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def _rate(tokens: int | None, ttft: float | None, total: float | None) -> float | None:
    """Output tokens per second of generation: after the first token, so TTFT does not dilute it."""
    if not tokens or total is None:
        return None
    span = total - (ttft or 0.0)
    if tokens > 1 and span > 0.001:
        return tokens / span
    return None


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


STATUS_ICONS = {"running": "⏳", "succeeded": "✅", "failed": "❌", "stopped": "⏹️", "exception": "⚠️",
                "partial-succeeded": "☑️"}


def node_rows(turn: Turn) -> list[dict[str, Any]]:
    """The workflow timeline of a turn: one row per node, in start order, with its share of the run."""
    total = turn.stats.total_s if turn.stats and turn.stats.total_s else None
    if total is None:
        ends = [(n.started_s or 0) + (n.elapsed_s or 0) for n in turn.nodes]
        total = max(ends) if ends else None
    rows = []
    for n in sorted(turn.nodes, key=lambda n: (n.started_s if n.started_s is not None else 1e9, n.index)):
        rows.append({
            "#": n.index,
            "node": n.title,
            "type": n.node_type,
            "status": f"{STATUS_ICONS.get(n.status, '•')} {n.status}",
            "starts at (s)": round(n.started_s, 3) if n.started_s is not None else None,
            "took (s)": round(n.elapsed_s, 3) if n.elapsed_s is not None else None,
            "share of run": min(1.0, (n.elapsed_s or 0) / total) if total else 0.0,
            "tokens": f"{n.tokens:,}" if n.tokens is not None else "",  # text: a blank, not "None", when unknown
            "error": n.error or "",
        })
    return rows


def progress_lines(turn: Turn) -> list[str]:
    """Short live lines while a run streams: agent tool calls and workflow nodes so far."""
    lines = []
    for step in turn.thoughts:
        if step.tool:
            done = "✅" if step.observation else "⏳"
            lines.append(f"{done} Tool `{step.tool}`" + (f" → {step.observation.splitlines()[0][:80]}" if step.observation else ""))
    for n in turn.nodes:
        took = f" · {format_seconds(n.elapsed_s)}" if n.elapsed_s is not None else ""
        lines.append(f"{STATUS_ICONS.get(n.status, '•')} {n.title}{took}")
    return lines
