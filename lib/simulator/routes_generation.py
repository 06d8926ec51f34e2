"""Generation routes: chat-messages, completion-messages, workflows/run, their stops, run details."""
from __future__ import annotations

import asyncio
import time

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import payloads
from .apps import SimApp
from .errors import (
    APP_UNAVAILABLE,
    CONVERSATION_NOT_EXISTS,
    NOT_CHAT_APP,
    NOT_WORKFLOW_APP,
    DifyError,
    bad_request,
    invalid_param,
    not_found,
)
from .generation import Generation, run_inputs
from .server import Simulator, abort
from .state import Conversation, Task, new_id, now, public_message
from .streaming import SSEResponse, collect, frame, pace
from .text import request_rng
from .validation import is_uuid, json_body, require_user, response_mode, validate_files, validate_inputs

HISTORY_TOKEN_CAP = 2000  # prompt growth from earlier turns, as a memory window would cap it
RUN_DETAIL_KEYS = ("id", "workflow_id", "status", "inputs", "outputs", "error", "total_steps", "total_tokens",
                   "created_at", "finished_at", "elapsed_time")
UUID_NIL = "00000000-0000-0000-0000-000000000000"  # parent_message_id of Service API messages (capture 11)
JSON_UTF8 = "application/json; charset=utf-8"  # Dify's content type of blocking generation answers


