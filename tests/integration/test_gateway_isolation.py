"""Two callers of one gateway passing the same `user` are kept apart: neither lists, reads, renames or deletes
the other's conversations, messages, files, feedback or runs (real simulator, real gateway process), and
the namespace never shows in what callers get back (a recording upstream shows what Dify receives)."""
from __future__ import annotations

import json
from urllib.parse import parse_qsl

import httpx
import pytest

from lib.dify import DifyClient, NotFoundError
from lib.gateway import ConfigError, GatewaySettings
from tests.support.gateway import CALLER_KEY, OTHER_KEY, RecordingUpstream, auth, start_gateway

USER = "alice"  # both callers' end user is called alice


@pytest.fixture(scope="module")
def chat_gw(sim, tmp_path_factory):
    server = start_gateway(tmp_path_factory.mktemp("gw-iso"), sim.url)
    yield server
    server.stop()


def test_a_caller_cannot_see_or_touch_another_callers_conversations(chat_gw):
    with DifyClient(f"{chat_gw.url}/v1", CALLER_KEY) as web, DifyClient(f"{chat_gw.url}/v1", OTHER_KEY) as partner:
        mine = web.chat("web's secret question", user=USER)
        assert any(c.id == mine.conversation_id for c in web.conversations(user=USER).data)
        assert len(web.messages(mine.conversation_id, user=USER).data) == 1

        assert all(c.id != mine.conversation_id for c in partner.conversations(user=USER).data)
        with pytest.raises(NotFoundError):
            partner.messages(mine.conversation_id, user=USER)
        with pytest.raises(NotFoundError):
            partner.chat("continue theirs", user=USER, conversation_id=mine.conversation_id)
        with pytest.raises(NotFoundError):
            partner.rename_conversation(mine.conversation_id, "pwned", user=USER)
        with pytest.raises(NotFoundError):
            partner.feedback(mine.message_id, "dislike", user=USER)
        with pytest.raises(NotFoundError):
            partner.delete_conversation(mine.conversation_id, user=USER)
        # A caller's own `user` cannot reach into another's namespace either.
        assert all(c.id != mine.conversation_id for c in partner.conversations(user=f"web@gw:{USER}").data)

        # web's conversation is untouched, and web still does everything with it.
        (conv,) = [c for c in web.conversations(user=USER).data if c.id == mine.conversation_id]
        assert conv.name != "pwned"
        assert web.feedback(mine.message_id, "like", user=USER).result == "success"
        web.delete_conversation(mine.conversation_id, user=USER)


def test_left_out_users_are_kept_apart_too(chat_gw):
    """No `user` on GET /conversations is Dify's shared DEFAULT-USER: each caller gets its own."""
    r = httpx.post(f"{chat_gw.url}/v1/chat-messages", headers=auth(),
                   json={"query": "as the default user", "user": "DEFAULT-USER", "inputs": {}})
    assert r.status_code == 200
    conv = r.json()["conversation_id"]
    mine = httpx.get(f"{chat_gw.url}/v1/conversations", headers=auth()).json()["data"]
    theirs = httpx.get(f"{chat_gw.url}/v1/conversations", headers=auth(OTHER_KEY)).json()["data"]
    assert conv in [c["id"] for c in mine] and conv not in [c["id"] for c in theirs]
    # A required user left out still gets Dify's own 400.
    r = httpx.post(f"{chat_gw.url}/v1/chat-messages", headers=auth(), json={"query": "no user", "inputs": {}})
    assert r.status_code == 400 and r.json()["code"] == "invalid_param"


def test_files_and_end_users_are_kept_apart(chat_gw):
    up = httpx.post(f"{chat_gw.url}/v1/files/upload", headers=auth(), data={"user": USER},
                    files={"file": ("note.txt", b"web's file\r\n--not-the-boundary\r\n", "text/plain")})
    assert up.status_code == 201, up.text
    end_user = up.json()["created_by"]
    own = httpx.get(f"{chat_gw.url}/v1/end-users/{end_user}", headers=auth())
    assert own.status_code == 200 and own.json()["external_user_id"] == USER and own.json()["session_id"] == USER
    other = httpx.get(f"{chat_gw.url}/v1/end-users/{end_user}", headers=auth(OTHER_KEY))
    assert other.status_code == 404 and other.json()["code"] == "end_user_not_found"
    preview = httpx.get(f"{chat_gw.url}/v1/files/{up.json()['id']}/preview", params={"user": USER}, headers=auth())
    assert preview.status_code == 200 and preview.content == b"web's file\r\n--not-the-boundary\r\n"  # untouched


