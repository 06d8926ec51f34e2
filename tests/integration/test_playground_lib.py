"""lib/playground against the real simulator over HTTP (no mocks): app profiles, form checks, live
runs of every mode with their timing, stop, errors, uploads, conversations, export, batch, compare.

The session simulator runs in --fast mode; tests that need visible latency ask for it per request
with the simulator's X-Sim-TTFT-Ms / X-Sim-Tokens-Per-S headers.
"""
from __future__ import annotations

import csv
import io
import json
import threading
import time

import pytest

from lib.dify import DifyClient, RetryPolicy, Timing, Usage
from lib.playground.app_profile import AppProfile, UploadRules, load_profile
from lib.playground.batch import BatchJob, frame_to_csv, frame_to_jsonl, plan_batch, read_table
from lib.playground.compare import Lane, start_compare, stats_rows
from lib.playground.conversations import delete, load_conversations, load_earlier, load_history, rename
from lib.playground.export import ExportMeta, to_json, to_markdown
from lib.playground.form import FormField, PendingFile, parse_fields, validate_inputs
from lib.playground.live import LiveRun, RunRequest
from lib.playground.transcript import Transcript, Turn, TurnStats, format_price, node_rows
from lib.workload import WorkloadFileError
from tests.conftest import KEYS
from tests.support.html_server import html_server
from tests.support.procs import free_port

PACED = {"X-Sim-TTFT-Ms": "120", "X-Sim-Tokens-Per-S": "150"}  # visible timing, still quick
SLOW = {"X-Sim-TTFT-Ms": "100", "X-Sim-Tokens-Per-S": "25"}  # slow enough to stop midway


@pytest.fixture(scope="module")
def clients(sim):
    made = {mode: DifyClient(sim.url, key) for mode, key in KEYS.items()}
    yield made
    for c in made.values():
        c.close()


@pytest.fixture(scope="module")
def profiles(clients):
    return {mode: load_profile(c) for mode, c in clients.items()}


def run(client, profile: AppProfile, query: str = "", inputs: dict | None = None, **kw) -> Turn:
    turn = Turn(query=query, kind=profile.kind, inputs=inputs or {})
    request = RunRequest(kind=profile.kind, user=kw.pop("user", "lib-tests"), query=query, inputs=inputs or {}, **kw)
    return LiveRun(client, request, turn).run()


# -- app profiles and the form ---------------------------------------------------------------------


def test_each_mode_gets_the_page_it_needs(profiles):
    assert {m: p.kind for m, p in profiles.items()} == {
        "chat": "chat", "advanced-chat": "chat", "agent-chat": "chat", "completion": "completion", "workflow": "workflow",
    }
    chat = profiles["chat"]
    assert chat.opening_statement.startswith("Hi!")
    assert "สวัสดีครับ คุณช่วยอะไรได้บ้าง" in chat.suggested_questions
    assert chat.suggested_after_answer and chat.citations
    assert chat.upload.can_upload and set(chat.upload.types) == {"image", "document"}
    assert "png" in chat.upload.widget_extensions() and "pdf" in chat.upload.widget_extensions()
    assert not profiles["agent-chat"].suggested_after_answer and not profiles["agent-chat"].upload.enabled
    completion = profiles["completion"]
    assert [(f.variable, f.control, f.required) for f in completion.fields] == [
        ("topic", "text-input", True), ("style", "select", True), ("words", "number", False), ("query", "paragraph", False),
    ]
    topic = completion.field("topic")
    assert topic.max_length == 200 and completion.field("style").options == ("Blog post", "Tweet", "Summary")
    assert completion.field("words").initial_value() == 60 and completion.field("style").initial_value() == "Summary"
    assert profiles["workflow"].mode_label == "Workflow" and profiles["workflow"].field("details").control == "paragraph"


