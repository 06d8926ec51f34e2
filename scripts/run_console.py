#!/usr/bin/env python3
"""Run the console locally, supervised (`make run`): the Dify simulator, the gateway, Prometheus and
the Streamlit app.

Each service runs in its own process group, so Ctrl-C or SIGTERM stops every process this script
started, grandchildren included, and frees the ports. To run another service, add a `Service` to
`services()`.

Environment: SIMULATOR_PORT (5001), GATEWAY_PORT (8080), PROMETHEUS_PORT (9090), STREAMLIT_PORT (8501),
CONSOLE_METRICS_PORT (9464, the app's own /metrics), SIMULATOR_ARGS (extra simulator flags, e.g.
"--fast"); DIFY_API_BASE/DIFY_API_KEY make a real Dify app the default target and the gateway's
upstream (else the gateway fronts the simulator's chat app); GATEWAY_API_KEYS (default
`demo:gw-demo-key`); PROMETHEUS_URL uses a Prometheus already running instead of starting one;
PROMETHEUS_DATA_DIR (data/prometheus) holds its storage.

Prometheus is not essential: if it dies, the rest keeps running and it is restarted with backoff
(1 s, 2 s, 4 s ... 30 s; from 1 s again after it stayed up a minute). Each stop and return is written to
PROMETHEUS_DATA_DIR/status.json, which the Metrics page reads to say what happened. Any other service
dying stops everything (exit 1), as its absence would make the console lie.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.gateway.config import DEMO_CALLER_KEY  # noqa: E402
from lib.prometheus_process import (  # noqa: E402
    INSTALL_HINT, STATUS_ENV, PrometheusNotFound, PrometheusStatus, exit_reason, prometheus_argv, write_status,
)
from lib.settings import SIMULATOR_APPS, SettingsError, default_target, load_targets, read_secrets_file  # noqa: E402

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0  # seconds for a service to answer its ready URL
STOP_TIMEOUT = 8.0  # seconds between SIGTERM and SIGKILL
RESTART_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # seconds before each successive restart attempt
STABLE_AFTER = 60.0  # seconds up after which the next stop starts the backoff from its first step


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    port: int
    ready_url: str  # answers 200 once the service is up
    env: dict[str, str] = field(default_factory=dict)  # on top of this process's environment
    also_binds: dict[str, int] = field(default_factory=dict)  # other ports it listens on, by their variable
    url: str = ""  # what the banner shows
    prepare: Callable[[], None] | None = None  # run just before starting it (e.g. write its config)
    status_file: Path | None = None  # set: not essential; restarted with backoff when it dies, reported here


def services(environ: Mapping[str, str]) -> list[Service]:
    """What `make run` starts, in order."""
    sim_port = _port(environ, "SIMULATOR_PORT", 5001)
    gw_port = _port(environ, "GATEWAY_PORT", 8080)
    ui_port = _port(environ, "STREAMLIT_PORT", 8501)
    metrics_port = _port(environ, "CONSOLE_METRICS_PORT", 9464)
    sim_url = f"http://{HOST}:{sim_port}/v1"
    py = sys.executable
    planned = [
        Service(
            "simulator",
            [py, "-m", "lib.simulator", "--host", HOST, "--port", str(sim_port),
             *shlex.split(environ.get("SIMULATOR_ARGS", ""))],
            sim_port,
            f"{sim_url}/",
            url=sim_url,
        ),
        Service(
            "gateway",
            [py, "-m", "lib.gateway", "--host", HOST, "--port", str(gw_port)],
            gw_port,
            f"http://{HOST}:{gw_port}/health",
            env=gateway_env(environ, sim_url),
            url=f"http://{HOST}:{gw_port}/v1",
        ),
    ]
    prometheus_url = (environ.get("PROMETHEUS_URL") or "").strip().rstrip("/")
    status_file = ""
    if not prometheus_url:
        prom_port = _port(environ, "PROMETHEUS_PORT", 9090)
        prometheus_url = f"http://{HOST}:{prom_port}"
        data_dir = Path(environ.get("PROMETHEUS_DATA_DIR") or ROOT / "data" / "prometheus")
        try:
            argv = prometheus_argv(data_dir / "prometheus.yml", data_dir / "tsdb", prom_port, HOST)
        except PrometheusNotFound:
            argv = None  # main() says how to install it; the console runs on without it
        scrape = {"console": f"{HOST}:{metrics_port}", "gateway": f"{HOST}:{gw_port}", "simulator": f"{HOST}:{sim_port}"}
        planned.append(Service(
            "prometheus", argv or [], prom_port, f"{prometheus_url}/-/ready", url=prometheus_url,
            prepare=partial(write_prometheus_config, data_dir, scrape), status_file=data_dir / "status.json",
        ))
        status_file = str(data_dir / "status.json")
    planned.append(Service(
        "streamlit",
        [py, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.address={HOST}",
         f"--server.port={ui_port}", "--browser.gatherUsageStats=false"],
        ui_port,
        f"http://{HOST}:{ui_port}/_stcore/health",
        env={"SIMULATOR_URL": sim_url, "PROMETHEUS_URL": prometheus_url, "CONSOLE_METRICS_PORT": str(metrics_port),
             STATUS_ENV: status_file},
        also_binds={"CONSOLE_METRICS_PORT": metrics_port},
        url=f"http://{HOST}:{ui_port}",
    ))
    return planned


def gateway_env(environ: Mapping[str, str], sim_url: str) -> dict[str, str]:
    """The gateway fronts the default target when it is a real Dify app (DIFY_API_BASE/DIFY_API_KEY from
    the environment, .env or secrets.toml), else the simulator's chat app."""
    env = {"GATEWAY_API_KEYS": environ.get("GATEWAY_API_KEYS") or f"demo:{DEMO_CALLER_KEY}",
           "DIFY_API_BASE": sim_url, "DIFY_API_KEY": "app-sim-chat"}
    try:
        target = default_target(load_targets(read_secrets_file(), environ={**environ, "SIMULATOR_URL": sim_url}))
    except (SettingsError, OSError, ValueError):  # the banner and the app report the configuration problem
        return env
    if target.kind == "dify":
        env |= {"DIFY_API_BASE": target.base_url, "DIFY_API_KEY": target.api_key}
    return env


