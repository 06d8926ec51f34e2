#!/usr/bin/env python3
"""Run the console locally: the Dify simulator and the Streamlit app, supervised (`make run`).

Each service runs in its own process group, so Ctrl-C or SIGTERM stops every process this script
started, grandchildren included, and frees the ports. To run another service (the gateway,
Prometheus), add a `Service` to `services()`.

Environment: SIMULATOR_PORT (5001), STREAMLIT_PORT (8501), SIMULATOR_ARGS (extra simulator flags,
e.g. "--fast"); DIFY_API_BASE/DIFY_API_KEY make a real Dify app the default target.
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.settings import SIMULATOR_APPS, SettingsError, default_target, load_targets, read_secrets_file  # noqa: E402

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0  # seconds for a service to answer its ready URL
STOP_TIMEOUT = 8.0  # seconds between SIGTERM and SIGKILL


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    port: int
    ready_url: str  # answers 200 once the service is up
    env: dict[str, str] = field(default_factory=dict)  # on top of this process's environment


def services(environ: Mapping[str, str]) -> list[Service]:
    """What `make run` starts, in order."""
    sim_port = _port(environ, "SIMULATOR_PORT", 5001)
    ui_port = _port(environ, "STREAMLIT_PORT", 8501)
    sim_url = f"http://{HOST}:{sim_port}/v1"
    py = sys.executable
    return [
        Service(
            "simulator",
            [py, "-m", "lib.simulator", "--host", HOST, "--port", str(sim_port),
             *shlex.split(environ.get("SIMULATOR_ARGS", ""))],
            sim_port,
            f"{sim_url}/",
        ),
        Service(
            "streamlit",
            [py, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.address={HOST}",
             f"--server.port={ui_port}", "--browser.gatherUsageStats=false"],
            ui_port,
            f"http://{HOST}:{ui_port}/_stcore/health",
            env={"SIMULATOR_URL": sim_url},
        ),
    ]


class Supervisor:
    """Starts services, watches them, and stops them all. Signals only set a flag (no exception can
    land between starting a process and recording it, which would orphan it)."""

    def __init__(self) -> None:
        self.running: list[tuple[Service, subprocess.Popen]] = []
        self._relays: list[threading.Thread] = []
        self.stop_requested = threading.Event()
        self._print_lock = threading.Lock()

    def request_stop(self, signum: int, _frame: object) -> None:
        self.stop_requested.set()

    def say(self, text: str) -> None:
        with self._print_lock:
            print(text, flush=True)

    def start(self, service: Service) -> subprocess.Popen:
        proc = subprocess.Popen(
            service.argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **service.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: killpg reaches its children too
        )
        self.running.append((service, proc))
        relay = threading.Thread(target=self._relay, args=(service.name, proc), daemon=True)
        relay.start()
        self._relays.append(relay)
        return proc

    def _relay(self, name: str, proc: subprocess.Popen) -> None:
        """Copy a service's output to ours, each line prefixed with the service name."""
        for line in iter(proc.stdout.readline, b""):
            try:
                self.say(f"[{name}] {line.decode(errors='replace').rstrip()}")
            except (BrokenPipeError, ValueError):  # our stdout is gone; keep draining the pipe
                pass

    def wait_ready(self, service: Service, proc: subprocess.Popen) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(trust_env=False, timeout=1.0) as http:  # no proxy for loopback
            while not self.stop_requested.is_set():
                if proc.poll() is not None:
                    self.say(f"ERROR: {service.name} exited with code {proc.returncode} before it was ready.")
                    return False
                try:
                    if http.get(service.ready_url).status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.say(f"ERROR: {service.name} did not answer {service.ready_url} within {READY_TIMEOUT:.0f} s.")
                    return False
                time.sleep(0.2)
        return False

    def watch(self) -> int:
        """Block until a stop is requested (exit 0) or a service dies (exit 1)."""
        while not self.stop_requested.wait(0.3):
            for service, proc in self.running:
                if proc.poll() is not None:
                    self.say(f"ERROR: {service.name} exited unexpectedly with code {proc.returncode}.")
                    return 1
        return 0

    def stop_all(self) -> None:
        """SIGTERM every process group, SIGKILL what is left after STOP_TIMEOUT."""
        for _, proc in self.running:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for service, proc in reversed(self.running):
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{service.name} did not stop within {STOP_TIMEOUT:.0f} s; killing it.")
            _signal_group(proc, signal.SIGKILL)  # also any grandchild still in the group
            proc.wait()
        for relay in self._relays:  # print the services' last words
            relay.join(timeout=1.0)
        self.running.clear()


def main() -> int:
    try:
        planned = services(os.environ)
    except ValueError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    if problem := _port_problem(planned):
        print(f"ERROR: {problem}", file=sys.stderr)
        return 2

    sup = Supervisor()
    signal.signal(signal.SIGINT, sup.request_stop)
    signal.signal(signal.SIGTERM, sup.request_stop)
    try:
        for service in planned:
            sup.say(f"Starting {service.name} on port {service.port} ...")
            if not sup.wait_ready(service, sup.start(service)):
                return 0 if sup.stop_requested.is_set() else 1
        sup.say(_banner(planned))
        return sup.watch()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        sup.say("Stopping ...")
        sup.stop_all()
        sup.say("Stopped.")


def _banner(planned: list[Service]) -> str:
    ports = {s.name: s.port for s in planned}
    lines = [
        "",
        f"Dify Console:  http://{HOST}:{ports['streamlit']}",
        f"Simulator API: http://{HOST}:{ports['simulator']}/v1",
        "",
        "Demo keys (simulator apps):",
        *(f"  {mode:<14} {key}" for _, mode, key in SIMULATOR_APPS),
    ]
    sim_url = next(s.env["SIMULATOR_URL"] for s in planned if "SIMULATOR_URL" in s.env)
    try:
        target = default_target(load_targets(read_secrets_file(), environ={**os.environ, "SIMULATOR_URL": sim_url}))
        if target.kind == "dify":
            lines += ["", f"Default target: {target} (a real Dify app; the simulator's apps are in the picker too)"]
    except (SettingsError, OSError, ValueError) as exc:  # the app shows the same problem in the page
        lines += ["", f"WARNING: target configuration: {exc}"]
    return "\n".join([*lines, "", "Press Ctrl-C to stop.", ""])


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name} must be a port number, got {raw!r}.")
    return int(raw)


def _port_problem(planned: list[Service]) -> str | None:
    seen: dict[int, str] = {}
    for service in planned:
        if service.port in seen:
            return f"{service.name} and {seen[service.port]} are both set to port {service.port}."
        seen[service.port] = service.name
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no conflict
            try:
                s.bind((HOST, service.port))
            except OSError:
                var = f"{service.name.upper()}_PORT"
                return (
                    f"port {service.port} on {HOST} ({service.name}) is already in use. "
                    f"Stop whatever holds it, or choose another port, e.g. {var}={service.port + 1} make run"
                )
    return None


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session made the pid the group id
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