def test_form_values_are_checked_with_readable_messages():
    fields = parse_fields([
        {"text-input": {"variable": "topic", "label": "Topic", "required": True, "max_length": 5}},
        {"select": {"variable": "style", "label": "Style", "required": False, "options": ["A", "B"]}},
        {"number": {"variable": "n", "label": "Count", "required": True}},
        {"checkbox": {"variable": "flag", "label": "Flag", "required": False}},
        {"json_object": {"variable": "cfg", "label": "Config", "required": False}},
        {"external_data_tool": {"variable": "ext", "label": "External", "required": True}},
    ])
    bad = validate_inputs(fields, {"topic": "too long", "style": "C", "n": "many", "cfg": "{nope"})
    assert bad.errors == [
        "Topic takes at most 5 characters; it has 8.", "Style must be one of: A, B.",
        "Count must be a number, got 'many'.", bad.errors[3],
    ]
    assert bad.errors[3].startswith("Config is not valid JSON")
    assert validate_inputs(fields, {"topic": " ", "n": None}).errors == ["Topic is required.", "Count is required."]
    good = validate_inputs(fields, {"topic": "ok", "style": "", "n": "3.0", "flag": True, "cfg": '{"a": [1]}'})
    assert good.ok and good.inputs == {"topic": "ok", "n": 3, "flag": True, "cfg": {"a": [1]}}
    file_field = FormField("doc", "Document", "file", required=True)
    assert validate_inputs((file_field,), {}).errors == ["Document is required: attach a file."]
    picked = validate_inputs((file_field,), {"doc": [PendingFile("a.txt", b"x")]})
    assert picked.ok and picked.files[0].variable == "doc"


def test_upload_rules_follow_parameters():
    rules = UploadRules.from_parameters(
        {"enabled": True, "allowed_file_types": ["image", "custom"], "allowed_file_extensions": [".CSV"], "number_limits": 2,
         "allowed_file_upload_methods": ["local_file"]},
        {"image_file_size_limit": 1},
    )
    assert rules.widget_extensions() == sorted({"jpg", "jpeg", "png", "webp", "gif", "svg", "csv"})
    problems = rules.check([("a.png", 10), ("b.csv", 10), ("c.exe", 10), ("big.png", 2 * 1024 * 1024)])
    assert problems[0] == "This app takes at most 2 files per message; 4 were attached."
    assert any(p.startswith("c.exe: this app takes image, custom files") for p in problems)
    assert any(p.startswith("big.png is 2.0 MB") for p in problems)
    legacy = UploadRules.from_parameters({"image": {"enabled": True, "transfer_methods": ["remote_url"]}}, {})
    assert legacy.enabled and legacy.types == ("image",) and not legacy.can_upload
    assert UploadRules.from_parameters({}, {}).check([("a.png", 1)]) == [
        "This app does not take files: its file upload is switched off in Dify."]


# -- live runs -------------------------------------------------------------------------------------------


def test_chat_answer_streams_with_timing_usage_citations_and_follow_ups(clients, profiles):
    client, profile = clients["chat"], profiles["chat"]
    turn = Turn(query="Explain streaming 🚀", kind="chat")
    live = LiveRun(client, RunRequest(kind="chat", user="lib-chat", query=turn.query, headers=PACED,
                                      fetch_suggestions=profile.suggested_after_answer), turn).start()
    arrivals = []
    for piece in live.follow(poll_s=0.05):
        arrivals.append((time.monotonic(), len(piece), live.done.is_set()))
    assert live.done.is_set() and turn.status == "done", turn.error
    assert len(arrivals) >= 5 and not arrivals[0][2], "text must arrive piece by piece, before the end"
    assert turn.answer.startswith('You asked: "Explain streaming 🚀"')
    s = turn.stats
    assert 0.1 <= s.ttft_s < s.total_s and s.output_tokens > 20 and not s.tokens_estimated
    assert 100 < s.tokens_per_s < 200 and s.price > 0 and s.currency == "USD"
    assert s.caption().startswith("First token ") and "output tokens" in s.caption() and "$0.000" in s.caption()
    assert turn.message_id and turn.conversation_id and len(turn.citations) == 2
    assert turn.citations[0].document_name == "handbook-part-1.md"
    assert turn.suggestions == ['Can you explain "Explain streaming 🚀" in more detail?', "Can you give an example?",
                                "Can you summarise that as a list?"]


