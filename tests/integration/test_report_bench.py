"""The HTML report of benchmark runs (lib.report.bench): real short runs of the CLI against the simulator,
with a key and a sensitive extra header, written to a file and read back, then opened in headless
Chromium from file:// with the network cut off."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lib.bench import RunConfig, TargetSpec, compare_targets
from lib.bench.stats import FORMULAS
from lib.bench.store import BenchStore
from lib.report.bench import (
    bench_report,
    mask_headers,
    report_file_name,
    write_bench_report,
)
from tests.support.browser import chromium, overflowing_titles
from tests.support.html_check import parse_report
from tests.support.procs import ROOT

KEY = "app-sim-chat"
SECRET = "tok-Secret-7c1e-94bd-1234abcd"  # the value of a header that carries a token
BUNDLE_MARK = "plotly.js v"


def cli_run(sim, db, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lib.bench", "--db", str(db), "run", "--base-url", sim.url, "--requests", "6",
         "--header", f"X-Api-Token: {SECRET}", "--header", "X-Sim-Ttft-Ms: 15", *args],
        cwd=ROOT, env={**os.environ, "DIFY_API_KEY": KEY}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return BenchStore(db).runs()[0].id  # newest first


@pytest.fixture(scope="module")
def runs(sim, tmp_path_factory):
    db = tmp_path_factory.mktemp("report") / "bench.sqlite"
    first = cli_run(sim, db, "--concurrency", "1", "--name", "one user")
    second = cli_run(sim, db, "--concurrency", "3", "--name", "three users")
    return BenchStore(db), first, second


def _read(path) -> str:
    html = path.read_text(encoding="utf-8")
    parsed = parse_report(html)
    assert not parsed.problems, parsed.problems
    assert html.count(BUNDLE_MARK) == 1  # plotly.js inlined, once
    assert not [s for s in parsed.sources if s.startswith(("http:", "https:", "//"))]  # no CDN, nothing remote
    assert parsed.sources == []
    return html


def test_a_run_report_holds_figures_formulas_config_and_environment_never_the_key(runs, tmp_path):
    store, run_id, _ = runs
    path = write_bench_report(store, [run_id], tmp_path / report_file_name([run_id]))
    assert path.name == f"bench-{run_id}.html"
    html = _read(path)
    assert KEY not in html and SECRET not in html and SECRET[-12:] not in html  # nowhere, not even in chart data
    assert "X-Api-Token: tok-…abcd" in html  # the header is there, masked
    assert "X-Sim-Ttft-Ms: 15" in html  # the simulator's knob in clear: it is how the run was paced
    text = " ".join(parse_report(html).text)
    info, summary = store.get(run_id), store.summary(run_id)
    assert f"Benchmark run: {info.label}" in text and run_id in text and info.description in text
    for key in ("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "request_throughput", "success_rate", "duration_s", "origin"):
        assert FORMULAS[key] in text, key  # each figure's formula, as the page shows it
    assert f"{summary['request_throughput']:,.2f} req/s" in text and "100.0%" in text
    env = info.environment
    assert env["python"] in text and env["platform"] in text and "package httpx" in text
    assert "concurrency" in text and "closed, 1 user, 6 requests, streaming" in text


def test_a_comparison_report_has_each_run(runs, tmp_path):
    store, first, second = runs
    report = bench_report(store, [first, second])
    assert report.title == "Benchmark comparison: 2 runs"
    path = write_bench_report(store, [first, second], tmp_path / "cmp.html", rank_by="e2e_ms.p95")
    html = _read(path)
    assert KEY not in html and SECRET not in html
    text = " ".join(parse_report(html).text)
    assert first in text and second in text and "change (last vs first)" in text and "Time to first token p95 (ms)" in text
    assert "Best first by End-to-end p95 (ms)" in text and FORMULAS["e2e_ms"] in text
    assert text.count("X-Api-Token: tok-…abcd; X-Sim-Ttft-Ms: 15") == 2  # the configurations side by side: a column a run


def test_no_run_or_an_unknown_one_is_a_clear_error(runs, tmp_path):
    store, _, _ = runs
    with pytest.raises(ValueError, match="at least one run id"):
        write_bench_report(store, [], tmp_path / "none.html")
    with pytest.raises(KeyError):
        write_bench_report(store, ["20990101-000000-nope00"], tmp_path / "unknown.html")
    assert not (tmp_path / "unknown.html").exists()  # nothing half-written


def test_header_values_are_masked_but_the_simulators_knobs():
    assert mask_headers({"Authorization": "Bearer abcdefghijklmnop", "X-Short": "abc", "X-Sim-Fault": "rate_limit"}) == {
        "Authorization": "…mnop", "X-Short": "…", "X-Sim-Fault": "rate_limit"}


def test_the_report_renders_offline_in_chromium_with_the_runs_data(runs, tmp_path):
    store, first, second = runs
    single = write_bench_report(store, [first], tmp_path / "run.html")
    compared = write_bench_report(store, [first, second], tmp_path / "cmp.html")
    ttft = np.sort(store.requests(first).query("ok and not warmup")["ttft_ms"].to_numpy(dtype=float))
    fetched, errors = [], []
    with chromium() as browser:
        context = browser.new_context(offline=True, viewport={"width": 1366, "height": 900})
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        page = context.new_page()
        page.on("request", lambda r: fetched.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        for path, charts in ((single, 8), (compared, 8)):
            page.goto(path.as_uri())
            page.locator(".plot-container").nth(charts - 1).wait_for(timeout=60_000)
            assert page.locator(".js-plotly-plot .plot-container").count() == charts
            assert page.locator(".js-plotly-plot .main-svg").count() >= charts  # each drew its svg
            assert overflowing_titles(page) == []  # the two-column charts: a long title ran off its chart
        # The first chart of the run report is its TTFT histogram: the browser holds exactly the run's TTFTs
        # (_fullData: the values as plotly.js decoded them; `data` still holds the base64 it was given).
        page.goto(single.as_uri())
        page.locator(".plot-container").first.wait_for(timeout=60_000)
        drawn = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot')[0]._fullData[0].x)")
        assert np.allclose(np.sort(np.asarray(drawn, dtype=float)), ttft)
        page.goto(compared.as_uri())
        page.locator(".plot-container").first.wait_for(timeout=60_000)
        names = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot')[1].data).map(t => t.name)")
        labels = store.labels([first, second])
        assert set(names) == {labels[first], labels[second]}  # the CDF: one line per run
        context.close()
    assert [u for u in fetched if not u.startswith("file:")] == [] and not errors, (fetched, errors)


def test_a_sweeps_runs_report_their_curve(sim, tmp_path):
    db = tmp_path / "sweep.sqlite"
    cli_run(sim, db, "--sweep", "1,2")
    store = BenchStore(db)
    levels = store.runs()
    assert len(levels) == 2 and {r.group_kind for r in levels} == {"sweep"}
    one = bench_report(store, [levels[0].id])
    sweep = next(s for s in one.sections if s.title == "Sweep")
    curves = [b.figure for b in sweep.blocks]
    assert [list(c.data[0].text) for c in curves] == [["1", "2"], ["1", "2"]]  # a point per level, labelled
    both = bench_report(store, [r.id for r in levels])
    charts = next(s for s in both.sections if s.title == "Charts").blocks
    assert any(b.figure.layout.title.text.startswith("Throughput vs TTFT across the sweep") for b in charts)
    html = _read(write_bench_report(store, [r.id for r in levels], tmp_path / "sweep.html"))
    assert KEY not in html and SECRET not in html


def test_a_run_of_compared_targets_reports_their_ranking(sim, tmp_path):
    store = BenchStore(tmp_path / "compare.sqlite")
    config = RunConfig(base_url=sim.url, app="chat", requests=3, headers={"Authorization-Extra": SECRET})
    outcomes = compare_targets(config, [TargetSpec("left", sim.url, KEY), TargetSpec("right", sim.url, KEY)], store=store)
    report = bench_report(store, [outcomes[0].run_id])
    ranking = next(s for s in report.sections if s.title == "Compared targets").blocks[0].figure
    assert sorted(ranking.data[0].y) == ["left", "right"]
    html = _read(write_bench_report(store, [outcomes[0].run_id], tmp_path / "left.html"))
    assert KEY not in html and SECRET not in html and "Authorization-Extra: tok-…abcd" in html


def test_a_workflow_runs_report_says_where_the_time_goes_with_the_formulas(runs, sim_factory, tmp_path):
    from lib.bench import run_benchmark
    from lib.waterfall import FORMULAS as WATERFALL_FORMULAS

    paced = sim_factory("--ttft-ms", "60", "--tokens-per-s", "400", "--jitter", "0", "--node-overhead-ms", "30", "--node-ms", "5")
    store = BenchStore(tmp_path / "bench.sqlite")
    outcome = run_benchmark(RunConfig(base_url=paced.url, concurrency=2, requests=4), "app-sim-workflow", store=store)
    html = _read(write_bench_report(store, [outcome.run_id], tmp_path / "wf.html"))
    assert "app-sim-workflow" not in html
    text = " ".join(parse_report(html).text)
    assert "Where the time goes" in text and "Slowest node: LLM (llm)" in text and "over 4 succeeded requests" in text
    assert "the benchmark's TTFT and end-to-end start at its scheduled time" in text  # the two clocks, told apart
    assert "The median request" in html and "Dify before the first node" in text  # the chart title: in its data
    for key in ("origin", "dify", "node", "gap", "tail", "share_of_e2e", "percentiles"):
        assert WATERFALL_FORMULAS[key] in text, key
    chart_count = html.count('class="plotly-graph-div"')
    chat_store, chat_run, _ = runs
    chat_html = _read(write_bench_report(chat_store, [chat_run], tmp_path / "chat.html"))
    assert "Where the time goes" not in chat_html and WATERFALL_FORMULAS["dify"] not in chat_html
    assert chart_count == chat_html.count('class="plotly-graph-div"') + 2  # the per-node stats and one waterfall