def test_app_wide_listings_are_refused_or_filtered(sim, tmp_path):
    server = start_gateway(tmp_path, sim.url, "app-sim-workflow")
    try:
        with DifyClient(f"{server.url}/v1", CALLER_KEY) as web:
            run = web.run_workflow({"topic": "isolation"}, user=USER)
        feedbacks = httpx.get(f"{server.url}/v1/app/feedbacks", headers=auth())
        assert feedbacks.status_code == 403 and "every caller" in feedbacks.json()["message"]
        unfiltered = httpx.get(f"{server.url}/v1/workflows/logs", headers=auth())
        assert unfiltered.status_code == 403 and "created_by_end_user_session_id" in unfiltered.json()["message"]
        query = {"created_by_end_user_session_id": USER}
        mine = httpx.get(f"{server.url}/v1/workflows/logs", params=query, headers=auth()).json()["data"]
        assert run.workflow_run_id in [e["workflow_run"]["id"] for e in mine]
        assert {e["created_by_end_user"]["session_id"] for e in mine} == {USER}
        theirs = httpx.get(f"{server.url}/v1/workflows/logs", params=query, headers=auth(OTHER_KEY)).json()["data"]
        assert run.workflow_run_id not in [e["workflow_run"]["id"] for e in theirs]
    finally:
        server.stop()


def test_upstream_gets_namespaced_users_and_callers_never_see_the_namespace(tmp_path):
    with RecordingUpstream() as up:
        server = start_gateway(tmp_path, up.url, up.GOOD_KEY)
        try:
            blocking = httpx.post(f"{server.url}/v1/chat-messages", headers=auth(),
                                  json={"query": "q", "user": USER, "inputs": {}, "conversation_id": ""})
            assert blocking.json()["user"] == USER and blocking.json()["message"] == f"input_value={{'user': '{USER}'}}"
            listing = httpx.get(f"{server.url}/v1/messages", params={"conversation_id": "c", "user": USER},
                                headers=auth(OTHER_KEY))
            assert listing.json()["user"] == USER
            form = httpx.post(f"{server.url}/v1/files/upload", headers=auth(), data={"user": USER},
                              files={"file": ("a.bin", b"\x00\x01binary\r\n--x", "application/octet-stream")})
            assert form.json()["user"] == USER
            with httpx.stream("POST", f"{server.url}/v1/chat-messages", headers=auth(),
                              json={"query": "q", "user": USER, "inputs": {}, "response_mode": "streaming"}) as r:
                frames = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
            assert frames[0]["from"] == USER and frames[1]["inputs"]["sys.user_id"] == USER
        finally:
            server.stop()
    assert [(s["raw_path"], s["user"]) for s in up.seen] == [
        ("/v1/chat-messages", "web@gw:alice"), ("/v1/messages", "partner@gw:alice"),
        ("/v1/files/upload", "web@gw:alice"), ("/v1/chat-messages", "web@gw:alice")]
    (form_seen,) = [s for s in up.seen if s["raw_path"] == "/v1/files/upload"]
    assert int(form_seen["headers"]["content-length"]) > 0