def test_agent_steps_chatflow_and_workflow_nodes_are_recorded(clients, profiles):
    agent = run(clients["agent-chat"], profiles["agent-chat"], "What is 17 * 23?")
    assert agent.status == "done" and "(Tool used: calculator: 17 * 23 = 391)" in agent.answer
    tool_steps = [s for s in agent.thoughts if s.tool]
    assert [(s.tool, s.observation) for s in tool_steps] == [("calculator", "17 * 23 = 391")]
    assert json.loads(tool_steps[0].tool_input) == {"calculator": {"expression": "17 * 23"}}

    flow = run(clients["advanced-chat"], profiles["advanced-chat"], "Summarise", headers=PACED)
    assert flow.status == "done" and len(flow.citations) == 2
    assert [(n.title, n.status) for n in flow.nodes] == [
        ("Start", "succeeded"), ("Knowledge Retrieval", "succeeded"), ("LLM", "succeeded"), ("Template", "succeeded"),
        ("Answer", "succeeded")]
    assert flow.outputs == {"answer": flow.answer, "files": []}  # a chatflow's Answer node outputs files too (real 1.12)

    wf = run(clients["workflow"], profiles["workflow"], inputs={"topic": "bridges", "max_points": 2}, headers=PACED)
    assert wf.status == "done" and wf.kind == "workflow" and wf.outputs == {"text": wf.answer}
    assert wf.workflow_run_id and [n.node_type for n in wf.nodes] == ["start", "llm", "template-transform", "end"]
    rows = node_rows(wf)
    llm = next(r for r in rows if r["type"] == "llm")
    assert llm["took (s)"] > 0.1 and 0.5 < llm["share of run"] <= 1.0 and llm["status"].endswith("succeeded")
    assert wf.stats.price > 0  # from the LLM node's execution_metadata: a workflow has no message_end
    assert wf.stats.tokens_estimated and wf.stats.ttft_s > 0.1

    completion = run(clients["completion"], profiles["completion"], inputs={"topic": "rivers", "style": "Tweet"})
    assert completion.status == "done" and "topic = rivers" in completion.answer and completion.message_id


def test_stop_keeps_the_partial_answer_and_its_timing(clients):
    client = clients["chat"]
    turn = Turn(query="A long answer, please", kind="chat")
    live = LiveRun(client, RunRequest(kind="chat", user="lib-stop", query=turn.query, headers=SLOW), turn).start()
    seen = 0
    for piece in live.follow(poll_s=0.05):
        seen += len(piece)
        if seen > 40 and not live.stop_requested:
            live.stop()
    assert live.join(10) and turn.status == "stopped"
    history = client.messages(turn.conversation_id, user="lib-stop").data
    assert history[-1].answer == turn.answer  # Dify stored what arrived: the turn kept exactly that
    assert 40 < len(turn.answer) < 250
    assert turn.stats.ttft_s is not None and turn.stats.total_s < 3.0 and turn.stats.output_tokens > 3
    # The rate is over the streaming time (first piece to last): about the simulator's 25 tokens/s, not
    # Dify's token count over a span that the stop's wait stretches or shrinks.
    stats = turn.stats
    assert stats.stopped and stats.streamed_s is not None and 0 < stats.streamed_s < stats.total_s
    assert 18 < stats.tokens_per_s < 32, stats
    caption = stats.caption()
    assert caption.startswith("First token ") and " · Stopped at " in caption and "tokens/s while streaming" in caption
    assert "Dify's usage for the stopped run: " in caption and "output tokens" in caption and "$" in caption
    assert turn.as_dict()["stats"]["stopped"] is True