# The targets deploy/prometheus.yml names, at make run's default ports.
DEPLOY_TARGETS = {"console": "127.0.0.1:9464", "gateway": "127.0.0.1:8080", "simulator": "127.0.0.1:5001"}


def write_prometheus_config(data_dir: Path, scrape: dict[str, str]) -> None:
    """deploy/prometheus.yml with make run's actual ports, as data_dir/prometheus.yml."""
    data_dir.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "deploy" / "prometheus.yml").read_text()
    for job, target in scrape.items():
        text = text.replace(f"'{DEPLOY_TARGETS[job]}'", f"'{target}'")
    (data_dir / "prometheus.yml").write_text(text)


class Supervisor:
    """Starts services, watches them, and stops them all. Signals only set a flag (no exception can
    land between starting a process and recording it, which would orphan it)."""

    def __init__(self) -> None:
        self.running: list[tuple[Service, subprocess.Popen]] = []
        self._relays: list[threading.Thread] = []
        self.stop_requested = threading.Event()
        self._print_lock = threading.Lock()
        self.keepers: dict[str, Keeper] = {}  # by service name: the services restarted when they die

    def request_stop(self, signum: int, _frame: object) -> None:
        self.stop_requested.set()

    def say(self, text: str) -> None:
        with self._print_lock:
            print(text, flush=True)

    def start(self, service: Service) -> subprocess.Popen:
        if service.status_file is not None and service.name not in self.keepers:  # first start: no stale news
            write_status(service.status_file, PrometheusStatus(state="starting"))
        if service.prepare is not None:
            service.prepare()
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
        """Block until a stop is requested (exit 0) or an essential service dies (exit 1); restart the others."""
        while not self.stop_requested.wait(0.3):
            for service, proc in list(self.running):
                keeper = self.keepers.get(service.name)
                if keeper is not None:
                    keeper.tick(proc)
                elif proc.poll() is not None:
                    self.say(f"ERROR: {service.name} exited unexpectedly with code {proc.returncode}.")
                    return 1
        return 0

    def mark_ready(self, service: Service) -> None:
        """A service that is restarted when it dies is up: from now on its keeper watches it."""
        if service.status_file is not None:
            self.keepers[service.name] = Keeper(self, service)

    def replace(self, service: Service) -> subprocess.Popen:
        """Start `service` again, in place of its dead process."""
        self.running = [(s, p) for s, p in self.running if s.name != service.name]
        return self.start(service)

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


