"""One generation (a chat turn, a completion or a workflow run) as a timed script of Dify events.

Each mode's script is a plain generator of `(offset_s, event)`: when, after the request started,
Dify would send that event. `pace()` (in streaming.py) sends them on time for a stream; `collect()`
runs the same script for a blocking call. The script is told whether each event was really sent
(`sent = yield ...`) so a stopped or broken stream stores exactly the answer the client saw.
"""
from __future__ import annotations

import ast
import operator
import random
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from .apps import Node, SimApp
from .config import Latency, NodeTiming
from .grader import grade
from .profiles import PROFILES, Profile
from .state import Conversation, Task, new_id, now
from .text import count_tokens, tokenize, usage_block, write_answer

Script = Generator[tuple[float, dict], bool, None]

SYSTEM_PROMPT_TOKENS = 42  # what a real app's pre-prompt adds to every prompt


@dataclass
class Generation:
    app: SimApp
    user: str
    query: str
    inputs: dict
    files: list[dict]
    task: Task
    latency: Latency
    rng: random.Random
    seed: int
    conversation: Conversation | None = None
    history_tokens: int = 0
    response_mode: str = "streaming"
    profile: Profile = field(default_factory=lambda: PROFILES["1.13"])
    end_user_id: str = ""
    node_failure: bool = False  # the node-failed fault: the app's Template node fails as in captures 71-74
    nodes: NodeTiming = field(default_factory=lambda: NodeTiming(0.0, 0.0))  # workflow/chatflow node time
    message_id: str = field(default_factory=new_id)
    workflow_run_id: str = field(default_factory=new_id)
    created_at: int = field(default_factory=now)
    started: float = field(default_factory=time.monotonic)
    # Filled as the script runs:
    answer_parts: list[str] = field(default_factory=list)
    usage: dict | None = None
    status: str = "normal"  # normal | stopped | error
    error: str | None = None
    completed: bool = False  # the script ran to its end (not cut short by the client leaving)
    agent_thoughts: list[dict] = field(default_factory=list)
    retriever_resources: list[dict] = field(default_factory=list)
    outputs: dict | None = None
    workflow_status: str | None = None
    run_error: str | None = None  # workflow_finished's error (a stop's "Stopped by user." included)
    total_steps: int = 0
    first_content_at: float | None = None  # monotonic time the first answer piece went out
    exceptions_count: int = 0

    @property
    def outcome(self) -> str:
        """For metrics: ok, stopped, error, or disconnected (the client left mid-stream)."""
        if self.status in ("stopped", "error"):
            return self.status
        return "ok" if self.completed else "disconnected"

    @property
    def answer(self) -> str:
        return "".join(self.answer_parts)

    @property
    def conversation_id(self) -> str | None:
        return self.conversation.id if self.conversation else None

    def full_answer(self) -> str:
        if self.app.grades:
            return grade(self.query)
        turn = len(self.conversation.message_ids) + 1 if self.conversation else 1
        return write_answer(
            seed=self.seed,
            app_name=self.app.name,
            query=self.query,
            inputs=self.inputs,
            file_names=[f["name"] for f in self.files],
            turn=turn,
        )

    def prompt_tokens(self) -> int:
        inputs_text = " ".join(str(v) for v in self.inputs.values())
        return SYSTEM_PROMPT_TOKENS + count_tokens(self.query) + count_tokens(inputs_text) + self.history_tokens

    def finish_usage(self) -> dict:
        end = time.monotonic()
        first = self.first_content_at if self.first_content_at is not None else end
        self.usage = usage_block(self.prompt_tokens(), len(self.answer_parts), end - self.started,
                                 time_to_first_token=first - self.started, time_to_generate=end - first)
        return self.usage

    # Envelopes ---------------------------------------------------------------------------------
    def base(self, event: str) -> dict:
        ev: dict[str, Any] = {"event": event, "task_id": self.task.id}
        if self.app.mode == "workflow":
            ev["workflow_run_id"] = self.workflow_run_id
            return ev
        if self.conversation:
            ev["conversation_id"] = self.conversation.id
        ev["message_id"] = self.message_id
        ev["created_at"] = self.created_at
        return ev

    def metadata(self, usage: dict) -> dict:
        """message_end's and a blocking answer's `metadata`, keys as Dify sends them."""
        return {"annotation_reply": None, "retriever_resources": self.retriever_resources, "usage": usage}

    def error_event(self, code: str, status: int, message: str) -> dict:
        if self.app.mode == "workflow":
            return {"event": "error", "workflow_run_id": self.workflow_run_id, "code": code, "status": status, "message": message}
        ev = {"event": "error", "message_id": self.message_id, "created_at": self.created_at}
        if self.conversation:
            ev["conversation_id"] = self.conversation.id
        ev.update(code=code, status=status, message=message)
        return ev


