"""pages/playground.py in Streamlit's AppTest, through app.py, against the real simulator over HTTP.

Every path of the page: each app mode, the form's checks, suggested questions and follow-ups,
feedback, the conversation list (open, rename, delete, new), export, batch, compare, targets added
for the session, and the failures (wrong key, unreachable URL, not a Dify URL, wrong mode, stream
cut, breaker open): each an st.error with the client's sentence, never an exception, never the key.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.dify import CircuitBreaker, DifyClient
from tests.conftest import KEYS
from tests.support.gateway import CALLER_KEY, start_gateway
from tests.support.html_server import html_server
from tests.support.procs import free_port
from tests.support.replay import replay_server

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
SECRET = "app-pageTestSecretKey0123456789WXYZ"


@pytest.fixture(autouse=True)
def simulator_targets(monkeypatch, sim):
    for name in ("DIFY_API_BASE", "DIFY_API_KEY", "DIFY_TARGET_NAME"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("SIMULATOR_URL", sim.url)


# -- helpers ----------------------------------------------------------------------------------------


def open_page(target: str | None = None, user: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if user is not None:
        at.sidebar.text_input(key="pgv:user").set_value(user).run()
    if target is not None:
        at.sidebar.selectbox(key="target_name").set_value(target).run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def click(at: AppTest, label: str, *, where=None) -> AppTest:
    """Click the button whose label is `label` (form submit buttons included) and run."""
    scope = where if where is not None else at
    buttons = [b for b in scope.button if b.label == label]
    assert buttons, f"no button {label!r}; buttons: {[b.label for b in scope.button]}"
    buttons[0].click().run()
    assert_clean(at)
    return at


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert_clean(at)
    return at


def widget(items, label: str):
    found = [w for w in items if w.label == label]
    assert found, f"no widget {label!r} among {[w.label for w in items]}"
    return found[0]


def texts(elements) -> list[str]:
    """Each element's text as the reader sees it (the page escapes Markdown in plain answers: undone here)."""
    return [shown(e.value) for e in elements]


def shown(markdown: str) -> str:
    text = re.sub(r"\\([\\`*_{}\[\]()<>#+\-.!|~$=:])", r"\1", markdown).replace("&nbsp;", " ")
    return text.replace("  \n", "\n")


def timing_captions(at: AppTest) -> list[str]:
    return [c for c in texts(at.caption) if c.startswith(("First token", "No streamed text", "Model latency"))]


def rendered_text(at: AppTest) -> str:
    """Every field of every rendered element (protobuf text)."""

    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return "\n".join(str(n.proto) for n in walk(at._tree) if getattr(n, "proto", None) is not None)


def add_target(at: AppTest, name: str, url: str, key: str) -> AppTest:
    widget(at.text_input, "Name").set_value(name)
    widget(at.text_input, "Base URL").set_value(url)
    widget(at.text_input, "API key").set_value(key)
    return click(at, "Add and use")


def history(sim, mode: str, at: AppTest):
    """The conversation the page holds, as Dify stored it (oldest first)."""
    user = at.session_state["pgv:user"]
    with DifyClient(sim.url, KEYS[mode]) as client:
        conv = client.conversations(user=user).data
        assert len(conv) == 1, conv
        return client.messages(conv[0].id, user=user).data


# -- chat --------------------------------------------------------------------------------------------


def test_chat_streams_an_answer_with_its_caption_and_a_rerun_never_resends(sim):
    at = open_page()
    assert at.title[0].value == "Playground"
    assert "Target: **Simulator · chat**" in texts(at.markdown)
    assert any(m.startswith("Hi! I'm a simulated Dify chatbot") for m in texts(at.markdown))  # opening statement
    send(at, "Hello there 👋 ```print('hi')```")
    answers = [m for m in texts(at.markdown) if m.startswith("You asked:")]
    assert answers == [answers[0]] and "Hello there 👋" in answers[0]
    [caption] = timing_captions(at)
    assert caption.startswith("First token ") and "output tokens" in caption and "tokens/s" in caption and "$0.000" in caption
    assert [e.label for e in at.expander if e.label.startswith("Citations")] == ["Citations (2)"]
    for _ in range(3):  # reruns of every kind: none may send the message again
        at.run()
    click(at, "Refresh")
    assert_clean(at)
    assert len(timing_captions(at)) == 1
    assert [m.query for m in history(sim, "chat", at)] == ["Hello there 👋 ```print('hi')```"]


