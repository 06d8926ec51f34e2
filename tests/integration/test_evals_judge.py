"""`judge` assertions end to end: the simulator answers, a grader app grades over real HTTP.

The simulator cannot grade (its answers quote the question), so the grader here is a small Dify-compatible
chat app of the test's own: it streams `message` and `message_end` events like Dify, and its verdict
depends on what it was asked, so the test sees that the rubric and the answer reached it.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest

from lib.evals import CannotRunError, parse_suite, run_suite
from lib.settings import Target
from tests.support.http_server import serve


class _Grader(BaseHTTPRequestHandler):
    prompts: ClassVar[list[str]] = []
    bodies: ClassVar[list[dict]] = []
    mode: ClassVar[str] = "chat"
    # a completion grader's input form, as GET /parameters sends it (Dify's completion template names it `query`)
    form: ClassVar[list[dict]] = []

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.endswith("/parameters"):
            self._json({"user_input_form": self.form})
            return
        self._json({"name": "Grader", "description": "", "tags": [], "mode": self.mode, "author_name": "tests"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        prompt = body["query"] if self.mode == "chat" else body["inputs"].get("query", "")
        self.prompts.append(prompt)
        graded = prompt.split("Answer to grade:", 1)[1] if "Answer to grade:" in prompt else ""
        if "STRICT" in prompt:
            verdict = "**FAIL** - the answer is a simulation."
        elif "simulated answer" in graded:
            verdict = 'Verdict: {"pass": true, "reason": "It says it is simulated."}'
        else:
            verdict = "I would rather not say."
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        ids = {"conversation_id": "c-1", "message_id": "m-1", "task_id": "t-1", "id": "m-1", "created_at": 1}
        for piece in (verdict[:10], verdict[10:]):
            self.wfile.write(b"data: " + json.dumps({"event": "message", "answer": piece, **ids}).encode() + b"\n\n")
        end = {"event": "message_end", **ids, "metadata": {"usage": {"total_tokens": 3, "total_price": "0"}}}
        self.wfile.write(b"data: " + json.dumps(end).encode() + b"\n\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def grader() -> Iterator[str]:
    with serve(_Grader) as url:
        yield url


@pytest.fixture
def grader_url() -> Iterator[str]:
    _Grader.prompts, _Grader.bodies, _Grader.mode, _Grader.form = [], [], "chat", []
    with grader() as url:
        yield url


def test_the_judge_grades_each_answer_and_its_reason_is_kept(sim, grader_url):
    suite = parse_suite("""
defaults: {judge: Grader}
cases:
  - id: graded-pass
    query: Hello there
    assert:
      - judge: {rubric: "The answer admits it is simulated."}
  - id: graded-fail
    query: Hello again
    assert:
      - judge: {rubric: "STRICT: a real answer, not a simulation."}
  - id: named-judge
    query: Hi
    assert:
      - judge: {target: Grader, rubric: "Anything"}
""")
    chat = Target("Simulator · chat", sim.url, "app-sim-chat", "simulator")
    judge = Target("Grader", grader_url, "app-grader-key-0001", "dify")
    run = run_suite(suite, [chat], resolve=lambda name: judge)
    by_id = {r.case_id: r for r in run.results}
    assert by_id["graded-pass"].passed
    assert by_id["graded-pass"].checks[0].reason == "Grader: PASS, It says it is simulated."
    assert not by_id["graded-fail"].passed
    assert by_id["graded-fail"].checks[0].reason == "Grader: FAIL, the answer is a simulation."
    # the grader was asked with the rubric, the question and the simulator's answer
    asked = next(p for p in _Grader.prompts if "admits it is simulated" in p)
    assert "Question: Hello there" in asked and 'You asked: "Hello there"' in asked
    assert by_id["named-judge"].passed  # the judge named in the assertion rather than in defaults
    assert len(_Grader.prompts) == 3


def test_a_judge_answer_without_a_verdict_fails_clearly(grader_url):
    # the grader grades itself: its own answers hold no "simulated answer", so it replies without a verdict
    suite = parse_suite("""
cases:
  - id: self
    query: anything
    assert:
      - judge: {target: Grader, rubric: "Be kind."}
