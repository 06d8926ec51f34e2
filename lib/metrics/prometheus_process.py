"""Find and run a real Prometheus server (the Debian package or a binary on PATH) on loopback.

Used by `make run` and by the tests; a missing binary is an error that says how to install it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

INSTALL_HINT = ("install it with `apt-get install -y --no-install-recommends prometheus` (make test does this as root), "
                "or set PROMETHEUS_URL")


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


# -- what make run's supervisor tells the Metrics page about the Prometheus it runs -----------------
# The supervisor writes a small JSON file (PROMETHEUS_STATUS_FILE, beside Prometheus's storage) each time
# Prometheus stops or comes back; the page reads it. A file rather than probing: only the supervisor knows
# that Prometheus died and when, and that a restart is on its way.
STATUS_ENV = "PROMETHEUS_STATUS_FILE"


@dataclass(frozen=True)
class PrometheusStatus:
    state: str  # "running", "restarting" (stopped; next attempt at next_attempt_at) or "starting"
    stopped_at: float | None = None  # epoch seconds of the last unexpected stop
    exit_code: int | None = None
    restarted_at: float | None = None  # epoch seconds it was ready again after that stop
    next_attempt_at: float | None = None
    restarts: int = 0  # unexpected stops so far

    def sentence(self) -> str | None:
        """What the Metrics page says; None while Prometheus never stopped."""
        if self.stopped_at is None:
            return None
        stopped = f"Prometheus stopped at {_clock(self.stopped_at)} UTC" + (
            f" ({exit_reason(self.exit_code)})" if self.exit_code is not None else "")
        if self.state == "running" and self.restarted_at is not None:
            again = f" (it has stopped {self.restarts} times so far)" if self.restarts > 1 else ""
            return (f"{stopped} and was restarted at {_clock(self.restarted_at)} UTC by `make run`{again}; "
                    "the charts have no samples for the time it was down.")
        if self.state == "restarting" and self.next_attempt_at is not None:
            return f"{stopped}; `make run` is restarting it (next attempt at {_clock(self.next_attempt_at)} UTC)."
        return f"{stopped}; `make run` is restarting it."


def write_status(path: Path, status: PrometheusStatus) -> None:
    """Atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(status)))
    os.replace(tmp, path)


def read_status(path: str | Path | None = None) -> PrometheusStatus | None:
    """The supervisor's last word (PROMETHEUS_STATUS_FILE when no path); None when there is none."""
    path = path or os.environ.get(STATUS_ENV)
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
        return PrometheusStatus(**{k: data[k] for k in data if k in PrometheusStatus.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


def exit_reason(code: int) -> str:
    """Popen's returncode in words: -9 is "killed by SIGKILL"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")
