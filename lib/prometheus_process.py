"""Find and run a real Prometheus server (the Debian package or a binary on PATH) on loopback.

Used by `make run` and by the tests; a missing binary is an error that says how to install it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

INSTALL_HINT = "install it with `apt-get install -y --no-install-recommends prometheus` (make test does this as root), or set PROMETHEUS_URL"


class PrometheusNotFound(RuntimeError):
    pass


def prometheus_binary() -> str:
    configured = os.environ.get("PROMETHEUS_BIN")
    found = shutil.which(configured or "prometheus")  # an absolute PROMETHEUS_BIN must be executable too
    if not found:
        where = f"PROMETHEUS_BIN={configured} is not an executable" if configured else "No `prometheus` binary on PATH"
        raise PrometheusNotFound(f"{where}: {INSTALL_HINT}.")
    return found


def scrape_config(jobs: dict[str, list[str]], interval: str = "2s") -> str:
    """A prometheus.yml scraping each job's `host:port` targets at `interval`."""
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}", "scrape_configs:"]
    for job, targets in jobs.items():
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: [{', '.join(repr(t) for t in targets)}]"]
    return "\n".join(lines) + "\n"


def prometheus_argv(config: Path, data_dir: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        prometheus_binary(),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={host}:{port}",
        "--storage.tsdb.retention.time=2d",
        "--web.enable-lifecycle",
        "--log.level=warn",  # its info lines drown the other services in make run's output
    ]


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Poll `/-/ready` until Prometheus answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"prometheus at {url} not ready after {timeout:.0f} s")
