"""The run store: round trip, exports, and crash safety (kill -9 mid-run keeps the rows)."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
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
    assert len(frame) == 6 and list(frame["itl_ms"][0]) == list(rows["itl_ms"][0]) and meta["id"] == a.run_id
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


def _streaming_row(i: int):
    from array import array

    from lib.bench.records import RequestRecord

    return RequestRecord(seq=i, warmup=False, worker=i % 8, prompt=0, t_scheduled=10.0 * i, t_sent=10.0 * i + 0.2,
                         t_first_content=10.0 * i + 300, t_end=10.0 * i + 1300, ttft_ms=300.0, e2e_ms=1300.0, tpot_ms=10.0,
                         chunks=100, itl_ms=array("d", [10.0 + (j % 3) * 0.125 for j in range(99)]), output_tokens=100,
                         output_tokens_source="usage", ok=True, http_status=200, attempts=1)


def test_streaming_rows_stay_small_on_disk_and_read_column_wise(tmp_path):
    store = BenchStore(tmp_path / "bench.sqlite")
    run_id = "20261203-120000-abcdef"  # a real-length id: it is not repeated in every row
    store.create_run(run_id, config={"base_url": "http://x/v1"}, environment={})
    store.add_requests(run_id, [_streaming_row(i) for i in range(3000)])
    store.checkpoint()
    size = sum(p.stat().st_size for p in tmp_path.glob("bench.sqlite*"))
    assert size / 3000 < 1000, size / 3000  # ~0.6 KB a row (the first layout took 4.7 KB: overflow pages)
    some = store.requests(run_id, columns=["ttft_ms", "ok"])
    assert list(some.columns) == ["run_id", "seq", "ttft_ms", "ok"] and len(some) == 3000
    rows = store.requests(run_id, last=2)
    assert list(rows["seq"]) == [2998, 2999] and list(rows["itl_ms"][0][:3]) == [10.0, 10.125, 10.25]
    with pytest.raises(ValueError, match="no such request columns"):
        store.requests(run_id, columns=["nope"])


def test_a_store_in_the_first_layout_is_converted_on_open(tmp_path):

    import numpy as np

    from lib.bench.records import COLUMNS

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the first layout: text run ids in every row, float64 gaps, WITHOUT ROWID
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT, group_id TEXT, group_kind TEXT, level REAL, status TEXT NOT NULL,"
                   " target TEXT, base_url TEXT, app TEXT, mode TEXT, description TEXT, created_at REAL, finished_at REAL, config TEXT,"
                   " environment TEXT, summary TEXT, selfcheck TEXT, error TEXT, pid INTEGER, host TEXT, heartbeat REAL)")
        old_cols = [c for c in COLUMNS if c != "malformed"]
        db.execute(f"CREATE TABLE requests (run_id TEXT NOT NULL, {', '.join(old_cols)}, PRIMARY KEY (run_id, seq)) WITHOUT ROWID")
        db.execute("INSERT INTO runs (id, status, created_at, config, environment) VALUES ('r1', 'finished', 1.0, '{}', '{}')")
        db.execute("INSERT INTO requests (run_id, seq, warmup, ok, ttft_ms, itl_ms) VALUES ('r1', 0, 0, 1, 250.0, ?)",
                   (np.array([10.5, 11.25]).astype("<f8").tobytes(),))
    store = BenchStore(path)
    rows = store.requests("r1")
    assert len(rows) == 1 and rows["ttft_ms"][0] == 250.0 and list(rows["itl_ms"][0]) == [10.5, 11.25]
    with sqlite3.connect(path) as db:
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'requests'").fetchone()
    store.create_run("r2", config={}, environment={})
    assert store.run_key("r2") == 2 and store.request_count("r1") == 1


def test_opening_a_store_keeps_the_locks_another_connection_of_this_process_holds(tmp_path):
    """A BenchStore opened while this process reads the file (the page opens one per script run while a run's
    writer works) must not drop that reader's SQLite locks: were they dropped, another process could switch
    the journal off (or checkpoint away the WAL) under it, the way the page and the CLI corrupted a store."""

    path = tmp_path / "bench.sqlite"
    BenchStore(path)
    held = sqlite3.connect(path)
    held.execute("BEGIN")
    held.execute("SELECT count(*) FROM runs").fetchone()
    BenchStore(path)
    code = ("import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], timeout=0)\n"
            "try:\n    print(db.execute('PRAGMA journal_mode=DELETE').fetchone()[0])\n"
            "except sqlite3.OperationalError as exc:\n    print(exc)\n")
    other = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=30)
    held.close()
    assert other.stdout.strip() == "database is locked", other.stdout + other.stderr