def routes(sim: Simulator) -> list[Route]:
    async def chat_messages(request: Request) -> Response:
        app = sim.app_for(request)
        body = await json_body(request)
        user = require_user(body.get("user"))
        if not app.is_chat_family:
            raise NOT_CHAT_APP
        if not sim.profile(request).newer_fields:
            payloads.check(payloads.ChatRequestPayload, body)  # 1.12's pydantic messages (captures 25-27)
        query = body.get("query")
        if query is None:
            raise invalid_param("query is required")
        if not isinstance(query, str) or not query.strip():
            raise invalid_param("query is required")
        mode = response_mode(body)
        if app.mode == "agent-chat" and mode == "blocking":
            raise invalid_param("Agent Chat App does not support blocking mode")
        conversation = _conversation(sim, app, user, body.get("conversation_id"))
        inputs = validate_inputs(app, body.get("inputs", {} if conversation else None), conversation.inputs if conversation else None)
        files = validate_files(app, body.get("files"), sim.store.file)
        if app.mode == "advanced-chat" and body.get("workflow_id"):
            _check_workflow_id(app, body["workflow_id"])
        if conversation is None:
            conversation = Conversation(id=new_id(), app_key=app.key, user=user, inputs=inputs,
                                        introduction=app.opening_statement or "")
            if body.get("auto_generate_name", True) is not False:
                conversation.name = " ".join(query.split())[:40]
            sim.store.conversations[conversation.id] = conversation
        return await _generate(sim, request, app, user, query, inputs, files, mode, conversation)

    async def completion_messages(request: Request) -> Response:
        app = sim.app_for(request)
        body = await json_body(request)
        user = require_user(body.get("user"))
        if app.mode != "completion":
            raise APP_UNAVAILABLE
        inputs = validate_inputs(app, body.get("inputs"))
        query = body.get("query") or ""
        if not isinstance(query, str):
            raise invalid_param("query must be a string")
        mode = response_mode(body)
        files = validate_files(app, body.get("files"), sim.store.file)
        # A Text Generator's prompt is its inputs; the legacy `query` field rides along.
        prompt = query or inputs.get("query") or inputs.get("topic") or ""
        return await _generate(sim, request, app, user, prompt, inputs, files, mode, None)

    async def workflows_run(request: Request) -> Response:
        app = sim.app_for(request)
        body = await json_body(request)
        user = require_user(body.get("user"))
        if app.mode != "workflow":
            raise NOT_WORKFLOW_APP
        if "workflow_id" in request.path_params:
            _check_workflow_id(app, request.path_params["workflow_id"])
        inputs = validate_inputs(app, body.get("inputs"))
        mode = response_mode(body)
        files = validate_files(app, body.get("files"), sim.store.file)
        prompt = inputs.get("topic") or ""
        return await _generate(sim, request, app, user, prompt, inputs, files, mode, None)

    def stop(modes: tuple[str, ...], mode_error: DifyError):
        async def handler(request: Request) -> Response:
            app = sim.app_for(request)
            body = await json_body(request)
            user = require_user(body.get("user"))
            if app.mode not in modes:
                raise mode_error
            task = sim.store.tasks.get(request.path_params["task_id"])
            # Dify answers success whatever it finds; newer builds stop workflows regardless of user.
            if task is not None and task.app_key == app.key and (task.user == user or app.mode == "workflow"):
                task.stopped = True
            return JSONResponse({"result": "success"})

        return handler

    async def workflow_run_detail(request: Request) -> Response:
        app = sim.app_for(request)
        if not app.is_workflow_based:
            raise NOT_WORKFLOW_APP
        profile = sim.profile(request)
        run = sim.store.runs.get(str(request.path_params["run_id"]))
        if run is None or run["_app"] != app.key:
            if profile.unknown_run_null_record:  # 1.12: 200 with every field null (capture 55)
                return JSONResponse({k: None for k in RUN_DETAIL_KEYS})
            raise not_found("Workflow run not found.")
        detail = {k: run[k] for k in RUN_DETAIL_KEYS}
        if profile.run_detail_json_strings:  # 1.12: inputs and outputs are JSON text (capture 53)
            detail["outputs"] = orjson.dumps(detail["outputs"]).decode()
        return JSONResponse(detail)

    async def workflow_logs(request: Request) -> Response:
        app = sim.app_for(request)
        if app.mode != "workflow":
            raise NOT_WORKFLOW_APP
        params = request.query_params
        status = params.get("status")
        if status and status not in ("succeeded", "failed", "stopped"):
            raise invalid_param("status must be one of succeeded, failed, stopped")
        page, limit = _int_param(params, "page", 1, 1, 99999), _int_param(params, "limit", 20, 1, 100)
        keyword = (params.get("keyword") or "").lower()
        runs = [r for r in reversed(sim.store.runs.values()) if r["_app"] == app.key]
        if status:
            runs = [r for r in runs if r["status"] == status]
        if keyword:
            runs = [r for r in runs if keyword in (r["inputs"] + str(r["outputs"])).lower()]
        if params.get("created_by_end_user_session_id"):
            runs = [r for r in runs if r["_user"] == params["created_by_end_user_session_id"]]
        chunk = runs[(page - 1) * limit : page * limit]
        data = [
            {
                "id": new_id(),
                "workflow_run": {
                    "id": r["id"], "version": "2026-11-01 00:00:00.000000", "status": r["status"], "error": r["error"],
                    "elapsed_time": r["elapsed_time"], "total_tokens": r["total_tokens"], "total_steps": r["total_steps"],
                    "created_at": r["created_at"], "finished_at": r["finished_at"], "exceptions_count": 0,
                    "triggered_from": "app-run",
                },
                "created_from": "service-api",
                "created_by_role": "end_user",
                "created_by_account": None,
                "created_by_end_user": {"id": sim.store.end_user(app, r["_user"])["id"], "type": "service-api",
                                        "is_anonymous": False, "session_id": r["_user"]},
                "created_at": r["created_at"],
                "details": None,
            }
            for r in chunk
        ]
        return JSONResponse({"page": page, "limit": limit, "total": len(runs), "has_more": page * limit < len(runs), "data": data})

    async def workflow_events(request: Request) -> Response:
        """Re-open a run's stream (>= 1.13). Runs here finish before anyone resumes: one final event."""
        if not sim.profile(request).workflow_events:
            raise HTTPException(404)  # the route does not exist before 1.13 (capture 54)
        app = sim.app_for(request)
        user = require_user(request.query_params.get("user"))
        if not app.is_workflow_based:
            raise NOT_WORKFLOW_APP
        run = sim.store.runs.get(str(request.path_params["run_id"]))
        if run is None or run["_app"] != app.key or run["_user"] != user:
            raise not_found("Workflow run not found.")
        data = {k: v for k, v in run.items() if not k.startswith("_") and k != "inputs"}
        event = {"event": "workflow_finished", "task_id": run["_task"], "workflow_run_id": run["id"], "data": data}

        async def one():
            yield frame(event)

        return SSEResponse(one(), transport_of=lambda: None)

    async def human_input_form(request: Request) -> Response:
        sim.app_for(request)
        # The simulator's workflows never pause for a person, so no form token exists.
        raise not_found("Form not found.")

    return [
        Route("/v1/workflow/{run_id:uuid}/events", workflow_events, methods=["GET"]),
        Route("/v1/form/human_input/{form_token}", human_input_form, methods=["GET", "POST"]),
        Route("/v1/chat-messages", chat_messages, methods=["POST"]),
        Route("/v1/chat-messages/{task_id}/stop", stop(("chat", "agent-chat", "advanced-chat"), NOT_CHAT_APP), methods=["POST"]),
        Route("/v1/completion-messages", completion_messages, methods=["POST"]),
        Route("/v1/completion-messages/{task_id}/stop", stop(("completion",), APP_UNAVAILABLE), methods=["POST"]),
        Route("/v1/workflows/run", workflows_run, methods=["POST"]),
        Route("/v1/workflows/run/{run_id:uuid}", workflow_run_detail, methods=["GET"]),
        Route("/v1/workflows/tasks/{task_id}/stop", stop(("workflow",), NOT_WORKFLOW_APP), methods=["POST"]),
        Route("/v1/workflows/logs", workflow_logs, methods=["GET"]),
        Route("/v1/workflows/{workflow_id}/run", workflows_run, methods=["POST"]),
    ]