def test_a_run_nobody_watches_is_stopped(clients):
    turn = Turn(query="Anyone there?", kind="chat")
    live = LiveRun(clients["chat"], RunRequest(kind="chat", user="lib-orphan", query=turn.query, headers=SLOW), turn,
                   orphan_after_s=0.4).start()
    assert live.join(15)
    assert turn.status == "stopped" and 0 < len(turn.answer) < 400


def test_failures_end_up_in_the_turn_as_sentences(sim, clients, profiles):
    cut = run(clients["chat"], profiles["chat"], "Cut me", headers={"X-Sim-Fault": "drop", "X-Sim-Drop-After": "6"})
    assert cut.status == "error" and "broke after" in cut.error and "The answer is incomplete" in cut.error
    assert cut.answer  # the pieces before the cut are kept
    bad_input = run(clients["completion"], profiles["completion"], inputs={"style": "Tweet"})
    assert bad_input.status == "error" and "topic is required in input form" in bad_input.error
    wrong_mode = run(clients["workflow"], profiles["chat"], "hi")  # a chat request to a workflow app
    assert wrong_mode.status == "error" and "another mode" in wrong_mode.error
    with DifyClient(sim.url, "app-wrong-key-0000") as wrong_key:
        with pytest.raises(Exception) as failed:
            load_profile(wrong_key)
    assert "Access token is invalid" in str(failed.value) and "API Access" in str(failed.value)
    with DifyClient(f"http://127.0.0.1:{free_port()}/v1", "app-x", retry=RetryPolicy(max_attempts=1)) as nowhere:
        with pytest.raises(Exception) as failed:
            load_profile(nowhere)
    assert "Could not connect to 127.0.0.1" in str(failed.value)
    with html_server() as url, DifyClient(url, "app-x") as website:
        with pytest.raises(Exception) as failed:
            load_profile(website)
    assert "instead of Dify's JSON" in str(failed.value) and "should end in /v1" in str(failed.value)


def test_files_are_uploaded_then_referenced(clients, profiles):
    profile = profiles["chat"]
    png = PendingFile("diagram.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png")
    turn = run(clients["chat"], profile, "What is in the picture?", files=[png], upload_rules=profile.upload)
    assert turn.status == "done", turn.error
    assert "You attached 1 file(s): diagram.png" in turn.answer
    history = clients["chat"].messages(turn.conversation_id, user="lib-tests").data
    assert history[-1].message_files[0]["type"] == "image" and history[-1].message_files[0]["id"]
    too_many = run(clients["chat"], profile, "four files", files=[png] * 4, upload_rules=profile.upload)
    assert too_many.status == "error" and "at most 3 files" in too_many.error and too_many.message_id is None


# -- conversations, export ----------------------------------------------------------------------------


def test_conversations_and_history_page_like_dify(clients, profiles):
    client, profile, user = clients["chat"], profiles["chat"], "lib-history"
    first = run(client, profile, "First question", user=user)
    second = run(client, profile, "Second question", user=user, conversation_id=first.conversation_id)
    third = run(client, profile, "Third question", user=user, conversation_id=first.conversation_id)
    other = run(client, profile, "Another conversation", user=user)
    assert second.conversation_id == third.conversation_id == first.conversation_id != other.conversation_id

    listing = load_conversations(client, user, limit=1)
    assert [c.id for c in listing.items] == [other.conversation_id] and listing.has_more
    listing = load_conversations(client, user, listing, limit=1)
    assert [c.id for c in listing.items] == [other.conversation_id, first.conversation_id]

    history = load_history(client, first.conversation_id, user, limit=2)
    assert [t.query for t in history.turns] == ["Second question", "Third question"] and history.has_earlier
    load_earlier(client, history, user, limit=2)
    assert [t.query for t in history.turns] == ["First question", "Second question", "Third question"]
    assert not history.has_earlier
    old = history.turns[0]
    assert old.source == "history" and old.answer == first.answer and old.stats.measured_by == "dify"
    assert old.stats.caption().startswith("Model latency") and old.citations

    rename(client, listing, first.conversation_id, "Renamed 🎉", user)
    assert listing.find(first.conversation_id).name == "Renamed 🎉"
    assert load_conversations(client, user).find(first.conversation_id).name == "Renamed 🎉"
    delete(client, listing, other.conversation_id, user)
    assert listing.find(other.conversation_id) is None
    assert [c.id for c in load_conversations(client, user).items] == [first.conversation_id]


