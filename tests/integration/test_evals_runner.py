"""Running suites against the simulator over real HTTP: the matrix, conversations, workflows, failures
recorded with lib.dify's sentence, judges, repeats and variants, the store and the baseline diff."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lib.evals import (
    CannotRunError,
    EvalStore,
    diff_runs,
    load_suite,
    parse_suite,
    run_suite,
)
from lib.evals.runner import Progress
from lib.settings import Target

ROOT = Path(__file__).resolve().parents[2]


def target(sim, key: str, name: str | None = None) -> Target:
    return Target(name or f"Simulator · {key.removeprefix('app-sim-')}", sim.url, key, "simulator")


def test_the_passing_example_passes_on_both_chat_apps_and_records_timing(sim, tmp_path):
    store = EvalStore(tmp_path / "evals.sqlite")
    suite = load_suite(ROOT / "examples" / "simulator-chat.yaml")
    progress = Progress()
    judge = target(sim, "app-sim-judge")  # the suite's greeting is graded by the simulator's judge app
    run = run_suite(suite, [target(sim, "app-sim-chat"), target(sim, "app-sim-advanced-chat")], store=store,
                    concurrency=3, progress=progress, resolve=lambda name: judge)
    assert run.status == "finished" and run.total == 8, [r.reasons() for r in run.results]
    assert run.passed and run.pass_rate == 1.0
    assert progress.finished and progress.done == 8 and progress.passed == 8
    greeting = run.results[0]
    assert greeting.case_id == "greeting" and greeting.target == "Simulator · chat"
    assert greeting.answer.startswith('You asked: "Hello, what can you do?"')
    timing = greeting.turns[0].timing
    assert timing["ttft"] is not None and timing["total"] >= timing["ttft"] and timing["content_s"]
    assert greeting.tokens > 0 and greeting.cost > 0 and greeting.currency == "USD"
    assert all(c.passed for c in greeting.checks) and len(greeting.checks) == 13  # 12 and the judge
    conversation = next(r for r in run.results if r.case_id == "conversation")
    assert len(conversation.turns) == 2 and conversation.turns[0].conversation_id == conversation.turns[1].conversation_id
    # the chatflow's node events, timed from sending, in order, with their statuses: a waterfall's material
    chatflow = next(r for r in run.results if r.target == "Simulator · advanced-chat" and r.case_id == "greeting")
    nodes = chatflow.turns[0].nodes
    assert [n.title for n in nodes] == ["Start", "Knowledge Retrieval", "LLM", "Template", "Answer"]
    assert all(n.status == "succeeded" and 0 <= n.started_s <= n.finished_s for n in nodes)
    assert nodes[0].started_s <= nodes[-1].started_s
    # saved: the run, every result with its turns and node records, and never the key
    saved = store.get_run(run.id)
    assert saved.status == "finished" and saved.summary()["passed"] == 8 and len(saved.results) == 8
    assert saved.config["environment"]["python"] and saved.config["suite_digest"] == suite.digest
    again = next(r for r in saved.results if r.target == "Simulator · advanced-chat" and r.case_id == "greeting")
    assert [n.title for n in again.turns[0].nodes] == ["Start", "Knowledge Retrieval", "LLM", "Template", "Answer"]
    assert again.answer == chatflow.answer and again.checks[0].label == chatflow.checks[0].label
    raw = store.path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("evals.sqlite*"))
    assert b"app-sim-chat" not in raw and b"app-\xe2\x80\xa6chat" in raw  # masked: app-…chat


def test_workflow_outputs_variants_and_repeats(sim):
    suite = load_suite(ROOT / "examples" / "simulator-workflow.yaml")
    run = run_suite(suite, [target(sim, "app-sim-workflow")], repeats=2)
    assert run.total == 2 * 2 * 2 and run.passed, [r.reasons() for r in run.results]
    assert {(r.variant, r.repeat) for r in run.results} == {(v, i) for v in ("engineers", "students") for i in (0, 1)}
    students = next(r for r in run.results if r.variant == "students" and r.case_id == "topic-in-output")
    assert "audience = Students" in students.turns[0].outputs["text"]
    assert [n.node_type for n in students.turns[0].nodes] == ["start", "llm", "template-transform", "end"]
    # workflow_finished reports no price: the answer costs what its LLM node reported, not 0
    llm = students.turns[0].nodes[1]
    assert llm.cost and llm.cost > 0 and llm.currency == "USD"
    assert students.cost == pytest.approx(llm.cost) and run.summary()["cost"] > 0


def test_a_case_without_a_query_on_a_chat_app_says_what_is_wrong_without_asking(sim):
    # the workflow example (inputs only) run against a chat app by mistake: each case says why, none reaches Dify
    suite = load_suite(ROOT / "examples" / "simulator-workflow.yaml")
    run = run_suite(suite, [target(sim, "app-sim-chat", "Simulator · chat")])
    assert run.status == "finished" and run.total == 4 and not any(r.passed for r in run.results)
    for r in run.results:
        assert r.error_class == "NoQuery" and r.turns == []
        assert r.error.startswith("This case has no query, and 'Simulator · chat' is a chat app, which needs one")


def test_the_failing_example_records_each_failure_and_its_reason(sim):
    suite = load_suite(ROOT / "examples" / "simulator-fails.yaml")
    run = run_suite(suite, [target(sim, "app-sim-chat", "Simulator · chat")])
    by_id = {r.case_id: r for r in run.results}
    assert run.status == "finished" and not run.passed and run.summary()["passed"] == 1
    assert by_id["passes"].passed
    assert by_id["wrong-language"].reasons() == ["script: thai: the answer is written in latin",
                                                 "contains: refund policy: the answer does not contain 'refund policy'"]
    server = by_id["server-error"]
    assert server.error_class == "StreamError" and "The model failed mid-stream" in server.error and not server.checks
    judged = by_id["judged"]
    assert not judged.passed and "is not a verdict" in judged.failed_checks[0].reason


def test_a_failed_workflow_run_is_the_case_failure_with_its_sentence(sim):
    suite = parse_suite("""
