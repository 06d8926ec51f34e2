"""The simulator speaks Dify's Service API: real HTTP against `python -m lib.simulator` on a free port."""
from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest

from tests.conftest import KEYS
from tests.support.sse import stream


@pytest.fixture
def client(sim):
    with httpx.Client(base_url=sim.url, timeout=30) as c:
        yield c


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def chat(client, key="app-sim-chat", query="Hello", u="alice", **extra):
    body = {"query": query, "user": u, "inputs": {}, **extra}
    r = client.post("/chat-messages", json=body, headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(r: httpx.Response, status: int, code: str, message: str | None = None):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["status"] == status
    if message is not None:
        assert body["message"] == message


# --- transport and auth ---------------------------------------------------------------------
def test_welcome_needs_no_auth(client):
    r = client.get("/")
    assert r.json()["welcome"] == "Dify OpenAPI" and r.json()["api_version"] == "v1"


@pytest.mark.parametrize(
    "header,message",
    [
        (None, "Authorization header must be provided and start with 'Bearer'"),
        ("app-sim-chat", "Authorization header must be provided and start with 'Bearer'"),
        ("Basic app-sim-chat", "Authorization scheme must be 'Bearer'"),
        ("Bearer app-wrong", "Access token is invalid"),
        ("Bearer dataset-abc", "Access token is invalid"),
    ],
)
def test_auth_failures_are_difys_401(client, header, message):
    headers = {"Authorization": header} if header else {}
    r = client.get("/parameters", headers=headers)
    assert_error(r, 401, "unauthorized", message)
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'


def test_unknown_route_and_non_uuid_path_are_not_found(client):
    assert_error(client.get("/nope", headers=auth("app-sim-chat")), 404, "not_found")
    r = client.request("DELETE", "/conversations/not-a-uuid", headers=auth("app-sim-chat"), json={"user": "a"})
    assert_error(r, 404, "not_found")


def test_user_is_checked_before_the_app_mode(client):
    r = client.post("/workflows/run", json={"inputs": {}}, headers=auth("app-sim-chat"))
    assert_error(r, 400, "invalid_param", "Arg user must be provided.")


@pytest.mark.parametrize(
    "path,key,code",
    [
        ("/chat-messages", "app-sim-completion", "not_chat_app"),
        ("/chat-messages", "app-sim-workflow", "not_chat_app"),
        ("/completion-messages", "app-sim-chat", "app_unavailable"),
        ("/workflows/run", "app-sim-advanced-chat", "not_workflow_app"),
        ("/workflows/run", "app-sim-chat", "not_workflow_app"),
    ],
)
def test_wrong_mode_gets_difys_error(client, path, key, code):
    r = client.post(path, json={"query": "hi", "inputs": {"topic": "x", "style": "Tweet"}, "user": "u"}, headers=auth(key))
    assert_error(r, 400, code)


@pytest.mark.parametrize(
    "content,ctype,status,code",
    [
        (b"", "application/json", 400, "bad_request"),
        (b"{not json", "application/json", 400, "bad_request"),
        (b"[1, 2]", "application/json", 400, "bad_request"),
        (b"query=hi", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("{\"query\": \"\udcff\"}".encode("utf-8", "surrogatepass"), "application/json", 400, "bad_request"),
    ],
)
def test_malformed_bodies_are_400s_never_500s(client, content, ctype, status, code):
    for path in ("/chat-messages", "/completion-messages", "/workflows/run", "/messages/" + str(uuid.uuid4()) + "/feedbacks"):
        r = client.post(path, content=content, headers={**auth("app-sim-chat"), "Content-Type": ctype})
        assert_error(r, status, code)


@pytest.mark.parametrize(
    "body,message",
    [
        ({"user": "u", "inputs": {}}, "query is required"),
        ({"user": "u", "inputs": {}, "query": ""}, "query is required"),
        ({"user": "u", "inputs": {}, "query": "hi", "response_mode": "fast"}, None),
        ({"user": "u", "inputs": {}, "query": "hi", "conversation_id": "abc"}, "conversation_id must be a valid UUID"),
        ({"user": "u", "inputs": {"tone": "Angry"}, "query": "hi"}, None),
        ({"user": "u", "inputs": {"name": "x" * 49}, "query": "hi"}, None),
        ({"user": "u", "query": "hi"}, None),
        ({"user": "u", "inputs": {}, "query": "hi",
          "files": [{"type": "image", "transfer_method": "local_file", "upload_file_id": "nope"}]}, None),
    ],
)
def test_chat_validation_errors(client, body, message):
    assert_error(client.post("/chat-messages", json=body, headers=auth("app-sim-chat")), 400, "invalid_param", message)


# --- generation: blocking and streaming in every mode ---------------------------------------
def test_chat_blocking_answers_with_usage(client):
    body = chat(client, query="What is a token bucket?", u=user())
    assert body["event"] == "message" and body["mode"] == "chat"
    assert body["id"] == body["message_id"] and uuid.UUID(body["conversation_id"])
    assert "token bucket" in body["answer"] and len(body["answer"].split(". ")) >= 3
    usage = body["metadata"]["usage"]
    for k in ("prompt_unit_price", "prompt_price_unit", "prompt_price", "completion_unit_price",
              "completion_price_unit", "completion_price", "total_price"):
        assert isinstance(usage[k], str) and Decimal(usage[k]) >= 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert Decimal(usage["total_price"]) == Decimal(usage["prompt_price"]) + Decimal(usage["completion_price"])
    assert usage["currency"] == "USD" and isinstance(usage["latency"], float)


def test_chat_stream_frames_and_usage_match_the_text(client):
    r = stream(client, "/chat-messages", "app-sim-chat",
               {"query": "Tell me about SSE", "user": user(), "inputs": {}, "response_mode": "streaming"})
    assert r.status == 200 and r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert "content-length" not in r.headers
    assert r.names[-1] == "message_end" and set(r.names[:-1]) == {"message"}
    messages = [e for e in r.events if e["event"] == "message"]
    end = r.events[-1]
    assert end["metadata"]["usage"]["completion_tokens"] == len(messages)
    for e in r.events:
        assert e["task_id"] and e["conversation_id"] and e["message_id"] and isinstance(e["created_at"], int)
    assert "SSE" in r.text()


def test_blocking_and_streaming_give_the_same_answer(client):
    u = user()
    blocking = chat(client, query="Same question", u=u)
    streamed = stream(client, "/chat-messages", "app-sim-chat",
                      {"query": "Same question", "user": u, "inputs": {}, "response_mode": "streaming"})
    assert streamed.text() == blocking["answer"]


def test_answers_respond_to_inputs(client):
    body = chat(client, query="Hi", u=user(), inputs={"name": "Somchai", "tone": "Formal"})
    assert "Somchai" in body["answer"] and "Formal" in body["answer"]


def test_agent_streams_thoughts_and_refuses_blocking(client):
    assert_error(client.post("/chat-messages", json={"query": "hi", "user": "u", "inputs": {}}, headers=auth("app-sim-agent")),
                 400, "invalid_param", "Agent Chat App does not support blocking mode")
    r = stream(client, "/chat-messages", "app-sim-agent",
               {"query": "What is 17 * 23?", "user": user(), "inputs": {}, "response_mode": "streaming"})
    assert r.names[0] == "agent_thought" and r.names[-1] == "message_end"
    assert "agent_message" in r.names and "message" not in r.names
    thoughts = [e for e in r.events if e["event"] == "agent_thought"]
    assert thoughts[0]["tool"] == "calculator" and "391" in thoughts[1]["observation"]
    assert "391" in r.text()


def test_advanced_chat_runs_nodes_and_opens_with_a_ping(client):
    r = stream(client, "/chat-messages", "app-sim-advanced-chat",
               {"query": "hello", "user": user(), "inputs": {}, "response_mode": "streaming"})
    assert r.frames[0].kind == "ping"
    names = r.names
    assert names[0] == "workflow_started" and names[-2:] == ["message_end", "workflow_finished"]
    assert names.count("node_started") == names.count("node_finished") == 5  # Start, Knowledge, LLM, Template, Answer
    finished = r.events[-1]["data"]
    assert finished["status"] == "succeeded" and finished["outputs"]["answer"] == r.text()
    assert r.events[-2]["metadata"]["retriever_resources"]


def test_advanced_chat_blocking(client):
    body = chat(client, key="app-sim-advanced-chat", query="hello", u=user())
    assert body["mode"] == "advanced-chat" and body["answer"]


def test_completion_blocking_and_streaming_have_no_conversation(client):
    inputs = {"topic": "solar panels", "style": "Tweet", "words": "80"}
    r = client.post("/completion-messages", json={"inputs": inputs, "user": "u"}, headers=auth("app-sim-completion"))
    body = r.json()
    assert r.status_code == 200 and body["mode"] == "completion" and "conversation_id" not in body
    assert "solar panels" in body["answer"]
    s = stream(client, "/completion-messages", "app-sim-completion", {"inputs": inputs, "user": "u", "response_mode": "streaming"})
    assert s.names[-1] == "message_end" and all("conversation_id" not in e for e in s.events)
    assert s.text() == body["answer"]


@pytest.mark.parametrize(
    "inputs,message",
    [
        ({}, "topic is required in input form"),
        ({"topic": "x", "style": "Poem"}, None),
        ({"topic": "x", "style": "Tweet", "words": "many"}, "words in input form must be a valid number"),
    ],
)
def test_completion_input_form_is_validated(client, inputs, message):
    r = client.post("/completion-messages", json={"inputs": inputs, "user": "u"}, headers=auth("app-sim-completion"))
    assert_error(r, 400, "invalid_param", message)


def test_workflow_blocking_and_streaming(client):
    r = client.post("/workflows/run", json={"inputs": {"topic": "rate limits"}, "user": "u"}, headers=auth("app-sim-workflow"))
    body = r.json()
    assert r.status_code == 200 and body["data"]["status"] == "succeeded"
    assert body["workflow_run_id"] == body["data"]["id"] and "rate limits" in body["data"]["outputs"]["text"]
    assert body["data"]["total_tokens"] > 0 and body["data"]["total_steps"] == 4
    s = stream(client, "/workflows/run", "app-sim-workflow",
               {"inputs": {"topic": "rate limits"}, "user": "u", "response_mode": "streaming"})
    assert s.frames[0].kind == "ping" and s.names[0] == "workflow_started" and s.names[-1] == "workflow_finished"
    assert "text_chunk" in s.names and s.text("text_chunk") == s.events[-1]["data"]["outputs"]["text"]
    for e in s.events:
        assert e["workflow_run_id"] and e["task_id"]
    detail = client.get(f"/workflows/run/{body['workflow_run_id']}", headers=auth("app-sim-workflow")).json()
    assert detail["status"] == "succeeded" and isinstance(detail["inputs"], str) and detail["outputs"]["text"]


def test_workflow_by_id_and_unknown_run(client):
    wf = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c05"
    r = client.post(f"/workflows/{wf}/run", json={"inputs": {"topic": "x"}, "user": "u"}, headers=auth("app-sim-workflow"))
    assert r.status_code == 200
    assert_error(client.post(f"/workflows/{uuid.uuid4()}/run", json={"inputs": {"topic": "x"}, "user": "u"},
                             headers=auth("app-sim-workflow")), 404, "not_found")
    assert_error(client.post("/workflows/draft/run", json={"inputs": {"topic": "x"}, "user": "u"}, headers=auth("app-sim-workflow")), 400,
                 "bad_request")
    assert_error(client.get(f"/workflows/run/{uuid.uuid4()}", headers=auth("app-sim-workflow")), 404, "not_found",
                 "Workflow run not found.")


def test_workflow_logs_paginate_and_filter(client):
    u = user()
    for topic in ("alpha", "beta", "gamma"):
        client.post("/workflows/run", json={"inputs": {"topic": topic}, "user": u}, headers=auth("app-sim-workflow"))
    r = client.get("/workflows/logs", params={"limit": 2, "created_by_end_user_session_id": u}, headers=auth("app-sim-workflow")).json()
    assert r["total"] == 3 and r["has_more"] and len(r["data"]) == 2
    assert r["data"][0]["workflow_run"]["status"] == "succeeded"
    r = client.get("/workflows/logs", params={"keyword": "gamma", "created_by_end_user_session_id": u},
                   headers=auth("app-sim-workflow")).json()
    assert r["total"] == 1
    assert_error(client.get("/workflows/logs", params={"status": "weird"}, headers=auth("app-sim-workflow")), 400, "invalid_param")


# --- language, size, determinism ------------------------------------------------------------
def test_thai_query_gets_a_thai_answer(client):
    body = chat(client, query="สวัสดีครับ ช่วยอธิบายเรื่องการสตรีมหน่อย", u=user())
    thai = sum(1 for ch in body["answer"] if "\u0e00" <= ch <= "\u0e7f")
    assert thai > len(body["answer"]) * 0.5
    r = stream(client, "/chat-messages", "app-sim-chat",
               {"query": "สวัสดีครับ 🙏🏽 ทดสอบ", "user": user(), "inputs": {}, "response_mode": "streaming"})
    assert "🙏🏽" in r.text() and "สวัสดีครับ" in r.text()


def test_emoji_and_a_100kb_query(client):
    big = ("Emoji 🚀🔥 and text. " * 5000)[:100_000]
    body = chat(client, query=big, u=user())
    assert body["answer"].startswith('You asked: "Emoji 🚀🔥') and body["metadata"]["usage"]["prompt_tokens"] > 10_000


def test_answers_are_deterministic_for_a_seed(sim_factory):
    answers = []
    for _ in range(2):
        server = sim_factory("--fast", "--seed", "42")
        with httpx.Client(base_url=server.url) as c:
            answers.append(chat(c, query="Determinism please", u="same")["answer"])
        server.stop()
    other = sim_factory("--fast", "--seed", "43")
    with httpx.Client(base_url=other.url) as c:
        different = chat(c, query="Determinism please", u="same")["answer"]
    assert answers[0] == answers[1] and different != answers[0]


# --- conversations and messages -------------------------------------------------------------
def test_conversation_lifecycle(client):
    u = user()
    first = chat(client, query="first question", u=u)
    cid = first["conversation_id"]
    second = chat(client, query="second question", u=u, conversation_id=cid)
    assert second["conversation_id"] == cid and "turn 2" in second["answer"]
    assert second["metadata"]["usage"]["prompt_tokens"] > first["metadata"]["usage"]["prompt_tokens"]
    convs = client.get("/conversations", params={"user": u}, headers=auth("app-sim-chat")).json()
    assert [c["id"] for c in convs["data"]] == [cid] and convs["data"][0]["name"] == "first question"
    renamed = client.post(f"/conversations/{cid}/name", json={"name": "Renamed ✨", "user": u}, headers=auth("app-sim-chat"))
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed ✨"
    auto = client.post(f"/conversations/{cid}/name", json={"auto_generate": True, "user": u}, headers=auth("app-sim-chat"))
    assert auto.json()["name"] == "first question"
    assert_error(client.post(f"/conversations/{cid}/name", json={"user": u}, headers=auth("app-sim-chat")), 400, "invalid_param")
    # Conversations belong to one user: another user cannot see or continue it.
    assert_error(client.post("/chat-messages", json={"query": "x", "user": "mallory", "inputs": {}, "conversation_id": cid},
                             headers=auth("app-sim-chat")),
                 404, "not_found", "Conversation Not Exists.")
    assert client.get("/conversations", params={"user": "mallory"}, headers=auth("app-sim-chat")).json()["data"] == []
    r = client.request("DELETE", f"/conversations/{cid}", json={"user": u}, headers=auth("app-sim-chat"))
    assert r.status_code == 204 and r.content == b""
    assert_error(client.request("DELETE", f"/conversations/{cid}", json={"user": u}, headers=auth("app-sim-chat")), 404, "not_found",
                 "Conversation Not Exists.")
    assert_error(client.get("/messages", params={"conversation_id": cid, "user": u}, headers=auth("app-sim-chat")), 404, "not_found",
                 "Conversation Not Exists.")


def test_message_history_pages_backwards(client):
    u = user()
    cid = chat(client, query="q0", u=u)["conversation_id"]
    for i in range(1, 5):
        chat(client, query=f"q{i}", u=u, conversation_id=cid)
    page = client.get("/messages", params={"conversation_id": cid, "user": u, "limit": 2}, headers=auth("app-sim-chat")).json()
    assert [m["query"] for m in page["data"]] == ["q3", "q4"] and page["has_more"]
    m = page["data"][-1]
    assert m["answer"] and m["total_tokens"] == m["message_tokens"] + m["answer_tokens"] and m["feedback"] is None
    page2 = client.get("/messages", params={"conversation_id": cid, "user": u, "limit": 2, "first_id": page["data"][0]["id"]},
                       headers=auth("app-sim-chat")).json()
    assert [m["query"] for m in page2["data"]] == ["q1", "q2"] and page2["has_more"]
    page3 = client.get("/messages", params={"conversation_id": cid, "user": u, "limit": 2, "first_id": page2["data"][0]["id"]},
                       headers=auth("app-sim-chat")).json()
    assert [m["query"] for m in page3["data"]] == ["q0"] and not page3["has_more"]
    assert_error(client.get("/messages", params={"conversation_id": cid, "user": u, "first_id": str(uuid.uuid4())},
                            headers=auth("app-sim-chat")),
                 404, "not_found", "First Message Not Exists.")
    assert_error(client.get("/messages", params={"conversation_id": cid, "user": u, "limit": 101}, headers=auth("app-sim-chat")), 400,
                 "invalid_param")


def test_conversation_list_pages_with_last_id_and_sorts(client):
    u = user()
    ids = [chat(client, query=f"topic {i}", u=u)["conversation_id"] for i in range(5)]
    page = client.get("/conversations", params={"user": u, "limit": 2}, headers=auth("app-sim-chat")).json()
    assert page["has_more"] and len(page["data"]) == 2
    seen = [c["id"] for c in page["data"]]
    while page["has_more"]:
        page = client.get("/conversations", params={"user": u, "limit": 2, "last_id": seen[-1]}, headers=auth("app-sim-chat")).json()
        seen += [c["id"] for c in page["data"]]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    oldest_first = client.get("/conversations", params={"user": u, "sort_by": "created_at"}, headers=auth("app-sim-chat")).json()
    assert [c["id"] for c in oldest_first["data"]] == ids
    assert_error(client.get("/conversations", params={"user": u, "sort_by": "name"}, headers=auth("app-sim-chat")), 400, "invalid_param")
    assert_error(client.get("/conversations", params={"user": u, "last_id": str(uuid.uuid4())}, headers=auth("app-sim-chat")),
                 404, "not_found", "Last Conversation Not Exists.")


def test_history_is_chat_only(client):
    assert_error(client.get("/conversations", params={"user": "u"}, headers=auth("app-sim-workflow")), 400, "not_chat_app")


def test_feedback_and_app_feedbacks(client):
    u = user()
    mid = chat(client, query="rate me", u=u)["message_id"]
    ok = client.post(f"/messages/{mid}/feedbacks", json={"rating": "like", "user": u, "content": "great"}, headers=auth("app-sim-chat"))
    assert ok.json() == {"result": "success"}
    feedbacks = client.get("/app/feedbacks", headers=auth("app-sim-chat")).json()["data"]
    assert any(f["message_id"] == mid and f["rating"] == "like" for f in feedbacks)
    assert client.post(f"/messages/{mid}/feedbacks", json={"rating": None, "user": u}, headers=auth("app-sim-chat")).status_code == 200
    assert_error(client.post(f"/messages/{mid}/feedbacks", json={"rating": None, "user": u}, headers=auth("app-sim-chat")), 400,
                 "invalid_param")
    assert_error(client.post(f"/messages/{mid}/feedbacks", json={"rating": "like", "user": "other"}, headers=auth("app-sim-chat")),
                 404, "not_found", "Message Not Exists.")
    # Completion messages take feedback too.
    cm = client.post("/completion-messages", json={"inputs": {"topic": "x", "style": "Tweet"}, "user": u},
                     headers=auth("app-sim-completion")).json()
    assert client.post(f"/messages/{cm['id']}/feedbacks", json={"rating": "dislike", "user": u},
                       headers=auth("app-sim-completion")).status_code == 200


def test_suggested_questions(client):
    u = user()
    mid = chat(client, query="streaming", u=u)["message_id"]
    r = client.get(f"/messages/{mid}/suggested", params={"user": u}, headers=auth("app-sim-chat")).json()
    assert r["result"] == "success" and len(r["data"]) == 3
    agent = stream(client, "/chat-messages", "app-sim-agent", {"query": "hi", "user": u, "inputs": {}, "response_mode": "streaming"})
    assert_error(client.get(f"/messages/{agent.events[-1]['message_id']}/suggested", params={"user": u}, headers=auth("app-sim-agent")),
                 400, "bad_request", "Suggested Questions Is Disabled.")
    assert_error(client.get(f"/messages/{mid}/suggested", headers=auth("app-sim-chat")), 400, "invalid_param", "Arg user must be provided.")


def test_conversation_variables(client):
    u = user()
    cid = chat(client, key="app-sim-advanced-chat", query="remember me", u=u)["conversation_id"]
    data = client.get(f"/conversations/{cid}/variables", params={"user": u}, headers=auth("app-sim-advanced-chat")).json()["data"]
    var = next(v for v in data if v["name"] == "last_topic")
    r = client.put(f"/conversations/{cid}/variables/{var['id']}", json={"value": "caching", "user": u},
                   headers=auth("app-sim-advanced-chat"))
    assert r.status_code == 200 and r.json()["value"] == "caching"
    assert_error(client.put(f"/conversations/{cid}/variables/{var['id']}", json={"value": 3, "user": u},
                            headers=auth("app-sim-advanced-chat")), 400, "bad_request")
    assert_error(client.put(f"/conversations/{cid}/variables/{uuid.uuid4()}", json={"value": "x", "user": u},
                            headers=auth("app-sim-advanced-chat")),
                 404, "not_found", "Conversation Variable Not Exists.")


def test_annotations_crud(client):
    h = auth("app-sim-chat")
    created = client.post("/apps/annotations", json={"question": "Q?", "answer": "A."}, headers=h)
    assert created.status_code == 201
    aid = created.json()["id"]
    assert any(a["id"] == aid for a in client.get("/apps/annotations", params={"keyword": "Q?"}, headers=h).json()["data"])
    assert client.put(f"/apps/annotations/{aid}", json={"question": "Q2", "answer": "A2"}, headers=h).json()["question"] == "Q2"
    assert client.delete(f"/apps/annotations/{aid}", headers=h).status_code == 204
    job = client.post("/apps/annotation-reply/enable",
                      json={"embedding_provider_name": "p", "embedding_model_name": "m", "score_threshold": 0.9}, headers=h).json()
    status = client.get(f"/apps/annotation-reply/enable/status/{job['job_id']}", headers=h).json()
    assert status["job_status"] == "completed"


# --- app information ------------------------------------------------------------------------
@pytest.mark.parametrize("mode,key", list(KEYS.items()))
def test_info_parameters_meta_site(client, mode, key):
    info = client.get("/info", headers=auth(key)).json()
    assert info["mode"] == mode and info["name"]
    params = client.get("/parameters", headers=auth(key)).json()
    assert isinstance(params["user_input_form"], list) and "file_upload" in params and "system_parameters" in params
    for item in params["user_input_form"]:
        (control, spec), = item.items()
        assert control in ("text-input", "paragraph", "select", "number") and spec["variable"] and "required" in spec
    assert "tool_icons" in client.get("/meta", headers=auth(key)).json()
    assert client.get("/site", headers=auth(key)).json()["title"] == info["name"]


def test_chat_parameters_offer_opening_statement_and_every_control(client):
    params = client.get("/parameters", headers=auth("app-sim-chat")).json()
    assert params["opening_statement"] and params["suggested_questions"]
    assert params["suggested_questions_after_answer"]["enabled"] is True
    controls = {next(iter(i)) for key in KEYS.values() for i in client.get("/parameters", headers=auth(key)).json()["user_input_form"]}
    assert controls == {"text-input", "paragraph", "select", "number"}


def test_end_user_lookup(client):
    u = user()
    chat(client, query="hello", u=u)
    logs = client.get("/workflows/logs", headers=auth("app-sim-workflow"))
    assert logs.status_code == 200
    assert_error(client.get(f"/end-users/{uuid.uuid4()}", headers=auth("app-sim-chat")), 404, "end_user_not_found")


# --- files and audio ------------------------------------------------------------------------
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def test_upload_then_reference_a_file(client):
    u = user()
    r = client.post("/files/upload", files={"file": ("cat.png", PNG, "image/png")}, data={"user": u}, headers=auth("app-sim-chat"))
    assert r.status_code == 201
    f = r.json()
    assert f["name"] == "cat.png" and f["size"] == len(PNG) and f["extension"] == "png" and f["mime_type"] == "image/png"
    preview = client.get(f"/files/{f['id']}/preview", headers=auth("app-sim-chat"))
    assert preview.content == PNG and preview.headers["content-type"] == "image/png"
    body = chat(client, query="What is in this picture?", u=u,
                files=[{"type": "image", "transfer_method": "local_file", "upload_file_id": f["id"]}])
    assert "cat.png" in body["answer"]
    history = client.get("/messages", params={"conversation_id": body["conversation_id"], "user": u}, headers=auth("app-sim-chat")).json()
    assert history["data"][0]["message_files"][0]["id"] == f["id"]
    assert_error(client.get(f"/files/{f['id']}/preview", headers=auth("app-sim-workflow")), 403, "file_access_denied")
    assert_error(client.get(f"/files/{uuid.uuid4()}/preview", headers=auth("app-sim-chat")), 404, "file_not_found")


def test_upload_errors(client):
    h = auth("app-sim-chat")
    assert_error(client.post("/files/upload", data={"user": "u"}, files={"other": ("a.txt", b"x", "text/plain")}, headers=h), 400,
                 "no_file_uploaded")
    assert_error(client.post("/files/upload", files=[("file", ("a.txt", b"x", "text/plain")), ("file", ("b.txt", b"y", "text/plain"))],
                             headers=h), 400, "too_many_files")
    assert_error(client.post("/files/upload", files={"file": ("run.exe", b"MZ", "application/octet-stream")}, headers=h), 400,
                 "invalid_param")
    assert_error(client.post("/files/upload", files={"file": ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")}, headers=h), 413,
                 "file_too_large")
    assert_error(client.post("/files/upload", content=b"not multipart", headers={**h, "Content-Type": "text/plain"}), 400,
                 "no_file_uploaded")


def test_audio_round_trip(client):
    u = user()
    mid = chat(client, query="speak", u=u)["message_id"]
    audio = client.post("/text-to-audio", json={"message_id": mid, "user": u}, headers=auth("app-sim-chat"))
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert audio.content[:2] == b"\xff\xfb" and len(audio.content) % 417 == 0
    text = client.post("/audio-to-text", files={"file": ("hello.mp3", audio.content, "audio/mp3")}, data={"user": u},
                       headers=auth("app-sim-chat"))
    assert text.status_code == 200 and "hello.mp3" in text.json()["text"]
    assert_error(client.post("/audio-to-text", files={"file": ("a.mp3", b"x", "audio/mpeg")}, headers=auth("app-sim-chat")), 415,
                 "unsupported_audio_type")
    assert_error(client.post("/audio-to-text", files={"file": ("a.mp3", b"x", "audio/mp3")}, headers=auth("app-sim-completion")), 400,
                 "speech_to_text_disabled")
    assert_error(client.post("/text-to-audio", json={"user": u}, headers=auth("app-sim-chat")), 400, "invalid_param")


def test_resume_a_finished_workflow_stream(client):
    run = client.post("/workflows/run", json={"inputs": {"topic": "resume"}, "user": "resumer"}, headers=auth("app-sim-workflow")).json()
    rid = run["workflow_run_id"]
    with client.stream("GET", f"/workflow/{rid}/events", params={"user": "resumer"}, headers=auth("app-sim-workflow")) as r:
        body = r.read().decode()
    assert r.status_code == 200 and body.count("data: ") == 1 and '"workflow_finished"' in body and rid in body
    assert_error(client.get(f"/workflow/{rid}/events", params={"user": "someone-else"}, headers=auth("app-sim-workflow")), 404, "not_found")
    assert_error(client.get(f"/form/human_input/{uuid.uuid4().hex}", headers=auth("app-sim-workflow")), 404, "not_found")


def test_end_user_from_an_upload(client):
    u = user()
    f = client.post("/files/upload", files={"file": ("notes.txt", "สวัสดี 👋".encode(), "text/plain")}, data={"user": u},
                    headers=auth("app-sim-chat")).json()
    eu = client.get(f"/end-users/{f['created_by']}", headers=auth("app-sim-chat"))
    assert eu.status_code == 200 and eu.json()["session_id"] == u and eu.json()["type"] == "service-api"


def test_metrics_describe_the_server_side(client, sim):
    stream(client, "/chat-messages", "app-sim-chat", {"query": "metrics", "user": user(), "inputs": {}, "response_mode": "streaming"})
    client.get(f"/conversations/{uuid.uuid4()}/variables", headers=auth("app-sim-chat"))
    client.post("/chat-messages", json={"query": "x", "user": "u", "inputs": {}}, headers={**auth("app-sim-chat"), "X-Sim-Fault": "503"})
    text = httpx.get(sim.url.removesuffix("/v1") + "/metrics").text
    assert 'dify_sim_http_requests_total{endpoint="/v1/chat-messages",method="POST",status_class="2xx"}' in text
    assert 'dify_sim_http_requests_total{endpoint="/v1/chat-messages",method="POST",status_class="5xx"}' in text
    assert 'endpoint="/v1/conversations/{id}/variables"' in text
    assert 'dify_sim_faults_injected_total{fault="503"}' in text
    assert 'dify_sim_ttft_seconds_bucket{app_mode="chat",le="60.0"}' in text
    assert 'dify_sim_generations_total{app_mode="chat",outcome="ok",response_mode="streaming"}' in text
    assert "app-sim-" not in text and "user-" not in text