def test_suggested_question_and_follow_up_buttons_send_them(sim):
    at = open_page()
    click(at, "สวัสดีครับ คุณช่วยอะไรได้บ้าง")
    assert any(m.startswith("คุณถามว่า “สวัสดีครับ คุณช่วยอะไรได้บ้าง”") for m in texts(at.markdown))  # a Thai answer
    assert "Suggested follow-ups" in texts(at.caption)
    assert not [b for b in at.button if b.label == "What can you do?"]  # opening questions only start a chat
    click(at, "มีตัวอย่างประกอบไหม")
    assert [m.query for m in history(sim, "chat", at)] == ["สวัสดีครับ คุณช่วยอะไรได้บ้าง", "มีตัวอย่างประกอบไหม"]
    assert len(timing_captions(at)) == 2


def test_an_empty_user_box_says_which_user_requests_go_as(sim):
    at = open_page(user="   ")
    assert "Empty: requests go as `console-user`." in [c.value for c in at.sidebar.caption]
    send(at, "Who am I?")
    with DifyClient(sim.url, KEYS["chat"]) as client:
        assert "Who am I?" in [m.query for c in client.conversations(user="console-user").data
                               for m in client.messages(c.id, user="console-user").data]
    at.sidebar.text_input(key="pgv:user").set_value("ada").run()
    assert not [c for c in at.sidebar.caption if c.value.startswith("Empty:")]


def test_feedback_is_sent_to_dify(sim):
    at = open_page()
    send(at, "Rate me")
    at.feedback[0].set_value(1).run()
    assert_clean(at)
    assert history(sim, "chat", at)[0].feedback == {"rating": "like"}
    at.feedback[0].set_value(0).run()
    assert history(sim, "chat", at)[0].feedback == {"rating": "dislike"}


def test_app_inputs_go_with_the_first_message_and_are_checked(sim):
    at = open_page()
    widget(at.text_input, "Your name").set_value("Ada")
    widget(at.selectbox, "Tone").set_value("Formal")
    send(at, "Who am I?")
    assert any("name = Ada, tone = Formal" in m for m in texts(at.markdown))
    assert any(e.label.endswith("fixed for this conversation") for e in at.expander)
    assert widget(at.text_input, "Your name").disabled


def test_file_upload_is_sent_the_dify_way(sim):
    at = open_page()
    # The widgets say the app's own limit (system_parameters: documents 15 MB, images 10 MB), not Streamlit's 200 MB.
    assert at.chat_input[0].proto.max_upload_size_mb == 15
    workflow = open_page("Simulator · workflow")
    uploaders = [el.proto for el in workflow.get("file_uploader")]
    assert uploaders and all(u.max_upload_size_mb == 15 for u in uploaders), [(u.label, u.max_upload_size_mb) for u in uploaders]
    at.chat_input[0].upload("notes.txt", b"hello from a file", "text/plain").set_value("Read my notes").run()
    assert_clean(at)
    assert any("You attached 1 file(s): notes.txt" in m for m in texts(at.markdown))
    assert ":material/attach_file: notes.txt" in texts(at.caption)
    [message] = history(sim, "chat", at)
    assert message.message_files[0]["type"] == "document"


def test_agent_thoughts_and_chatflow_nodes_and_citations(sim):
    at = open_page("Simulator · agent")
    send(at, "What is 17 * 23?")
    assert "Agent thoughts and tool calls (1)" in [e.label for e in at.expander]
    assert any('"expression": "17 * 23"' in c.value for c in at.code)
    assert "17 * 23 = 391" in texts(at.code)
    at = open_page("Simulator · advanced-chat")
    send(at, "How does a chatflow work?")
    labels = [e.label for e in at.expander]
    assert "Citations (2)" in labels and any(lbl.startswith("Workflow nodes (5)") for lbl in labels)
    nodes = at.dataframe[0].value
    assert nodes["node"].tolist() == ["Start", "Knowledge Retrieval", "LLM", "Template", "Answer"]
    assert nodes["status"].str.endswith("succeeded").all()