def script_for(gen: Generation) -> Script:
    return {
        "chat": _chat,
        "completion": _chat,
        "agent-chat": _agent,
        "advanced-chat": _chatflow,
        "workflow": _workflow,
    }[gen.app.mode](gen)


def _stream_text(gen: Generation, t: float, event: str, text: str, wrap=None) -> Generator[tuple[float, dict], bool, float]:
    """Stream `text` piece by piece from offset `t`; returns the offset after the last piece."""
    for piece in tokenize(text):
        if wrap:
            ev = wrap(piece)
        else:
            ev = gen.base(event)
            ev["id"] = gen.message_id
            ev["answer"] = piece
        sent = yield t, ev
        if sent:
            if gen.first_content_at is None:
                gen.first_content_at = time.monotonic()
            gen.answer_parts.append(piece)
        if gen.task.stopped:
            break
        t += gen.latency.gap(gen.rng)
    return t


def _message_end(gen: Generation) -> dict:
    ev = gen.base("message_end")
    ev["id"] = gen.message_id
    ev["metadata"] = gen.metadata(gen.finish_usage())
    ev["files"] = []
    return ev


def _chat(gen: Generation) -> Script:
    t = gen.latency.ttft(gen.rng)
    if gen.app.retriever_resource:
        gen.retriever_resources = _citations(gen)
    t = yield from _stream_text(gen, t, "message", gen.full_answer())
    if gen.task.stopped:
        gen.status = "stopped"
    yield t, _message_end(gen)


