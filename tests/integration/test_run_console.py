"""scripts/run_console.py (`make run`, lib/supervisor/): starts the simulator, the gateway, Prometheus and the
app, and stops them all on Ctrl-C."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
from streamlit.testing.v1 import AppTest

from lib.settings import load_targets
from lib.supervisor.processes import Supervisor
from lib.supervisor.services import Service, gateway_env, services, write_prometheus_config
from tests.support.procs import ROOT, free_port

SCRIPT = str(ROOT / "scripts" / "run_console.py")
PORT_VARS = ("SIMULATOR_PORT", "GATEWAY_PORT", "PROMETHEUS_PORT", "STREAMLIT_PORT", "CONSOLE_METRICS_PORT")


def distinct_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def launch(log: Path, **env: str | int) -> subprocess.Popen:
    full = {**os.environ, "PROMETHEUS_URL": "", **{name: str(value) for name, value in env.items()}}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, SCRIPT], cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT)


def test_starts_every_service_survives_prometheus_dying_and_ctrl_c_stops_everything(tmp_path, monkeypatch):
    ports = dict(zip(PORT_VARS, distinct_ports(len(PORT_VARS)), strict=True))
    log = tmp_path / "run_console.log"
    proc = launch(log, PROMETHEUS_DATA_DIR=tmp_path / "prometheus", **ports)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl-C to stop." not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"run_console exited early with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"not ready after 120 s:\n{log.read_text()}"
            time.sleep(0.2)
        host = "http://127.0.0.1"
        assert answers(f"{host}:{ports['SIMULATOR_PORT']}/v1/")
        assert answers(f"{host}:{ports['STREAMLIT_PORT']}/_stcore/health")
        assert answers(f"{host}:{ports['GATEWAY_PORT']}/health")
        assert answers(f"{host}:{ports['PROMETHEUS_PORT']}/-/ready")
        output = log.read_text()
        assert f"{host}:{ports['STREAMLIT_PORT']}" in output and f"{host}:{ports['GATEWAY_PORT']}/v1" in output
        assert all(key in output for key in ("app-sim-chat", "app-sim-workflow", "app-sim-agent", "gw-demo-key"))

        # The gateway fronts the simulator with the demo caller key.
        r = httpx.post(f"{host}:{ports['GATEWAY_PORT']}/v1/chat-messages", headers={"Authorization": "Bearer gw-demo-key"},
                       json={"query": "hi", "user": "make-run", "inputs": {}}, timeout=30)
        assert r.status_code == 200 and r.json()["answer"]
        # Prometheus scrapes the app (its own /metrics port, up from its first session), the gateway and the
        # simulator, at make run's ports. It lists its targets a moment after it is ready.
        def scraped() -> dict[str, str]:
            targets = httpx.get(f"{host}:{ports['PROMETHEUS_PORT']}/api/v1/targets").json()["data"]["activeTargets"]
            return {t["labels"]["job"]: t["labels"]["instance"] for t in targets}

        deadline = time.monotonic() + 30
        while len(scraped()) < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert scraped() == {"console": f"127.0.0.1:{ports['CONSOLE_METRICS_PORT']}",
                           "gateway": f"127.0.0.1:{ports['GATEWAY_PORT']}",
                           "simulator": f"127.0.0.1:{ports['SIMULATOR_PORT']}"}
        assert (tmp_path / "prometheus" / "tsdb").is_dir()
        assert answers(f"{host}:{ports['PROMETHEUS_PORT']}/-/ready")

        # Prometheus dies: the rest stays up, the supervisor restarts it and says so, and so does the Metrics page.
        status_file = tmp_path / "prometheus" / "status.json"
        assert json.loads(status_file.read_text())["state"] == "running"
        [prometheus] = [p for p in psutil.Process(proc.pid).children(recursive=True) if p.name() == "prometheus"]
        prometheus.kill()
        prometheus.wait(timeout=10)
        deadline = time.monotonic() + 60
        while json.loads(status_file.read_text())["state"] != "restarting":
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        for url in (f"{host}:{ports['SIMULATOR_PORT']}/v1/", f"{host}:{ports['GATEWAY_PORT']}/health",
                    f"{host}:{ports['STREAMLIT_PORT']}/_stcore/health"):
            assert answers(url), f"{url} went down with Prometheus:\n{log.read_text()}"
        assert proc.poll() is None
        assert "WARNING: prometheus stopped (killed by SIGKILL); restarting it in 1 s" in log.read_text()
        deadline = time.monotonic() + 60
        while json.loads(status_file.read_text())["state"] != "running":
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert answers(f"{host}:{ports['PROMETHEUS_PORT']}/-/ready")
        assert f"prometheus is back on port {ports['PROMETHEUS_PORT']}" in log.read_text()
        [restarted] = [p for p in psutil.Process(proc.pid).children(recursive=True) if p.name() == "prometheus"]
        assert restarted.pid != prometheus.pid
        # The page the console serves reads the same status file (make run hands it PROMETHEUS_STATUS_FILE).
        for name, value in {"PROMETHEUS_URL": f"{host}:{ports['PROMETHEUS_PORT']}", "PROMETHEUS_STATUS_FILE": str(status_file),
                            "CONSOLE_METRICS_PORT": str(free_port())}.items():
            monkeypatch.setenv(name, value)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.run()
        at.switch_page("pages/metrics.py").run()
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        [news] = [i.value for i in at.info if "Prometheus stopped" in i.value]
        assert re.fullmatch(r"Prometheus stopped at \d\d:\d\d:\d\d UTC \(killed by SIGKILL\) and was restarted at "
                            r"\d\d:\d\d:\d\d UTC by `make run`; the charts have no samples for the time it was down\.", news), news

        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 4

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()

        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"left running: {alive}"
        busy = [var for var, port in ports.items() if not port_is_free(port)]
        assert not busy, f"still bound: {busy}"
        assert "Stopped." in log.read_text()
    finally:  # never leak servers into the rest of the session, even when an assertion failed
        stop_everything(proc, children)


def stop_everything(proc: subprocess.Popen, children: list[psutil.Process]) -> None:
    """After a failed assertion: stop the supervisor the way Ctrl-C does (it stops its services), then kill
    whatever is left. Killing the supervisor alone would orphan its services, which run in their own groups."""
    if proc.poll() is None:
        try:
            children = children or psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def test_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path):
    ports = dict(zip(PORT_VARS, distinct_ports(len(PORT_VARS)), strict=True))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports["GATEWAY_PORT"] = taken.getsockname()[1]
        log = tmp_path / "run_console.log"
        proc = launch(log, PROMETHEUS_DATA_DIR=tmp_path / "prometheus", **ports)
        assert proc.wait(timeout=30) != 0
    output = log.read_text()
    assert f"port {ports['GATEWAY_PORT']}" in output and "already in use" in output and "GATEWAY_PORT" in output
    assert port_is_free(ports["SIMULATOR_PORT"])  # the simulator was never started


def test_bad_port_setting_is_a_clear_error():
    proc = subprocess.run(
        [sys.executable, SCRIPT], cwd=ROOT, env={**os.environ, "SIMULATOR_PORT": "http"},
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0
    assert "SIMULATOR_PORT must be a port number" in proc.stderr


def test_prometheus_url_or_a_missing_binary_means_no_prometheus_service():
    base = {"CONSOLE_METRICS_PORT": "9464"}
    planned = {s.name: s for s in services({**base, "PROMETHEUS_URL": "http://prom.example:9090/"})}
    assert "prometheus" not in planned
    assert planned["streamlit"].env["PROMETHEUS_URL"] == "http://prom.example:9090"
    old = os.environ.get("PROMETHEUS_BIN")
    os.environ["PROMETHEUS_BIN"] = "/nonexistent/prometheus"
    try:
        planned = {s.name: s for s in services(base)}
    finally:
        os.environ.pop("PROMETHEUS_BIN") if old is None else os.environ.__setitem__("PROMETHEUS_BIN", old)
    assert planned["prometheus"].argv == []  # main() prints how to install it and starts the rest
    assert planned["streamlit"].env["PROMETHEUS_URL"] == "http://127.0.0.1:9090"


def test_gateway_fronts_the_simulator_unless_a_dify_app_is_configured():
    sim = "http://127.0.0.1:5001/v1"
    env = gateway_env({}, sim)
    assert env["DIFY_API_BASE"] == sim and env["DIFY_API_KEY"] == "app-sim-chat"
    assert env["GATEWAY_API_KEYS"] == "demo:gw-demo-key"
    env = gateway_env({"DIFY_API_BASE": "https://dify.example.com", "DIFY_API_KEY": "app-real0123456789",
                                   "GATEWAY_API_KEYS": "site:gw-x"}, sim)
    assert env == {"GATEWAY_API_KEYS": "site:gw-x", "DIFY_API_BASE": "https://dify.example.com/v1",
                   "DIFY_API_KEY": "app-real0123456789"}


def test_the_console_gets_the_gateway_it_starts_as_a_target():
    """`make run`'s console lists "Via gateway": the gateway's URL and its first caller key (the demo key unless
    GATEWAY_API_KEYS names others)."""
    base = {"CONSOLE_METRICS_PORT": "9464", "PROMETHEUS_URL": "http://prom.example:9090", "GATEWAY_PORT": "8181"}
    ui = {s.name: s for s in services(base)}["streamlit"]
    assert (ui.env["GATEWAY_URL"], ui.env["GATEWAY_CALLER_KEY"]) == ("http://127.0.0.1:8181/v1", "gw-demo-key")
    targets = load_targets(environ=ui.env, env_file=None)
    assert targets[-1].name == "Via gateway" and targets[-1].base_url == "http://127.0.0.1:8181/v1"
    ui = {s.name: s for s in services({**base, "GATEWAY_API_KEYS": "site:gw-site-key,gw-other"})}["streamlit"]
    assert ui.env["GATEWAY_CALLER_KEY"] == "gw-site-key"


def test_the_rendered_prometheus_config_is_valid(tmp_path):
    import shutil

    write_prometheus_config(tmp_path, {"console": "127.0.0.1:1", "gateway": "127.0.0.1:2", "simulator": "127.0.0.1:3"})
    text = (tmp_path / "prometheus.yml").read_text()
    assert "'127.0.0.1:1'" in text and "'127.0.0.1:2'" in text and "'127.0.0.1:3'" in text and "9464" not in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: make test installs the Debian package prometheus"
    r = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_prometheus_that_keeps_dying_is_restarted_with_growing_backoff(tmp_path):
    """A service with a status file (Prometheus) that exits at once: restarted again and again, each wait longer
    than the last, the status file saying "restarting", and the supervisor never giving up the others."""
    status = tmp_path / "status.json"
    dying = Service("prometheus", [sys.executable, "-c", "import sys; sys.exit(3)"], free_port(),
                      "http://127.0.0.1:1/-/ready", status_file=status)
    sup = Supervisor(backoff=(0.1, 0.2, 0.4, 0.8))  # the real steps are seconds; the sequence is what counts
    said: list[str] = []
    sup.say = said.append
    sup.start(dying)
    sup.mark_ready(dying)
    watcher = threading.Thread(target=sup.watch, daemon=True)
    watcher.start()
    try:
        deadline = time.monotonic() + 30
        while sum("restarting it in" in line for line in said) < 4:
            assert time.monotonic() < deadline, said
            time.sleep(0.05)
        state = json.loads(status.read_text())
        assert state["state"] == "restarting" and state["exit_code"] == 3 and state["restarts"] == 1
    finally:
        sup.stop_requested.set()
        watcher.join(timeout=10)
        sup.stop_all()
    delays = [re.search(r"restarting it in ([\d.]+) s", line).group(1) for line in said if "restarting it in" in line]
    assert delays[:4] == ["0.1", "0.2", "0.4", "0.8"], said
    assert all("exit code 3" in line for line in said if "restarting it in" in line)
    assert not watcher.is_alive()
