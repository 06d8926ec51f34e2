"""The Benchmark page (Streamlit AppTest): configure and start a tiny run against the simulator, see its
results and history, compare two runs, and meet the production guard."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.bench import BenchStore, RunConfig, run_benchmark
from lib.bench.jobs import get_job
from lib.settings import Target

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture
def page(sim, tmp_path, monkeypatch):
    for name in ("DIFY_API_BASE", "DIFY_API_KEY", "DIFY_TARGET_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIMULATOR_URL", sim.url)
    monkeypatch.setenv("BENCH_DB", str(tmp_path / "bench.sqlite"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/benchmark.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def set_(at: AppTest, kind: str, key: str, value) -> None:
    getattr(at, kind)(key=f"bench_form_{key}").set_value(value).run()
    assert not at.exception, [e.value for e in at.exception]


def run_until_done(at: AppTest, timeout: float = 60.0) -> None:
    """Start the run and rerun the page until the live panel gave way to the results."""
    at.button(key="bench_start").click().run()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert not at.exception, [e.value for e in at.exception]
        if "bench_job" in at.session_state and not any(s.value == "Running" for s in at.subheader) and at.metric:
            return
        time.sleep(0.3)
        at.run()
    pytest.fail("the benchmark did not finish on the page")


def test_a_tiny_run_shows_results_and_history(page):
    at = page
    assert at.title[0].value == "Benchmark" and any("No runs yet" in i.value for i in at.info)
    set_(at, "number_input", "concurrency", 2)
    set_(at, "radio", "stop", "requests")
    set_(at, "number_input", "requests", 4)
    set_(at, "text_input", "query", "How fast is this app?")
    run_until_done(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "4" and metrics["Success"] == "100.0%"
    assert len(at.get("plotly_chart")) >= 8  # histograms, CDFs, over time, throughput, ITL, errors
    text = " ".join(c.value for c in at.caption)
    assert "TTFT = first content chunk" in text and "TPOT = (end-to-end − TTFT)" in text  # the formulas, shown
    (run,) = BenchStore().runs()
    assert run.status == "finished" and run.summary["requests"] == 4 and run.description.startswith("closed, 2 users")
    history = at.dataframe[0].value  # the runs table, newest first
    assert list(history["id"]) == [run.id] and history["requests"][0] == 4
    assert _download_labels(at, f"bench_dl_html_{run.id}") == ["Download HTML report"]  # the run's report


def test_two_runs_selected_are_compared(page):
    at = page
    set_(at, "radio", "stop", "requests")
    set_(at, "number_input", "requests", 3)
    run_until_done(at)
    set_(at, "number_input", "concurrency", 2)
    run_until_done(at)
    ids = [r.id for r in BenchStore().runs()]
    at.multiselect(key="bench_show").set_value(ids).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value == "2 runs compared" for s in at.subheader)
    assert len(at.get("plotly_chart")) >= 6
    assert _download_labels(at, "bench_cmp_") == ["Download HTML report"]  # the comparison's report, one for both


def _download_labels(at: AppTest, key_start: str) -> list[str]:
    """The labels of the download buttons whose widget id names `key_start` (AppTest has no download_button type)."""
    return [b.proto.label for b in at.get("download_button") if key_start in b.proto.id]


def test_a_heavy_run_against_a_remote_target_needs_confirmation(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULATOR_URL", sim.url)
    monkeypatch.setenv("BENCH_DB", str(tmp_path / "bench.sqlite"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["targets"] = {"prod": {"base_url": "https://dify.example.com/v1", "api_key": "app-prodkey0123456789"}}
    at.run()
    at.switch_page("pages/benchmark.py").run()
    set_(at, "multiselect", "targets", ["prod"])
    set_(at, "number_input", "concurrency", 20)
    assert any("Production guard" in w.value for w in at.warning)
    assert at.button(key="bench_start").disabled  # until the box is ticked
    at.checkbox(key="bench_confirm").check().run()
    assert not at.button(key="bench_start").disabled  # (never clicked: no load leaves this machine)


# -- the run's worker process (lib.bench.jobs, lib.bench.worker) --------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _until(condition, timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)


def test_a_page_run_runs_in_a_worker_process_and_cancel_stops_it(sim_factory, tmp_path, monkeypatch):
    paced = sim_factory("--ttft-ms", "200", "--tokens-per-s", "50", "--jitter", "0")
    for name in ("DIFY_API_BASE", "DIFY_API_KEY", "DIFY_TARGET_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIMULATOR_URL", paced.url)
    monkeypatch.setenv("BENCH_DB", str(tmp_path / "bench.sqlite"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/benchmark.py").run()
    set_(at, "number_input", "concurrency", 2)
    set_(at, "number_input", "duration", 120.0)
    at.button(key="bench_start").click().run()
    job = get_job(at.session_state["bench_job"])
    _until(lambda: job.progress.ok >= 2, what="two answers")
    worker = job.pid
    assert worker != os.getpid() and _alive(worker)
    # The key goes by stdin: not in the worker's command line, nor in its environment.
    assert b"app-sim-chat" not in Path(f"/proc/{worker}/cmdline").read_bytes()
    assert b"app-sim-chat" not in Path(f"/proc/{worker}/environ").read_bytes()
    at.run()
    at.button(key="bench_cancel").click().run()
    assert job.wait(30), "the worker did not stop after Cancel"
    assert not _alive(worker)
    (run,) = BenchStore().runs()
    assert run.status == "cancelled" and run.summary["requests"] >= 2  # what was measured is kept
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any(s.value == "Running" for s in at.subheader)


PARENT = """
import sys, time
from lib.bench import BenchStore, RunConfig, TargetSpec
from lib.bench.jobs import start_job
job = start_job(RunConfig(base_url=sys.argv[1], concurrency=1, duration_s=300, app="chat"),
                [TargetSpec("sim", sys.argv[1], "app-sim-chat")], BenchStore(sys.argv[2]))
