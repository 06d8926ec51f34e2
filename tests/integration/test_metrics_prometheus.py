"""A real Prometheus scraping a real gateway, a real simulator and this process's client metrics (job
"console"): after traffic, the Metrics page's queries (lib/metrics/panels.py via lib/metrics/queries.py) return the expected
series, and the page renders them (AppTest) or says how to fix an unreachable Prometheus."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from lib.dify import DifyClient, RetryPolicy, TokenBucket
from lib.metrics.client import client_hooks
from lib.metrics.exporter import start_metrics_server
from lib.metrics.panels import PANELS, PANELS_BY_KEY, selector
from lib.metrics.prometheus_process import PrometheusStatus, write_status
from lib.metrics.queries import Prom, PrometheusUnavailable, PromQLError, query_range_any, utcnow
from tests.support.gateway import CALLER_KEY, OTHER_KEY, start_gateway
from tests.support.procs import free_port, start_simulator
from tests.support.prometheus import start_prometheus

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TARGET = "Gateway demo"
JOBS = ("console", "gateway", "simulator")
EXPECTED = {
    "request_rate": set(JOBS),
    "error_ratio": set(JOBS),
    "latency": {f"p{q} {job}" for q in (50, 95, 99) for job in JOBS},
    "ttft": {f"p{q} {job}" for q in (50, 95, 99) for job in JOBS},
    "output_tokens": {"console", "simulator"},
    "in_flight": set(JOBS),
    "retries": {"console retry: HTTP 503"},
    "rate_limits": {"console waited s/s: rate", "gateway refused/s"},
    "breaker": {f"console {TARGET}", "gateway"},
}


class Stack:
    def __init__(self, prom_url: str, gateway_url: str) -> None:
        self.prom_url, self.gateway_url = prom_url, gateway_url


def traffic(gateway_url: str, stop: threading.Event) -> None:
    """The console's client, through the gateway: streams, blocking calls, a retried 503 now and then."""
    retry = RetryPolicy(max_attempts=3, base=0.01, cap=0.02)
    with DifyClient(f"{gateway_url}/v1", CALLER_KEY, hooks=client_hooks(TARGET), retry=retry,
                    rate_limit=TokenBucket(30, burst=1)) as client:
        i = 0
        while not stop.is_set():
            i += 1
            list(client.stream_chat(f"Traffic {i}", user="prom-test", headers={"X-Sim-TTFT-Ms": "30", "X-Sim-Tokens-Per-S": "400"}))
            client.chat(f"Blocking {i}", user="prom-test")
            if i % 5 == 1:
                client.chat("Retry me", user="prom-test",
                            headers={"X-Sim-Fault": "503", "X-Sim-Fault-Times": "1", "X-Sim-Fault-Key": f"k{i}-{time.time()}"})


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics-stack")
    sim = start_simulator(tmp, "--fast")
    gw = start_gateway(tmp, sim.url, env={"GATEWAY_RATE_LIMIT": "5", "GATEWAY_RATE_BURST": "5"})
    console_port = start_metrics_server()  # this process is the "console" job
    hostport = lambda url: url.removeprefix("http://").split("/")[0]  # noqa: E731
    prom = start_prometheus(tmp, {"console": [f"127.0.0.1:{console_port}"], "gateway": [hostport(gw.url)],
                                  "simulator": [hostport(sim.url)]})
    stop = threading.Event()
    worker = threading.Thread(target=traffic, args=(gw.url, stop), daemon=True)
    worker.start()
    for _ in range(12):  # a burst from another caller: some refused by its rate limit
        httpx.get(f"{gw.url}/v1/parameters", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    try:
        yield Stack(prom.url, gw.url)
    finally:
        stop.set()
        worker.join(timeout=30)
        prom.stop()
        gw.stop()
        sim.stop()


def frames(prom: Prom, sel: str) -> dict[str, set[str]]:
    end = utcnow()
    return {p.key: set(prom.panel(p, sel, end - timedelta(minutes=2), end, step=1, window="10s")["series"]) for p in PANELS}


def test_every_panel_returns_the_expected_series(stack):
    with Prom(stack.prom_url) as prom:
        deadline = time.monotonic() + 60
        while True:
            got = frames(prom, selector())
            missing = {key: want - got[key] for key, want in EXPECTED.items() if want - got[key]}
            if not missing:
                break
            assert time.monotonic() < deadline, f"series still missing after 60 s: {missing}\ngot: {got}"
            time.sleep(1)
        only_gateway = frames(prom, selector(["gateway"]))
        assert only_gateway["request_rate"] == {"gateway"}
        assert only_gateway["latency"] == {"p50 gateway", "p95 gateway", "p99 gateway"}
        targets = prom.targets()
        assert set(targets["job"]) == set(JOBS) and set(targets["health"]) == {"up"}
        instance = targets.loc[targets["job"] == "simulator", "instance"].iloc[0]
        assert frames(prom, selector(instances=[instance]))["request_rate"] == {"simulator"}


def test_values_are_plausible(stack):
    with Prom(stack.prom_url) as prom:
        end = utcnow()
        rate = prom.panel(PANELS_BY_KEY["request_rate"], selector(), end - timedelta(minutes=1), end, 1, "10s")
        assert rate.groupby("series")["value"].max().min() > 0  # every job served requests
        ttft = prom.panel(PANELS_BY_KEY["ttft"], selector(["console"]), end - timedelta(minutes=1), end, 1, "10s")
        p50 = ttft[ttft["series"] == "p50 console"]["value"]
        assert 0 < p50.median() < 2.0  # 30 ms configured; histogram buckets bound the estimate
        breaker = prom.panel(PANELS_BY_KEY["breaker"], selector(), end - timedelta(minutes=1), end, 1, "10s")
        ours = breaker[breaker["series"].isin([f"console {TARGET}", "gateway"])]  # other tests' clients share this process
        assert not ours.empty and set(ours["value"]) == {0.0}  # closed


def test_promql_box_queries_and_errors(stack):
    with Prom(stack.prom_url) as prom:
        instant = prom.instant('up{job="gateway"}')
        assert list(instant["value"]) == [1.0] and instant["job"].iloc[0] == "gateway"
        end = utcnow()
        ranged = query_range_any(prom, "sum by (job) (up)", end - timedelta(seconds=30), end, 1)
        assert {"job=console", "job=gateway", "job=simulator"} <= set(ranged["series"])
        assert prom.instant('absent_metric_name_xyz{job="none"}').empty
        with pytest.raises(PromQLError, match="parse error"):
            prom.instant("sum by (job (up")


def test_an_unreachable_prometheus_fails_fast_with_the_fix():
    prom = Prom(f"http://127.0.0.1:{free_port()}", timeout=3)
    t0 = time.monotonic()
    with pytest.raises(PrometheusUnavailable) as failed:
        prom.targets()
    assert time.monotonic() - t0 < 2  # no retries
    assert "make run" in str(failed.value) and "PROMETHEUS_URL" in str(failed.value)


# -- the page, through app.py (AppTest) -----------------------------------------------------------------------------


def metrics_page(monkeypatch, prom_url: str) -> AppTest:
    monkeypatch.setenv("PROMETHEUS_URL", prom_url)
    for name in ("DIFY_API_BASE", "DIFY_API_KEY", "DIFY_TARGET_NAME"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/metrics.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_the_page_draws_every_panel_from_prometheus(stack, monkeypatch):
    test_every_panel_returns_the_expected_series(stack)  # data is there
    at = metrics_page(monkeypatch, stack.prom_url)
    assert at.title[0].value == "Metrics"
    assert not at.error, [e.value for e in at.error]
    specs = chart_specs(at)
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert titles == [PANELS_BY_KEY[k].title for k in
                      ("request_rate", "error_ratio", "latency", "ttft", "output_tokens", "in_flight", "retries", "rate_limits", "breaker")]
    request_rate = specs[0]
    assert {t["name"] for t in request_rate["data"]} == set(JOBS)
    # the job filter narrows every panel
    at.multiselect(key="metrics_jobs").set_value(["gateway"]).run()
    assert not at.exception
    assert {t["name"] for t in chart_specs(at)[0]["data"]} == {"gateway"}
    # The PromQL box's last query, as its form leaves it (AppTest loses a form's click in require_shell's
    # rerun; the browser test clicks the real button): a chart over the range, then a table of now.
    at.session_state["metrics_promql_last"] = ("sum by (job) (up)", True)
    at.run()
    assert not at.exception and not at.error
    promql = chart_specs(at)[-1]
    assert promql["layout"]["title"]["text"] == "sum by (job) (up)"
    assert {t["name"] for t in promql["data"]} == {"job=console", "job=gateway", "job=simulator"}
    at.session_state["metrics_promql_last"] = ('up{job="gateway"}', False)
    at.run()
    assert not at.exception and not at.error
    table = at.dataframe[-1].value
    assert list(table["job"]) == ["gateway"] and list(table["value"]) == [1.0]
    at.session_state["metrics_promql_last"] = ("sum by (job (up", False)
    at.run()
    assert not at.exception
    assert any("rejected the query" in e.value and "parse error" in e.value for e in at.error)


def test_the_page_explains_an_unreachable_prometheus(monkeypatch):
    at = metrics_page(monkeypatch, f"http://127.0.0.1:{free_port()}")
    errors = [e.value for e in at.error]
    assert errors and "unreachable" in errors[0] and "make run" in errors[0] and "PROMETHEUS_URL" in errors[0]
    assert not at.get("plotly_chart")


def test_the_grafana_dashboards_queries_are_valid_promql(stack):
    """Every target of deploy/grafana-dashboard.json, with Grafana's variables filled in, parses in Prometheus."""
    board = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    with Prom(stack.prom_url) as prom:
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$job", ".+").replace("$instance", ".+").replace("$__rate_interval", "10s")
                prom.instant(expr)  # raises PromQLError on a syntax error


def test_the_page_says_make_run_is_restarting_prometheus(monkeypatch, tmp_path):
    """While make run's supervisor restarts a dead Prometheus (its status file says so), the page says that,
    not "unreachable, start it with make run"."""
    status = tmp_path / "status.json"
    write_status(status, PrometheusStatus(state="restarting", stopped_at=1_700_000_000.0, exit_code=-9,
                                          next_attempt_at=1_700_000_004.0, restarts=1))
    monkeypatch.setenv("PROMETHEUS_STATUS_FILE", str(status))
    at = metrics_page(monkeypatch, f"http://127.0.0.1:{free_port()}")
    assert not at.error, [e.value for e in at.error]
    assert [w.value for w in at.warning] == [
        "Prometheus stopped at 22:13:20 UTC (killed by SIGKILL); `make run` is restarting it (next attempt at 22:13:24 UTC)."]