def test_conversations_open_rename_delete_and_new(sim):
    user = "page-conversations"
    with DifyClient(sim.url, KEYS["chat"]) as client:
        first = client.chat("Older question", user=user)
        client.chat("Older follow-up", user=user, conversation_id=first.conversation_id)
        second = client.chat("Newest question", user=user)
    at = open_page(user=user)
    names = [b.label for b in at.sidebar.button if b.key and b.key.startswith("pg:open:")]
    assert names == ["Newest question", "Older question"]
    at.sidebar.button(key=f"pg:open:{first.conversation_id}").click().run()
    assert_clean(at)
    assert [m for m in texts(at.markdown) if m in ("Older question", "Older follow-up")] == ["Older question", "Older follow-up"]
    assert all(c.startswith("Model latency") for c in timing_captions(at)) and len(timing_captions(at)) == 2
    send(at, "A third turn")  # continues the opened conversation
    with DifyClient(sim.url, KEYS["chat"]) as client:
        assert [m.query for m in client.messages(first.conversation_id, user=user).data][-1] == "A third turn"
    at.text_input(key=f"pg:rename-name:{first.conversation_id}").set_value("Renamed ✨")
    at.button(key=f"pg:rename:{first.conversation_id}").click().run()
    assert_clean(at)
    assert at.sidebar.button(key=f"pg:open:{first.conversation_id}").label == "▸ Renamed ✨"
    # Delete asks first (Dify cannot undo it); Cancel keeps the conversation.
    at.button(key=f"pg:delete:{second.conversation_id}").click().run()
    assert_clean(at)
    assert texts(at.sidebar.warning) == [
        "Delete the conversation “Newest question” and all its messages from Dify? This cannot be undone."]
    at.sidebar.button(key=f"pg:delete-no:{second.conversation_id}").click().run()
    assert_clean(at)
    assert not at.sidebar.warning and len([b for b in at.sidebar.button if b.key and b.key.startswith("pg:open:")]) == 2
    with DifyClient(sim.url, KEYS["chat"]) as client:
        assert len(client.conversations(user=user).data) == 2
    # Confirmed: gone from Dify and the list, and the page says which one went.
    at.button(key=f"pg:delete:{second.conversation_id}").click().run()
    at.sidebar.button(key=f"pg:delete-yes:{second.conversation_id}").click().run()
    assert_clean(at)
    assert texts(at.success) == [f"Deleted the conversation “Newest question” ({second.conversation_id[:8]}…) "
                                 "and its messages from Dify."]
    assert not at.sidebar.warning
    assert [b.label for b in at.sidebar.button if b.key and b.key.startswith("pg:open:")] == ["▸ Renamed ✨"]
    with DifyClient(sim.url, KEYS["chat"]) as client:
        assert [c.id for c in client.conversations(user=user).data] == [first.conversation_id]
    click(at, "New conversation", where=at.sidebar)
    assert timing_captions(at) == [] and any(b.label == "What can you do?" for b in at.button)


def test_history_and_conversation_list_page_like_dify(sim):
    user = "page-pagination"
    with DifyClient(sim.url, KEYS["chat"]) as client:
        first = client.chat("Message 0", user=user)
        for n in range(1, 22):  # 22 messages: one page of 20, then the 2 oldest
            client.chat(f"Message {n}", user=user, conversation_id=first.conversation_id)
        for n in range(20):  # 21 conversations: the sidebar lists 20, then Load more
            client.chat(f"Other conversation {n}", user=user)
    at = open_page(user=user)
    opens = [b for b in at.sidebar.button if b.key and b.key.startswith("pg:open:")]
    assert len(opens) == 20 and any(b.label == "Load more" for b in at.sidebar.button)
    click(at, "Load more", where=at.sidebar)
    assert len([b for b in at.sidebar.button if b.key and b.key.startswith("pg:open:")]) == 21
    at.sidebar.button(key=f"pg:open:{first.conversation_id}").click().run()
    queries = [m for m in texts(at.markdown) if m.startswith("Message ")]
    assert queries == [f"Message {n}" for n in range(2, 22)]
    click(at, "Load earlier messages")
    queries = [m for m in texts(at.markdown) if m.startswith("Message ")]
    assert queries == [f"Message {n}" for n in range(22)]
    assert not [b for b in at.button if b.label == "Load earlier messages"]


def test_export_buttons_offer_markdown_and_json(sim):
    at = open_page()
    assert not at.download_button  # nothing to export yet
    send(at, "Export me")
    assert [b.label for b in at.download_button] == ["Markdown", "JSON"]


# -- text generator and workflow ------------------------------------------------------------------


