"""`python -m lib.bench`: the --json object, exit codes for CI gating, comparing targets, the store commands."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.support.procs import ROOT

LATENCY = {"min", "p50", "p90", "p95", "p99", "p99.9", "mean", "std", "max"}
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


def test_percentiles_adds_figures_to_every_latency_and_slos_can_use_them(bench, sim):
    r = bench("run", "--target", "Simulator · chat", "-c", "2", "-n", "4", "--percentiles", "75,99.99", "--json",
              "--slo", "ttft_ms.p75<=60000")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["ttft_ms"]) == LATENCY | {"p75", "p99.99"} and doc["slo_checks"][0]["metric"] == "ttft_ms.p75"
    assert doc["ttft_ms"]["min"] <= doc["ttft_ms"]["p75"] <= doc["ttft_ms"]["max"]
    human = bench("run", "--target", "Simulator · chat", "-c", "1", "-n", "2", "--percentiles", "75")
    assert "p75" in human.stdout and "p99.9" in human.stdout
    assert bench("run", "--target", "Simulator · chat", "-c", "1", "--percentiles", "75,x").returncode == 2
    assert bench("run", "--target", "Simulator · chat", "-c", "1", "--slo", "ttft_ms.p75<=1").returncode == 2  # not computed


def test_load_shape_flags(bench, sim, tmp_path):
    r = bench("run", "--target", "Simulator · chat", "--load", "open", "--stages", "0.5:10,0.5:10", "--arrival", "constant", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # slots at 0, 1 .. 7 of 7.5 expected
    assert doc["requests"] == 8 and doc["description"].startswith("open, stages 0.5s→10 0.5s→10 req/s")
    trace = tmp_path / "arrivals.txt"
    trace.write_text("0\n0.2\n0.4\n")
    r = bench("run", "--target", "Simulator · chat", "--trace", str(trace), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["requests"] == 3, r.stderr
    r = bench("run", "--target", "Simulator · chat", "-c", "2", "-n", "4",
              "--synthetic-input", "40:5", "--synthetic-output", "20", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["input_tokens"] > 4 * 30, r.stderr
    r = bench("run", "--target", "Simulator · chat", "-r", "10", "-d", "1", "--ramp-up", "0.5", "--arrival", "constant", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["requests"] == 8, r.stderr  # 2.5 expected in the ramp + 5 after


@pytest.mark.parametrize("args", [
    ("--stages", "10:4", "-d", "5"), ("--stages", "10:x"), ("--stages", "1:2", "--trace", "t.txt"), ("--trace", "/no/such/file"),
    ("--stages", "1:2.5"), ("--synthetic-output", "20"), ("--synthetic-input", "0"), ("--load", "closed", "--rate", "2"),
])
def test_bad_load_shapes_exit_2(bench, args):
    r = bench("run", "--target", "Simulator · chat", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip(), (args, r.stderr)


def test_errors_are_counted_by_class_and_a_run_where_all_failed_exits_1(bench, sim):
    args = ("run", "--base-url", sim.url, "--api-key", "app-sim-chat", "-c", "2", "-n", "3", "--header", "X-Sim-Fault: error-event")
    r = bench(*args, "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["errors"] == {"StreamError": 3} and doc["failed"] == 3  # no SLO given: still a failure
    human = bench(*args)
    assert human.returncode == 1 and "every request failed" in human.stderr and "--allow-failures" in human.stderr
    allowed = bench(*args, "--json", "--allow-failures")
    assert allowed.returncode == 0 and json.loads(allowed.stdout)["failed"] == 3


def test_max_errors_stops_the_run_early(bench, sim):
    r = bench("run", "--base-url", sim.url, "--api-key", "app-sim-chat", "-c", "1", "-d", "30", "--max-errors", "3", "--json",
              "--header", "X-Sim-Fault: 503")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["stop_reason"] == "max_errors" and 3 <= doc["failed"] <= 4, doc
    assert "--max-errors 3" in doc["stop_detail"] and doc["duration_s"] < 10


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
    ("run", "--base-url", "localhost:5001", "--api-key", "app-x", "-c", "1"),  # no scheme
    ("run", "--base-url", "http://", "--api-key", "app-x", "-c", "1"),  # no host
    ("run", "--target", "Simulator · chat", "-c", "1", "--header", "X-Evil: a\r\nX-Injected: b"),  # CRLF
    ("run", "--target", "Simulator · chat", "-c", "1", "--header", "Bad Name: x"),
    ("run", "--target", "Simulator · chat", "-c", "1", "--mode", "blocking", "--slo-ttft-p95-ms", "500"),
    ("run", "--base-url", "http://127.0.0.1:1/v1", "--api-key-file", "/no/such/key", "-c", "1"),
])
def test_bad_arguments_exit_2(bench, args):
    r = bench(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip() and "Traceback" not in r.stderr


def test_bad_arguments_say_what_to_write(bench, tmp_path):
    r = bench("run", "--base-url", "localhost:5001", "--api-key", "app-x", "-c", "1")
    assert "needs http:// or https://" in r.stderr and "http://localhost:5001" in r.stderr
    r = bench("run", "--target", "Simulator · chat", "-c", "1", "--header", "X-Evil: a\r\nX-Injected: b")
    assert "line break" in r.stderr
    for args in (("--db", str(tmp_path), "list"), ("list", "--db", str(tmp_path)),
                 ("run", "--target", "Simulator · chat", "-c", "1", "-n", "1", "--db", str(tmp_path))):
        r = bench(*args)
        assert r.returncode == 2 and "is a folder" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_db_is_accepted_before_and_after_the_command(bench, tmp_path):
    db = tmp_path / "other.sqlite"
    r = bench("run", "--target", "Simulator · chat", "-c", "1", "-n", "1", "--db", str(db), "--name", "after")
    assert r.returncode == 0, r.stderr
    assert [x["name"] for x in json.loads(bench("--db", str(db), "list", "--json").stdout)] == ["after"]
    assert [x["name"] for x in json.loads(bench("list", "--json", "--db", str(db)).stdout)] == ["after"]
    assert json.loads(bench("list", "--json").stdout) == []  # the default store ($BENCH_DB) is untouched


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


SECRET_AUTH = "Basic dXNlcjpzM2NyZXQtcGFzc3dvcmQ="
SECRET_TOKEN = "tok-9f8e7d6c5b4a39281706"


def test_sensitive_headers_are_masked_in_the_store_exports_and_show(bench, sim, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("app-sim-chat\n")
    r = bench("run", "--base-url", sim.url, "--api-key-file", str(key_file), "-c", "1", "-n", "2", "--json",
              "--header", f"Proxy-Authorization: {SECRET_AUTH}", "--header", f"X-Session-Token: {SECRET_TOKEN}",
              "--header", "X-Sim-TTFT-Ms: 0")
    assert r.returncode == 0, r.stderr
    run_id = json.loads(r.stdout)["run_id"]
    shown = json.loads(bench("show", run_id, "--json").stdout)["config"]["headers"]
    assert shown == {"Proxy-Authorization": "Basic …cmQ=", "X-Session-Token": "tok-…1706", "X-Sim-TTFT-Ms": "0"}
    texts = [r.stdout, r.stderr, bench("show", run_id).stdout, bench("show", run_id, "--json").stdout]
    for fmt in ("json", "csv", "parquet"):
        out = tmp_path / f"run.{fmt}"
        assert bench("export", run_id, "-f", fmt, "-o", str(out)).returncode == 0
        texts.append(out.read_bytes().decode("latin-1"))
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.glob("bench.sqlite*")]  # the raw store, WAL included
    for text in texts:
        for secret in (SECRET_AUTH.split()[1], SECRET_TOKEN[4:], "app-sim-chat"):
            assert secret not in text
    assert "Basic …cmQ=".encode().decode("latin-1") in texts[4]  # the JSON export holds the masked form


def test_the_store_file_is_private_and_the_key_can_come_from_the_environment(bench, sim):
    env_key = {**os.environ, "SIMULATOR_URL": sim.url, "DIFY_API_KEY": "app-sim-chat", "BENCH_DB": str(bench.db)}
    r = subprocess.run([sys.executable, "-m", "lib.bench", "run", "--base-url", sim.url, "-c", "1", "-n", "1", "--json"],
                       cwd=ROOT, env=env_key, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for path in [bench.db, *bench.db.parent.glob("bench.sqlite-*")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def _wait_for_rows(db, at_least: int, timeout: float = 30.0) -> int:
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db) as con:
                n = con.execute("SELECT COUNT(*) FROM request_rows").fetchone()[0]
            if n >= at_least:
                return n
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the run saved fewer than {at_least} rows in {timeout} s")


def _start(bench, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DIFY_API_KEY": "", "BENCH_DB": str(bench.db)}
    return subprocess.Popen([sys.executable, "-m", "lib.bench", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """Answers of about 2-4 s (TTFT 200 ms, 20 tokens/s): a Ctrl-C always finds requests in flight."""
    from tests.support.procs import start_simulator

    server = start_simulator(tmp_path_factory.mktemp("slow"), "--ttft-ms", "200", "--tokens-per-s", "20", "--jitter", "0")
    yield server
    server.stop()


def test_ctrl_c_stops_sending_lets_answers_finish_saves_the_run_cancelled_and_exits_130(bench, slow):
    proc = _start(bench, "run", "--base-url", slow.url, "--api-key", "app-sim-chat", "-c", "3", "-d", "120", "--json",
                  "--cancel-grace", "30")
    try:
        before = _wait_for_rows(bench.db, 3)  # the first answers are in; three more are in flight
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "cancelling" in err
    doc = json.loads(out)  # the summary is printed
    assert doc["status"] == "cancelled" and doc["stop_reason"] == "cancelled"
    assert doc["abandoned"] == 0 and doc["failed"] == 0  # the answers in flight were waited for, not cut
    assert before < doc["succeeded"] <= before + 3 + 3  # it stopped sending: at most those in flight and the flush lag
    show = json.loads(bench("show", doc["run_id"], "--json").stdout)
    assert show["status"] == "cancelled" and show["summary"]["succeeded"] == doc["succeeded"]


def test_a_second_ctrl_c_stops_waiting(bench, slow):
    proc = _start(bench, "run", "--base-url", slow.url, "--api-key", "app-sim-chat", "-c", "2", "-d", "120",
                  "--cancel-grace", "120", "--header", "X-Sim-Tokens-Per-S", "--header", "X-Sim-Tokens-Per-S: 2")
    proc.communicate(timeout=30)
    assert proc.returncode == 2  # (a header without a colon is a usage error)
    proc = _start(bench, "run", "--base-url", slow.url, "--api-key", "app-sim-chat", "-c", "2", "-d", "120", "--json",
                  "--cancel-grace", "120", "--header", "X-Sim-TTFT-Ms: 300000")  # answers that never come in time
    try:
        import sqlite3

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the run is saved as running once the app was read
            try:
                with sqlite3.connect(bench.db) as con:
                    if con.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]:
                        break
            except sqlite3.Error:
                pass
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err and "stopping now" in err
    assert time.monotonic() - started < 15
    doc = json.loads(out)
    assert doc["status"] == "cancelled" and doc["abandoned"] == 2 and doc["requests"] == 0


def test_show_of_a_crashed_run_does_not_claim_a_self_check(bench):
    from lib.bench import BenchStore
    from lib.bench.records import RequestRecord

    store = BenchStore(bench.db)
    store.create_run("crashed-run", config={"base_url": "http://127.0.0.1:1/v1", "concurrency": 2, "duration_s": 10},
                     environment={}, target="t", base_url="http://127.0.0.1:1/v1", description="closed 2 users, 10 s")
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.update_run("crashed-run", pid=dead.pid)  # the process that ran it is gone
    store.add_requests("crashed-run", [RequestRecord(seq=i, warmup=False, worker=0, prompt=0, t_scheduled=100.0 * i,
                                                     t_first_content=100.0 * i + 50, t_end=100.0 * i + 80, ttft_ms=50.0,
                                                     e2e_ms=80.0, ok=True, chunks=1, attempts=1) for i in range(3)])
    r = bench("show", "crashed-run")
    assert r.returncode == 0, r.stderr
    assert "crashed" in r.stdout and "self-check ok" not in r.stdout and "self-check: not available" in r.stdout
    assert "succeeded 3" in r.stdout  # the figures come from the rows it saved


def test_html_writes_the_report_of_a_run_a_shown_run_and_a_comparison(bench, sim, tmp_path):
    from tests.support.html_check import parse_report

    first = tmp_path / "run.html"
    r = bench("run", "--base-url", sim.url, "--api-key", "app-sim-workflow", "-c", "2", "-n", "3", "--json", "--html", str(first))
    assert r.returncode == 0, r.stderr
    run_id = json.loads(r.stdout)["run_id"]  # stdout still holds exactly the JSON object
    second = json.loads(bench("run", "--target", "Simulator · chat", "-c", "1", "-n", "2", "--json").stdout)["run_id"]
    shown, compared = tmp_path / "show.html", tmp_path / "cmp.html"
    assert bench("show", run_id, "--html", str(shown)).returncode == 0
    assert bench("compare", run_id, second, "--html", str(compared)).returncode == 0
    for path in (first, shown, compared):
        html = path.read_text(encoding="utf-8")
        parsed = parse_report(html)
        assert not parsed.problems, (path.name, parsed.problems)
        assert "app-sim-workflow" not in html and "app-sim-chat" not in html
    text = " ".join(parse_report(first.read_text(encoding="utf-8")).text)
    assert run_id in text and "Where the time goes" in text and "Slowest node: " in text  # the --fast simulator: any node
    assert second in " ".join(parse_report(compared.read_text(encoding="utf-8")).text)
    bad = bench("show", run_id, "--html", str(tmp_path / "no-such-folder" / "x.html"))
    assert bad.returncode == 3 and "cannot write the HTML report" in bad.stderr and "Traceback" not in bad.stderr