while job.progress.ok < 1:
    time.sleep(0.1)
print(job.pid, flush=True)
if sys.argv[3] == "exit":
    sys.exit(0)  # a normal exit (Streamlit stopped): atexit stops the worker
time.sleep(600)  # killed with SIGKILL: the end of file on the worker's stdin stops it
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_the_worker_never_outlives_the_console(sim_factory, tmp_path, how):
    paced = sim_factory("--ttft-ms", "100", "--tokens-per-s", "100", "--jitter", "0")
    db = tmp_path / "bench.sqlite"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, paced.url, str(db), how], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        if how == "kill":
            parent.kill()
        parent.wait(30)
        _until(lambda: not _alive(worker), what="the worker's exit")
    finally:
        if parent.poll() is None:
            parent.kill()
    (run,) = BenchStore(db).runs()
    assert run.status == "cancelled" and run.summary["requests"] >= 1


def test_the_form_offers_the_playgrounds_targets_and_follows_the_sidebar(page, sim):
    at = page
    added = Target("Via gateway", sim.url, "app-sim-chat", "dify")
    at.session_state["session_targets"] = [added]  # as the Playground's "Add target" leaves it
    at.run()
    assert "Via gateway" in at.multiselect(key="bench_form_targets").options
    at.selectbox(key="target_name").set_value("Via gateway").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="bench_form_targets").value == ["Via gateway"]
    assert at.markdown[0].value == "Target: **Via gateway**"  # the header says what the form will load
    set_(at, "multiselect", "targets", ["Via gateway", "Simulator · chat"])
    assert at.markdown[0].value == "Targets: **Via gateway**, **Simulator · chat**"


# -- readable results, confirmed deletes, sentences for bad input (issue 12, items 5 and 7) -------------

def _saved_run(sim, **update) -> str:
    """A small finished run in the page's store (run in this process: quicker than through the page)."""
    outcome = run_benchmark(RunConfig(base_url=sim.url, app="chat", concurrency=1, requests=3, name=update.pop("name", "")),
                            "app-sim-chat", store=BenchStore())
    if update:
        store = BenchStore()
        store.update_run(outcome.run_id, summary={**store.summary(outcome.run_id), **update})
    return outcome.run_id


def test_the_new_run_form_stays_folded_after_a_run(page):
    at = page
    assert at.expander[0].label == "New run" and at.expander[0].proto.expanded  # open on a first visit
    set_(at, "radio", "stop", "requests")
    set_(at, "number_input", "requests", 2)
    run_until_done(at)
    new_run = next(e for e in at.expander if e.label == "New run")
    assert not new_run.proto.expanded  # the results come first, not the form again
    assert at.metric  # ... and they are there


def test_a_delete_asks_first_and_says_what_it_deleted(page, sim):
    at = page
    keep, gone = _saved_run(sim, name="keep me"), _saved_run(sim, name="delete me")
    at.run()
    at.multiselect(key="bench_show").set_value([gone]).run()
    at.button(key="bench_delete").click().run()
    assert {r.id for r in BenchStore().runs()} == {keep, gone}  # nothing deleted yet: a question first
    assert any("Delete 1 run" in w.value and "delete me" in w.value for w in at.warning)
    at.button(key="bench_delete_keep").click().run()
    assert {r.id for r in BenchStore().runs()} == {keep, gone} and not at.warning
    at.button(key="bench_delete").click().run()
    at.button(key="bench_delete_confirm").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [r.id for r in BenchStore().runs()] == [keep]
    assert any(s.value.startswith("Deleted 1 run: delete me") and gone in s.value for s in at.success)


