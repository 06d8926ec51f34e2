"""Dify version profiles (--dify-version, X-Sim-Dify-Version) and the failed-run faults, over real HTTP."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.support.sse import stream

SANDBOX_ERROR = ("Failed to execute code, which is likely a network issue, please check if the sandbox service is "
                 "running. ( Error: [Errno 111] Connection refused )")
CHATFLOW_BODY = {"query": "fail please", "inputs": {"topic": "testing"}, "user": "prof", "response_mode": "streaming"}
WORKFLOW_BODY = {"inputs": {"topic": "testing"}, "user": "prof", "response_mode": "streaming"}
V112 = {"X-Sim-Dify-Version": "1.12"}
NODE_FAILED = {"X-Sim-Fault": "node-failed"}


@pytest.fixture
def client(sim):
    with httpx.Client(base_url=sim.url, timeout=30) as c:
        yield c


def auth(key: str, **headers: str) -> dict:
    return {"Authorization": f"Bearer {key}", **headers}


# --- choosing a profile ----------------------------------------------------------------------
def test_the_default_profile_is_1_13_and_a_header_picks_1_12(client):
    assert client.get("/").json()["server_version"].startswith("1.13")
    assert client.get("/", headers=V112).json()["server_version"] == "1.12.0"
    r = client.get("/info", headers=auth("app-sim-chat", **V112))
    assert r.headers["x-version"] == "1.12.0" and r.headers["x-env"] == "PRODUCTION"
    assert client.get("/info", headers=auth("app-sim-chat")).headers["x-version"].startswith("1.13")


def test_an_unknown_version_header_is_a_clear_400(client):
    r = client.get("/info", headers=auth("app-sim-chat", **{"X-Sim-Dify-Version": "0.9"}))
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    assert "unknown Dify version '0.9'; choose from 1.12, 1.13" in r.json()["message"]


def test_the_cli_flag_sets_the_profile_of_every_request(sim_factory):
    server = sim_factory("--fast", "--dify-version", "1.12")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = stream(c, "/chat-messages", "app-sim-advanced-chat", {**CHATFLOW_BODY, "query": "hi"})
        assert r.frames[0].kind == "data" and r.names[0] == "workflow_started"
        assert r.names[-2:] == ["workflow_finished", "message_end"]
        # ... and the header still switches one request back to 1.13
        r = stream(c, "/chat-messages", "app-sim-advanced-chat", {**CHATFLOW_BODY, "query": "hi"}, headers={"X-Sim-Dify-Version": "1.13"})
        assert r.frames[0].kind == "ping" and r.names[-2:] == ["message_end", "workflow_finished"]


def test_an_unknown_cli_version_is_refused(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "lib.simulator", "--dify-version", "2.0"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "invalid choice: '2.0'" in proc.stderr


# --- 1.12 behaviour ----------------------------------------------------------------------------
def test_1_12_streams_open_without_a_ping_and_1_13_with_one(client):
    for key, path, body in [("app-sim-advanced-chat", "/chat-messages", {**CHATFLOW_BODY, "query": "hi"}),
                            ("app-sim-workflow", "/workflows/run", WORKFLOW_BODY)]:
        assert stream(client, path, key, body, headers=V112).frames[0].kind == "data"
        assert stream(client, path, key, body).frames[0].kind == "ping"


def test_1_12_conversation_quirks(client):
    key = "app-sim-advanced-chat"
    unknown = str(uuid.uuid4())
    r = client.request("DELETE", f"/conversations/{unknown}", json={"user": "prof"}, headers=auth(key, **V112))
    assert r.status_code == 204 and r.content == b""
    r = client.request("DELETE", f"/conversations/{unknown}", json={"user": "prof"}, headers=auth(key))
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    client.post("/chat-messages", json={**CHATFLOW_BODY, "response_mode": "blocking", "query": "hi"}, headers=auth(key))
    assert client.get("/conversations", headers=auth(key, **V112)).json()["data"] == []
    assert client.get("/conversations", headers=auth(key)).json()["data"]
    history = client.get("/messages", params={"user": "prof", "conversation_id": client.get(
        "/conversations", params={"user": "prof"}, headers=auth(key)).json()["data"][0]["id"]}, headers=auth(key, **V112)).json()
    item = history["data"][0]
    assert item["parent_message_id"] == "00000000-0000-0000-0000-000000000000"
    assert "extra_contents" not in item and "answer_tokens" not in item


def test_1_12_unknown_routes_get_werkzeugs_html_page(client):
    r = client.get("/no-such-endpoint", headers=auth("app-sim-chat", **V112))
    assert r.status_code == 404 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.text.startswith("<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>") and len(r.content) == 207
    r = client.get("/no-such-endpoint", headers=auth("app-sim-chat"))
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_1_12_workflow_run_detail_and_no_events_route(client):
    key = "app-sim-workflow"
    run = client.post("/workflows/run", json={**WORKFLOW_BODY, "response_mode": "blocking"}, headers=auth(key)).json()
    rid = run["workflow_run_id"]
    detail = client.get(f"/workflows/run/{rid}", headers=auth(key, **V112)).json()
    assert json.loads(detail["outputs"]) == run["data"]["outputs"]
    inputs = json.loads(detail["inputs"])
    assert inputs["topic"] == "testing" and inputs["details"] is None and inputs["sys.user_id"] == "prof"
    assert isinstance(client.get(f"/workflows/run/{rid}", headers=auth(key)).json()["outputs"], dict)
    unknown = client.get(f"/workflows/run/{uuid.uuid4()}", headers=auth(key, **V112))
    assert unknown.status_code == 200 and set(unknown.json().values()) == {None} and "status" in unknown.json()
    assert client.get(f"/workflows/run/{uuid.uuid4()}", headers=auth(key)).status_code == 404
    r = client.get(f"/workflow/{rid}/events", params={"user": "prof"}, headers=auth(key, **V112))
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


# --- shapes common to both profiles ------------------------------------------------------------
def test_chatflow_events_carry_difys_own_fields(client):
    r = stream(client, "/chat-messages", "app-sim-advanced-chat", {**CHATFLOW_BODY, "query": "hi"})
    started = r.events[0]["data"]
    assert started["inputs"]["sys.query"] == "hi" and started["inputs"]["sys.dialogue_count"] == 1
    assert started["inputs"]["sys.user_id"] == "prof" and started["inputs"]["audience"] == "Engineers"
    node = next(e["data"] for e in r.events if e["event"] == "node_started")
    assert node["inputs"] is None and node["inputs_truncated"] is False and node["agent_strategy"] is None
    start_done = next(e["data"] for e in r.events if e["event"] == "node_finished")
    assert start_done["outputs"]["sys.conversation_id"] == r.events[0]["conversation_id"] and start_done["process_data"] == {}
    assert all(e["from_variable_selector"] == ["llm", "text"] for e in r.events if e["event"] == "message")
    end = next(e for e in r.events if e["event"] == "message_end")
    assert end["metadata"]["annotation_reply"] is None
    usage = end["metadata"]["usage"]
    assert isinstance(usage["time_to_first_token"], float) and isinstance(usage["time_to_generate"], float)
    finished = next(e["data"] for e in r.events if e["event"] == "workflow_finished")
    assert finished["created_by"]["user"] == "prof" and finished["outputs"]["files"] == []


def test_parameters_of_a_workflow_app_are_a_workflows_features(client):
    params = client.get("/parameters", headers=auth("app-sim-workflow", **V112)).json()
    assert params["file_upload"]["fileUploadConfig"]["batch_count_limit"] == 5 and "image" not in params["file_upload"]
    assert params["opening_statement"] == "" and params["sensitive_word_avoidance"] == {"enabled": False}
    topic = params["user_input_form"][0]["text-input"]
    assert topic["type"] == "text-input" and topic["options"] == [] and "hint" not in topic and "default" not in topic
    assert "hint" in client.get("/parameters", headers=auth("app-sim-workflow")).json()["user_input_form"][0]["text-input"]
    assert client.get("/site", headers=auth("app-sim-chat")).json()["description"] is None


def test_a_stopped_run_leaves_its_running_node_unfinished(client):
    slow = {"X-Sim-TTFT-Ms": "2000"}

    def on_frame(frame, result):
        if result.names.count("node_started") == 2 and len(result.names) == 4:
            client.post(f"/workflows/tasks/{result.events[0]['task_id']}/stop", json={"user": "prof"}, headers=auth("app-sim-workflow"))

    r = stream(client, "/workflows/run", "app-sim-workflow", WORKFLOW_BODY, headers=slow, on_frame=on_frame)
    assert r.names == ["workflow_started", "node_started", "node_finished", "node_started", "workflow_finished"]
    data = r.events[-1]["data"]
    assert data["status"] == "stopped" and data["outputs"] == {} and data["error"] == "Stopped by user."
    assert data["total_steps"] == 2


# --- node-failed and no-model -------------------------------------------------------------------
@pytest.mark.parametrize("version", ["1.12", "1.13"])
def test_a_chatflow_node_failure_streams_as_dify_does(client, version):
    r = stream(client, "/chat-messages", "app-sim-advanced-chat", CHATFLOW_BODY,
               headers={**NODE_FAILED, "X-Sim-Dify-Version": version})
    assert r.status == 200 and r.names[-3:] == ["node_finished", "workflow_finished", "error"] and "message_end" not in r.names
    failed = r.events[-3]["data"]
    assert (failed["node_id"], failed["node_type"], failed["title"]) == ("tmpl", "template-transform", "Template")
    assert failed["status"] == "failed" and failed["error"] == SANDBOX_ERROR and failed["outputs"] == {}
    run = r.events[-2]["data"]
    assert run["status"] == "failed" and run["error"] == SANDBOX_ERROR and run["exceptions_count"] == 1 and run["outputs"] == {}
    err = r.events[-1]
    assert (err["code"], err["status"], err["message"]) == ("invalid_param", 400, "Run failed: " + SANDBOX_ERROR)
    assert "task_id" not in err and err["conversation_id"] == r.events[0]["conversation_id"]
    history = client.get("/messages", params={"user": "prof", "conversation_id": err["conversation_id"]},
                         headers=auth("app-sim-advanced-chat")).json()["data"]
    assert history[-1]["status"] == "error" and history[-1]["error"] == "Run failed: " + SANDBOX_ERROR


def test_a_chatflow_node_failure_in_blocking_mode_is_a_400(client):
    r = client.post("/chat-messages", json={**CHATFLOW_BODY, "response_mode": "blocking"},
                    headers=auth("app-sim-advanced-chat", **NODE_FAILED))
    assert r.status_code == 400
    assert r.json() == {"code": "invalid_param", "message": "Run failed: " + SANDBOX_ERROR, "status": 400}


def test_a_workflow_node_failure_is_a_200_failed_run(client):
    key = "app-sim-workflow"
    r = stream(client, "/workflows/run", key, WORKFLOW_BODY, headers=NODE_FAILED)
    assert [n for n in r.names if n != "text_chunk"] == ["workflow_started", *["node_started", "node_finished"] * 3,
                                                         "workflow_finished"]
    assert r.events[-2]["data"]["status"] == "failed" and r.events[-2]["data"]["title"] == "Template"
    assert r.text("text_chunk")  # the LLM ran (and streamed) before the Template node failed
    assert r.events[-1]["data"]["status"] == "failed" and r.events[-1]["data"]["error"] == SANDBOX_ERROR
    body = client.post("/workflows/run", json={**WORKFLOW_BODY, "response_mode": "blocking"}, headers=auth(key, **NODE_FAILED))
    data = body.json()["data"]
    assert body.status_code == 200 and data["status"] == "failed" and data["error"] == SANDBOX_ERROR and data["outputs"] == {}
    assert data["total_steps"] == 3
    detail = client.get(f"/workflows/run/{data['id']}", headers=auth(key)).json()
    assert detail["status"] == "failed" and detail["error"] == SANDBOX_ERROR
    logs = client.get("/workflows/logs", params={"status": "failed"}, headers=auth(key)).json()["data"]
    assert data["id"] in {item["workflow_run"]["id"] for item in logs}


@pytest.mark.parametrize(("key", "path", "body", "content"), [
    ("app-sim-advanced-chat", "/chat-messages", CHATFLOW_BODY, "message"),
    ("app-sim-workflow", "/workflows/run", WORKFLOW_BODY, "text_chunk"),
])
def test_the_failing_node_is_one_the_app_describes_and_runs(client, key, path, body, content):
    """node-failed fails a node of the app's own graph: the one /info names and a successful run goes through,
    after the same nodes as in that run (so the LLM's whole answer has streamed), and nothing after it runs."""
    description = client.get("/info", headers=auth(key)).json()["description"]
    ok = stream(client, path, key, body)
    ran = [(e["data"]["node_id"], e["data"]["node_type"], e["data"]["title"]) for e in ok.events if e["event"] == "node_finished"]
    assert next(e for e in ok.events if e["event"] == "workflow_finished")["data"]["status"] == "succeeded"
    titles = [title for _, _, title in ran]
    assert ", ".join(titles[:-1]) + " and " + titles[-1] in description, (titles, description)
    failed_run = stream(client, path, key, body, headers=NODE_FAILED)
    nodes = [e["data"] for e in failed_run.events if e["event"] == "node_finished"]
    failed = (nodes[-1]["node_id"], nodes[-1]["node_type"], nodes[-1]["title"])
    assert nodes[-1]["status"] == "failed" and failed in ran and failed[2] in description
    assert [(n["node_id"], n["node_type"], n["title"]) for n in nodes] == ran[:ran.index(failed) + 1]
    assert all(n["status"] == "succeeded" for n in nodes[:-1])
    llm = next(n for n in nodes if n["node_type"] == "llm")
    assert failed_run.text(content) == llm["outputs"]["text"] != ""  # the whole answer streamed before the failure


def test_node_failed_leaves_apps_without_nodes_alone(client):
    r = client.post("/chat-messages", json={"query": "hi", "inputs": {}, "user": "prof"}, headers=auth("app-sim-chat", **NODE_FAILED))
    assert r.status_code == 200 and r.json()["answer"]


def test_node_failed_at_a_rate_from_the_cli(sim_factory):
    server = sim_factory("--fast", "--fault", "node-failed=1")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/workflows/run", json={**WORKFLOW_BODY, "response_mode": "blocking"}, headers=auth("app-sim-workflow"))
        assert r.json()["data"]["status"] == "failed"
        metrics = c.get(server.url.removesuffix("/v1") + "/metrics").text
        assert 'dify_sim_faults_injected_total{fault="node-failed"} 1.0' in metrics


def test_no_model_is_difys_model_config_error(client):
    for path, key, body in [("/chat-messages", "app-sim-chat", {"query": "hi", "inputs": {}, "user": "prof", "response_mode": "streaming"}),
                            ("/completion-messages", "app-sim-completion", {"inputs": {"topic": "x", "style": "Tweet"}, "user": "prof"})]:
        r = client.post(path, json=body, headers=auth(key, **{"X-Sim-Fault": "no-model"}))
        assert r.status_code == 400 and r.json()["code"] == "invalid_param"
        assert r.json()["message"].startswith("2 validation errors for ModelConfigEntity\nprovider\n")


def test_1_12_validation_errors_are_pydantics_sentences(client):
    body = {"inputs": {}, "user": "prof", "response_mode": "blocking"}
    r = client.post("/chat-messages", json=body, headers=auth("app-sim-advanced-chat", **V112))
    assert r.status_code == 400 and r.json()["code"] == "invalid_param"
    assert r.json()["message"].startswith("1 validation error for ChatRequestPayload\nquery\n  Field required [type=missing")
    assert client.post("/chat-messages", json=body, headers=auth("app-sim-advanced-chat")).json()["message"] == "query is required"
    r = client.post("/chat-messages", content=b'{"query": ', headers=auth("app-sim-chat", **V112, **{"Content-Type": "application/json"}))
    assert r.json() == {"code": "bad_request", "status": 400,
                        "message": "The browser (or proxy) sent a request that this server could not understand."}
