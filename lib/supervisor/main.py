"""`make run` (scripts/run_console.py): check the ports, start every service in order, print where they
are, watch them until Ctrl-C or SIGTERM, then stop them all."""
from __future__ import annotations

import os
import signal
import socket
import sys

from lib.gateway.config import DEMO_CALLER_KEY
from lib.metrics.prometheus_process import INSTALL_HINT
from lib.settings import SIMULATOR_APPS, SettingsError, default_target, load_targets, read_secrets_file

from .processes import Supervisor
from .services import HOST, Service, services


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