def test_results_read_as_sentences_and_percent(page, sim):
    at = page
    first = _saved_run(sim, name="before")
    second = _saved_run(sim, name="after", client_bound=True, client_bound_reasons=[
        "event-loop lag p99 was 30.0 ms (limit 10.0 ms)", "the engine's event loop was on the CPU 95% of the time"])
    at.run()
    at.multiselect(key="bench_show").set_value([second]).run()
    warning = next(w.value for w in at.warning if "Client-bound" in w.value)
    assert "\n- Event-loop lag p99 was 30.0 ms (limit 10.0 ms).\n- The engine's event loop" in warning  # a list
    table = next(d.value for d in at.dataframe if "p99" in d.value.columns and "Time to first token" in d.value.index)
    assert list(table.index[:3]) == ["Time to first token", "End-to-end", "Inter-chunk gap"]
    assert all(v == "–" or len(v.partition(".")[2]) <= 1 for v in table.to_numpy().ravel())  # 0-1 decimals
    assert any(m.label == "Throughput (req/s)" for m in at.metric)
    at.multiselect(key="bench_show").set_value([first, second]).run()
    compared = next(d.value for d in at.dataframe if "change (last vs first)" in d.value.columns)
    assert all(v == "–" or v.endswith("%") for v in compared["change (last vs first)"])
    assert "Time to first token p95 (ms)" in compared.index
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("key, kind, value, says", [
    ("sweep", "text_input", "1, x", "Sweep levels are numbers separated by commas, such as 1, 2, 4, 8: \u201cx\u201d is not a number."),
    ("inputs", "text_input", "{bad", 'Inputs must be a JSON object such as {"topic": "rivers"}; this one is not valid JSON'),
    ("sweep", "text_input", "1.5, 2", "A concurrency sweep takes whole numbers of users."),
])
def test_bad_input_gets_a_sentence(page, key, kind, value, says):
    at = page
    set_(at, kind, key, value)
    problem = next(c.value for c in at.caption if c.value.startswith("Cannot start"))
    assert says in problem and "could not convert" not in problem and "Value error" not in problem
    assert at.button(key="bench_start").disabled


def test_a_workflow_run_shows_where_the_time_goes_and_a_chat_run_does_not(page, sim_factory):
    at = page
    paced = sim_factory("--ttft-ms", "60", "--tokens-per-s", "400", "--jitter", "0", "--node-overhead-ms", "30", "--node-ms", "5")
    chat = run_benchmark(RunConfig(base_url=paced.url, concurrency=1, requests=2), "app-sim-chat", store=BenchStore()).run_id
    wf = run_benchmark(RunConfig(base_url=paced.url, concurrency=2, requests=4), "app-sim-workflow", store=BenchStore()).run_id
    at.run()
    at.multiselect(key="bench_show").set_value([chat]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Where the time goes" not in [s.value for s in at.subheader]
    assert _download_labels(at, "bench_dl_") == ["Download CSV", "Download JSON", "Download Parquet", "Download HTML report"]
    charts_chat = len(at.get("plotly_chart"))
    at.multiselect(key="bench_show").set_value([wf]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Where the time goes" in [s.value for s in at.subheader]
    assert any(m.value.startswith("Slowest node: **LLM** (llm)") and "(4 requests)" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == charts_chat + 2  # the per-node stats and one request's waterfall
    table = next(d.value for d in at.dataframe if "segment" in d.value.columns)
    assert {"Dify before the first node", "LLM", "end-to-end"} <= set(table["segment"])
    text = " ".join(c.value for c in at.caption)
    assert "the benchmark's TTFT and end-to-end start at its scheduled time" in text
    assert "from its send to its end here" in text and "end-to-end in the benchmark's figures" in text
    rows = BenchStore().requests(wf, columns=["e2e_ms", "t_sent", "t_end"])
    slowest = rows.assign(wf=rows["t_end"] - rows["t_sent"]).sort_values("wf").iloc[-1]
    at.radio(key=f"bench_nodes_{wf}_pick").set_value("slowest").run()
    assert any(c.value.startswith(f"Request {int(slowest['seq'])}: ") for c in at.caption)
    at.radio(key=f"bench_nodes_{wf}_pick").set_value("request").run()
    at.number_input(key=f"bench_nodes_{wf}_seq").set_value(2).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(c.value.startswith("Request 2: ") for c in at.caption)
    at.toggle(key=f"bench_nodes_{wf}_failed").set_value(True).run()  # failed requests too: none here, the same 4
    assert not at.exception, [e.value for e in at.exception]
    assert any("(4 requests)" in m.value for m in at.markdown)
