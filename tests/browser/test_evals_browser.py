"""The Evals page in a real browser: run the passing example, then the failing one, read why, diff them."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from lib.evals import EvalStore
from tests.support.browser import (
    assert_no_exception,
    choose,
    expect,
    open_app,
    screenshot,
    selectbox,
    start_console,
    wait_for_rerun,
    watch_texts,
    watched_texts,
)

METRIC = "[data-testid='stMetricValue']"
PROGRESS = "[data-testid='stProgress'] [data-testid='stMarkdownContainer']"  # the live panel's text
TABLE = "[data-testid='stDataFrame']"


def pick_near_the_bottom(page, label: str, option: str) -> None:
    """Choose in a selectbox at the page's end: its list may open and close again while the page settles,
    so focus the box and open it with the keyboard until the option shows (as a person would try again)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    wanted = page.get_by_role("listbox").get_by_role("option", name=option, exact=True)
    for _ in range(5):
        box.scroll_into_view_if_needed()
        box.click()
        if not wanted.is_visible():
            page.keyboard.press("ArrowDown")
        try:
            wanted.wait_for(state="visible", timeout=5_000)
        except Exception:  # noqa: BLE001 -- playwright's TimeoutError: try again
            page.keyboard.press("Escape")
            continue
        wanted.click()
        return
    raise AssertionError(f"the {label!r} selectbox never offered {option!r}")


@pytest.fixture
def evals_console(console_sim, tmp_path):
    """A console of the test's own, saving eval runs to a store of the test's own."""
    app = start_console(tmp_path, console_sim, env={"EVALS_DB": str(tmp_path / "evals.sqlite")})
    yield app
    app.stop()


def test_run_suites_see_the_matrix_the_failures_and_a_diff(page, evals_console, tmp_path):
    open_app(page, evals_console, "/evals")
    expect(page.get_by_role("heading", level=1)).to_have_text("Evals")
    expect(page.get_by_text("Simulator chat smoke")).to_be_visible()  # the first example, described in the form
    # One case at a time: the paced simulator takes ~2 s an answer, so the run lasts ~8 s, long enough for the
    # live panel to show it going on even when the page's rerun after the click is slow (a loaded machine; the
    # first run also loads langdetect's profiles). At 4 at once the whole run took ~2.5 s, the panel appeared
    # ~1.6 s after the click, and a poll for it could fall on either side of its short life.
    at_once = page.get_by_role("spinbutton", name="Cases at once", exact=True)
    at_once.fill("1")
    at_once.press("Enter")
    expect(at_once).to_have_value("1")
    wait_for_rerun(page)
    watch_texts(page, PROGRESS)
    page.get_by_role("button", name="Run suite").click()
    expect(page.locator(METRIC).first).to_have_text("4/4")
    expect(page.locator(TABLE).first).to_be_visible()
    # live progress while it ran, redrawn as answers came: several counts were on screen
    progress = watched_texts(page, PROGRESS)
    counts = {int(m.group(1)) for m in (re.search(r"· (\d)/4 answers", t) for t in progress) if m}
    assert len(counts) >= 2 and all(t.startswith("Simulator chat smoke · ") for t in progress), progress
    wait_for_rerun(page)
    assert_no_exception(page)

    choose(page, "Suite", "simulator-fails.yaml")
    expect(page.get_by_text("Simulator failures on purpose")).to_be_visible()
    wait_for_rerun(page)
    page.get_by_role("button", name="Run suite").click()
    # while it runs, the Runs list shows the live run (not the one looked at before) and says when its matrix comes
    expect(selectbox(page, "Run")).to_have_value(re.compile(r"^Simulator failures on purpose · Simulator · chat · running · eval-"))
    expect(page.get_by_text("This run is live")).to_be_visible()
    expect(page.locator(METRIC).first).to_have_text("1/5")
    # Each failure listed with its reasons. Found by its case, not by a reason's text alone: while the page
    # redraws for the new run, the last run's answer in full can still be on screen below, and its
    # "✅ script: latin: the answer is written in latin" made a text match ambiguous (a strict-mode failure).
    failures = page.get_by_role("listitem").filter(has_text="wrong-language · Simulator · chat:")
    expect(failures).to_contain_text("script: thai: the answer is written in latin")
    judged = page.get_by_role("listitem").filter(has_text="judged · Simulator · chat:")
    expect(judged).to_contain_text("is not a verdict")  # the simulator is no judge: it says so
    # the answer shown in full is the new run's first, named as such (not the label the last run left)
    expect(selectbox(page, "Answer in full")).to_have_value("passes · Simulator · chat · pass")
    page.get_by_text("Only failures").click()
    expect(page.get_by_text("Only failures: 4 of 5 case rows failed on some target.")).to_be_visible()
    # filtered: the first failure in full, its label and its failed assertions agreeing
    expect(selectbox(page, "Answer in full")).to_have_value("wrong-language · Simulator · chat · FAIL")
    expect(page.get_by_text("❌ script: thai: the answer is written in latin")).to_be_visible()
    wait_for_rerun(page)

    baseline = next(f"Simulator chat smoke · Simulator · chat · finished · {r.id}"
                    for r in EvalStore(tmp_path / "evals.sqlite").runs() if r.suite == "Simulator chat smoke")
    pick_near_the_bottom(page, "Baseline run", baseline)
    expect(page.get_by_text("Newly failing", exact=True)).to_be_visible()
    wait_for_rerun(page)
    assert_no_exception(page)
    screenshot(page, tmp_path / "evals.png")
    runs = EvalStore(tmp_path / "evals.sqlite").runs()
    assert sorted(r.summary()["passed"] for r in runs) == [1, 4] and all(r.status == "finished" for r in runs)
    assert [r.config["concurrency"] for r in runs] == [1, 1]  # as set in the form


def test_a_workflow_runs_node_figures_waterfall_and_report_download(page, evals_console, console_sim, tmp_path):
    from tests.support.html_check import parse_report
    from tests.support.procs import ROOT

    key = "app-sim-workflow"  # the run is saved by the CLI (the page's own runs are the test above's)
    done = subprocess.run([sys.executable, "-m", "lib.evals", "--db", str(tmp_path / "evals.sqlite"), "run",
                           "examples/simulator-workflow.yaml", "--base-url", console_sim.url, "--api-key", key],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    run = EvalStore(tmp_path / "evals.sqlite").runs()[0]
    target = run.targets[0]
    open_app(page, evals_console, "/evals")
    expect(page.locator(METRIC).first).to_have_text("4/4")
    expect(page.get_by_role("heading", name="Where the time goes")).to_be_visible()
    charts = page.locator(".js-plotly-plot")
    expect(charts.first).to_be_visible()
    expect(page.get_by_text(f"Time per node · {target}")).to_be_visible()
    expect(page.get_by_text("Where the request's time went").first).to_be_visible()  # the answer shown in full
    assert charts.count() == 2
    wait_for_rerun(page)
    assert_no_exception(page)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download HTML report").click()
    assert download.value.suggested_filename == f"{run.id}.html"
    html = open(download.value.path(), encoding="utf-8").read()
    parsed = parse_report(html)
    assert not parsed.problems and parsed.sources == [] and key not in html
    assert run.id in " ".join(parsed.text) and f"Where the time goes · {target}" in " ".join(parsed.text)
    screenshot(page, tmp_path / "evals-nodes.png")
