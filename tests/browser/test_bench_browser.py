"""The Benchmark page in a real browser (`streamlit run` + headless Chromium): a page run measures what the
CLI measures (issue 12: in Streamlit's own process every page run was client-bound)."""
from __future__ import annotations

import os
import subprocess
import sys

from lib.bench import BenchStore
from tests.support.browser import assert_no_exception, expect, open_app, screenshot, start_console, wait_for_rerun
from tests.support.procs import ROOT

CHART = "[data-testid='stPlotlyChart']"
# Exact pacing (jitter 0): every answer's TTFT and chunk gaps are the simulator's, so two honest runs agree.
PACED = ("--ttft-ms", "500", "--tokens-per-s", "20", "--jitter", "0")
USERS, REQUESTS = 2, 4
AGREE = 0.05  # issue 12: a page run and a CLI run of the same load agree within 5%
FIGURES = [("ttft_ms", "p50"), ("ttft_ms", "p99"), ("itl_ms", "p50"), ("itl_ms", "p99")]
# Six engineers share this machine's two cores: a neighbour's burst can bend one pair of runs. A page run
# distorted by its own process (lag p99 120-180 ms before the worker) is distorted in every attempt.
ATTEMPTS = 3


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for_rerun(page)


def cli_run(sim, db) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "lib.bench", "--db", str(db), "run", "--base-url", sim.url, "--concurrency", str(USERS),
         "--requests", str(REQUESTS), "--json"],
        cwd=ROOT, env={**os.environ, "DIFY_API_KEY": "app-sim-chat"}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return BenchStore(db).runs()[0].summary  # newest first


def page_run(page, db) -> dict:
    start = page.get_by_role("button", name="Start benchmark")
    if not start.is_visible():  # folded away after the last run
        page.get_by_text("New run", exact=True).click()
    start.click()
    expect(page.get_by_role("button", name="Cancel run")).to_be_visible()  # the live panel, while it runs
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    expect(page.get_by_text("Percentiles (ms)")).to_be_visible()
    wait_for_rerun(page)
    assert_no_exception(page)
    expect(start).to_be_hidden()  # the form stayed folded: the results come first
    run = BenchStore(db).runs()[0]
    assert run.status == "finished", run.error
    return run.summary


def disagreements(ours: dict, theirs: dict) -> list[str]:
    found = [f"the {name} run was client-bound: {s['client_bound_reasons']}"
             for name, s in (("page", ours), ("CLI", theirs)) if s["client_bound"]]
    for metric, stat in FIGURES:
        a, b = ours[metric][stat], theirs[metric][stat]
        if abs(a - b) > AGREE * b:
            found.append(f"{metric} {stat}: page {a:.1f} ms, CLI {b:.1f} ms (more than {AGREE:.0%} apart)")
    return found


def test_a_page_run_measures_what_the_cli_measures(page, sim_factory, tmp_path):
    sim = sim_factory(*PACED)
    db = tmp_path / "bench.sqlite"
    cli_run(sim, tmp_path / "warm-up.sqlite")  # so neither run pays a new simulator's first answers
    console = start_console(tmp_path, sim, env={"BENCH_DB": str(db)})
    seen = []
    try:
        open_app(page, console, "/benchmark")
        expect(page.get_by_role("heading", level=1)).to_have_text("Benchmark")
        fill(page, "Concurrent users", str(USERS))
        page.get_by_text("requests", exact=True).click()  # Stop after: requests
        wait_for_rerun(page)
        fill(page, "Measured requests", str(REQUESTS))
        for _ in range(ATTEMPTS):
            ours = page_run(page, db)
            theirs = cli_run(sim, db)  # the console still up, idle on the results, as a user would compare
            assert ours["requests"] == theirs["requests"] == REQUESTS
            assert ours["success_rate"] == theirs["success_rate"] == 1.0
            seen.append(disagreements(ours, theirs))
            if not seen[-1]:
                break
        expect(page.locator(f"{CHART} .js-plotly-plot").nth(3)).to_be_visible()  # the results' charts drew
        screenshot(page, tmp_path / "benchmark.png")
        # Readable at a laptop's width: no figure cut off ("12.34 req/s" was, six to a row).
        cut = page.locator("[data-testid='stMetricValue']").evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)")
        assert not cut, f"metric values cut off: {cut}"
        shown = BenchStore(db).runs()[1].id  # the page's last run (the CLI's came after it)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download HTML report").click()
        report = tmp_path / download.value.suggested_filename
        download.value.save_as(report)
        html = report.read_text(encoding="utf-8")
        assert report.name == f"bench-{shown}.html" and shown in html and html.count("plotly.js v") == 1
        assert "app-sim-chat" not in html
    finally:
        console.stop()
    assert not seen[-1], f"in each of {len(seen)} attempts: {seen}"
