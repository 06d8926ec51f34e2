"""`python -m lib.bench`: the --json object, exit codes for CI gating, comparing targets, the store commands."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.support.procs import ROOT

LATENCY = {"p50", "p90", "p95", "p99", "mean", "max"}
REQUIRED = {"requests", "succeeded", "failed", "duration_s", "request_throughput", "output_tokens_per_s", "ttft_ms", "e2e_ms",
            "itl_ms", "tpot_ms", "errors", "client_bound"}


@pytest.fixture
def bench(tmp_path, sim):
    """Run the CLI against a store of the test's own; the simulator's targets point at `sim`."""
    db = tmp_path / "bench.sqlite"
    env = {**os.environ, "SIMULATOR_URL": sim.url, "DIFY_API_BASE": "", "DIFY_API_KEY": "", "BENCH_DB": str(db)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lib.bench", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    run.db = db  # type: ignore[attr-defined]
    return run


def test_json_object_has_the_listed_keys_and_exit_0(bench, sim):
    r = bench("run", "--base-url", sim.url, "--api-key", "app-sim-chat", "--concurrency", "2", "--requests", "4", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout is exactly one JSON object
    assert REQUIRED <= set(doc)
    for metric in ("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms"):
        assert set(doc[metric]) == LATENCY and doc[metric]["p50"] >= 0  # the --fast simulator: gaps may be ~0
    assert doc["requests"] == doc["succeeded"] == 4 and doc["failed"] == 0 and doc["errors"] == {}
    assert isinstance(doc["client_bound"], bool) and doc["output_tokens_per_s"] > 0 and doc["duration_s"] > 0
    assert "app-sim-chat" not in r.stdout + r.stderr


def test_errors_are_counted_by_class(bench, sim):
    r = bench("run", "--base-url", sim.url, "--api-key", "app-sim-chat", "-c", "2", "-n", "3", "--json",
              "--header", "X-Sim-Fault: error-event")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["errors"] == {"StreamError": 3} and doc["failed"] == 3


def test_slo_gates_the_exit_code(bench, sim):
    base = ("run", "--target", "Simulator · chat", "-c", "2", "-n", "3")
    met = bench(*base, "--slo-ttft-p95-ms", "60000", "--slo-min-success-rate", "0.99")
    assert met.returncode == 0, met.stderr + met.stdout
    assert "SLO ttft_ms.p95 <= 60000" in met.stdout and "met" in met.stdout
    missed = bench(*base, "--slo-ttft-p95-ms", "0.001", "--json")
    assert missed.returncode == 1
    doc = json.loads(missed.stdout)
    assert doc["slo_passed"] is False and doc["slo_checks"][0]["metric"] == "ttft_ms.p95"
    generic = bench(*base, "--slo", "request_throughput>=100000")
    assert generic.returncode == 1 and "MISSED" in generic.stdout


@pytest.mark.parametrize("args", [
    ("run", "--target", "Simulator · chat", "--concurrency", "2", "--rate", "3"),  # closed and open at once
    ("run", "--target", "No such target", "-c", "1"),
    ("run", "-c", "1"),  # no target
    ("run", "--target", "Simulator · chat", "--bogus"),
    ("run", "--target", "Simulator · chat", "--duration", "1", "--requests", "3"),
    ("run", "--target", "Simulator · chat", "--slo", "ttft_ms.p42<=1"),
    ("run", "--target", "Simulator · chat", "--prompts", "/no/such/file.csv"),
    ("show", "no-such-run"),
])
def test_bad_arguments_exit_2(bench, args):
    r = bench(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip()


def test_a_heavy_run_against_a_remote_target_wants_confirmation(bench):
    # Refused before any request is sent (192.0.2.0/24 is TEST-NET: nothing answers there anyway).
    r = bench("run", "--base-url", "http://192.0.2.1/v1", "--api-key", "app-x", "--rate", "50", "-d", "1")
    assert r.returncode == 2 and "--confirm-production" in r.stderr and "not this machine" in r.stderr


def test_a_run_that_cannot_reach_its_app_exits_3(bench, sim):
    r = bench("run", "--base-url", sim.url, "--api-key", "app-not-a-key", "-c", "1", "-n", "1")
    assert r.returncode == 3 and "401" in r.stderr


def test_compare_targets_ranks_them(bench):
    r = bench("run", "-t", "Simulator · chat", "-t", "Simulator · completion", "-c", "2", "-n", "3", "--json",
              "--rank-by", "e2e_ms.p50")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rank_by"] == "e2e_ms.p50" and [x["rank"] for x in doc["ranking"]] == [1, 2]
    assert {x["label"] for x in doc["ranking"]} == {"Simulator · chat", "Simulator · completion"}
    assert all(REQUIRED <= set(v) for v in doc["runs"])
    values = [x["value"] for x in doc["ranking"]]
    assert values == sorted(values)


def test_store_commands(bench, sim, tmp_path):
    for n in ("3", "4"):
        assert bench("run", "--target", "Simulator · chat", "-c", "1", "-n", n, "--name", f"n{n}").returncode == 0
    listed = json.loads(bench("list", "--json").stdout)
    assert [r["name"] for r in listed] == ["n4", "n3"] and all(r["status"] == "finished" for r in listed)
    ids = [r["id"] for r in listed]
    show = json.loads(bench("show", ids[0], "--json").stdout)
    assert show["summary"]["requests"] == 4 and show["config"]["requests"] == 4
    assert "TTFT" in bench("show", ids[0]).stdout
    cmp = bench("compare", ids[1], ids[0], "--json")
    assert cmp.returncode == 0 and json.loads(cmp.stdout)["table"]["requests"] != {}
    assert "change" in bench("compare", ids[1], ids[0]).stdout
    out = tmp_path / "run.parquet"
    assert bench("export", ids[0], "--format", "parquet", "--out", str(out)).returncode == 0
    assert len(pd.read_parquet(out)) == 4
    csv = tmp_path / "run.csv"
    assert bench("export", ids[0], "-f", "csv", "-o", str(csv)).returncode == 0 and len(pd.read_csv(csv)) == 4
    assert bench("delete", ids[1]).returncode == 0
    assert [r["id"] for r in json.loads(bench("list", "--json").stdout)] == [ids[0]]