def test_a_second_user_hidden_in_a_request_never_reaches_upstream_bare(tmp_path):
    """Two `user` values in a query, a UTF-16 JSON body (Flask reads it, orjson does not), a form with an
    unquoted and a second `user` part: upstream sees only the caller's namespaced user."""
    boundary = "b0undary"
    form = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            f'Content-Type: text/plain\r\n\r\nhi\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name=user\r\n\r\nbob\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="user"\r\n\r\nalice\r\n--{boundary}--\r\n').encode()
    with RecordingUpstream() as up:
        server = start_gateway(tmp_path, up.url, up.GOOD_KEY)
        try:
            r = httpx.get(f"{server.url}/v1/conversations?user=alice&user=bob&limit=5", headers=auth())
            assert r.status_code == 200
            r = httpx.post(f"{server.url}/v1/chat-messages", headers={**auth(), "Content-Type": "application/json"},
                           content=json.dumps({"query": "q", "user": "bob", "inputs": {}}).encode("utf-16"))
            assert r.status_code == 200 and r.json()["user"] == "bob"
            r = httpx.post(f"{server.url}/v1/files/upload", content=form,
                           headers={**auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"})
            assert r.status_code == 200 and r.json()["user"] == "bob"  # the first part, as werkzeug reads it
            lf_only = form.replace(b"\r\n", b"\n")
            r = httpx.post(f"{server.url}/v1/files/upload", content=lf_only,
                           headers={**auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"})
            assert r.status_code == 400 and "multipart" in r.json()["message"]
        finally:
            server.stop()
    query, chat, upload = up.seen
    assert parse_qsl(query["query"]) == [("user", "web@gw:alice"), ("limit", "5")]
    assert json.loads(chat["body"])["user"] == "web@gw:bob"
    assert upload["body"].count(b'name="user"') == 1 and b"name=user" not in upload["body"]
    assert b"\r\n\r\nweb@gw:bob\r\n" in upload["body"] and b"\r\n\r\nhi\r\n" in upload["body"]


def test_isolation_can_be_turned_off(sim, tmp_path):
    server = start_gateway(tmp_path, sim.url, env={"GATEWAY_ISOLATE_CALLERS": "false"})
    try:
        with DifyClient(f"{server.url}/v1", CALLER_KEY) as web, DifyClient(f"{server.url}/v1", OTHER_KEY) as partner:
            mine = web.chat("shared", user="shared-user")
            assert any(c.id == mine.conversation_id for c in partner.conversations(user="shared-user").data)
    finally:
        server.stop()


def test_metrics_can_require_a_key(sim, tmp_path):
    server = start_gateway(tmp_path, sim.url, env={"GATEWAY_METRICS_KEY": "metrics-secret-42"})
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        assert httpx.get(f"{server.url}/metrics", headers=auth()).status_code == 401  # a caller key is not it
        ok = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer metrics-secret-42"})
        assert ok.status_code == 200 and "dify_gateway_requests_total" in ok.text
        assert httpx.get(f"{server.url}/health").status_code == 200  # probes need no key
        assert "metrics-secret-42" not in server.log()
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["my site", "web@gw", "wébsite"])
def test_caller_names_that_could_blur_namespaces_or_labels_are_refused(name):
    with pytest.raises(ConfigError, match="caller names may hold"):
        GatewaySettings(dify_api_key="app-x", gateway_api_keys=f"{name}:gw-key-1").check()


def test_the_stream_strip_holds_back_only_an_unfinished_line_and_misses_no_prefix_at_any_cut():
    from lib.gateway.isolation import CallerSpace

    space = CallerSpace("web")
    stream = (b'data: {"event": "message", "from": "web@gw:alice", "answer": " hi"}\n\n'
              b"data: {\"event\": \"error\", \"message\": \"input_value={'user': 'web@gw:alice'}\"}\n\n"
              b'data: {"event": "workflow_started", "data": {"inputs": "{\\"sys.user_id\\": \\"web@gw:bob\\"}"}}\n\n'
              b'data: {"event": "message_end", "to": "web@gw:web@gw:eve"}')  # no newline at the very end
    whole = space.strip(stream)
    assert b"web@gw:" not in whole.replace(b"web@gw:eve", b"")  # eve's own user is the literal `web@gw:eve`
    for cut in range(1, len(stream)):
        for second in (cut + 1, cut + 7, len(stream)):
            pieces = [stream[:cut], stream[cut:second], stream[second:]]
            stripper = space.stream_stripper()
            out = []
            for piece in pieces:
                got = stripper.feed(piece)
                # everything up to the last newline received so far is out: no finished frame waits
                sent = b"".join(out) + got
                received = b"".join(pieces[:len(out) + 1])
                assert sent == space.strip(received[:received.rfind(b"\n") + 1])
                out.append(got)
            out.append(stripper.rest())
            assert b"".join(out) == whole, (cut, second)
