"""Every Service API endpoint, sync and async, against the simulator over real HTTP."""
from __future__ import annotations

import pytest

from lib.dify import (
    AgentMessageEvent,
    AgentThoughtEvent,
    AppModeError,
    AuthenticationError,
    ChatResult,
    CompletionResult,
    ConversationNotFoundError,
    InvalidParamError,
    MessageEndEvent,
    MessageEvent,
    NodeEvent,
    NotFoundError,
    TextChunkEvent,
    UploadedFile,
    WorkflowEvent,
    WorkflowFinishedEvent,
    WorkflowResult,
)
from tests.support.client_api import api  # noqa: F401  (fixture)

USER = "tester"


# -- app information --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["chat", "advanced-chat", "agent-chat", "completion", "workflow"])
async def test_info_parameters_meta_site(api, mode):
    a = api(mode)
    info = await a("info")
    assert info.mode == mode and info.name
    params = await a("parameters")
    assert params.user_input_form and all("variable" in f for f in params.input_fields())
    assert isinstance((await a("meta")).tool_icons, dict)
    assert (await a("site")).title == info.name


# -- chat family ----------------------------------------------------------------------------------------------------


async def test_chat_blocking_then_streaming_in_one_conversation(api):
    a = api("chat")
    first = await a("chat", "Hello, who are you?", user=USER, inputs={"name": "Ann"})
    assert isinstance(first, ChatResult)
    assert first.answer and first.conversation_id and first.message_id
    assert first.usage.total_tokens > 0 and first.timing.ttft is not None and first.timing.attempts == 1
    events, stream = await a.stream("stream_chat", "And what can you do?", user=USER, conversation_id=first.conversation_id)
    assert all(isinstance(e, MessageEvent) for e in events[:-1])
    assert isinstance(events[-1], MessageEndEvent) and events[-1].event == "message_end"
    assert stream.conversation_id == first.conversation_id
    assert stream.answer == "".join(e.text for e in events)
    t = stream.timing
    assert t.sent < t.first_byte <= t.first_event <= t.first_content <= t.end
    assert len(t.content) == len(events) - 1 and t.usage.total_tokens == events[-1].usage.total_tokens
    result = stream.result()
    assert result.answer == stream.answer and result.message_id == events[0].message_id


async def test_advanced_chat_streams_workflow_events_and_may_end_either_way(api):
    a = api("advanced-chat")
    events, stream = await a.stream("stream_chat", "How does a chatflow work?", user=USER)
    names = [e.event for e in events]
    assert names[0] == "workflow_started" and "message" in names
    assert {"message_end", "workflow_finished"} & set(names[-2:])
    assert any(isinstance(e, NodeEvent) for e in events)
    assert stream.timing.pings >= 1  # workflow-based streams open with a ping
    assert stream.answer and stream.workflow_run_id
    run = await a("workflow_run", stream.workflow_run_id)
    assert run.status == "succeeded"
    blocking = await a("chat", "Again, blocking", user=USER, conversation_id=stream.conversation_id)
    assert blocking.answer and blocking.conversation_id == stream.conversation_id


async def test_agent_streams_thoughts_and_refuses_blocking(api):
    a = api("agent-chat")
    events, stream = await a.stream("stream_chat", "What is 17 * 23?", user=USER)
    assert any(isinstance(e, AgentThoughtEvent) for e in events)
    assert any(isinstance(e, AgentMessageEvent) for e in events)
    assert events[-1].event == "message_end" and stream.answer
    with pytest.raises(InvalidParamError) as info:
        await a("chat", "hi", user=USER)
    assert "stream_chat" in str(info.value) and info.value.status == 400


async def test_collect_turns_a_stream_into_a_result(api):
    a = api("agent-chat")
    stream = a.client.stream_chat("Search the web for Dify release notes.", user=USER)
    result = await stream.collect() if a.is_async else stream.collect()
    assert isinstance(result, ChatResult) and result.answer and result.conversation_id and result.usage


async def test_completion_blocking_and_streaming(api):
    a = api("completion")
    inputs = {"topic": "rivers", "style": "Tweet"}
    result = await a("completion", inputs, user=USER)
    assert isinstance(result, CompletionResult) and result.answer and result.message_id and result.usage.total_tokens
    assert "conversation_id" not in result.model_fields_set
    events, stream = await a.stream("stream_completion", inputs, user=USER)
    assert events[-1].event == "message_end" and stream.answer
    assert isinstance(stream.result(), CompletionResult)


