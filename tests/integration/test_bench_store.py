"""The run store: round trip, exports, and crash safety (kill -9 mid-run keeps the rows)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from lib.bench import BenchStore, RunConfig, run_benchmark
from lib.bench.export import export_bytes, export_run, read_parquet_run
from tests.support.procs import ROOT, start_simulator


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    server = start_simulator(tmp_path_factory.mktemp("paced"), "--ttft-ms", "150", "--tokens-per-s", "100", "--jitter", "0")
    yield server
    server.stop()


def test_round_trip_list_load_compare_export_delete(sim, tmp_path):
    store = BenchStore(tmp_path / "bench.sqlite")
    a = run_benchmark(RunConfig(base_url=sim.url, name="a", concurrency=2, requests=6), "app-sim-chat", store=store)
    b = run_benchmark(RunConfig(base_url=sim.url, name="b", concurrency=2, requests=4, headers={"X-Sim-Fault": "drop"}),
                      "app-sim-chat", store=store)
    runs = store.runs()
    assert [r.id for r in runs] == [b.run_id, a.run_id]  # newest first
    info = store.get(a.run_id[:-2])  # a unique prefix works too
    assert info.id == a.run_id and info.status == "finished" and info.name == "a"
    assert RunConfig.model_validate(info.config).requests == 6 and info.environment["python"]
    assert info.summary == json.loads(json.dumps(a.summary))  # saved as computed
    rows = store.requests([a.run_id, b.run_id], label=True)
    assert list(rows["run"].unique()) == ["a", "b"] and len(rows) == 10
    assert rows.loc[rows["run"] == "a", "itl_ms"].map(len).gt(0).all()
    assert not rows.loc[rows["run"] == "b", "ok"].any()
    assert store.summary(b.run_id)["errors"] == {"StreamInterruptedError": 4}

    csv = pd.read_csv(export_run(store, a.run_id, "csv", tmp_path / "a.csv"))
    assert len(csv) == 6 and json.loads(csv["itl_ms"][0]) and set(csv["run_id"]) == {a.run_id}
    doc = json.loads(export_bytes(store, a.run_id, "json"))
    assert doc["config"]["name"] == "a" and len(doc["requests"]) == 6 and doc["summary"]["requests"] == 6
    frame, meta = read_parquet_run(export_run(store, a.run_id, "parquet", tmp_path / "a.parquet"))
    assert len(frame) == 6 and list(frame["itl_ms"][0]) == rows["itl_ms"][0] and meta["id"] == a.run_id
    for fmt in ("csv", "json", "parquet"):  # the key is never stored, so never exported
        assert b"app-sim-chat" not in export_bytes(store, a.run_id, fmt)
    assert b"app-sim-chat" not in (tmp_path / "bench.sqlite").read_bytes()

    assert store.delete_run(b.run_id) and [r.id for r in store.runs()] == [a.run_id]
    assert store.requests(b.run_id).empty


def test_a_killed_run_keeps_its_rows_and_reads_as_crashed(paced, tmp_path):
    db = tmp_path / "bench.sqlite"
    cmd = [sys.executable, "-m", "lib.bench", "--db", str(db), "run", "--base-url", paced.url, "--api-key", "app-sim-chat",
           "--concurrency", "4", "--duration", "120", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        store = None
        while time.monotonic() < deadline:  # each answer takes ~1.2 s: wait for two rounds to be written
            if db.exists():
                store = BenchStore(db)
                runs = store.runs()
                if runs and store.request_count(runs[0].id) >= 8:
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        else:
            pytest.fail("the CLI run wrote no rows in time")
        assert store.runs()[0].status == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    (run,) = BenchStore(db).runs()
    assert run.status == "crashed" and "stopped before it finished" in run.error
    kept = BenchStore(db).requests(run.id)
    assert len(kept) >= 8 and kept["ok"].all()
    summary = BenchStore(db).summary(run.id)  # computed from the rows the crash left
    assert summary["succeeded"] == len(kept) and summary["ttft_ms"]["p50"] > 100
    listed = subprocess.run([sys.executable, "-m", "lib.bench", "--db", str(db), "list", "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(listed.stdout)[0]["status"] == "crashed"
