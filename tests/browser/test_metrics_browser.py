"""The Metrics page in a real browser: live charts from a real Prometheus, refreshed without dimming the
page, and the PromQL box keeping each edit; chart legends clear of the axis."""
from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from tests.support.browser import assert_no_exception, choose, expect, open_app, screenshot, start_console, wait_for_rerun
from tests.support.procs import free_port
from tests.support.prometheus import start_prometheus

CHART = "[data-testid='stPlotlyChart']"


@pytest.fixture
def live_console(console_sim, tmp_path):
    """A console whose Prometheus scrapes the simulator and the console itself, with traffic flowing."""
    metrics_port = free_port()
    sim_host = console_sim.url.removeprefix("http://").removesuffix("/v1")
    prom = start_prometheus(tmp_path, {"console": [f"127.0.0.1:{metrics_port}"], "simulator": [sim_host]})
    app = start_console(tmp_path, console_sim, env={"PROMETHEUS_URL": prom.url, "CONSOLE_METRICS_PORT": str(metrics_port)})
    stop = threading.Event()

    def traffic() -> None:
        fast = {"Authorization": "Bearer app-sim-chat", "X-Sim-TTFT-Ms": "20", "X-Sim-Tokens-Per-S": "2000"}
        with httpx.Client(timeout=30) as http:
            while not stop.wait(0.1):
                http.post(f"{console_sim.url}/chat-messages", headers=fast, json={"query": "hi", "user": "browser", "inputs": {}})

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    yield app
    stop.set()
    worker.join(timeout=30)
    app.stop()
    prom.stop()


def test_metrics_page_shows_live_charts_and_runs_promql(page, live_console, tmp_path):
    open_app(page, live_console, "/metrics")
    expect(page.get_by_role("heading", level=1)).to_have_text("Metrics")
    charts = page.locator(CHART)
    expect(charts.first).to_be_visible()
    # The request-rate chart fills in (its legend names the simulator) as Prometheus scrapes and the page refreshes.
    expect(charts.first).to_contain_text("simulator")
    expect(charts).to_have_count(9)
    assert_no_exception(page)
    screenshot(page, tmp_path / "metrics.png")

    # No Deploy button (.streamlit/config.toml: client.toolbarMode = "viewer").
    expect(page.get_by_test_id("stToolbar")).to_be_attached()
    assert page.get_by_role("button", name="Deploy").count() == 0 and page.get_by_text("Deploy", exact=True).count() == 0

    # A refresh reruns only the live panels, and nothing fades meanwhile: sampled over two refreshes (5 s each),
    # no element outside the panels is ever stale, and no element at all is shown dimmed.
    page.evaluate(SAMPLER)
    page.wait_for_function("() => window.__samples.filter(s => s.running).length > 5 && window.__refreshes >= 2",
                           timeout=60_000)
    samples = page.evaluate("() => { clearInterval(window.__sampler); return window.__samples; }")
    running = [s for s in samples if s["running"]]
    assert running and any(s["stale_in_panels"] for s in running), "no refresh was seen"
    assert not any(s["stale_outside"] for s in samples), [s for s in samples if s["stale_outside"]][:3]
    assert min(s["min_opacity"] for s in samples) == 1, sorted({s["min_opacity"] for s in samples})

    # Three queries in a row each run as typed (a box without a key brought the one before back every other time).
    for expr in ("sum(up)", "count(up)", "max(up)"):
        box = page.get_by_label("Query")
        box.fill(expr)
        page.get_by_role("button", name="Run query").click()
        result = page.locator(CHART).filter(has=page.locator(".gtitle", has_text=expr))  # titled with the query
        expect(result).to_have_count(1)
        expect(charts).to_have_count(10)
        wait_for_rerun(page)
        expect(page.get_by_label("Query")).to_have_value(expr)
        assert page.locator(CHART).last.locator(".gtitle").text_content() == expr
    assert_no_exception(page)

    page.get_by_label("Query").fill("sum by (job) (up)")
    page.get_by_role("button", name="Run query").click()
    result = page.locator(CHART).filter(has_text="sum by (job) (up)")  # the query's own chart, titled with it
    expect(result).to_contain_text("job=simulator")
    expect(charts).to_have_count(10)
    wait_for_rerun(page)
    assert_no_exception(page)

    # "Run query" reruns the PromQL box alone: the live panels (refresh off) keep the time they were drawn at.
    choose(page, "Refresh", "Off")
    updated = page.get_by_text(re.compile(r"^Updated \d\d:\d\d:\d\d UTC"))
    expect(updated).not_to_contain_text("refreshing every")
    wait_for_rerun(page)
    drawn = updated.text_content()
    page.wait_for_function("t => Date.now() > t + 1100", arg=page.evaluate("Date.now()"))  # the clock passes a second
    page.get_by_label("Query").fill("min(up)")
    page.get_by_role("button", name="Run query").click()
    expect(page.locator(CHART).filter(has=page.locator(".gtitle", has_text="min(up)"))).to_have_count(1)
    wait_for_rerun(page)
    assert updated.text_content() == drawn
    assert_no_exception(page)