def _int_param(params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_param(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise invalid_param(f"{name} must be between {low} and {high}")
    return value


def _conversation(sim: Simulator, app: SimApp, user: str, conversation_id) -> Conversation | None:
    if conversation_id in (None, ""):
        return None
    if not isinstance(conversation_id, str) or not is_uuid(conversation_id):
        raise invalid_param("conversation_id must be a valid UUID")
    conversation = sim.store.conversation(app, user, conversation_id)
    if conversation is None:
        raise CONVERSATION_NOT_EXISTS
    if conversation.status != "normal":
        raise DifyError(400, "conversation_completed", "The conversation has ended. Please start a new conversation.")
    return conversation


def _check_workflow_id(app: SimApp, workflow_id: str) -> None:
    if workflow_id == "draft":
        raise bad_request("Cannot use draft workflow version. Publish the workflow first.")
    if not is_uuid(workflow_id):
        raise bad_request("Invalid workflow_id format: expected a UUID.")
    if workflow_id != app.workflow_id:
        raise not_found(f"Workflow not found with id: {workflow_id}")


async def _generate(sim, request, app, user, query, inputs, files, mode, conversation) -> Response:
    store, config = sim.store, sim.config
    active = store.active.get(app.key, 0)
    if config.max_active_requests and active >= config.max_active_requests:
        raise DifyError(
            429,
            "too_many_requests",
            "Too many requests. Please try again later. "
            f"The current maximum concurrent requests allowed for {app.id} is {config.max_active_requests}.",
        )
    store.active[app.key] = active + 1
    sim.metrics.active.labels(app.mode).inc()
    end_user = store.end_user(app, user)
    profile = sim.profile(request)
    latency = config.latency_for(request.headers.get("x-sim-ttft-ms"), request.headers.get("x-sim-tokens-per-s"))
    task = Task(id=new_id(), app_key=app.key, user=user)
    store.tasks[task.id] = task
    history = 0
    if conversation is not None:
        for mid in conversation.message_ids[-20:]:
            msg = store.messages.get(mid)
            history += msg["total_tokens"] if msg else 0
    gen = Generation(
        app=app,
        user=user,
        query=query,
        inputs=inputs,
        files=files,
        task=task,
        latency=latency,
        rng=request_rng(config.seed, "latency", str(next(sim.counter))),
        seed=config.seed,
        conversation=conversation,
        history_tokens=min(history, HISTORY_TOKEN_CAP),
        response_mode=mode,
        profile=profile,
        end_user_id=end_user["id"],
        nodes=config.node_timing_for(request.headers.get("x-sim-node-overhead-ms"), request.headers.get("x-sim-node-ms")),
    )
    done = lambda g: _finish(sim, g)  # noqa: E731
    fault = sim.stream_fault(request)
    if fault is not None and fault.name == "node-failed":
        gen.node_failure = app.is_workflow_based  # other modes have no nodes to fail: they run normally
        fault = None
    if mode == "streaming":
        stream = pace(
            gen,
            ping_interval=config.ping_interval_s,
            opening_ping=app.is_workflow_based and profile.opening_ping,
            fault=fault,
            stall_limit=config.stall_limit_s,
            on_done=done,
            on_first_content=lambda g: sim.metrics.ttft.labels(app.mode).observe(time.monotonic() - g.started),
        )
        return SSEResponse(stream, transport_of=lambda: request.scope.get("sim.transport"))
    if fault is not None and fault.name == "stall":
        try:
            await asyncio.sleep(config.stall_limit_s)
        finally:
            done(gen)
    await collect(gen, done)
    if fault is not None and fault.name == "drop":
        await abort(request.scope)
        return Response(status_code=500)  # never sent: the connection is gone
    if fault is not None and fault.name == "error-event":
        raise DifyError(400, "completion_request_error", "[simulated fault] The model provider returned an error.")
    if gen.node_failure and app.mode == "advanced-chat" and gen.error is not None:  # a failed chatflow run is an error (capture 73)
        raise invalid_param(gen.error)
    return JSONResponse(_blocking_body(gen), media_type=JSON_UTF8)


def _blocking_body(gen: Generation) -> dict:
    if gen.app.mode == "workflow":
        return {
            "task_id": gen.task.id,
            "workflow_run_id": gen.workflow_run_id,
            "data": _run_record(gen),
        }
    body = {
        "event": "message",
        "task_id": gen.task.id,
        "id": gen.message_id,
        "message_id": gen.message_id,
        "mode": gen.app.mode,
        "answer": gen.answer,
        "metadata": gen.metadata(gen.usage or gen.finish_usage()),
        "created_at": gen.created_at,
    }
    if gen.conversation is not None:
        body["conversation_id"] = gen.conversation.id
    return body


def _run_record(gen: Generation) -> dict:
    usage = gen.usage or gen.finish_usage()
    return {
        "id": gen.workflow_run_id,
        "workflow_id": gen.app.workflow_id,
        "status": gen.workflow_status or ("failed" if gen.status == "error" else "succeeded"),
        "outputs": gen.outputs if gen.outputs is not None else {"text": gen.answer},
        "error": gen.run_error if gen.workflow_status is not None else gen.error,
        "elapsed_time": round(time.monotonic() - gen.started, 6),
        "total_tokens": usage["total_tokens"],
        "total_steps": gen.total_steps,
        "created_at": gen.created_at,
        "finished_at": now(),
    }


def _finish(sim: Simulator, gen: Generation) -> None:
    """Store what the client saw and free the app's concurrency slot (once per generation)."""
    store = sim.store
    if store.tasks.pop(gen.task.id, None) is None:
        return
    store.active[gen.app.key] = max(0, store.active.get(gen.app.key, 1) - 1)
    usage = gen.usage if gen.usage is not None else gen.finish_usage()
    metrics = sim.metrics
    metrics.active.labels(gen.app.mode).dec()
    metrics.generations.labels(gen.app.mode, gen.response_mode, gen.outcome).inc()
    metrics.output_tokens.labels(gen.app.mode).inc(len(gen.answer_parts))
    if gen.app.is_workflow_based:
        record = _run_record(gen)
        record.update(inputs=orjson.dumps(run_inputs(gen, start_node=True)).decode(), _app=gen.app.key, _user=gen.user, _task=gen.task.id)
        store.runs[gen.workflow_run_id] = record
    if gen.app.mode == "workflow":
        return
    message = {
        "id": gen.message_id,
        "conversation_id": gen.conversation_id,
        "parent_message_id": UUID_NIL,
        "inputs": gen.inputs,
        "query": gen.query,
        "answer": gen.answer,
        "status": "error" if gen.status == "error" else "normal",
        "error": gen.error,
        "message_files": [
            {"id": f.get("upload_file_id") or new_id(), "type": f["type"], "url": f.get("url"), "belongs_to": "user"} for f in gen.files
        ],
        "feedback": None,
        "retriever_resources": gen.retriever_resources,
        "agent_thoughts": gen.agent_thoughts,
        "created_at": gen.created_at,
        "extra_contents": [],
        "message_tokens": usage["prompt_tokens"],
        "answer_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "provider_response_latency": usage["latency"],
        "total_price": usage["total_price"],
        "currency": usage["currency"],
        "_app": gen.app.key,
        "_user": gen.user,
    }
    store.messages[gen.message_id] = message
    if gen.conversation is not None:
        gen.conversation.message_ids.append(gen.message_id)
        gen.conversation.updated_at = now()


__all__ = ["routes", "public_message"]
