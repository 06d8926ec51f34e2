"""The Metrics page in a real browser: live charts from a real Prometheus, and the PromQL box."""
from __future__ import annotations

import threading

import httpx
import pytest

from tests.support.browser import assert_no_exception, expect, open_app, screenshot, start_console, wait_for_rerun
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

    page.get_by_label("Query").fill("sum by (job) (up)")
    page.get_by_role("button", name="Run query").click()
    result = page.locator(CHART).filter(has_text="sum by (job) (up)")  # the query's own chart, titled with it
    expect(result).to_contain_text("job=simulator")
    expect(charts).to_have_count(10)
    wait_for_rerun(page)
    assert_no_exception(page)