def test_completion_form_checks_then_generates(sim):
    at = open_page("Simulator · completion")
    assert not at.chat_input and [w.label for w in at.text_input][-2:] == ["Topic *", "User"]
    click(at, "Generate")
    assert texts(at.error) == ["Not sent: Topic is required."]
    widget(at.text_input, "Topic *").set_value("rivers")
    widget(at.selectbox, "Style *").set_value("Tweet")
    click(at, "Generate")
    assert not at.error
    assert any("topic = rivers, style = Tweet" in m for m in texts(at.markdown))
    assert len(timing_captions(at)) == 1 and len(at.feedback) == 1
    assert widget(at.text_input, "Topic *").value == "rivers"  # the form keeps what was typed


def test_workflow_runs_with_outputs_and_a_node_timeline(sim):
    at = open_page("Simulator · workflow")
    widget(at.text_input, "Topic *").set_value("bridges")
    widget(at.number_input, "Max points").set_value(2)
    click(at, "Run")
    assert any(m.startswith('You asked: "bridges"') for m in texts(at.markdown))
    assert [e.label for e in at.expander if e.label in ("Outputs",)] == ["Outputs"]
    assert "text" in at.json[0].value
    nodes = at.dataframe[0].value
    assert nodes["type"].tolist() == ["start", "llm", "template-transform", "end"]
    # Tokens: the LLM's count, blank for the nodes without one (never None, which the grid shows as "None").
    assert not nodes["tokens"].isna().any() and "None" not in nodes["tokens"].astype(str).tolist()
    assert int(nodes["tokens"][1].replace(",", "")) > 0 and nodes["tokens"][0] == ""
    assert timing_captions(at)[0].startswith("First token")


# -- batch, compare ---------------------------------------------------------------------------------


def test_batch_runs_a_small_csv_into_a_table(sim):
    at = open_page()
    at.segmented_control[0].set_value("Batch").run()
    assert_clean(at)
    csv_bytes = "query,tone\nWhat is Dify?,Formal\nสวัสดี,Friendly\n,Concise\n".encode()
    at.file_uploader[0].upload("cases.csv", csv_bytes, "text/csv").run()
    assert_clean(at)
    assert any("1 row(s) will not be sent" in w for w in texts(at.warning))
    click(at, "Run 2 rows")
    frame = at.dataframe[-1].value
    assert frame["status"].tolist() == ["done", "done", "invalid"]
    assert frame.loc[1, "answer"].startswith("คุณถามว่า") and (frame.loc[:1, "ttft_ms"] >= 0).all()
    assert (frame.loc[:1, "price"] > 0).all() and frame.loc[2, "error"].startswith("The query is empty")
    assert [b.label for b in at.download_button] == ["Download CSV", "Download JSONL"]
    # The row skipped for its empty query is not counted as answered, and the page says why it was skipped.
    assert [m.value for m in at.metric][0] == "2 of 3"
    assert [p.proto.text for p in at.get("progress")] == ["2 of 2 rows finished · 1 more skipped for bad input"]
    assert ("Answered 2 of 3 rows; 1 skipped for bad input — row 3: The query is empty: a chat app needs a message in the "
            "`query` column.") in texts(at.caption)


def test_compare_two_targets_side_by_side(sim):
    at = open_page()
    at.segmented_control[0].set_value("Compare").run()
    assert widget(at.selectbox, "Target B").value == "Simulator · advanced-chat"
    widget(at.text_area, "Prompt").set_value("Which one is faster?")
    click(at, "Send to both")
    table = at.dataframe[-1].value
    assert table["lane"].tolist() == ["A", "B"] and table["status"].tolist() == ["done", "done"]
    assert table["target"].tolist() == ["Simulator · chat", "Simulator · advanced-chat"]
    assert len(timing_captions(at)) == 2
    answers = [m for m in texts(at.markdown) if m.startswith('You asked: "Which one is faster?"')]
    assert "Simulated Chatbot" in answers[0] and "Simulated Chatflow" in answers[1]


def test_compare_opens_a_lanes_inputs_when_they_have_a_required_field(sim):
    at = open_page("Simulator · workflow")
    at.segmented_control[0].set_value("Compare").run()
    inputs = {e.label: e for e in at.expander if e.label.startswith("Inputs ")}
    assert set(inputs) == {"Inputs A (1 required)", "Inputs B"}, list(inputs)  # the workflow's Topic; B is the chat app
    assert inputs["Inputs A (1 required)"].proto.expanded and not inputs["Inputs B"].proto.expanded
    click(at, "Send to both")
    assert texts(at.error)[0].startswith("Not sent: A: Topic is required.")


