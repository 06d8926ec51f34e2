"""Conversation routes: history, conversations, rename, delete, variables, feedback, suggestions, annotations."""
from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import payloads
from .apps import SimApp
from .errors import CONVERSATION_NOT_EXISTS, MESSAGE_NOT_EXISTS, NOT_CHAT_APP, DifyError, bad_request, invalid_param, not_found
from .routes_generation import _int_param
from .server import Simulator
from .state import new_id, now, public_message
from .text import suggested_questions
from .validation import is_uuid, json_body, require_user

SORTS = {
    "created_at": (lambda c: c.created_at, False),
    "-created_at": (lambda c: c.created_at, True),
    "updated_at": (lambda c: c.updated_at, False),
    "-updated_at": (lambda c: c.updated_at, True),
}


def _chat_app(sim: Simulator, request: Request) -> SimApp:
    app = sim.app_for(request)
    if not app.is_chat_family:
        raise NOT_CHAT_APP
    return app


def _user_param(request: Request) -> str | None:
    return request.query_params.get("user") or None


def routes(sim: Simulator) -> list[Route]:
    store = sim.store

    async def messages(request: Request) -> Response:
        app = _chat_app(sim, request)
        params = request.query_params
        user = _user_param(request)
        conversation_id = params.get("conversation_id")
        if not sim.profile(request).newer_fields:
            payloads.check(payloads.MessageListQuery, dict(params))  # 1.12's pydantic message (capture 15)
        if not conversation_id:
            raise invalid_param("conversation_id is required")
        if not is_uuid(conversation_id):
            raise invalid_param("conversation_id must be a valid UUID")
        limit = _int_param(params, "limit", 20, 1, 100)
        conv = store.conversation(app, user, conversation_id)
        if conv is None:
            raise CONVERSATION_NOT_EXISTS
        ids = [mid for mid in conv.message_ids if mid in store.messages]
        first_id = params.get("first_id")
        if first_id:
            if first_id not in ids:
                raise not_found("First Message Not Exists.")
            ids = ids[: ids.index(first_id)]
        page = ids[-limit:]  # the newest `limit`, oldest first inside the page
        return JSONResponse({
            "limit": limit,
            "has_more": len(ids) > len(page),
            "data": [_history_item(sim.profile(request), store.messages[mid]) for mid in page],
        })

    async def conversations(request: Request) -> Response:
        app = _chat_app(sim, request)
        params = request.query_params
        limit = _int_param(params, "limit", 20, 1, 100)
        sort_by = params.get("sort_by", "-updated_at")
        if sort_by not in SORTS:
            raise invalid_param("sort_by must be one of created_at, -created_at, updated_at, -updated_at")
        key, reverse = SORTS[sort_by]
        user = _user_param(request)
        if user is None and sim.profile(request).conversations_need_user:
            return JSONResponse({"limit": limit, "has_more": False, "data": []})  # 1.12 (capture 10)
        # Insertion order breaks ties, so pagination stays stable within one second.
        items = store.user_conversations(app, user)
        order = {c.id: i for i, c in enumerate(items)}
        items.sort(key=lambda c: (key(c), order[c.id]), reverse=reverse)
        last_id = params.get("last_id")
        if last_id:
            ids = [c.id for c in items]
            if last_id not in ids:
                raise not_found("Last Conversation Not Exists.")
            items = items[ids.index(last_id) + 1 :]
        page = items[:limit]
        return JSONResponse({"limit": limit, "has_more": len(items) > limit, "data": [c.public() for c in page]})

    async def conversation_delete(request: Request) -> Response:
        app = _chat_app(sim, request)
        user = None
        if (await request.body()).strip():
            body = await json_body(request)
            user = body.get("user") or None
        conv = store.conversation(app, user, str(request.path_params["conversation_id"]))
        if conv is None:
            if sim.profile(request).delete_unknown_conversation_204:  # 1.12 (capture 48)
                return Response(status_code=204, media_type="application/json")
            raise CONVERSATION_NOT_EXISTS
        del store.conversations[conv.id]
        for mid in conv.message_ids:
            store.messages.pop(mid, None)
        return Response(status_code=204, media_type="application/json")

    async def conversation_rename(request: Request) -> Response:
        app = sim.app_for(request)
        body = await json_body(request)
        user = require_user(body.get("user"))
        if not app.is_chat_family:
            raise NOT_CHAT_APP
        auto = bool(body.get("auto_generate", False))
        given = body.get("name")
        if not auto and (not isinstance(given, str) or not given.strip()):
            raise invalid_param("name is required when auto_generate is false")
        conv = store.conversation(app, user, str(request.path_params["conversation_id"]))
        if conv is None:
            raise CONVERSATION_NOT_EXISTS
        if auto:
            first = store.messages.get(conv.message_ids[0]) if conv.message_ids else None
            name = " ".join((first["query"] if first else "New conversation").split())[:40]
        else:
            name = str(given)  # a non-blank str, checked above
        conv.name = name.strip()[:255]
        conv.updated_at = now()
        return JSONResponse(conv.public())

    async def variables(request: Request) -> Response:
        app = _chat_app(sim, request)
        params = request.query_params
        limit = _int_param(params, "limit", 20, 1, 100)
        conv = store.conversation(app, _user_param(request), str(request.path_params["conversation_id"]))
        if conv is None:
            raise CONVERSATION_NOT_EXISTS
        items = list(_variables(app, conv).values())
        if params.get("variable_name"):
            items = [v for v in items if v["name"] == params["variable_name"]]
        last_id = params.get("last_id")
        if last_id:
            ids = [v["id"] for v in items]
            if last_id not in ids:
                raise not_found("Last Conversation Variable Not Exists.")
            items = items[ids.index(last_id) + 1 :]
        return JSONResponse({"limit": limit, "has_more": len(items) > limit, "data": items[:limit]})

    async def variable_update(request: Request) -> Response:
        app = sim.app_for(request)
        body = await json_body(request)
        user = require_user(body.get("user"))
        if not app.is_chat_family:
            raise NOT_CHAT_APP
        conv = store.conversation(app, user, str(request.path_params["conversation_id"]))
        if conv is None:
            raise CONVERSATION_NOT_EXISTS
        var = _variables(app, conv).get(str(request.path_params["variable_id"]))
        if var is None:
            raise not_found("Conversation Variable Not Exists.")
        value = body.get("value")
        types: dict[str, type | tuple[type, ...]] = {"string": str, "number": (int, float), "object": dict, "array[string]": list}
        expected = types[var["value_type"]]
        if not isinstance(value, expected) or isinstance(value, bool):
            raise bad_request(f"Type mismatch: variable '{var['name']}' expects {var['value_type']}.")
        var.update(value=value, updated_at=now())
        return JSONResponse(var)

    async def feedback(request: Request) -> Response:
        app = sim.app_for(request)
        body = await json_body(request)
        user = require_user(body.get("user"))
        rating = body.get("rating")
        if not sim.profile(request).newer_fields:
            payloads.check(payloads.MessageFeedbackPayload, body)  # 1.12's pydantic message (capture 19)
        if rating not in ("like", "dislike", None):
            raise invalid_param("rating must be 'like', 'dislike' or null")
        msg = store.message(app, user, str(request.path_params["message_id"]))
        if msg is None:
            raise MESSAGE_NOT_EXISTS
        if rating is None:
            if msg["feedback"] is None:
                raise invalid_param("rating cannot be None when feedback not exists")
            msg["feedback"] = None
            store.feedbacks.pop(msg["id"], None)
        else:
            msg["feedback"] = {"rating": rating}
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            store.feedbacks[msg["id"]] = {
                "id": new_id(), "app_id": app.id, "conversation_id": msg["conversation_id"], "message_id": msg["id"],
                "rating": rating, "content": body.get("content"), "from_source": "api",
                "from_end_user_id": store.end_user(app, user)["id"], "from_account_id": None,
                "created_at": ts, "updated_at": ts, "_app": app.key,
            }
        return JSONResponse({"result": "success"})

    async def app_feedbacks(request: Request) -> Response:
        app = sim.app_for(request)
        page = _int_param(request.query_params, "page", 1, 1, 99999)
        limit = _int_param(request.query_params, "limit", 20, 1, 101)
        items = [public_message(f) for f in reversed(store.feedbacks.values()) if f["_app"] == app.key]
        return JSONResponse({"data": items[(page - 1) * limit : page * limit]})

    async def suggested(request: Request) -> Response:
        app = sim.app_for(request)
        user = require_user(request.query_params.get("user"))
        if not app.is_chat_family:
            raise NOT_CHAT_APP
        msg = store.message(app, user, str(request.path_params["message_id"]))
        if msg is None:
            raise MESSAGE_NOT_EXISTS
        if not app.suggested_after_answer:
            raise bad_request("Suggested Questions Is Disabled.")
        return JSONResponse({"result": "success", "data": suggested_questions(msg["query"])})

    # Annotations ---------------------------------------------------------------------------
    async def annotations_list(request: Request) -> Response:
        app = _chat_app(sim, request)
        params = request.query_params
        page, limit = _int_param(params, "page", 1, 1, 99999), _int_param(params, "limit", 20, 1, 100)
        keyword = (params.get("keyword") or "").lower()
        items = [a for a in reversed(store.annotations_of(app).values())
                 if keyword in a["question"].lower() or keyword in a["answer"].lower()]
        return JSONResponse({"data": items[(page - 1) * limit : page * limit], "has_more": page * limit < len(items),
                             "limit": limit, "total": len(items), "page": page})

    async def annotation_create(request: Request) -> Response:
        app = _chat_app(sim, request)
        body = await json_body(request)
        question, answer = body.get("question"), body.get("answer")
        if not isinstance(question, str) or not question or not isinstance(answer, str) or not answer:
            raise invalid_param("question and answer are required")
        item = {"id": new_id(), "question": question, "answer": answer, "hit_count": 0, "created_at": now()}
        store.annotations_of(app)[item["id"]] = item
        return JSONResponse(item, status_code=201)

    async def annotation_update(request: Request) -> Response:
        app = _chat_app(sim, request)
        body = await json_body(request)
        item = store.annotations_of(app).get(str(request.path_params["annotation_id"]))
        if item is None:
            raise not_found("Annotation not found.")
        for field in ("question", "answer"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise invalid_param("question and answer are required")
            item[field] = body[field]
        return JSONResponse(item)

    async def annotation_delete(request: Request) -> Response:
        app = _chat_app(sim, request)
        if store.annotations_of(app).pop(str(request.path_params["annotation_id"]), None) is None:
            raise not_found("Annotation not found.")
        return Response(status_code=204)

    async def annotation_reply(request: Request) -> Response:
        app = _chat_app(sim, request)
        action = request.path_params["action"]
        if action not in ("enable", "disable"):
            raise not_found("The requested URL was not found on the server.")
        body = await json_body(request)
        for field in ("embedding_provider_name", "embedding_model_name", "score_threshold"):
            if body.get(field) in (None, ""):
                raise invalid_param(f"{field} is required")
        job = {"job_id": new_id(), "job_status": "completed", "error_msg": ""}
        store.annotation_jobs[job["job_id"]] = {**job, "_app": app.key, "_action": action}
        return JSONResponse({"job_id": job["job_id"], "job_status": "waiting"})

    async def annotation_reply_status(request: Request) -> Response:
        app = _chat_app(sim, request)
        job = store.annotation_jobs.get(str(request.path_params["job_id"]))
        if job is None or job["_app"] != app.key or job["_action"] != request.path_params["action"]:
            raise DifyError(400, "invalid_param", "The job does not exist.")
        return JSONResponse(public_message(job))

    return [
        Route("/v1/messages", messages, methods=["GET"]),
        Route("/v1/conversations", conversations, methods=["GET"]),
        Route("/v1/conversations/{conversation_id:uuid}", conversation_delete, methods=["DELETE"]),
        Route("/v1/conversations/{conversation_id:uuid}/name", conversation_rename, methods=["POST"]),
        Route("/v1/conversations/{conversation_id:uuid}/variables", variables, methods=["GET"]),
        Route("/v1/conversations/{conversation_id:uuid}/variables/{variable_id:uuid}", variable_update, methods=["PUT"]),
        Route("/v1/messages/{message_id:uuid}/feedbacks", feedback, methods=["POST"]),
        Route("/v1/app/feedbacks", app_feedbacks, methods=["GET"]),
        Route("/v1/messages/{message_id:uuid}/suggested", suggested, methods=["GET"]),
        Route("/v1/apps/annotations", annotations_list, methods=["GET"]),
        Route("/v1/apps/annotations", annotation_create, methods=["POST"]),
        Route("/v1/apps/annotations/{annotation_id:uuid}", annotation_update, methods=["PUT"]),
        Route("/v1/apps/annotations/{annotation_id:uuid}", annotation_delete, methods=["DELETE"]),
        Route("/v1/apps/annotation-reply/{action}", annotation_reply, methods=["POST"]),
        Route("/v1/apps/annotation-reply/{action}/status/{job_id}", annotation_reply_status, methods=["GET"]),
    ]


# History fields newer than 1.12 (the contract's "newer builds"); a 1.12 history item has none of them.
NEWER_HISTORY_FIELDS = frozenset({"extra_contents", "message_tokens", "answer_tokens", "total_tokens",
                                  "provider_response_latency", "total_price", "currency"})


def _history_item(profile, msg: dict) -> dict:
    item = public_message(msg)
    if not profile.newer_fields:
        item = {k: v for k, v in item.items() if k not in NEWER_HISTORY_FIELDS}
    return item


def _variables(app: SimApp, conv) -> dict[str, dict]:
    """A Chatflow's conversation variables (created on first read); other modes have none."""
    if app.mode != "advanced-chat":
        return {}
    if not conv.variables:
        ts = now()
        for name, vtype, value, desc in [
            ("user_preferences", "object", {"tone": "friendly"}, "What the user asked us to remember"),
            ("turn_count", "number", len(conv.message_ids), "Turns so far"),
            ("last_topic", "string", "", "The topic of the last question"),
        ]:
            vid = new_id()
            conv.variables[vid] = {"id": vid, "name": name, "value_type": vtype, "value": value,
                                   "description": desc, "created_at": ts, "updated_at": ts}
    return conv.variables
