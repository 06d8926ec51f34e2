"""Where an eval's time goes per node, and its HTML report (lib.report.evals): real suites run by the CLI
against the simulator with a key and a header carrying a token, the runs read back from the store, the
report parsed, searched for the key, and opened in headless Chromium from file:// with the network cut off."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lib.evals import EvalStore, parse_suite, run_suite
from lib.evals.formulas import ASSERTIONS, DIFF, RUN
from lib.evals.nodes import slowest_answer, target_node_stats, turn_waterfall
from lib.evals.records import CaseResult
from lib.report.evals import eval_report, masked_suite_text, write_eval_report
from lib.settings import Target
from lib.waterfall import FORMULAS as WATERFALL
from tests.support.browser import chromium, overflowing_titles
from tests.support.html_check import parse_report
from tests.support.procs import ROOT

KEY = "app-sim-workflow"
SECRET = "tok-Secret-5d2f-81ac-9876wxyz"  # a header value that carries a token
BUNDLE_MARK = "plotly.js v"
# The workflow example's cases again, the first now failing on purpose and a token in a header.
CHANGED = f"""name: Simulator workflow smoke
variants:
  - {{name: engineers, inputs: {{audience: Engineers}}}}
  - {{name: students, inputs: {{audience: Students}}}}
defaults:
  headers: {{X-Api-Token: {SECRET}, X-Sim-Ttft-Ms: "5"}}
cases:
  - id: topic-in-output
    inputs: {{topic: Rate limits}}
    assert: [{{contains: "no such sentence"}}]
  - id: thai-topic
    inputs: {{topic: การจำกัดอัตรา}}
    assert: [{{script: thai}}]