def test_compare_two_input_variants_of_one_app(sim):
    at = open_page()
    at.segmented_control[0].set_value("Compare").run()
    at.radio[0].set_value("Two input variants").run()
    tones = [w for w in at.selectbox if w.label == "Tone"]
    assert len(tones) == 2
    tones[1].set_value("Concise")
    widget(at.text_area, "Prompt").set_value("Say hi")
    click(at, "Send to both")
    answers = [m for m in texts(at.markdown) if m.startswith('You asked: "Say hi"')]
    assert "tone = Friendly" in answers[0] and "tone = Concise" in answers[1]


# -- targets added for the session, and failures --------------------------------------------------------


def test_a_target_added_for_the_session_is_used_and_its_key_never_shown(sim):
    at = open_page()
    add_target(at, "My chat app", sim.url, KEYS["chat"])
    assert at.sidebar.selectbox(key="target_name").value == "My chat app"
    assert "Target: **My chat app**" in texts(at.markdown)
    assert any(s.startswith("Added My chat app") for s in texts(at.success))
    send(at, "Through the added target")
    assert len(timing_captions(at)) == 1
    add_target(at, "Secret app", sim.url, SECRET)  # a wrong key: Dify answers 401, and nothing is added
    errors = texts(at.error)
    assert any(e.startswith("Not added: ") and "Access token is invalid" in e and "API Access" in e for e in errors), errors
    assert not texts(at.success)  # no "Added" over the error
    assert "Secret app" not in at.sidebar.selectbox(key="target_name").options
    assert at.sidebar.selectbox(key="target_name").value == "My chat app"
    assert widget(at.text_input, "Name").value == "Secret app"  # the typing is kept, to fix and send again
    assert SECRET not in rendered_text(at) and SECRET[4:] not in rendered_text(at)


def test_add_target_form_explains_what_is_wrong_and_keeps_the_typing(sim):
    at = open_page()
    add_target(at, "Half done", "not a url", SECRET)
    assert texts(at.error) == ["A base URL must start with http:// or https://, got 'not a url'."]
    assert widget(at.text_input, "Name").value == "Half done"
    assert SECRET not in rendered_text(at)
    add_target(at, "Simulator · chat", sim.url, SECRET)
    assert texts(at.error) == ["A configured target is already named 'Simulator · chat': pick another name."]


def test_unreachable_url_is_not_added_and_a_target_gone_down_opens_the_breaker(sim_factory):
    at = open_page()
    add_target(at, "Nowhere", f"http://127.0.0.1:{free_port()}/v1", SECRET)
    [error] = texts(at.error)
    assert error.startswith("Not added: Could not connect to 127.0.0.1") and "Check the base URL" in error
    assert "Nowhere" not in at.sidebar.selectbox(key="target_name").options
    assert "Target: **Simulator · chat**" in texts(at.markdown)  # the page goes on with the target it had
    # A target that answered when added and went down since: the client's sentence, then its breaker opens.
    doomed = sim_factory("--fast")
    add_target(at, "Going down", doomed.url, KEYS["chat"])
    assert at.sidebar.selectbox(key="target_name").value == "Going down"
    doomed.stop()
    widget(at.selectbox, "App mode").set_value("chat").run()  # asks Dify for the app again
    [error] = texts(at.error)
    assert error.startswith("Could not connect to 127.0.0.1") and "Check the base URL" in error
    assert [b.label for b in at.button if b.label == "Add and use"] and widget(at.selectbox, "App mode")  # still usable
    # The breaker counts calls (a call and its retries are one failure): Retry until it opens, which takes at
    # most its threshold of failed calls; till then each Retry says the same sentence.
    for _ in range(CircuitBreaker().failure_threshold):
        click(at, "Retry")
        [error] = texts(at.error)
        if "failed repeatedly" in error:
            break
        assert error.startswith("Could not connect to 127.0.0.1"), error
    assert "failed repeatedly" in error and "not calling it until" in error  # the circuit breaker is open


