"""The console process's /metrics endpoint: the default registry, where `console_metrics()` records."""
from __future__ import annotations

import logging
import os
import threading

from prometheus_client import start_http_server

from .client import console_metrics

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9464

_server_lock = threading.Lock()
_server_port: int | None = None
_server_tried = False


def metrics_port(environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    return int(env.get("CONSOLE_METRICS_PORT") or DEFAULT_METRICS_PORT)


def start_metrics_server(port: int | None = None, addr: str | None = None) -> int | None:
    """Serve the default registry (the console's client metrics) on http://addr:port/metrics, once per process.

    Port from CONSOLE_METRICS_PORT (default 9464), address from CONSOLE_METRICS_ADDR (default 127.0.0.1:
    loopback, where make run's Prometheus scrapes; a container sets 0.0.0.0).

    Later calls return the port of the first one. A port already taken (another console on this machine)
    is logged and ignored: metrics are not worth crashing the app for. Returns the port, or None.
    """
    global _server_port, _server_tried
    console_metrics()  # the dify_client_* families are listed from the first scrape, before any call
    with _server_lock:
        if _server_tried:
            return _server_port
        _server_tried = True
        port = metrics_port() if port is None else port
        addr = addr or os.environ.get("CONSOLE_METRICS_ADDR") or "127.0.0.1"
        try:
            server, _ = start_http_server(port, addr=addr)
        except OSError as exc:
            log.warning("metrics server not started on %s:%s (%s); the console runs without /metrics", addr, port, exc)
            return None
        _server_port = port = server.server_port  # the real one when asked for port 0
        log.info("client metrics on http://%s:%s/metrics", addr, port)
        return port