cases:
  - id: node-fails
    inputs: {topic: x}
    headers: {X-Sim-Fault: node-failed}
    assert: [{outputs.text: {exists: true}}]
  - id: fine
    inputs: {topic: y}
    assert: [{outputs.text: {contains: "topic = y"}}]
""")
    run = run_suite(suite, [target(sim, "app-sim-workflow")])
    failed, fine = run.results
    assert failed.error_class == "RunFailedError" and not failed.passed and failed.error.endswith(".")
    assert any(n.status == "failed" for n in failed.turns[0].nodes)
    assert fine.passed  # one failed run does not stop the others


def test_cannot_run_when_a_target_refuses_the_key_or_is_unreachable(sim, tmp_path):
    suite = parse_suite("cases: [{query: hi}]")
    store = EvalStore(tmp_path / "e.sqlite")
    with pytest.raises(CannotRunError, match="401") as info:
        run_suite(suite, [Target("Bad key", sim.url, "app-not-a-real-key-1234")], store=store)
    assert "app-not-a-real-key-1234" not in str(info.value) and "app-…1234" in str(info.value)
    with pytest.raises(CannotRunError, match="Could not connect"):
        run_suite(suite, [Target("Nowhere", "http://127.0.0.1:9/v1", "app-x-12345678")])
    (saved,) = store.runs()
    assert saved.status == "failed" and "401" in saved.error
    judged = parse_suite("cases: [{query: hi, assert: [{judge: {target: Nobody, rubric: r}}]}]")
    with pytest.raises(CannotRunError, match="Nobody"):
        run_suite(judged, [target(sim, "app-sim-chat")])


def test_cancel_stops_sending(sim):
    suite = parse_suite("cases: [" + ", ".join(f"{{id: c{i}, query: q{i}}}" for i in range(20)) + "]")
    cancel = threading.Event()
    cancel.set()
    run = run_suite(suite, [target(sim, "app-sim-chat")], cancel=cancel)
    assert run.status == "cancelled" and run.total == 0


def test_diff_against_a_baseline(sim, tmp_path):
    store = EvalStore(tmp_path / "e.sqlite")
    chat = target(sim, "app-sim-chat")
    base_suite = parse_suite("""
cases:
  - {id: stays, query: Hello, assert: [{contains: Hello}]}
  - {id: breaks, query: Hello, assert: [{contains: Hello}]}
  - {id: mends, query: Hello, assert: [{contains: nowhere}]}
  - {id: gone, query: Hello}
""")
    new_suite = parse_suite("""
cases:
  - {id: stays, query: Hello, assert: [{contains: Hello}]}
  - {id: breaks, query: Hello, assert: [{contains: nowhere}]}
  - {id: mends, query: Hello, assert: [{contains: Hello}]}
  - {id: added, query: Hello}
""")
    base = run_suite(base_suite, [chat], store=store)
    new = run_suite(new_suite, [chat], store=store)
    d = diff_runs(store.get_run(base.id), store.get_run(new.id))
    assert [c.label for c in d.newly_failing] == ["breaks · Simulator · chat"]
    assert "does not contain 'nowhere'" in d.newly_failing[0].detail
    assert [c.label for c in d.fixed] == ["mends · Simulator · chat"]
    assert d.added == ["added · Simulator · chat"] and d.removed == ["gone · Simulator · chat"]
    assert d.has_regressions


def test_diff_finds_slower_and_dearer_cells():
    from lib.evals.records import CaseResult, EvalRun, TurnRecord

    def run(rid: str, total: float, price: float) -> EvalRun:
        turn = TurnRecord("q", "a", timing={"total": total, "total_price": price, "currency": "USD"})
        return EvalRun(rid, "s", ["T"], ["default"], "finished", [CaseResult("c", "T", passed=True, turns=[turn])])

    d = diff_runs(run("a", 1.0, 0.001), run("b", 1.5, 0.002))
    assert [c.detail for c in d.slower] == ["1000 ms -> 1500 ms"] and [c.detail for c in d.dearer] == ["0.001000 -> 0.002000"]
    d = diff_runs(run("a", 1.0, 0.001), run("b", 1.1, 0.00105))  # within the noise margins
    assert not d.slower and not d.dearer and d.unchanged == 1
    # one target each, named differently (staging, then production): cells are matched by case
    other = run("c", 3.0, 0.001)
    other.targets, other.results[0].target = ["Prod"], "Prod"
    assert [c.label for c in diff_runs(run("a", 1.0, 0.001), other).slower] == ["c"]


def test_local_files_are_uploaded_and_a_missing_one_fails_only_its_case(sim, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Quarterly notes")
    # given as text (an upload on the page): no folder to check paths against when loading, so the run finds out
    suite = parse_suite(f"""
cases:
  - id: attached
    query: Summarise the file
    files: [{{path: "{notes}", type: document}}]
    assert: [{{contains: "You attached 1 file(s): notes.txt"}}]
  - id: missing
    query: Summarise the file
    files: [{{path: {tmp_path / "absent.txt"}}}]
  - id: plain
    query: Hello
""")
    run = run_suite(suite, [target(sim, "app-sim-chat")])
    attached, missing, plain = run.results
    assert attached.passed, attached.reasons()
    assert not missing.passed and missing.error.startswith("Cannot read a file of this case:") and "absent.txt" in missing.error
    assert plain.passed
