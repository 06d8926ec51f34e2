"""The Benchmark page in a real browser: start a small run, watch it, and see its charts."""
from __future__ import annotations

import pytest

from lib.bench import BenchStore
from tests.support.browser import assert_no_exception, expect, open_app, screenshot, start_console, wait_for_rerun

CHART = "[data-testid='stPlotlyChart']"


@pytest.fixture
def bench_console(console_sim, tmp_path):
    """A console of the test's own, saving runs to a store of the test's own."""
    app = start_console(tmp_path, console_sim, env={"BENCH_DB": str(tmp_path / "bench.sqlite")})
    yield app
    app.stop()


def test_start_a_small_benchmark_and_see_its_charts(page, bench_console, tmp_path):
    open_app(page, bench_console, "/benchmark")
    expect(page.get_by_role("heading", level=1)).to_have_text("Benchmark")
    seconds = page.get_by_label("Seconds measured")
    seconds.fill("2")
    seconds.press("Enter")
    wait_for_rerun(page)
    page.get_by_role("button", name="Start benchmark").click()
    # The live panel while it runs (the simulator answers in ~1.7 s), then the results with their charts.
    expect(page.get_by_role("progressbar").first).to_be_visible()
    expect(page.get_by_role("button", name="Cancel run")).to_be_visible()
    expect(page.get_by_text("Percentiles (ms)")).to_be_visible()
    expect(page.locator(CHART).nth(7)).to_be_visible()
    expect(page.locator(f"{CHART} .js-plotly-plot").first).to_be_visible()  # plotly drew, not just a placeholder
    wait_for_rerun(page)
    assert_no_exception(page)
    screenshot(page, tmp_path / "benchmark.png")
    (run,) = BenchStore(tmp_path / "bench.sqlite").runs()
    assert run.status == "finished" and run.summary["succeeded"] > 0
