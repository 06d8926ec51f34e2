"""The Benchmark page (Streamlit AppTest): configure and start a tiny run against the simulator, see its
results and history, compare two runs, and meet the production guard."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.bench import BenchStore

APP = str(Path(__file__).resolve().parents[1] / "app.py")


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
    assert run.status == "finished" and run.summary["requests"] == 4 and run.description.startswith("closed 2 users")
    history = at.dataframe[0].value  # the runs table, newest first
    assert list(history["id"]) == [run.id] and history["requests"][0] == 4


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
