"""Typed stream events -> a Turn: answer text, ids, agent steps, workflow nodes, citations, stats.

Pure bookkeeping (no I/O), so live runs, compare lanes and batch rows all record the same way.
"""
from __future__ import annotations

from lib.dify import (
    AgentThoughtEvent,
    Event,
    MessageEndEvent,
    MessageReplaceEvent,
    NodeEvent,
    NodeSpan,
    Timing,
    Usage,
    WorkflowEvent,
    WorkflowFinishedEvent,
    redact_tokens,
)
from lib.dify.timing import clock

from .transcript import AgentStep, Citation, NodeRun, Turn, TurnStats


def failed_run_sentence(turn: Turn, message: str) -> str:
    """A failed run in words, naming the node that failed when the timeline has it (as the client's
    RunFailedError does; this covers a client that reports the failure only as workflow_finished)."""
    failed = next((n for n in turn.nodes if n.status in ("failed", "exception")), None)
    what = "The workflow" if turn.kind == "workflow" else "The chatflow"
    where = f" in node {failed.title!r}" + (f" ({failed.node_type})" if failed.node_type else "") if failed else ""
    return f"{what} run failed{where}: {message}"


class TurnRecorder:
    """Applies one stream's events to `turn`. `finish` writes the stats once the stream is over."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.usage: Usage | None = None
        self.run_failed = False  # workflow_finished said "failed": turn.error says where and why
        self._pieces: list[str] = []
        self._own = Timing(sent=clock())  # node spans when `apply` is given no client timing

    def apply(self, ev: Event, timing: Timing | None = None) -> bool:
        """Record `ev`; True when it changed what the page shows beyond the answer text
        (steps, nodes, citations), so a live view knows to redraw its details."""
        turn = self.turn
        raw = ev.raw
        turn.task_id = turn.task_id or raw.get("task_id")
        turn.conversation_id = turn.conversation_id or raw.get("conversation_id")
        text = ev.text
        if text:
            self._pieces.append(text)
            turn.answer += text
            turn.message_id = turn.message_id or raw.get("message_id") or raw.get("id")
            return False
        name = ev.event
        if isinstance(ev, MessageEndEvent):
            self.usage = ev.usage
            turn.message_id = ev.message_id or turn.message_id
            turn.conversation_id = ev.conversation_id or turn.conversation_id
            turn.citations = [Citation.from_resource(r) for r in ev.retriever_resources]
            return bool(turn.citations)
        if isinstance(ev, MessageReplaceEvent):  # output moderation replaced the answer
            turn.answer = ev.answer
            return True
        if isinstance(ev, AgentThoughtEvent):
            self._agent_step(ev)
            return True
        if isinstance(ev, NodeEvent):
            self._node(ev, timing)
            return True
        if isinstance(ev, WorkflowFinishedEvent):
            turn.workflow_run_id = ev.workflow_run_id or turn.workflow_run_id
            turn.outputs = dict(ev.outputs or {})
            if ev.status == "failed" and ev.error:
                turn.error = failed_run_sentence(turn, redact_tokens(ev.error))
                self.run_failed = True
            if ev.status == "stopped":
                turn.status = "stopped"
            return True
        if isinstance(ev, WorkflowEvent):
            turn.workflow_run_id = turn.workflow_run_id or ev.workflow_run_id
            return name == "workflow_started"
        return False

    def _agent_step(self, ev: AgentThoughtEvent) -> None:
        # Dify re-sends a thought with the same id as it fills in (tool call, then its observation).
        step = next((s for s in self.turn.thoughts if ev.id and s.id == ev.id), None)
        if step is None:
            step = AgentStep(id=ev.id or str(len(self.turn.thoughts)), position=ev.position or len(self.turn.thoughts) + 1)
            self.turn.thoughts.append(step)
        step.thought = ev.thought or step.thought
        step.tool = ev.tool or step.tool
        step.tool_input = ev.tool_input or step.tool_input
        step.observation = ev.observation or step.observation

    def _node(self, ev: NodeEvent, timing: Timing | None) -> None:
        # The row shows the client's span of this execution (lib.dify's one reading of node events: times, status,
        # Dify's elapsed, tokens, price), so the Playground, the waterfall and the benchmark agree on a node.
        span = self._span(ev, timing)
        if span is None:
            return
        key = span.execution_id or span.node_id
        node = next((n for n in self.turn.nodes if n.node_id == key), None)
        if node is None:
            origin = timing.sent if timing is not None else self._own.sent
            node = NodeRun(node_id=key, title=span.title, node_type=span.type, index=span.index or len(self.turn.nodes) + 1,
                           started_s=(span.started - origin) if origin is not None else None)
            self.turn.nodes.append(node)
        if span.finished is None:
            return
        node.status, node.elapsed_s, node.tokens = span.status or node.status, span.elapsed, span.tokens
        node.price, node.currency = (span.price, span.currency) if span.price else (None, None)
        # The error is Dify's whole text, not the span's (cut at 300 characters for records kept by the thousand):
        # the page has room for all of it. Masked: Dify's words may quote a token (an HTTP node's).
        error = ev.data.get("error")
        node.error = redact_tokens(str(error)) if error else None

    def _span(self, ev: NodeEvent, timing: Timing | None) -> NodeSpan | None:
        """The span the client's stream recorded for this event; without a client's timing (the recorder used on
        its own), the same bookkeeping on a Timing of the recorder's."""
        if timing is None:
            return self._own.node_event(ev.event, ev.data, clock())
        return timing.span_of(ev.data)

    def finish(self, timing: Timing | None, usage: Usage | None = None, *, stopped: bool = False) -> TurnStats:
        """Write the turn's stats from the timing record and the usage (the stream's, else message_end's)."""
        usage = usage or self.usage  # a workflow's carries its nodes' summed price (lib.dify): not added again here
        stats = TurnStats.from_timing(timing, usage, content_events=len(self._pieces), stopped=stopped)
        self.turn.stats = stats
        return stats
