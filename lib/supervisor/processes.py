"""Start services, watch them, stop them all: make run's supervisor and the keeper that restarts Prometheus.

Each service runs in its own process group, so a stop reaches every process it started, grandchildren
included, and frees the ports. A service with a status file (Prometheus) is not essential: when it dies
it is restarted with backoff (RESTART_BACKOFF; from its first step again after it stayed up STABLE_AFTER)
and each stop and return is written to that file. Any other service dying ends watch() with 1.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import replace

import httpx

from lib.metrics.prometheus_process import PrometheusStatus, exit_reason, write_status

from .services import ROOT, Service

READY_TIMEOUT = 60.0  # seconds for a service to answer its ready URL
STOP_TIMEOUT = 8.0  # seconds between SIGTERM and SIGKILL
RESTART_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # seconds before each successive restart attempt
STABLE_AFTER = 60.0  # seconds up after which the next stop starts the backoff from its first step


class Supervisor:
    """Starts services, watches them, and stops them all. Signals only set a flag (no exception can
    land between starting a process and recording it, which would orphan it)."""

    def __init__(self, backoff: tuple[float, ...] = RESTART_BACKOFF) -> None:
        self.backoff = backoff  # seconds before each successive restart of a non-essential service
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
        assert proc.stdout is not None  # started with stdout=PIPE
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
        if service.status_file is None:
            raise ValueError(f"{service.name} has no status file: only a service with one is kept and restarted.")
        self.sup, self.service, self.status_file = sup, service, service.status_file
        self.state = "running"  # running -> waiting (dead, restart at next_at) -> starting (until ready)
        self.attempt = 0  # index into the supervisor's backoff
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

    def _stopped(self, code: int, now: float) -> None:  # a returncode after poll() or wait()
        if self.state == "running" and now - self.up_since >= STABLE_AFTER:
            self.attempt = 0  # it ran fine for a while: this is a new incident, not a crash loop
        backoff = self.sup.backoff
        delay = backoff[min(self.attempt, len(backoff) - 1)]
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
            write_status(self.status_file, self.status)
        except OSError as exc:  # a full disk must not take the console down; the page then probes
            self.sup.say(f"WARNING: could not write {self.status_file}: {exc}")


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session made the pid the group id
    except ProcessLookupError:
        pass