async def test_workflow_blocking_streaming_run_and_logs(api):
    a = api("workflow")
    result = await a("run_workflow", {"topic": "bridges"}, user=USER)
    assert isinstance(result, WorkflowResult) and result.status == "succeeded" and result.outputs
    assert result.workflow_run_id and result.timing.attempts == 1
    events, stream = await a.stream("stream_workflow", {"topic": "bridges"}, user=USER)
    assert isinstance(events[0], WorkflowEvent) and events[0].event == "workflow_started"
    assert any(isinstance(e, TextChunkEvent) for e in events)
    assert isinstance(events[-1], WorkflowFinishedEvent) and events[-1].status == "succeeded"
    final = stream.result()
    assert final.status == "succeeded" and final.text and final.outputs
    run = await a("workflow_run", final.workflow_run_id)
    assert run.status == "succeeded" and run.id == final.workflow_run_id
    logs = await a("workflow_logs", limit=5)
    assert logs.data and logs.limit == 5
    pinned = await a("run_workflow", {"topic": "pinned"}, user=USER, workflow_id=final.workflow_id)
    assert pinned.status == "succeeded" and pinned.workflow_id == final.workflow_id


@pytest.mark.parametrize("mode,method,args", [
    ("chat", "stream_chat", ("Tell me a long story",)),
    ("completion", "stream_completion", ({"topic": "stop", "style": "Summary"},)),
    ("workflow", "stream_workflow", ({"topic": "stop"},)),
])
async def test_stop_a_running_stream(api, mode, method, args):
    a = api(mode)
    stream = getattr(a.client, method)(*args, user=USER, headers={"X-Sim-TTFT-Ms": "10", "X-Sim-Tokens-Per-S": "20"})
    events = []
    if a.is_async:
        async for ev in stream:
            events.append(ev)
            if ev.text and len(events) >= 3 and not getattr(stream, "_stopped", False):
                assert (await stream.stop()).result == "success"
                stream._stopped = True
    else:
        for ev in stream:
            events.append(ev)
            if ev.text and len(events) >= 3 and not getattr(stream, "_stopped", False):
                assert stream.stop().result == "success"
                stream._stopped = True
    assert events[-1].event in ("message_end", "workflow_finished")
    if mode == "workflow":
        assert stream.result().status == "stopped"
    assert len(stream.timing.content) < 60  # stopped early: a full answer is ~90 tokens


async def test_stop_endpoints_answer_success_for_unknown_tasks(api):
    assert (await api("chat")("stop_chat", "no-such-task", user=USER)).result == "success"
    assert (await api("completion")("stop_completion", "no-such-task", user=USER)).result == "success"
    assert (await api("workflow")("stop_workflow", "no-such-task", user=USER)).result == "success"


# -- conversations, messages, feedback ---------------------------------------------------------------------------


async def test_conversations_messages_rename_delete(api):
    a = api("chat")
    user = f"conv-{a.is_async}"
    first = await a("chat", "first question", user=user)
    second = await a("chat", "second question", user=user, conversation_id=first.conversation_id)
    history = await a("messages", first.conversation_id, user=user)
    assert [m.query for m in history.data] == ["first question", "second question"]
    assert history.data[1].id == second.message_id
    page = await a("messages", first.conversation_id, user=user, limit=1)
    assert len(page.data) == 1 and page.has_more
    older = await a("messages", first.conversation_id, user=user, first_id=page.data[0].id)
    assert [m.query for m in older.data] == ["first question"]
    convs = await a("conversations", user=user, limit=10, sort_by="-updated_at")
    assert first.conversation_id in [c.id for c in convs.data]
    renamed = await a("rename_conversation", first.conversation_id, "Renamed", user=user)
    assert renamed.name == "Renamed"
    auto = await a("rename_conversation", first.conversation_id, user=user, auto_generate=True)
    assert auto.name
    assert (await a("delete_conversation", first.conversation_id, user=user)).result == "success"
    with pytest.raises(ConversationNotFoundError) as info:
        await a("chat", "still there?", user=user, conversation_id=first.conversation_id)
    assert info.value.status == 404 and info.value.code == "not_found" and "new conversation" in str(info.value)


async def test_conversations_belong_to_one_user(api):
    a = api("chat")
    mine = await a("chat", "private", user="alice")
    with pytest.raises(ConversationNotFoundError):
        await a("messages", mine.conversation_id, user="bob")


async def test_conversation_variables_get_and_put(api):
    a = api("advanced-chat")
    result = await a("chat", "remember things", user=USER)
    variables = await a("conversation_variables", result.conversation_id, user=USER)
    by_name = {v.name: v for v in variables.data}
    assert {"user_preferences", "turn_count", "last_topic"} <= set(by_name)
    updated = await a("update_conversation_variable", result.conversation_id, by_name["last_topic"].id, "rivers", user=USER)
    assert updated.value == "rivers"
    only = await a("conversation_variables", result.conversation_id, user=USER, variable_name="last_topic")
    assert [v.value for v in only.data] == ["rivers"]