# Every 100 ms: whether a run is on, how many elements are stale inside / outside the live panels, and the
# lowest opacity any element container is shown with. Counts the fragment's refreshes (running -> idle).
SAMPLER = """() => {
  window.__samples = []; window.__refreshes = 0; let was = false;
  window.__sampler = setInterval(() => {
    const running = document.querySelector("[data-testid='stApp']").dataset.testScriptState === "running";
    if (was && !running) window.__refreshes++;
    was = running;
    const all = [...document.querySelectorAll("[data-testid='stElementContainer']")];
    const stale = all.filter(e => e.dataset.stale === "true");
    const inPanels = e => e.closest(".st-key-metrics_live") !== null;
    window.__samples.push({running, stale_in_panels: stale.filter(inPanels).length,
                           stale_outside: stale.filter(e => !inPanels(e)).length,
                           min_opacity: Math.min(...all.map(e => +getComputedStyle(e).opacity))});
  }, 100);
}"""

# The legend's box against the x axis' tick labels and the plot area, in the rendered SVG.
LEGEND_CLEAR = """() => {
  const box = s => [...document.querySelectorAll(s)].map(e => e.getBoundingClientRect());
  const legend = box("g.legend")[0], ticks = box("g.xtick text"), plot = box("rect.nsewdrag")[0];
  const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  return {legend_top: legend.top, ticks_bottom: Math.max(...ticks.map(t => t.bottom)),
          clear: !ticks.some(t => hit(t, legend)) && !hit(plot, legend)};
}"""


def test_a_long_legend_stays_clear_of_the_axis(browser, tmp_path):
    """The breaker panel lists one series per target the console has called (and the gateway): with many, the
    legend must sit below the axis' labels, not over them. Drawn by plotly.js in Chromium at the page's size."""
    import pandas as pd

    from lib.charts.metrics import timeseries_figure
    from lib.metrics.panels import PANELS_BY_KEY

    panel = PANELS_BY_KEY["breaker"]
    end = datetime.now(UTC)
    page = browser.new_page(viewport={"width": 440, "height": 320})  # one of the page's two columns
    try:
        for n in (1, 4, 8, 12):
            rows = [{"timestamp": end - timedelta(seconds=10 * i), "value": 2 if k == 0 and i < 10 else 0,
                     "series": f"console Simulator · app {k}"} for k in range(n) for i in range(60)]
            fig = timeseries_figure(pd.DataFrame(rows), panel.title, panel.unit, x_range=(end - timedelta(minutes=15), end))
            html = tmp_path / f"breaker-{n}.html"
            fig.write_html(html, include_plotlyjs=True)
            page.goto(html.as_uri())
            page.wait_for_selector("g.legend")
            layout = page.evaluate(LEGEND_CLEAR)
            assert layout["clear"], f"{n} series: the legend covers the axis: {layout}"
        page.screenshot(path=str(tmp_path / "breaker.png"))
    finally:
        page.close()