def test_a_wrong_gateway_key_says_the_gateway_refused_it(sim, tmp_path):
    gateway = start_gateway(tmp_path, sim.url)
    try:
        at = open_page()
        add_target(at, "Via my gateway", gateway.url, "gw-not-a-caller-key-0000")
        [error] = texts(at.error)
        assert error.startswith("Not added: The gateway did not accept this key") and "GATEWAY_API_KEYS" in error
        assert "is required" not in error and "API Access" not in error
        add_target(at, "Via my gateway", gateway.url, CALLER_KEY)
        assert at.sidebar.selectbox(key="target_name").value == "Via my gateway"
    finally:
        gateway.stop()


def test_a_server_that_is_not_dify(sim):
    with html_server() as url:
        at = open_page()
        add_target(at, "Website", url, SECRET)
        [error] = texts(at.error)
        assert error.startswith("Not added: ") and "instead of Dify's JSON" in error and "Welcome to Example Corp" in error
        assert "end in /v1" in error  # the URL given had /v1: that is the advice
        # Given without /v1, the console adds it: no advice to do what was done; say what was tried instead.
        add_target(at, "Website", url.removesuffix("/v1") + "/api/", SECRET)
        [error] = texts(at.error)
        assert "end in /v1" not in error and "instead of Dify's JSON" in error
        assert f"The console added /v1 to the URL you gave ({url.removesuffix('/v1')}/api/v1)" in error
    assert "Website" not in at.sidebar.selectbox(key="target_name").options
    assert SECRET not in rendered_text(at)


def test_wrong_app_mode_is_an_error_with_the_fix(sim):
    at = open_page()
    widget(at.selectbox, "App mode").set_value("workflow").run()  # the chat app, driven as a workflow
    assert_clean(at)
    click(at, "Run")
    [error] = texts(at.error)
    assert "not_workflow_app" in error and "another mode" in error


def test_a_stream_cut_midway_keeps_the_partial_answer(sim_factory, monkeypatch):
    faulty = sim_factory("--fast", "--fault", "drop=1")
    monkeypatch.setenv("SIMULATOR_URL", faulty.url)
    at = open_page()
    send(at, "Cut me off")
    [error] = texts(at.error)
    assert "broke after" in error and "The answer is incomplete" in error and "not sent again" in error
    assert "You asked:" in texts(at.markdown)  # the part that arrived (the simulator cuts after 3 events)
    # Retry stands under the answer where the thumbs would be, not in a right-hand column of an empty row.
    assert not [c for c in at.columns if any(b.label == "Retry" for b in c.button)]
    click(at, "Retry")  # sends it once more, on request only
    assert len(at.error) == 1
    with DifyClient(faulty.url, KEYS["chat"]) as client:
        user = at.session_state["pgv:user"]
        sent = [m.query for c in client.conversations(user=user).data for m in client.messages(c.id, user=user).data]
    assert sent == ["Cut me off", "Cut me off"]


# -- a run that fails in a node (the exact bytes of a real Dify 1.12.1) ------------------------------------


def test_a_failed_workflow_or_chatflow_run_is_a_failure_with_the_nodes_message(sim):
    """Real captures of a Template node failing (no code sandbox): the page shows a failure naming the node and
    Dify's message, and keeps the node timeline with that node marked failed."""
    dify_message = "Failed to execute code, which is likely a network issue"
    with replay_server() as url:
        at = open_page()
        add_target(at, "Failing workflow", url, "app-replay-failing-workflow")
        widget(at.text_input, "Topic *").set_value("testing")
        click(at, "Run")
        [error] = texts(at.error)
        assert "failed" in error and "Template" in error and dify_message in error, error
        assert "check the inputs" not in error and "the model failed" not in error
        nodes = at.dataframe[0].value
        assert nodes["node"].tolist() == ["Start", "Template"]
        assert nodes["status"].tolist() == ["✅ succeeded", "❌ failed"]
        assert dify_message in nodes["error"][1]
        assert not timing_captions(at) or "tokens/s" not in timing_captions(at)[0]

        add_target(at, "Failing chatflow", url, "app-replay-failing-chatflow")
        send(at, "fail please")
        [error] = texts(at.error)
        assert "failed" in error and "Template" in error and dify_message in error, error
        assert "check the inputs" not in error and "the model failed" not in error
        nodes = at.dataframe[0].value
        assert "❌ failed" in nodes["status"].tolist() and "Template" in nodes["node"].tolist()