async def test_feedback_suggested_and_app_feedbacks(api):
    a = api("chat")
    result = await a("chat", "rate me", user=USER)
    assert (await a("feedback", result.message_id, "like", user=USER, content="nice")).result == "success"
    history = await a("messages", result.conversation_id, user=USER)
    assert history.data[-1].feedback == {"rating": "like"}
    feedbacks = await a("app_feedbacks", limit=50)
    assert result.message_id in [f.message_id for f in feedbacks.data]
    assert (await a("feedback", result.message_id, None, user=USER)).result == "success"
    suggestions = await a("suggested", result.message_id, user=USER)
    assert isinstance(suggestions, list) and all(isinstance(s, str) for s in suggestions)


# -- files and audio ---------------------------------------------------------------------------------------------------


async def test_upload_preview_and_use_a_file(api, tmp_path):
    a = api("chat")
    path = tmp_path / "notes.txt"
    path.write_text("Dify console notes: สวัสดี 👋", encoding="utf-8")
    uploaded = await a("upload_file", path, user=USER)
    assert isinstance(uploaded, UploadedFile) and uploaded.name == "notes.txt" and uploaded.size == path.stat().st_size
    assert await a("file_preview", uploaded.id, user=USER) == path.read_bytes()
    from_bytes = await a("upload_file", b"\x89PNG\r\n\x1a\n" + bytes(64), user=USER, filename="dot.png")
    assert from_bytes.mime_type == "image/png"
    answer = await a("chat", "What is in the file?", user=USER, files=[uploaded])
    assert answer.answer
    remote = await a("chat", "And this?", user=USER, files=[{"type": "image", "transfer_method": "remote_url", "url": "https://example.com/cat.png"}])
    assert remote.answer


async def test_audio_to_text_and_text_to_audio(api):
    a = api("chat")
    text = await a("audio_to_text", ("hello.mp3", b"\xff\xfb\x90\x64" + bytes(2000), "audio/mp3"), user=USER)
    assert text.text
    audio = await a("text_to_audio", user=USER, text="Hello there")
    assert audio[:2] == b"\xff\xfb"
    answer = await a("chat", "say something", user=USER)
    assert (await a("text_to_audio", user=USER, message_id=answer.message_id))[:2] == b"\xff\xfb"


# -- annotations, end users -------------------------------------------------------------------------------------------------


async def test_annotations_crud_and_reply_jobs(api):
    a = api("chat")
    created = await a("create_annotation", "What is Dify?", "An LLM app platform.")
    assert created.id and created.question == "What is Dify?"
    listed = await a("annotations", keyword="Dify", limit=50)
    assert created.id in [x.id for x in listed.data]
    updated = await a("update_annotation", created.id, "What is Dify?", "An open-source LLM app platform.")
    assert updated.answer.startswith("An open-source")
    assert (await a("delete_annotation", created.id)).result == "success"
    job = await a("annotation_reply", "enable", embedding_provider_name="openai", embedding_model_name="text-embedding-3-small",
                  score_threshold=0.9)
    status = await a("annotation_reply_status", "enable", job.job_id)
    assert status.job_id == job.job_id and status.job_status in ("waiting", "processing", "completed")


async def test_end_user_lookup(api):
    a = api("chat")
    uploaded = await a("upload_file", b"hello", user="someone", filename="a.txt")
    user = await a("end_user", uploaded.created_by)
    assert user.id == uploaded.created_by and user.session_id == "someone"
    with pytest.raises(NotFoundError) as info:
        await a("end_user", "00000000-0000-4000-8000-000000000000")
    assert info.value.code == "end_user_not_found"


# -- errors from wrong use ------------------------------------------------------------------------------------------------------


async def test_wrong_key_and_wrong_mode_read_as_actions(api):
    with pytest.raises(AuthenticationError) as info:
        await api("app-not-a-real-key-0000")("info")
    assert info.value.status == 401 and "API key" in str(info.value) and info.value.attempts == 1
    with pytest.raises(AppModeError) as info:
        await api("workflow")("chat", "hi", user=USER)
    assert info.value.code == "not_workflow_app" or info.value.code == "not_chat_app"
    assert "run_workflow" in str(info.value)
    with pytest.raises(AppModeError) as info:
        await api("chat")("completion", {"topic": "x"}, user=USER)
    assert info.value.code == "app_unavailable"


async def test_missing_required_input(api):
    with pytest.raises(InvalidParamError) as info:
        await api("workflow")("run_workflow", {}, user=USER)
    assert "topic" in info.value.message


async def test_resume_a_workflow_stream_and_human_input_forms(api):
    a = api("workflow")
    run = await a("run_workflow", {"topic": "resume"}, user=USER)
    events, stream = await a.stream("stream_workflow_events", run.workflow_run_id, user=USER)
    assert [e.event for e in events] == ["workflow_finished"] and events[0].status == "succeeded"
    with pytest.raises(NotFoundError):
        await a.stream("stream_workflow_events", run.workflow_run_id, user="someone-else")
    with pytest.raises(NotFoundError) as err:
        await a("human_input_form", "no-such-token")
    assert "not found" in str(err.value).lower()