def test_export_markdown_and_json_never_hold_the_key(sim, clients, profiles):
    turn = run(clients["agent-chat"], profiles["agent-chat"], "สวัสดีครับ ```code``` 17 * 23?")
    transcript = Transcript(turns=[turn], conversation_id=turn.conversation_id)
    meta = ExportMeta(target="Simulator · agent", base_url=sim.url, app_name="Simulated Agent", mode="agent-chat", user="lib")
    md, js = to_markdown(transcript, meta), to_json(transcript, meta)
    assert "### 1. You\n\nสวัสดีครับ ```code``` 17 * 23?" in md and turn.answer in md
    assert "Tool `calculator`" in md and turn.stats.caption() in md
    doc = json.loads(js)
    assert doc["app_name"] == "Simulated Agent" and doc["turns"][0]["answer"] == turn.answer
    assert doc["turns"][0]["stats"]["output_tokens"] == turn.stats.output_tokens
    for text in (md, js):
        assert KEYS["agent-chat"] not in text and "api_key" not in text
    assert meta.file_stem(transcript).startswith("simulated-agent-")


def test_caption_formats():
    stats = TurnStats(ttft_s=0.2123, total_s=2.5, output_tokens=80, tokens_per_s=34.78, price=0.000185, currency="USD")
    assert stats.caption() == "First token 212 ms · Total 2.50 s · 80 output tokens · 34.8 tokens/s · $0.000185"
    assert format_price(0.0123, "EUR") == "0.0123 EUR" and format_price(0.5, "RMB") == "¥0.5"


# -- batch and compare ---------------------------------------------------------------------------------


def test_batch_files_are_read_and_mapped_to_the_form(profiles):
    csv_bytes = "\ufefftopic,Style,query,notes\nrivers,Tweet,Be brief,x\n,Summary,,y\nสะพาน,Poem,,z\n".encode()
    table = read_table("cases.csv", csv_bytes)
    assert table.columns == ["topic", "Style", "query", "notes"] and len(table.rows) == 3
    plan = plan_batch(profiles["completion"], table)
    assert plan.input_columns == {"topic": "topic", "Style": "style", "query": "query"}
    assert plan.query_column is None and plan.ignored_columns == ["notes"]
    assert [i.row for i in plan.valid] == [1]
    assert plan.items[0].inputs == {"topic": "rivers", "style": "Tweet", "query": "Be brief"}
    assert plan.items[1].errors == ["Topic is required."]
    assert plan.items[2].errors == ["Style must be one of: Blog post, Tweet, Summary."]

    jsonl = b'{"query": "Hi", "name": "Ada"}\n\n{"query": "", "tone": "Formal"}\n'
    chat_plan = plan_batch(profiles["chat"], read_table("cases.jsonl", jsonl))
    assert chat_plan.query_column == "query" and chat_plan.items[0].inputs == {"name": "Ada"}
    assert chat_plan.items[1].errors == ["The query is empty: a chat app needs a message in the `query` column."]
    with pytest.raises(WorkloadFileError, match="line 2: not valid JSON"):
        read_table("bad.jsonl", b'{"query": "a"}\n{nope\n')
    with pytest.raises(WorkloadFileError, match="is a spreadsheet: save it as a .csv"):
        read_table("cases.xlsx", b"PK")


