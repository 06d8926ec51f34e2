"""lib.metrics.client: the client's hooks record into Prometheus metrics (real client, real simulator), on the
default registry or one given; the simulator and the gateway register none of them on import; the metrics server
(lib.metrics.exporter) starts once per process, and ui.clients shares one instrumented client per target."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from streamlit.testing.v1 import AppTest

from lib.dify import CircuitBreaker, DifyClient, DifyConnectionError, RetryPolicy, ServerError, TokenBucket
from lib.metrics.client import ClientMetrics, client_hooks
from lib.metrics.exporter import start_metrics_server
from tests.support.procs import ROOT, free_port

ROUTE = "POST /chat-messages"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_stream_records_requests_ttft_inter_token_tokens_and_in_flight(sim):
    target = f"t-{uuid.uuid4().hex[:6]}"
    with DifyClient(sim.url, "app-sim-chat", hooks=client_hooks(target)) as client:
        events = list(client.stream_chat("Count my tokens", user="metrics", headers={"X-Sim-Tokens-Per-S": "400"}))
        client.chat("And a blocking one", user="metrics")
    usage = events[-1].usage
    assert value("dify_client_requests_total", target=target, endpoint=ROUTE, status_class="2xx") == 2
    assert value("dify_client_ttft_seconds_count", target=target, endpoint=ROUTE) == 2
    gaps = value("dify_client_inter_token_seconds_count", target=target, endpoint=ROUTE)
    assert 10 < gaps < len(events)  # one gap between each pair of content events of the stream
    assert value("dify_client_request_duration_seconds_count", target=target, endpoint=ROUTE) == 2
    assert value("dify_client_output_tokens_total", target=target, endpoint=ROUTE) >= usage.completion_tokens > 0
    assert value("dify_client_requests_in_flight", target=target, endpoint=ROUTE) == 0
    assert value("dify_client_circuit_breaker_state", target=target) == 0


def test_retries_errors_rate_limit_waits_and_the_breaker(sim):
    target = f"t-{uuid.uuid4().hex[:6]}"
    fault = {"X-Sim-Fault": "503", "X-Sim-Fault-Times": "1", "X-Sim-Fault-Key": uuid.uuid4().hex}
    retry = RetryPolicy(max_attempts=3, base=0.01, cap=0.02)
    with DifyClient(sim.url, "app-sim-chat", hooks=client_hooks(target), retry=retry,
                    rate_limit=TokenBucket(20, burst=1)) as client:
        client.chat("Retried once", user="metrics", headers=fault)  # 503 first, then 200
        client.parameters()
        with pytest.raises(ServerError):
            client.chat("Always 500", user="metrics", headers={"X-Sim-Fault": "500"})
    assert value("dify_client_retries_total", target=target, endpoint=ROUTE, reason="HTTP 503") == 1
    assert value("dify_client_requests_total", target=target, endpoint=ROUTE, status_class="5xx") == 1
    assert value("dify_client_rate_limit_wait_seconds_total", target=target, kind="rate") > 0

    down = f"t-{uuid.uuid4().hex[:6]}"
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=60)
    with DifyClient(f"http://127.0.0.1:{free_port()}/v1", "app-x", hooks=client_hooks(down), breaker=breaker,
                    retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(DifyConnectionError):
            client.parameters()
    assert value("dify_client_circuit_breaker_state", target=down) == 2
    assert value("dify_client_requests_total", target=down, endpoint="GET /parameters", status_class="error") == 1
    assert value("dify_client_requests_in_flight", target=down, endpoint="GET /parameters") == 0


def test_no_key_or_url_in_any_label(sim):
    with DifyClient(sim.url, "app-sim-completion", hooks=client_hooks("labels")) as client:
        client.parameters()
    text = generate_latest(REGISTRY).decode()
    assert "app-sim-completion" not in text and sim.url not in text


def test_metrics_on_a_registry_of_ones_own_stay_there(sim):
    """ClientMetrics(registry): the same hooks, recording only into the registry given."""
    registry = CollectorRegistry()
    metrics = ClientMetrics(registry)
    target = f"own-{uuid.uuid4().hex[:6]}"
    with DifyClient(sim.url, "app-sim-chat", hooks=metrics.hooks(target)) as client:
        list(client.stream_chat("Where do I go?", user="metrics"))
    labels = {"target": target, "endpoint": ROUTE}
    assert registry.get_sample_value("dify_client_requests_total", {**labels, "status_class": "2xx"}) == 1
    assert registry.get_sample_value("dify_client_ttft_seconds_count", labels) == 1
    assert REGISTRY.get_sample_value("dify_client_requests_total", {**labels, "status_class": "2xx"}) is None
    assert client_hooks(target, metrics) is not None  # client_hooks takes the same injected set
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        ClientMetrics(registry)  # one set per registry, which is why the console's is made once per process


CLIENT_FAMILIES = """
import json, sys
from prometheus_client import REGISTRY
for name in sys.argv[1:]:
    if name == "+console":  # what the console does on its first page: make its client metrics
        from lib.metrics.client import console_metrics
        console_metrics()
    else:
        __import__(name)
