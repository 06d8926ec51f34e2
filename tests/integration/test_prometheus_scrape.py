"""A real Prometheus scrapes a real simulator: the foundation of the Metrics page."""
from __future__ import annotations

import subprocess
import time

import httpx

from lib.metrics.prometheus_process import scrape_config
from tests.support.prometheus import start_prometheus


def test_prometheus_scrapes_the_simulator(sim, tmp_path):
    host = sim.url.removeprefix("http://").removesuffix("/v1")
    prom = start_prometheus(tmp_path, {"simulator": [host]})
    try:
        httpx.post(
            f"{sim.url}/chat-messages", json={"query": "hi", "user": "p", "inputs": {}}, headers={"Authorization": "Bearer app-sim-chat"}
        )
        deadline = time.monotonic() + 20
        result = []
        while time.monotonic() < deadline and not result:
            r = httpx.get(f"{prom.url}/api/v1/query", params={"query": 'sum(dify_sim_http_requests_total{job="simulator"})'}).json()
            result = r["data"]["result"]
            time.sleep(0.5)
        assert result and float(result[0]["value"][1]) >= 1
        up = httpx.get(f"{prom.url}/api/v1/query", params={"query": 'up{job="simulator"}'}).json()["data"]["result"]
        assert up[0]["value"][1] == "1"
    finally:
        prom.stop()


def test_deploy_config_is_valid(tmp_path):
    import shutil

    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: make test installs the Debian package prometheus"
    r = subprocess.run([promtool, "check", "config", "deploy/prometheus.yml"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    generated = tmp_path / "p.yml"
    generated.write_text(scrape_config({"a": ["127.0.0.1:1"], "b": ["127.0.0.1:2", "127.0.0.1:3"]}))
    r = subprocess.run([promtool, "check", "config", str(generated)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