"""


def cli(db, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lib.evals", "--db", str(db), *args], cwd=ROOT,
                          env={**os.environ, "DIFY_API_KEY": "", "DIFY_API_BASE": ""}, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def runs(sim, tmp_path_factory):
    """Two CLI runs of the workflow suite with the key on the command line: the example (passes), then the
    changed suite (fails one case) against the first as its baseline, each with --html."""
    tmp = tmp_path_factory.mktemp("evals-report")
    db = tmp / "evals.sqlite"
    first = cli(db, "run", "examples/simulator-workflow.yaml", "--base-url", sim.url, "--api-key", KEY,
                "--html", str(tmp / "first.html"))
    assert first.returncode == 0, first.stderr
    store = EvalStore(db)
    base_id = store.runs()[0].id
    (tmp / "changed.yaml").write_text(CHANGED, encoding="utf-8")
    second = cli(db, "run", str(tmp / "changed.yaml"), "--base-url", sim.url, "--api-key", KEY, "--baseline", base_id,
                 "--html", str(tmp / "diff.html"))
    assert second.returncode == 1, second.stderr
    run_id = store.runs()[0].id
    return store, base_id, run_id, tmp, first.stdout + second.stdout


def _read(path) -> str:
    html = path.read_text(encoding="utf-8")
    parsed = parse_report(html)
    assert not parsed.problems, parsed.problems
    assert html.count(BUNDLE_MARK) == 1  # plotly.js inlined, once
    assert parsed.sources == []  # no src= or href= at all: nothing to fetch, no CDN
    assert KEY not in html and "sim-workflow" not in html  # the key nowhere, not even in chart data
    assert SECRET not in html and SECRET[-12:] not in html
    return html


def test_each_turn_keeps_its_waterfall_and_the_cli_prints_each_nodes_p50_p95(runs):
    store, base_id, _, _, stdout = runs
    run = store.get_run(base_id)
    for r in run.results:
        turn = r.turns[0]
        wf = turn_waterfall(turn)
        assert wf is not None and wf.outcome == "ok"
        # the client's own spans, in the order the nodes ran, and the same clock as the timing record
        assert [n["title"] for n in turn.waterfall["nodes"]] == [n.title for n in turn.nodes]
        assert wf.e2e_ms == pytest.approx(turn.timing["e2e"] * 1000)
        assert wf.segments["own_ms"].sum() == pytest.approx(wf.e2e_ms)  # every ms accounted for once
    stats = target_node_stats(run)[run.targets[0]]
    assert stats.attrs["requests"] == 4
    assert list(stats["label"]) == ["Dify before the first node", "Start", "LLM", "Template", "End",
                                    "between nodes", "after the last node", "end-to-end"]
    shown = cli(store.path, "show", base_id)
    assert shown.returncode == 0, shown.stderr
    assert "Where the time goes" in shown.stdout and "(4 requests)" in shown.stdout
    llm = next(line for line in shown.stdout.splitlines() if "│ LLM " in line)
    row = stats[stats["label"] == "LLM"].iloc[0]
    assert f"{row['p50_ms']:,.1f}" in llm and f"{row['p95_ms']:,.1f}" in llm
    assert "Where the time goes" in stdout  # `run` prints it too


def test_a_chat_app_has_no_waterfall_and_a_failed_node_is_named(sim):
    def target(key: str) -> Target:
        return Target(key, sim.url, key, "simulator")

    chat = run_suite(parse_suite("cases: [{id: hi, query: Hello, assert: [{contains: Hello}]}]"), [target("app-sim-chat")])
    assert chat.results[0].turns[0].waterfall is None and target_node_stats(chat) == {}
    failing = run_suite(parse_suite("cases: [{id: x, inputs: {topic: x}, headers: {X-Sim-Fault: node-failed}}]"),
                        [target(KEY)])
    turn = failing.results[0].turns[0]
    wf = turn_waterfall(turn)
    failed = next(n for n in turn.nodes if n.status == "failed")
    assert wf is not None and wf.failed_node == failed.title
    assert target_node_stats(failing)[KEY].query("kind == 'node'")["failed"].sum() == 1
    # a result stored before waterfalls were kept reads back without one
    old = failing.results[0].as_dict()
    for t in old["turns"]:
        del t["waterfall"]
    assert CaseResult.from_dict(old).turns[0].waterfall is None


def test_a_run_report_holds_the_matrix_nodes_suite_formulas_and_environment_never_the_key(runs):
    store, base_id, _, tmp, _ = runs
    html = _read(tmp / "first.html")
    text = " ".join(parse_report(html).text)
    run = store.get_run(base_id)
    assert "Eval run: Simulator workflow smoke" in text and base_id in text and "Every answer passed." in text
    assert "app-…flow" in text  # the key as the console shows it
    assert "topic-in-output · engineers" in text and "✅ pass" in text  # the matrix
    assert "Where the time goes" in text and "Template" in text
    for definition in (*ASSERTIONS.values(), *RUN.values(), *DIFF.values(), WATERFALL["node"], WATERFALL["dify"]):
        assert definition in text
    env = run.config["environment"]
    assert env["python"] in text and env["platform"] in text and "package httpx" in text
    assert "audience: Engineers" in text  # the suite as it was run
    report = eval_report(run, suite_text=store.suite_text(base_id))
    assert [s.title for s in report.sections][:2] == ["Summary", "Matrix"]
    assert "Failures" not in [s.title for s in report.sections]


def test_a_diff_report_says_what_newly_fails_and_why_with_headers_masked(runs):
    store, base_id, run_id, tmp, _ = runs
    html = _read(tmp / "diff.html")
    text = " ".join(parse_report(html).text)
    assert f"against {base_id}" in text and f"Against baseline {base_id}" in text
    assert "Newly failing" in text and "contains: no such sentence: the answer does not contain 'no such sentence'" in text
    assert "X-Api-Token: …wxyz" in text and "X-Sim-Ttft-Ms: '5'" in text  # masked, the simulator's knob in clear
    # `show --html --baseline` writes the same report
    again = cli(store.path, "show", run_id, "--baseline", base_id, "--html", str(tmp / "again.html"))
    assert again.returncode == 0, again.stderr
    assert "Newly failing" in _read(tmp / "again.html")
    bad = cli(store.path, "show", run_id, "--baseline", "eval-nope", "--html", str(tmp / "no.html"))
    assert bad.returncode == 2 and "no saved run 'eval-nope'" in bad.stderr and not (tmp / "no.html").exists()
    assert "Traceback" not in bad.stderr


def test_suite_headers_are_masked_and_a_suite_without_any_is_kept_as_written():
    assert "tok-" not in masked_suite_text(CHANGED) and "…wxyz" in masked_suite_text(CHANGED)
    plain = "# a comment\nname: x\ncases: [{query: hi}]\n"
    assert masked_suite_text(plain) == plain


def test_the_report_renders_offline_in_chromium_with_the_runs_node_figures(runs, tmp_path):
    store, base_id, run_id, tmp, _ = runs
    base, run = store.get_run(base_id), store.get_run(run_id)
    single = write_eval_report(base, tmp_path / "one.html", suite_text=store.suite_text(base_id))
    compared = tmp / "diff.html"
    stats = target_node_stats(base)[base.targets[0]]
    slow, turn = slowest_answer(base, base.targets[0])
    fetched, errors = [], []
    with chromium() as browser:
        context = browser.new_context(offline=True, viewport={"width": 1366, "height": 900})
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        page = context.new_page()
        page.on("request", lambda r: fetched.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        for path in (single, compared):
            page.goto(path.as_uri())
            page.locator(".plot-container").nth(1).wait_for(timeout=60_000)
            assert page.locator(".js-plotly-plot .plot-container").count() == 2  # per-node stats + slowest waterfall
            assert page.locator(".js-plotly-plot .main-svg").count() >= 2
        page.goto(single.as_uri())
        page.locator(".plot-container").nth(1).wait_for(timeout=60_000)
        # the per-node chart holds the run's p50s (one trace per segment kind; the node trace's bars)
        nodes = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[0]._fullData"
                              ".filter(t => t.name === 'node').map(t => Array.from(t.x))[0]")
        assert np.allclose(nodes, stats.query("kind == 'node'")["p50_ms"].astype(float))
        title = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[1]._fullLayout.title")
        assert title["text"].replace("<br>", " ").startswith(f"Slowest answer: {slow.case_id}")
        assert f"{slow.turns[turn].waterfall['e2e_ms']:,.1f} ms end-to-end" in title["subtitle"]["text"]
        assert overflowing_titles(page) == []  # a long one ran off the half-width chart
        context.close()
    assert [u for u in fetched if not u.startswith("file:")] == [] and not errors, (fetched, errors)
    assert run.status == "finished"
