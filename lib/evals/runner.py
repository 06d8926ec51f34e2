"""Run a suite: every case x target x variant x repeat, at most `concurrency` at once, each judged as it ends.

Every answer is streamed (lib.dify.AsyncDifyClient on its fast aiohttp transport), so TTFT and each node's
events are measured. A run that fails inside Dify (RunFailedError, a timeout, a 400) is that case's failure,
with lib.dify's sentence as the reason; the other cases go on. What stops the whole run before it starts
is CannotRunError: a target that cannot be reached or refuses the key (CLI exit code 3).

The client's circuit breaker is off: an eval is a bounded list of requests, and each case must get its own
answer (or its own error), not a "circuit open" because earlier cases failed on purpose.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.bench.environment import environment
from lib.dify import AsyncDifyClient, DifyError, Timeouts, WorkflowResult
from lib.dify.timing import NodeSpan
from lib.settings import Target
from lib.waterfall import waterfall_record

from .assertions import CheckResult, Observation, judge_prompt, needs_language_profiles, verdict_result, warm_up
from .judges import Judge, JudgeFormError, completion_inputs
from .records import CaseResult, EvalRun, NodeRecord, TurnRecord
from .suite import Case, Suite, Turn, Variant

APP_KINDS = {"chat": "chat", "agent-chat": "chat", "advanced-chat": "chat", "agent": "chat",
             "completion": "completion", "workflow": "workflow"}
DEFAULT_CONCURRENCY = 4


class CannotRunError(RuntimeError):
    """The suite could not be run at all (a target unreachable, a key refused, a judge unknown)."""


@dataclass
class Progress:
    """Read by the page's live panel and the CLI's progress line while the run goes on."""

    total: int = 0
    done: int = 0
    passed: int = 0
    run_id: str | None = None
    last: str = ""
    finished: bool = False
    started: float = field(default_factory=time.monotonic)

    @property
    def failed(self) -> int:
        return self.done - self.passed


def new_run_id() -> str:
    return time.strftime("eval-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def run_suite(suite: Suite, targets: Sequence[Target], **kwargs: Any) -> EvalRun:
    """run_suite_async in a new event loop (for the CLI, the page's background thread and notebooks)."""
    return asyncio.run(run_suite_async(suite, targets, **kwargs))


async def run_suite_async(
    suite: Suite,
    targets: Sequence[Target],
    *,
    store: Any = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    repeats: int | None = None,
    resolve: Callable[[str], Target] | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    run_id: str | None = None,
    transport: str = "aiohttp",
) -> EvalRun:
    """Run `suite` against `targets`. `resolve(name)` finds judge targets by name; `store` (an EvalStore)
    saves the run and each result as it ends; `repeats` overrides the suite's."""
    if not targets:
        raise CannotRunError("no target to run the suite against")
    if len({t.name for t in targets}) != len(targets):
        raise CannotRunError("the same target is named twice")
    progress = progress or Progress()
    cancel = cancel or threading.Event()
    run = EvalRun(run_id or new_run_id(), suite.name, [t.name for t in targets], [v.name for v in suite.variants],
                  created_at=time.time())
    run.config = {"suite_source": suite.source, "suite_digest": suite.digest, "concurrency": concurrency,
                  "repeats": repeats, "targets": [{"name": t.name, "base_url": t.base_url, "key": t.masked_key}
                                                  for t in targets],
                  # where it ran, for a report (another machine is another run), and whose process it is
                  "environment": environment("asyncio"), "pid": os.getpid(), "host": socket.gethostname()}
    progress.run_id = run.id
    plan = [(t, v, c, r) for t in targets for v in suite.variants for c in suite.cases for r in range(repeats or c.repeats)]
    progress.total = len(plan)
    if store is not None:
        store.create_run(run, suite.text)
    timeouts = Timeouts(first_event=min(100.0, suite.timeout), total=suite.timeout)
    clients: dict[str, AsyncDifyClient] = {}

    def client_for(t: Target) -> AsyncDifyClient:
        if t.name not in clients:
            clients[t.name] = AsyncDifyClient(t.base_url, t.api_key, timeouts=timeouts, breaker=None, transport=transport)
        return clients[t.name]

    try:
        progress.last = "checking the targets"
        kinds = {t.name: await _probe(client_for(t), t, suite.app) for t in targets}
        judges: dict[str, Judge] = {}
        for name in suite.judge_targets():
            judge = _resolve(name, targets, resolve)
            judges[name] = await _judge(name, client_for(judge), judge)
        checks = [a for c in suite.cases for a in c.assertions + [x for t in c.turns for x in t.assertions]]
        if needs_language_profiles(checks):
            progress.last = "loading the language profiles"
        await asyncio.to_thread(warm_up, checks)  # the loop keeps answering (a cancel, the CLI's progress line)
        progress.last = "asking the first cases"
        slots = asyncio.Semaphore(max(1, concurrency))

        async def one(seq: int, target: Target, variant: Variant, case: Case, repeat: int) -> None:
            async with slots:
                if cancel.is_set():
                    return
                result = await _run_case(suite, case, variant, repeat, target, client_for(target), kinds[target.name], judges)
            result.seq = seq
            run.results.append(result)
            if store is not None:
                store.add_result(run.id, result)  # one small row per answer: negligible beside an LLM call
            progress.done += 1
            progress.passed += result.passed
            progress.last = f"{case.id} · {target.name}{'' if variant.name == 'default' else ' · ' + variant.name}"

        await asyncio.gather(*(one(i, *item) for i, item in enumerate(plan)))
        run.results.sort(key=lambda r: r.seq)
        run.status = "cancelled" if cancel.is_set() else "finished"
    except CannotRunError as exc:
        run.status, run.error = "failed", str(exc)
        raise
    except BaseException as exc:
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run.finished_at = time.time()
        progress.finished = True
        if store is not None:
            store.finish_run(run)
        for c in clients.values():
            await c.aclose()
    return run


def _resolve(name: str, targets: Sequence[Target], resolve: Callable[[str], Target] | None) -> Target:
    for t in targets:
        if t.name.casefold() == name.casefold():
            return t
    if resolve is None:
        raise CannotRunError(f"the judge target {name!r} is not known here")
    try:
        return resolve(name)
    except LookupError as exc:
        raise CannotRunError(f"the judge target {name!r}: {exc}") from None


async def _probe(client: AsyncDifyClient, target: Target, app: str) -> str:
    """The app's kind (chat, completion, workflow) from GET /info; any failure means the suite cannot run."""
    try:
        info = await client.info()
    except DifyError as exc:
        raise CannotRunError(f"cannot use target {target.name!r} ({target.base_url}, key {target.masked_key}): {exc}") from None
    return app if app != "auto" else APP_KINDS.get(info.mode or "", "chat")


async def _judge(name: str, client: AsyncDifyClient, target: Target) -> Judge:
    """How to ask the judge `name`: a chat app as it is, a completion app through its input form."""
    kind = await _probe(client, target, "auto")
    if kind == "workflow":
        raise CannotRunError(f"the judge {name!r} is a workflow app: a judge must be a chat or completion app")
    if kind == "chat":
        return Judge(name, client, kind)
    try:
        params = await client.parameters()
        prompt_input, inputs = completion_inputs(params, name)
    except DifyError as exc:
        raise CannotRunError(f"cannot read the judge {name!r}'s input form (GET /parameters): {exc}") from None
    except JudgeFormError as exc:
        raise CannotRunError(str(exc)) from None
    return Judge(name, client, kind, prompt_input, inputs)


async def _run_case(suite: Suite, case: Case, variant: Variant, repeat: int, target: Target, client: AsyncDifyClient,
                    kind: str, judges: dict[str, Judge]) -> CaseResult:
    result = CaseResult(case.id, target.name, variant.name, repeat, started_at=time.time())
    if kind == "chat" and not all(t.query.strip() for t in case.turns):  # Dify would say only "query is required"
        result.error, result.error_class = (f"This case has no query, and {target.name!r} is a chat app, which needs "
                                            "one: give the case a query, or run it against the workflow or completion "
                                            "app it was written for (those take only inputs)."), "NoQuery"
        return result
    conversation_id: str | None = None
    obs = Observation()
    try:
        for turn in case.turns:
            record = TurnRecord(turn.query)
            result.turns.append(record)
            await _answer(suite, case, turn, variant, client, kind, conversation_id, record)
            conversation_id = record.conversation_id
            obs = _observation(turn, record)
            record.checks = await _check_all(turn.assertions, obs, judges, suite.user)
        result.checks = await _check_all(case.assertions, obs, judges, suite.user)
    except OSError as exc:  # a `path:` file of the case could not be read: this case fails, the others go on
        result.error, result.error_class = f"Cannot read a file of this case: {exc}.", type(exc).__name__
    except DifyError as err:
        result.error, result.error_class = str(err), type(err).__name__
        if result.turns:
            record = result.turns[-1]
            record.error = str(err)
            record.answer = record.answer or err.partial or ""
            if err.timing is not None and not record.timing:
                record.timing = err.timing.as_dict()
    result.passed = result.error is None and not result.failed_checks
    return result


async def _answer(suite: Suite, case: Case, turn: Turn, variant: Variant, client: AsyncDifyClient, kind: str,
                  conversation_id: str | None, record: TurnRecord) -> None:
    inputs = {**turn.inputs, **variant.inputs}
    files = [await _file(client, f, suite) for f in turn.files] or None
    options: dict[str, Any] = {"headers": case.headers} if case.headers else {}
    if kind == "chat":
        stream = client.stream_chat(turn.query, user=suite.user, inputs=inputs, conversation_id=conversation_id,
                                    files=files, **options)
    elif kind == "completion":
        stream = client.stream_completion(inputs, user=suite.user, query=turn.query or None, files=files, **options)
    else:
        stream = client.stream_workflow(inputs, user=suite.user, files=files, **options)
    try:
        async with stream:
            async for _event in stream:
                pass  # the client's Timing keeps what is judged: the answer, its instants, each node's span
    finally:
        timing = stream.timing
        sent = timing.sent
        record.nodes = [_node_record(span, sent) for span in timing.nodes or ()]
        record.timing = timing.as_dict()
        record.timing["first_event_s"] = None if timing.first_event is None or sent is None else timing.first_event - sent
        record.timing["content_s"] = [round(c - sent, 6) for c in timing.content] if sent is not None else []
        record.answer = stream.answer
        record.waterfall = waterfall_record(timing) if timing.nodes is not None else None
    result = stream.result()
    if isinstance(result, WorkflowResult):
        record.outputs = result.outputs
        record.answer = result.text or _text_output(result.outputs)
        # total_price is lib.dify's: workflow_finished carries none, so the client's usage sums the nodes' prices
        if record.timing.get("total_tokens") is None and result.total_tokens is not None:
            record.timing["total_tokens"] = result.total_tokens
    else:
        record.answer = result.answer
        record.conversation_id = getattr(result, "conversation_id", None)
        record.usage = result.usage.raw if result.usage is not None else None


def _node_record(span: NodeSpan, sent: float | None) -> NodeRecord:
    """A node execution as the client's Timing saw it, its instants in seconds after sending."""
    def since(t: float | None) -> float | None:
        return None if t is None or sent is None else round(t - sent, 6)

    return NodeRecord(span.node_id, span.type or None, span.title, started_s=since(span.started),
                      finished_s=since(span.finished), status=span.status, elapsed_s=span.elapsed, tokens=span.tokens,
                      cost=span.price, error=span.error, currency=span.currency, parent=span.parent)


def _text_output(outputs: dict[str, Any]) -> str:
    for key in ("text", "answer", "output", "result"):
        if isinstance(outputs.get(key), str):
            return outputs[key]
    return json.dumps(outputs, ensure_ascii=False, default=str) if outputs else ""


async def _file(client: AsyncDifyClient, spec: dict[str, Any], suite: Suite) -> dict[str, Any]:
    """A `files` item as Dify takes it; `path:` is a local file, uploaded first."""
    if "path" not in spec:
        return spec
    path = Path(spec["path"])
    if not path.is_absolute() and suite.base_dir is not None:
        path = suite.base_dir / path
    uploaded = await client.upload_file(path, user=suite.user)
    return uploaded.as_input(spec.get("type"))


def _observation(turn: Turn, record: TurnRecord) -> Observation:
    t = record.timing
    return Observation(query=turn.query or json.dumps(turn.inputs, ensure_ascii=False, default=str), answer=record.answer,
                       outputs=record.outputs, ttft_s=t.get("ttft"), total_s=t.get("total"),
                       tokens=t.get("total_tokens"), cost=t.get("total_price"), currency=t.get("currency") or "USD")


async def _check_all(assertions: list, obs: Observation, judges: dict[str, Judge], user: str) -> list[CheckResult]:
    out = []
    for a in assertions:
        if a.kind != "judge":
            out.append(a.check(obs))
            continue
        try:
            verdict = await judges[a.target].ask(judge_prompt(a.value, obs), user=f"{user}-judge")
        except DifyError as err:
            out.append(CheckResult("judge", False, f"the judge ({a.target}) could not answer: {err}", a.label))
            continue
        out.append(verdict_result(a, verdict))
    return out