def test_batch_runs_rows_with_bounded_concurrency(sim_factory, profiles):
    limited = sim_factory("--fast", "--max-active-requests", "2")
    # No retries: a row past Dify's concurrency limit (429) would fail instead of quietly retrying.
    client = DifyClient(limited.url, KEYS["chat"], retry=RetryPolicy(max_attempts=1))
    rows = "query,tone\n" + "".join(f"Question {i} 😀,Friendly\n" for i in range(6)) + ",Formal\n"
    plan = plan_batch(profiles["chat"], read_table("q.csv", rows.encode()))
    job = BatchJob(client, profiles["chat"], plan, user="lib-batch", concurrency=2,
                   headers={"X-Sim-TTFT-Ms": "50", "X-Sim-Tokens-Per-S": "400"}).start()
    assert job.wait(60)
    frame = job.frame()
    assert frame["status"].tolist() == ["done"] * 6 + ["invalid"], frame[["status", "error"]]
    done = frame[frame["status"] == "done"]
    assert done["answer"].str.contains("Question").all() and frame.loc[6, "answer"] == ""
    assert (done["ttft_ms"] >= 50).all() and (done["output_tokens"] > 10).all() and (done["price"] > 0).all()
    assert frame.loc[6, "error"].startswith("The query is empty")
    csv_text = frame_to_csv(frame).decode("utf-8-sig")
    assert "Question 0 😀" in csv_text and csv_text.splitlines()[0].startswith("row,query,inputs,status,answer")
    lines = frame_to_jsonl(frame).decode().splitlines()
    assert len(lines) == 7 and json.loads(lines[0])["status"] == "done" and json.loads(lines[6])["ttft_ms"] is None
    # Token counts stay whole numbers beside a skipped row's blank, in both files.
    tokens = int(done["output_tokens"].iloc[0])
    assert json.loads(lines[0])["output_tokens"] == tokens and json.loads(lines[6])["output_tokens"] is None
    first_row = next(csv.DictReader(io.StringIO(csv_text)))
    assert first_row["output_tokens"] == str(tokens)
    client.close()


def test_compare_streams_both_lanes_at_the_same_time(sim, clients, profiles):
    lanes = [
        Lane("A", "Simulator · chat", clients["chat"], RunRequest(kind="chat", user="lib-cmp", query="Compare me", headers=SLOW)),
        Lane("B", "Simulator · advanced-chat", clients["advanced-chat"],
             RunRequest(kind="chat", user="lib-cmp", query="Compare me", headers=SLOW)),
    ]
    started = time.monotonic()
    compare = start_compare("Compare me", lanes)
    both_streaming = False
    seen = compare.version
    while not compare.done:
        seen = compare.wait(seen, 0.2)
        compare.heartbeat()
        both_streaming = both_streaming or all(t.answer and not r.done.is_set() for t, r in zip(compare.turns, compare.runs, strict=True))
    wall = time.monotonic() - started
    a, b = compare.turns
    assert a.status == b.status == "done" and both_streaming, "both answers must stream at once"
    assert wall < 0.8 * (a.stats.total_s + b.stats.total_s)
    rows = stats_rows(compare.turns)
    assert [r["lane"] for r in rows] == ["A", "B"] and all(r["first token (ms)"] >= 100 for r in rows)


def test_stop_from_another_thread_while_the_worker_reads(clients):
    """The page's Stop runs in the script thread while the worker thread reads the stream."""
    turn = Turn(query="Stop from elsewhere", kind="chat")
    live = LiveRun(clients["chat"], RunRequest(kind="chat", user="lib-stop2", query=turn.query, headers=SLOW), turn).start()
    while not turn.answer:
        live.wait(live.version, 0.1)
    stopper = threading.Thread(target=live.stop)
    stopper.start()
    stopper.join(5)
    assert live.join(10) and turn.status == "stopped" and turn.answer


NODE_FAILED = {"X-Sim-Fault": "node-failed"}  # the simulator's Template node fails as Dify 1.12's did