class Keeper:
    """Restarts a non-essential service (Prometheus) when it dies, with backoff, and records each stop and
    return in its status file. Driven by Supervisor.watch's ticks, so it never blocks a stop request for long."""

    def __init__(self, sup: Supervisor, service: Service) -> None:
        self.sup, self.service = sup, service
        self.state = "running"  # running -> waiting (dead, restart at next_at) -> starting (until ready)
        self.attempt = 0  # index into RESTART_BACKOFF
        self.up_since = time.monotonic()
        self.next_at = 0.0
        self.started_at = 0.0
        self.status = PrometheusStatus(state="running")
        self._write()

    def tick(self, proc: subprocess.Popen) -> None:
        now = time.monotonic()
        if self.state in ("running", "starting") and proc.poll() is not None:
            self._stopped(proc.returncode, now)
        elif self.state == "waiting" and now >= self.next_at:
            self.sup.say(f"Restarting {self.service.name} (attempt {self.attempt}) ...")
            self.sup.replace(self.service)
            self.state, self.started_at = "starting", now
        elif self.state == "starting":
            if self._answers():
                self.state, self.up_since = "running", now
                self.status = replace(self.status, state="running", restarted_at=time.time(), next_attempt_at=None)
                self._write()
                self.sup.say(f"{self.service.name} is back on port {self.service.port}.")
            elif now - self.started_at > READY_TIMEOUT:
                self.sup.say(f"{self.service.name} did not answer {self.service.ready_url} within {READY_TIMEOUT:.0f} s.")
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
                self._stopped(proc.returncode, now)

    def _stopped(self, code: int | None, now: float) -> None:
        if self.state == "running" and now - self.up_since >= STABLE_AFTER:
            self.attempt = 0  # it ran fine for a while: this is a new incident, not a crash loop
        delay = RESTART_BACKOFF[min(self.attempt, len(RESTART_BACKOFF) - 1)]
        self.attempt += 1
        self.state, self.next_at = "waiting", now + delay
        first_stop = self.status.state == "running"  # not a failed restart attempt
        self.status = replace(
            self.status, state="restarting", exit_code=code, next_attempt_at=time.time() + delay,
            stopped_at=time.time() if first_stop else self.status.stopped_at,
            restarts=self.status.restarts + (1 if first_stop else 0),
        )
        self._write()
        self.sup.say(f"WARNING: {self.service.name} stopped ({exit_reason(code)}); restarting it in {delay:g} s "
                     "(the other services keep running).")

    def _answers(self) -> bool:
        try:
            with httpx.Client(trust_env=False, timeout=0.5) as http:
                return http.get(self.service.ready_url).status_code == 200
        except httpx.HTTPError:
            return False

    def _write(self) -> None:
        try:
            write_status(self.service.status_file, self.status)
        except OSError as exc:  # a full disk must not take the console down; the page then probes
            self.sup.say(f"WARNING: could not write {self.service.status_file}: {exc}")


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
            if not service.argv:  # Prometheus without a binary: the Metrics page says how to get one
                sup.say(f"WARNING: no `prometheus` binary, so the Metrics page has no data: {INSTALL_HINT}.")
                continue
            sup.say(f"Starting {service.name} on port {service.port} ...")
            if not sup.wait_ready(service, sup.start(service)):
                return 0 if sup.stop_requested.is_set() else 1
            sup.mark_ready(service)
        sup.say(_banner(planned))
        return sup.watch()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        sup.say("Stopping ...")
        sup.stop_all()
        sup.say("Stopped.")


def _banner(planned: list[Service]) -> str:
    by_name = {s.name: s for s in planned}
    ui, sim, gw = by_name["streamlit"], by_name["simulator"], by_name["gateway"]
    callers = gw.env.get("GATEWAY_API_KEYS", "")
    demo = callers == f"demo:{DEMO_CALLER_KEY}"
    lines = [
        "",
        f"Dify Console:  {ui.url}",
        f"Simulator API: {sim.url}",
        f"Gateway API:   {gw.url}   (upstream: {gw.env.get('DIFY_API_BASE') or 'DIFY_API_BASE'})",
        f"Prometheus:    {ui.env['PROMETHEUS_URL']}" + ("" if "prometheus" in by_name and by_name["prometheus"].argv
                                                         or "prometheus" not in by_name else "   (not started)"),
        "",
        "Demo keys (simulator apps):",
        *(f"  {mode:<14} {key}" for _, mode, key in SIMULATOR_APPS),
        "",
        f"Gateway caller key: {DEMO_CALLER_KEY} (demo; set GATEWAY_API_KEYS for your own)" if demo
        else "Gateway caller keys: from GATEWAY_API_KEYS",
        f"  curl -N {gw.url}/chat-messages -H 'Authorization: Bearer {DEMO_CALLER_KEY if demo else '<caller key>'}' "
        "-H 'Content-Type: application/json' "
        """-d '{"query": "Hello", "user": "web-1", "inputs": {}, "response_mode": "streaming"}'""",
    ]
    try:
        target = default_target(load_targets(read_secrets_file(), environ={**os.environ, "SIMULATOR_URL": sim.url}))
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
        if not service.argv:
            continue
        ports = {f"{service.name.upper()}_PORT": service.port, **service.also_binds}
        for var, port in ports.items():
            if port in seen:
                return f"{var} and {seen[port]} are both set to port {port}."
            seen[port] = var
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no conflict
                try:
                    s.bind((HOST, port))
                except OSError:
                    return (
                        f"port {port} on {HOST} ({service.name}) is already in use. "
                        f"Stop whatever holds it, or choose another port, e.g. {var}={port + 1} make run"
                    )
    return None


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session made the pid the group id
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