# Agent ----------------------------------------------------------------------------------------
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(expr: str) -> float | None:
    """Evaluate + - * / over numbers, nothing else (the simulated calculator tool)."""

    def ev(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ValueError(expr)

    try:
        return ev(ast.parse(expr.replace("×", "*").replace("x", "*"), mode="eval").body)
    except (ValueError, SyntaxError, ZeroDivisionError, RecursionError):
        return None


def _pick_tool(query: str) -> tuple[str, dict, str]:
    import re

    match = re.search(r"-?\d+(?:\.\d+)?(?:\s*[-+*/×x]\s*-?\d+(?:\.\d+)?)+", query)
    if match and (value := _arith(match.group(0))) is not None:
        return "calculator", {"expression": match.group(0)}, f"{match.group(0)} = {value:g}"
    q = " ".join(query.split())[:80]
    results = "\n".join(f"{i}. Simulated result {i} for “{q}” (example.com/{i})" for i in range(1, 4))
    return "web_search", {"query": q}, results


def _agent(gen: Generation) -> Script:
    ttft = gen.latency.ttft(gen.rng)
    tool, tool_input, observation = _pick_tool(gen.query)
    import orjson

    first = {"id": new_id(), "position": 1, "thought": "", "observation": "", "tool": tool,
             "tool_labels": {tool: {"en_US": tool.replace("_", " ").title()}},
             "tool_input": orjson.dumps({tool: tool_input}).decode(), "message_files": []}

    def thought(fields: dict) -> dict:
        ev = gen.base("agent_thought")
        ev.update(fields)
        return ev

    yield ttft * 0.4, thought(first)
    first = {**first, "observation": observation}
    gen.agent_thoughts.append(first)
    yield ttft * 0.8, thought(first)
    second = {"id": new_id(), "position": 2, "thought": "", "observation": "", "tool": "", "tool_labels": {},
              "tool_input": "", "message_files": []}
    yield ttft * 0.9, thought(second)

    def wrap(piece: str) -> dict:
        ev = gen.base("agent_message")
        ev["id"] = gen.message_id
        ev["answer"] = piece
        return ev

    answer = gen.full_answer() + f" (Tool used: {tool}: {observation.splitlines()[0]})"
    t = yield from _stream_text(gen, ttft, "agent_message", answer, wrap=wrap)
    second = {**second, "thought": gen.answer}
    gen.agent_thoughts.append(second)
    yield t, thought(second)
    if gen.task.stopped:
        gen.status = "stopped"
    yield t, _message_end(gen)


# Workflow-based modes -------------------------------------------------------------------------
# The error of the Template node that fails under the node-failed fault, as Dify 1.12 reported it (captures 71-74).
NODE_FAILED_ERROR = ("Failed to execute code, which is likely a network issue, please check if the sandbox "
                     "service is running. ( Error: [Errno 111] Connection refused )")
STOPPED_ERROR = "Stopped by user."
KNOWLEDGE_SHARE = 0.3  # Knowledge Retrieval's share of the TTFT


def _form_inputs(gen: Generation) -> dict:
    """The run's user inputs: every form variable, null when not given (as the Start node sees them)."""
    out: dict[str, Any] = {}
    for item in gen.app.input_form:
        (spec,) = item.values()
        out[spec["variable"]] = gen.inputs.get(spec["variable"])
    out.update({k: v for k, v in gen.inputs.items() if k not in out})
    return out


def run_inputs(gen: Generation, *, start_node: bool = False) -> dict:
    """workflow_started's `inputs`: the form plus Dify's `sys.*` variables (the Start node adds a few)."""
    inputs = _form_inputs(gen)
    inputs.update({"sys.files": [dict(f) for f in gen.files], "sys.user_id": gen.user, "sys.app_id": gen.app.id,
                   "sys.workflow_id": gen.app.workflow_id, "sys.workflow_run_id": gen.workflow_run_id})
    if gen.app.mode == "advanced-chat":
        inputs["sys.query"] = gen.query
        if start_node:
            inputs["sys.conversation_id"] = gen.conversation_id
        inputs["sys.dialogue_count"] = len(gen.conversation.message_ids) + 1 if gen.conversation else 1
    elif start_node:
        inputs["sys.timestamp"] = gen.created_at
    return inputs


def _node_started(gen: Generation, exec_id: str, node_id: str, node_type: str, title: str, index: int) -> dict:
    ev = gen.base("node_started")
    ev["workflow_run_id"] = gen.workflow_run_id
    ev["data"] = {"id": exec_id, "node_id": node_id, "node_type": node_type, "title": title, "index": index,
                  "predecessor_node_id": None, "inputs": None, "inputs_truncated": False, "created_at": now(),
                  "extras": {}, "iteration_id": None, "loop_id": None, "agent_strategy": None}
    return ev


def _node_finished(gen: Generation, exec_id: str, node_id: str, node_type: str, title: str, index: int, *,
                   inputs: dict, outputs: dict, status: str, elapsed: float, created_at: int,
                   error: str | None = None, execution_metadata: dict | None = None) -> dict:
    ev = gen.base("node_finished")
    ev["workflow_run_id"] = gen.workflow_run_id
    ev["data"] = {"id": exec_id, "node_id": node_id, "node_type": node_type, "title": title, "index": index,
                  "predecessor_node_id": None, "inputs": inputs, "inputs_truncated": False,
                  "process_data": {}, "process_data_truncated": False, "outputs": outputs, "outputs_truncated": False,
                  "status": status, "error": error, "elapsed_time": round(elapsed, 6),
                  "execution_metadata": execution_metadata, "created_at": created_at, "finished_at": now(),
                  "files": [], "iteration_id": None, "loop_id": None}
    return ev


def _overhead(gen: Generation) -> float:
    """When the run starts: Dify's own time before workflow_started and the first node (NodeTiming)."""
    return gen.latency.spread(gen.nodes.overhead_s, gen.rng)


def _run_nodes(
    gen: Generation, nodes: tuple[Node, ...], llm_event: str, t: float = 0.0
) -> Generator[tuple[float, dict], bool, float]:
    """Start/finish each node in turn from offset `t`; the LLM node streams the answer. Returns the end offset.

    Nodes take NodeTiming's `step_s`, Knowledge Retrieval its share of the TTFT, the LLM node from its
    start to its last token (the first at the request's TTFT). A stop leaves the running node without
    its node_finished (as Dify does); under the node-failed fault the app's Template node (after its LLM,
    so the whole answer has streamed) finishes `failed` and ends the run, as captures 72 and 74 show.
    """
    ttft = gen.latency.ttft(gen.rng)

    def step() -> float:
        return gen.latency.spread(gen.nodes.step_s, gen.rng)

    for index, node in enumerate(nodes, start=1):
        node_id, node_type, title = node.id, node.type, node.title
        node_start, created_at, exec_id = t, now(), new_id()
        gen.total_steps = index
        yield t, _node_started(gen, exec_id, node_id, node_type, title, index)
        inputs: dict[str, Any] = {}
        outputs: dict[str, Any] = {}
        status, error, metadata = "succeeded", None, None
        if node_type == "llm":
            t = max(t, ttft)
            if llm_event == "text_chunk":
                def wrap(piece: str) -> dict:
                    ev = gen.base("text_chunk")
                    ev["data"] = {"text": piece, "from_variable_selector": ["llm", "text"]}
                    return ev
                t = yield from _stream_text(gen, t, "text_chunk", gen.full_answer(), wrap=wrap)
            else:
                def wrap(piece: str) -> dict:
                    ev = gen.base("message")
                    ev.update(id=gen.message_id, answer=piece, from_variable_selector=["llm", "text"])
                    return ev
                t = yield from _stream_text(gen, t, "message", gen.full_answer(), wrap=wrap)
            usage = gen.finish_usage()
            inputs, outputs = {}, {"text": gen.answer}
            metadata = {"total_tokens": usage["total_tokens"], "total_price": usage["total_price"], "currency": "USD"}
        elif node_type == "knowledge-retrieval":
            t += ttft * KNOWLEDGE_SHARE
            gen.retriever_resources = _citations(gen)
            inputs = {"query": gen.query}
            outputs = {"result": [{"content": r["content"], "title": r["document_name"]} for r in gen.retriever_resources]}
        elif node_type == "start":
            t += step()
            inputs = outputs = run_inputs(gen, start_node=True)
        elif node_type == "answer":
            t += step()
            inputs, outputs = {}, {"answer": gen.answer, "files": []}
        elif node_type == "template-transform":
            t += step()
            inputs = {"text": gen.answer}
            if gen.node_failure:  # Dify: the variables it was given, no outputs
                status, error = "failed", NODE_FAILED_ERROR
                gen.exceptions_count += 1
            else:
                outputs = {"output": gen.answer}
        else:  # end
            t += step()
            inputs = outputs = {"text": gen.answer}
        finished = _node_finished(gen, exec_id, node_id, node_type, title, index, inputs=inputs, outputs=outputs,
                                  status=status, error=error, elapsed=t - node_start, created_at=created_at,
                                  execution_metadata=metadata)
        sent = yield t, finished
        if gen.task.stopped or sent is False or status == "failed":
            break
    return t


def _workflow_started(gen: Generation) -> dict:
    ev = gen.base("workflow_started")
    ev["workflow_run_id"] = gen.workflow_run_id
    ev["data"] = {"id": gen.workflow_run_id, "workflow_id": gen.app.workflow_id, "inputs": run_inputs(gen),
                  "created_at": gen.created_at}
    if gen.profile.newer_fields:
        ev["data"]["reason"] = "initial"
    return ev


def workflow_finished(gen: Generation, status: str, error: str | None = None) -> dict:
    ev = gen.base("workflow_finished")
    ev["workflow_run_id"] = gen.workflow_run_id
    usage = gen.usage or gen.finish_usage()
    gen.workflow_status, gen.run_error = status, error
    if status != "succeeded":
        gen.outputs = {}
    elif gen.app.mode == "advanced-chat":
        gen.outputs = {"answer": gen.answer, "files": []}
    else:
        gen.outputs = {"text": gen.answer}
    ev["data"] = {"id": gen.workflow_run_id, "workflow_id": gen.app.workflow_id, "status": status,
                  "outputs": gen.outputs, "error": error, "elapsed_time": round(time.monotonic() - gen.started, 6),
                  "total_tokens": usage["total_tokens"], "total_steps": gen.total_steps,
                  "created_by": {"id": gen.end_user_id, "user": gen.user},
                  "created_at": gen.created_at, "finished_at": now(), "exceptions_count": gen.exceptions_count,
                  "files": []}
    return ev


def _run_end(gen: Generation) -> tuple[str, str | None]:
    """The run's final status and error, after its nodes ran."""
    if gen.node_failure and gen.exceptions_count:  # the failing node ran (a stop before it wins)
        # A chatflow reports the failed run as an error, a workflow only in its data.
        gen.status = "error"
        gen.error = f"Run failed: {NODE_FAILED_ERROR}" if gen.app.mode == "advanced-chat" else NODE_FAILED_ERROR
        return "failed", NODE_FAILED_ERROR
    if gen.task.stopped:
        gen.status = "stopped"
        return "stopped", STOPPED_ERROR
    return "succeeded", None


def _chatflow(gen: Generation) -> Script:
    t0 = _overhead(gen)
    yield t0, _workflow_started(gen)
    t = yield from _run_nodes(gen, gen.app.graph, "message", t0)
    status, error = _run_end(gen)
    if status == "failed":  # Dify: workflow_finished failed, then an error event, no message_end
        yield t, workflow_finished(gen, status, error)
        assert gen.error is not None  # _run_end set it with the failed status
        yield t, gen.error_event("invalid_param", 400, gen.error)
        return
    if gen.profile.message_end_last:
        yield t, workflow_finished(gen, status, error)
        yield t, _message_end(gen)
    else:
        yield t, _message_end(gen)
        yield t, workflow_finished(gen, status, error)


def _workflow(gen: Generation) -> Script:
    t0 = _overhead(gen)
    yield t0, _workflow_started(gen)
    t = yield from _run_nodes(gen, gen.app.graph, "text_chunk", t0)
    status, error = _run_end(gen)
    yield t, workflow_finished(gen, status, error)


def _citations(gen: Generation) -> list[dict]:
    topic = " ".join(gen.query.split())[:60] or "your question"
    return [
        {"position": i, "dataset_id": "d0c5a7e1-0000-4000-8000-00000000000" + str(i), "dataset_name": "Simulator handbook",
         "document_id": "d0c5a7e1-1111-4000-8000-00000000000" + str(i), "document_name": f"handbook-part-{i}.md",
         "segment_id": "d0c5a7e1-2222-4000-8000-00000000000" + str(i), "score": round(0.92 - 0.11 * i, 2),
         "content": f"Section {i} of the simulator handbook, retrieved for “{topic}”."}
        for i in (1, 2)
    ]