def test_a_failed_run_from_dify_1_12_keeps_the_timeline_and_the_clients_sentence():
    """The recorded 1.12 run whose Template node failed (capture 72), replayed: lib/dify raises RunFailedError
    after its events, and the turn keeps both the timeline and the client's sentence."""
    from lib.dify import RunFailedError
    from tests.support.replay import replay_server

    with replay_server() as url, DifyClient(url, "app-replay-failing-workflow") as client:
        with pytest.raises(RunFailedError) as raised:  # the client itself, as the run below sees it
            list(client.stream_workflow(inputs={"topic": "x"}, user="lib-failed-direct"))
        turn = Turn(query="", kind="workflow")
        LiveRun(client, RunRequest(kind="workflow", user="lib-failed", inputs={"topic": "x"}), turn).run()
    assert raised.value.node_title == "Template" and "Template" in str(raised.value)
    assert turn.status == "error" and turn.error == str(raised.value)
    assert [(n.title, n.status) for n in turn.nodes] == [("Start", "succeeded"), ("Template", "failed")]
    assert turn.nodes[-1].error


@pytest.mark.parametrize("mode", ["workflow", "advanced-chat"])
def test_a_failed_run_on_the_simulator_marks_its_failed_node(clients, profiles, mode):
    """The simulator's node-failed fault: a workflow ends workflow_finished failed, a chatflow then sends an
    `error`; either way the real client's sentence names the Template node and the timeline marks it."""
    inputs = {"topic": "bridges", "max_points": 2} if mode == "workflow" else {}
    query = "" if mode == "workflow" else "Fail in the template"
    turn = run(clients[mode], profiles[mode], query, inputs=inputs, user="lib-node-failed", headers=NODE_FAILED)
    assert turn.status == "error" and "Template" in turn.error and "run failed" in turn.error, turn.error
    failed = [n for n in turn.nodes if n.status == "failed"]
    assert [(n.title, n.node_type) for n in failed] == [("Template", "template-transform")]
    assert failed[0].error and all(n.status == "succeeded" for n in turn.nodes if n is not failed[0])


def test_safe_markdown_shows_plain_text_as_typed_and_keeps_real_markdown():
    from lib.playground.markdown import escape_markdown, looks_like_markdown, safe_markdown

    assert safe_markdown("what is 17*23? 17*23 = 391") == r"what is 17\*23? 17\*23 \= 391"
    assert safe_markdown("costs $5 or $10 :smile:") == r"costs \$5 or \$10 \:smile\:"
    assert safe_markdown("line one\n  line two\n\nnext") == "line one  \n&nbsp;&nbsp;line two\n\nnext"
    assert escape_markdown("# not a heading\n1. not a list") == "\\# not a heading  \n1\\. not a list"
    md = "Steps:\n\n- first **step**\n- second\n\n```\nprint(2*3)\n```\nIt costs $5 `echo $HOME`"
    assert looks_like_markdown(md)
    assert safe_markdown(md) == "Steps:\n\n- first **step**  \n- second\n\n```\nprint(2*3)\n```\nIt costs \\$5 `echo $HOME`"
    assert not looks_like_markdown("2026-12-03 13:02:11 INFO start_worker * 3")


def test_a_stop_right_after_the_first_pieces_shows_no_rate():
    """Pieces that came together just before a stop (31 ms apart in all) give no '1350 tokens/s': the caption
    keeps the times and Dify's usage. Over a real streaming time, the rate is shown."""
    usage = Usage(prompt_tokens=10, completion_tokens=88, total_tokens=98, total_price=0.000248, currency="USD")
    burst = Timing(start=0.0, sent=0.0, first_content=0.726, content=[0.726 + i * 0.00074 for i in range(43)], end=0.757)
    stats = TurnStats.from_timing(burst, usage, stopped=True)
    assert stats.tokens_per_s is None
    assert stats.caption() == ("First token 726 ms · Stopped at 757 ms · "
                               "Dify's usage for the stopped run: 88 output tokens, $0.000248")
    steady = Timing(start=0.0, sent=0.0, first_content=0.5, content=[0.5 + i * 0.025 for i in range(41)], end=1.6)
    assert TurnStats.from_timing(steady, usage, stopped=True).tokens_per_s == pytest.approx(40.0)
