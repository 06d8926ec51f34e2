"""scripts/run_console.py (`make run`): starts the simulator and the app, stops them all on Ctrl-C."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.support.procs import ROOT, free_port

SCRIPT = str(ROOT / "scripts" / "run_console.py")


def two_ports() -> tuple[int, int]:
    while (ports := (free_port(), free_port()))[0] == ports[1]:
        pass
    return ports


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


def launch(log: Path, **ports: int) -> subprocess.Popen:
    env = {**os.environ, **{name: str(port) for name, port in ports.items()}}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, SCRIPT], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_starts_both_services_and_ctrl_c_stops_everything(tmp_path):
    sim_port, ui_port = two_ports()
    log = tmp_path / "run_console.log"
    proc = launch(log, SIMULATOR_PORT=sim_port, STREAMLIT_PORT=ui_port)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while "Press Ctrl-C to stop." not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"run_console exited early with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"not ready after 90 s:\n{log.read_text()}"
            time.sleep(0.2)
        assert answers(f"http://127.0.0.1:{sim_port}/v1/")
        assert answers(f"http://127.0.0.1:{ui_port}/_stcore/health")
        output = log.read_text()
        assert f"http://127.0.0.1:{ui_port}" in output
        assert all(key in output for key in ("app-sim-chat", "app-sim-workflow", "app-sim-agent"))
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0, log.read_text()

        _, alive = psutil.wait_procs(children, timeout=3)
        assert not alive, f"left running: {alive}"
        assert port_is_free(sim_port) and port_is_free(ui_port)
        assert "Stopped." in log.read_text()
    finally:  # never leak servers into the rest of the session, even when an assertion failed
        for child in children:
            if child.is_running():
                child.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path):
    sim_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ui_port = taken.getsockname()[1]
        log = tmp_path / "run_console.log"
        proc = launch(log, SIMULATOR_PORT=sim_port, STREAMLIT_PORT=ui_port)
        assert proc.wait(timeout=30) != 0
    output = log.read_text()
    assert f"port {ui_port}" in output and "already in use" in output and "STREAMLIT_PORT" in output
    assert port_is_free(sim_port)  # the simulator was never started


def test_bad_port_setting_is_a_clear_error():
    proc = subprocess.run(
        [sys.executable, SCRIPT], cwd=ROOT, env={**os.environ, "SIMULATOR_PORT": "http"},
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0
    assert "SIMULATOR_PORT must be a port number" in proc.stderr
