"""A real Prometheus process for tests, scraping the given targets every second."""
from __future__ import annotations

import subprocess
from pathlib import Path

from lib.metrics.prometheus_process import PrometheusNotFound, prometheus_argv, scrape_config, wait_ready
from tests.support.procs import Server, free_port


def start_prometheus(tmp_dir: Path, jobs: dict[str, list[str]], interval: str = "1s") -> Server:
    """Start Prometheus scraping `jobs` ({job: ["127.0.0.1:PORT"]}). A missing binary fails, never skips."""
    config = tmp_dir / "prometheus.yml"
    config.write_text(scrape_config(jobs, interval))
    port = free_port()
    try:
        argv = prometheus_argv(config, tmp_dir / "tsdb", port)
    except PrometheusNotFound as exc:
        raise AssertionError(str(exc)) from None
    log_path = tmp_dir / "prometheus.log"
    proc = subprocess.Popen(argv, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
    except Exception:
        proc.kill()
        raise AssertionError(f"prometheus did not start:\n{log_path.read_text()}") from None
    return Server(proc=proc, url=url, log_path=log_path, args=argv)