""")
    target = Target("Grader", grader_url, "app-grader-key-0001", "dify")
    (result,) = run_suite(suite, [target]).results
    assert not result.passed and result.error is None
    assert "the judge (Grader) answered something that is not a verdict" in result.checks[0].reason
    assert "'I would rather not say.'" in result.checks[0].reason


def test_a_completion_judge_gets_the_prompt_in_its_query_variable(sim, grader_url):
    _Grader.mode = "completion"
    _Grader.form = [{"select": {"variable": "tone", "label": "Tone", "required": True, "default": "",
                                "options": ["Strict", "Lenient"]}},
                    {"text-input": {"variable": "lang", "label": "Language", "required": True, "default": "en"}},
                    {"paragraph": {"variable": "query", "label": "Query", "required": True, "default": ""}},
                    {"number": {"variable": "words", "label": "Words", "required": False}}]
    suite = parse_suite("""
defaults: {judge: Grader}
cases:
  - id: graded
    query: Hello there
    assert:
      - judge: {rubric: "The answer admits it is simulated."}
""")
    chat = Target("Simulator · chat", sim.url, "app-sim-chat", "simulator")
    judge = Target("Grader", grader_url, "app-grader-key-0001", "dify")
    (result,) = run_suite(suite, [chat], resolve=lambda name: judge).results
    assert result.passed and result.checks[0].reason == "Grader: PASS, It says it is simulated."
    (body,) = _Grader.bodies
    # the prompt in `query`; the other required variables at their default (a select's first option); nothing else
    assert set(body["inputs"]) == {"query", "tone", "lang"}
    assert body["inputs"]["tone"] == "Strict" and body["inputs"]["lang"] == "en"
    assert "Rubric: The answer admits it is simulated." in body["inputs"]["query"]


def test_a_completion_judge_whose_form_it_cannot_fill_stops_the_run_before_any_answer(sim):
    # the simulator's completion app requires a `topic` with no default: a judge has only its prompt to give
    suite = parse_suite("""
cases:
  - id: a
    query: Hi
    assert:
      - judge: {target: "Simulator · completion", rubric: "Says hi."}
""")
    chat = Target("Simulator · chat", sim.url, "app-sim-chat", "simulator")
    completion = Target("Simulator · completion", sim.url, "app-sim-completion", "simulator")
    with pytest.raises(CannotRunError) as err:
        run_suite(suite, [chat], resolve=lambda name: completion)
    assert str(err.value).startswith("the judge 'Simulator · completion' is a completion app whose form requires "
                                     "'topic' besides 'query'")


def test_the_simulators_judge_app_grades_by_the_rubrics_quoted_phrases(sim):
    # no Dify account: the simulator's own judge app (app-sim-judge) grades the simulator's chat answers
    suite = parse_suite("""
defaults: {judge: "Simulator · judge"}
cases:
  - id: quoted-present
    query: Hello there
    assert:
      - judge: {rubric: "The answer says it is a 'simulated answer' and names 'Simulated Chatbot'."}
  - id: quoted-missing
    query: Hello again
    assert:
      - judge: {rubric: "The answer mentions 'refund policy'."}
  - id: nothing-quoted
    query: Hi
    assert:
      - judge: {rubric: "The answer is polite."}
""")
    chat = Target("Simulator · chat", sim.url, "app-sim-chat", "simulator")
    judge = Target("Simulator · judge", sim.url, "app-sim-judge", "simulator")
    by_id = {r.case_id: r for r in run_suite(suite, [chat], resolve=lambda name: judge).results}
    assert by_id["quoted-present"].passed, by_id["quoted-present"].checks[0].reason
    assert by_id["quoted-present"].checks[0].reason.startswith("Simulator · judge: PASS, the answer contains")
    assert not by_id["quoted-missing"].passed
    assert by_id["quoted-missing"].checks[0].reason == "Simulator · judge: FAIL, the answer lacks 'refund policy'"
    # a verdict all the same (not "not a verdict"): the rule needs quoted phrases, and says so
    assert "quotes none" in by_id["nothing-quoted"].checks[0].reason
