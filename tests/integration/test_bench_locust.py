"""The locustfile drives the same client and reports the same figures, alone and as master + worker."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lib.bench import BenchStore
from tests.support.procs import ROOT, free_port

LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "lib" / "bench" / "locustfile.py")]
REQUIRED = {"requests", "succeeded", "failed", "duration_s", "request_throughput", "output_tokens_per_s", "ttft_ms", "e2e_ms",
            "itl_ms", "tpot_ms", "errors", "client_bound"}


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    from tests.support.procs import start_simulator

    server = start_simulator(tmp_path_factory.mktemp("paced"), "--ttft-ms", "150", "--tokens-per-s", "100", "--jitter", "0")
    yield server
    server.stop()


def common(sim_url: str, tmp: Path, *extra: str) -> list[str]:
    return ["--headless", "--only-summary", "--host", sim_url, "--dify-api-key", "app-sim-chat", "--bench-db", str(tmp / "bench.sqlite"),
            "--bench-json", str(tmp / "summary.json"), *extra]


def check(tmp: Path, name: str) -> dict:
    summary = json.loads((tmp / "summary.json").read_text())
    assert REQUIRED <= set(summary) and summary["succeeded"] > 0 and summary["failed"] == 0
    assert abs(summary["ttft_ms"]["p50"] / 150 - 1) < 0.25 and abs(summary["tpot_ms"]["p50"] / 10 - 1) < 0.25
    (run,) = BenchStore(tmp / "bench.sqlite").runs()
    assert run.status == "finished" and run.name == name
    assert BenchStore(tmp / "bench.sqlite").request_count(run.id) == summary["requests"]
    return summary


def test_locust_alone(paced, tmp_path):
    r = subprocess.run([*LOCUST, *common(paced.url, tmp_path, "-u", "4", "-r", "4", "-t", "4s", "--bench-name", "alone",
                                         "--bench-slo", "ttft_ms.p95<=5000", "--csv", str(tmp_path / "locust"))],
                       cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "TTFT" in r.stdout + r.stderr  # Locust's own table has TTFT and TPOT rows
    check(tmp_path, "alone")
    rows = {(row["Type"], row["Name"]): row for row in csv.DictReader((tmp_path / "locust_stats.csv").open())}
    requests = int(rows[("DIFY", "POST /chat-messages")]["Request Count"])
    assert requests > 0 and int(rows[("TTFT", "POST /chat-messages")]["Request Count"]) == requests
    aggregated = rows[("", "Aggregated")]  # the TTFT/TPOT pseudo-rows stay out of the totals
    assert int(aggregated["Request Count"]) == requests
    assert float(aggregated["Requests/s"]) == pytest.approx(float(rows[("DIFY", "POST /chat-messages")]["Requests/s"]))


def test_locust_slo_miss_exits_1(paced, tmp_path):
    r = subprocess.run([*LOCUST, *common(paced.url, tmp_path, "-u", "2", "-r", "2", "-t", "3s", "--bench-slo", "ttft_ms.p95<=1")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert r.returncode == 1, r.stderr[-3000:]
    assert json.loads((tmp_path / "summary.json").read_text())["slo_passed"] is False


def test_locust_master_and_worker(paced, tmp_path):
    port = free_port()
    master = subprocess.Popen([*LOCUST, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                               "--expect-workers", "1",
                               *common(paced.url, tmp_path, "-u", "4", "-r", "4", "-t", "4s", "--bench-name", "spread")],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker = subprocess.Popen([*LOCUST, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out, _ = master.communicate(timeout=90)
        assert master.returncode == 0, out[-3000:]
        worker.wait(30)
    finally:
        for p in (master, worker):
            if p.poll() is None:
                p.kill()
                p.wait(10)
    summary = check(tmp_path, "spread")  # the worker's records reached the master and its store
    assert "1 worker process" in summary["description"]