print(json.dumps(sorted({m.name for m in REGISTRY.collect() if m.name.startswith("dify_client")})))
"""


def client_families_after(*steps: str) -> list[str]:
    """The dify_client_* families on a fresh process's default registry after importing `steps` in order."""
    run = subprocess.run([sys.executable, "-c", CLIENT_FAMILIES, *steps], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_simulator_and_the_gateway_register_no_console_metric_on_import():
    """They take their buckets from lib.metrics.buckets, which registers nothing. A fresh process each: this one
    has the console's metrics already."""
    assert client_families_after("lib.simulator", "lib.simulator.server", "lib.simulator.metrics") == []
    assert client_families_after("lib.gateway", "lib.gateway.app", "lib.gateway.metrics", "lib.gateway.proxy") == []
    assert client_families_after("lib.metrics", "lib.metrics.buckets", "lib.metrics.labels", "lib.metrics.client") == []
    # the same check sees them once the console makes its set
    assert "dify_client_requests" in client_families_after("lib.simulator", "+console")


def test_metrics_server_starts_once_and_survives_a_taken_port():
    code = """
import logging, sys
from lib.metrics.exporter import start_metrics_server
logging.basicConfig(level=logging.WARNING)
first = start_metrics_server(int(sys.argv[1]))
again = start_metrics_server(int(sys.argv[1]))
print(first, again)
"""
    port = free_port()
    run = subprocess.run([sys.executable, "-c", code, str(port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.stdout.split() == [str(port), str(port)], run.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-c", code, str(busy)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.split() == ["None", "None"]
    assert "metrics server not started" in run.stderr


def test_the_process_serves_its_metrics():
    port = start_metrics_server()  # CONSOLE_METRICS_PORT=0 in tests: a free port
    assert port
    body = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert "dify_client_requests_total" in body or "# TYPE dify_client_requests counter" in body


CLIENTS_SCRIPT = """
import streamlit as st
from lib.settings import Target
from ui.clients import get_client

sim = st.session_state["sim_url"]
a = get_client(Target("Sim chat", sim, "app-sim-chat", "simulator"))
b = get_client(Target("Sim chat", sim, "app-sim-chat", "simulator"))
c = get_client(Target("Sim completion", sim, "app-sim-completion", "simulator"))
answer = a.chat("hello from the cache", user="clients").answer
st.write(f"same={a is b} other={a is not c} repr={a!r} answered={bool(answer)}")
"""


def test_get_client_is_shared_per_target_and_instrumented(sim, tmp_path):
    script = tmp_path / "clients_page.py"
    script.write_text(CLIENTS_SCRIPT)
    at = AppTest.from_file(str(script), default_timeout=30)
    at.session_state["sim_url"] = sim.url
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = at.markdown[0].value
    assert "same=True other=True" in text and "answered=True" in text
    assert "app-sim-chat" not in text and "app-…chat" in text  # masked in the repr
    assert value("dify_client_requests_total", target="Sim chat", endpoint=ROUTE, status_class="2xx") >= 1
