"""The Evals page in a real browser: run the passing example, then the failing one, read why, diff them."""
from __future__ import annotations

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
    start_console,
    wait_for_rerun,
)

METRIC = "[data-testid='stMetricValue']"
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
    page.get_by_role("button", name="Run suite").click()
    # live progress while it runs (the paced simulator takes ~2 s an answer), then the run's matrix
    expect(page.get_by_role("progressbar").first).to_be_visible()
    expect(page.locator(METRIC).first).to_have_text("4/4")
    expect(page.locator(TABLE).first).to_be_visible()
    wait_for_rerun(page)
    assert_no_exception(page)

    choose(page, "Suite", "simulator-fails.yaml")
    expect(page.get_by_text("Simulator failures on purpose")).to_be_visible()
    wait_for_rerun(page)
    page.get_by_role("button", name="Run suite").click()
    expect(page.locator(METRIC).first).to_have_text("1/5")
    failures = page.get_by_text("the answer is written in latin")
    expect(failures).to_be_visible()
    expect(page.get_by_text("is not a verdict").first).to_be_visible()  # the simulator is no judge: it says so
    page.get_by_text("Only failures").click()
    expect(page.get_by_text("Only failures: 4 of 5 case rows failed on some target.")).to_be_visible()
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
