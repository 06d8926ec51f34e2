"""`python -m lib.evals`: run eval suites from a terminal or CI, and read saved runs.

    python -m lib.evals run examples/simulator-chat.yaml --target "Simulator · chat"
    python -m lib.evals run suite.yaml --base-url https://dify.example.com/v1 --api-key app-... \\
        --junit reports/evals.xml --min-pass-rate 0.95 --baseline eval-20260101-120000-abc123
    python -m lib.evals list | show RUN_ID [--html FILE] | diff BASELINE_ID RUN_ID

Exit codes of `run`: 0 every case passed (or the pass rate reached --min-pass-rate); 1 a case failed (below
--min-pass-rate); 2 a bad suite file (its line and what is wrong) or bad arguments; 3 the suite could not run
(a target unreachable, a key refused, an unknown judge). --json prints one JSON object on stdout and nothing
else (human text goes to stderr); --junit FILE writes JUnit XML for CI; --html FILE a self-contained report
(lib.report.evals), against --baseline when given. Built on typer, like lib.bench's CLI.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lib.settings import (
    SettingsError,
    Target,
    find_target,
    load_targets,
    read_secrets_file,
)
from lib.waterfall import stats_table

from .diff import RunDiff, diff_runs
from .junit import write_junit
from .nodes import target_node_stats
from .records import EvalRun
from .runner import DEFAULT_CONCURRENCY, CannotRunError, Progress, run_suite
from .store import EvalStore
from .suite import SuiteError, load_suite

EXIT_FAILED, EXIT_USAGE, EXIT_CANNOT_RUN = 1, 2, 3

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Regression suites for Dify apps; every run is saved (see README, Evals).")
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)
_state: dict[str, Any] = {"db": None}


@app.callback()
def main(db: Annotated[Path | None, typer.Option("--db", help="The run store (default: $EVALS_DB or data/evals.sqlite).")] = None) -> None:
    _state["db"] = db


def _store() -> EvalStore:
    return EvalStore(_state["db"])


def _exit(code: int, message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def _targets(names: list[str], base_url: str | None, api_key: str | None) -> tuple[list[Target], list[Target]]:
    """(the targets to run, every known target for judges)."""
    try:
        known = load_targets(read_secrets_file())
    except SettingsError as exc:
        raise _exit(EXIT_USAGE, str(exc)) from None
    if names and base_url:
        raise _exit(EXIT_USAGE, "give --target NAME or --base-url URL --api-key KEY, not both")
    if base_url:
        key = api_key or os.environ.get("DIFY_API_KEY")
        if not key:
            raise _exit(EXIT_USAGE, "--base-url needs --api-key (or DIFY_API_KEY in the environment)")
        try:
            return [Target(base_url, base_url, key)], known
        except SettingsError as exc:
            raise _exit(EXIT_USAGE, str(exc)) from None
    if api_key:
        raise _exit(EXIT_USAGE, "--api-key goes with --base-url")
    if not names:
        raise _exit(EXIT_USAGE, "say what to test: --target NAME (repeatable) or --base-url URL --api-key KEY")
    try:
        return [find_target(known, n) for n in names], known
    except SettingsError as exc:
        raise _exit(EXIT_USAGE, str(exc)) from None


def _matrix(run: EvalRun) -> Table:
    table = Table(title=f"{run.suite} · {run.id}", show_lines=False)
    table.add_column("case")
    for col in ("target", "variant", "result", "time ms", "cost", "why"):
        table.add_column(col)
    for r in run.results:
        why = "; ".join(r.reasons())
        table.add_row(escape(r.case_id) + (f" #{r.repeat + 1}" if r.repeat else ""), escape(r.target), escape(r.variant),
                      "[green]pass[/green]" if r.passed else "[red]FAIL[/red]",
                      "-" if r.total_s is None else f"{r.total_s * 1000:.0f}",
                      "-" if r.cost is None else f"{r.cost:.6f}", escape(why[:300]))
    return table


def _print_nodes(run: EvalRun, console: Console) -> None:
    """Per target, each node's p50/p95 per request across the run (workflow and chatflow apps only)."""
    for target, stats in target_node_stats(run).items():
        shown = stats_table(stats)
        table = Table(title=f"Where the time goes · {target} ({stats.attrs.get('requests', 0)} requests)")
        for col in shown.columns:
            table.add_column(str(col), justify="left" if col in ("segment", "type") else "right")
        for row in shown.itertuples(index=False):
            table.add_row(*(escape(str(v)) for v in row))
        console.print(table)


def _write_html(run: EvalRun, path: Path, baseline: EvalRun | None, store: EvalStore, console: Console) -> None:
    from lib.report.evals import write_eval_report  # plotly and jinja2 only when a report is asked for

    try:
        write_eval_report(run, path, baseline=baseline, suite_text=store.suite_text(run.id))
    except OSError as exc:
        raise _exit(EXIT_USAGE, f"cannot write the report to {path}: {exc.strerror or exc}") from None
    console.print(f"Report: {path}")


def _print_diff(d: RunDiff, console: Console) -> None:
    console.print(f"Against baseline {d.baseline}: {len(d.newly_failing)} newly failing, {len(d.fixed)} fixed, "
                  f"{len(d.slower)} slower, {len(d.dearer)} dearer, {d.unchanged} unchanged")
    for title, group in (("newly failing", d.newly_failing), ("fixed", d.fixed), ("slower", d.slower), ("dearer", d.dearer)):
        for c in group:
            console.print(f"  {title}: {escape(c.label)}: {escape(c.detail)}")


@app.command()
def run(
    suite_path: Annotated[Path, typer.Argument(metavar="SUITE", help="A suite file (.yaml, .yml or .json).")],
    target: Annotated[list[str] | None, typer.Option("--target", "-t", help="A target by name (repeat it for a matrix).")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="A Dify Service API base URL (…/v1).")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="The app's key (or DIFY_API_KEY).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=64, help="Cases in flight at once.")] = DEFAULT_CONCURRENCY,
    repeats: Annotated[int | None, typer.Option("--repeats", "-r", min=1, max=100,
                                                help="Run every case this many times (overrides the suite).")] = None,
    min_pass_rate: Annotated[float | None, typer.Option("--min-pass-rate", min=0, max=100,
                                                  help="Pass when at least this share passed (0.95 or 95), instead of all.")] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="A saved run's id: show what changed since it.")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here (for CI).")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (and nothing else) on stdout.")] = False,
) -> None:
    """Run a suite against one or more targets; exit 0 passed, 1 failed, 2 bad suite, 3 could not run."""
    console = err if as_json else out
    try:
        suite = load_suite(suite_path)
    except SuiteError as exc:
        raise _exit(EXIT_USAGE, f"bad suite file: {exc}") from None
    targets, known = _targets(target or [], base_url, api_key)
    store = _store()
    base_run = None
    if baseline:
        base_run = store.get_run(baseline)
        if base_run is None:
            raise _exit(EXIT_USAGE, f"no saved run {baseline!r} to compare with (see `python -m lib.evals list`)")
    progress = Progress()
    done = threading.Event()
    if not as_json and sys.stderr.isatty():
        def report() -> None:
            while not done.wait(1.0):
                err.print(f"{progress.done}/{progress.total} done, {progress.failed} failed", end="\r")
        threading.Thread(target=report, daemon=True).start()
    try:
        result = run_suite(suite, targets, store=store, concurrency=concurrency, repeats=repeats,
                           resolve=lambda name: find_target(known, name), progress=progress)
    except CannotRunError as exc:
        raise _exit(EXIT_CANNOT_RUN, f"could not run the suite: {exc}") from None
    except KeyboardInterrupt:
        raise _exit(130, "cancelled") from None
    finally:
        done.set()
    threshold = None if min_pass_rate is None else (min_pass_rate / 100 if min_pass_rate > 1 else min_pass_rate)
    ok = result.pass_rate >= threshold if threshold is not None else result.passed
    diff = diff_runs(base_run, result) if base_run is not None else None
    if junit is not None:
        write_junit(result, junit)
    if as_json:
        print(json.dumps({"run": {"id": result.id, "suite": result.suite, "status": result.status, "targets": result.targets,
                                  "variants": result.variants, **result.summary()},
                          "passed": ok, "min_pass_rate": threshold,
                          "results": [r.as_dict() for r in result.results],
                          "diff": diff.as_dict() if diff else None}, ensure_ascii=False, default=str))
    else:
        out.print(_matrix(result))
        _print_nodes(result, out)
        if diff is not None:
            _print_diff(diff, out)
    if html is not None:
        _write_html(result, html, base_run, store, console)
    s = result.summary()
    verdict = "passed" if ok else "FAILED"
    console.print(f"{verdict}: {s['passed']}/{s['total']} cases passed ({s['pass_rate']:.0%}"
                  + (f", {threshold:.0%} needed" if threshold is not None else "") + f"). Run {result.id} saved in {store.path}."
                  + (f" JUnit: {junit}" if junit else ""))
    raise typer.Exit(0 if ok else EXIT_FAILED)


@app.command("list")
def list_runs(limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20) -> None:
    """Saved runs, newest first."""
    table = Table()
    for col in ("id", "suite", "targets", "status", "passed", "created"):
        table.add_column(col)
    for r in _store().runs(limit=limit):
        s = r.summary()
        table.add_row(r.id, escape(r.suite), escape(", ".join(r.targets)), r.status, f"{s.get('passed', 0)}/{s.get('total', 0)}",
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)))
    out.print(table)


@app.command()
def show(run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False,
         junit: Annotated[Path | None, typer.Option("--junit")] = None,
         html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
         baseline: Annotated[str | None, typer.Option("--baseline", help="With --html: the report diffs against this run.")] = None,
         ) -> None:
    """One saved run's matrix and, for workflow and chatflow apps, each node's p50/p95."""
    store = _store()
    r = store.get_run(run_id)
    if r is None:
        raise _exit(EXIT_USAGE, f"no saved run {run_id!r}")
    base_run = None
    if baseline:
        base_run = store.get_run(baseline)
        if base_run is None:
            raise _exit(EXIT_USAGE, f"no saved run {baseline!r} to compare with (see `python -m lib.evals list`)")
    if junit:
        write_junit(r, junit)
    if html is not None:
        _write_html(r, html, base_run, store, err if as_json else out)
    if as_json:
        print(json.dumps({"run": {"id": r.id, "suite": r.suite, "status": r.status, **r.summary()},
                          "results": [x.as_dict() for x in r.results]}, ensure_ascii=False, default=str))
    else:
        out.print(_matrix(r))
        _print_nodes(r, out)


@app.command()
def diff(baseline: str, run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What changed from BASELINE to RUN_ID: newly failing, fixed, slower, dearer. Exit 1 on a regression."""
    store = _store()
    runs = [store.get_run(baseline), store.get_run(run_id)]
    for rid, r in zip((baseline, run_id), runs, strict=True):
        if r is None:
            raise _exit(EXIT_USAGE, f"no saved run {rid!r}")
    d = diff_runs(runs[0], runs[1])  # type: ignore[arg-type]
    if as_json:
        print(json.dumps(d.as_dict(), default=str))
    else:
        _print_diff(d, out)
    raise typer.Exit(EXIT_FAILED if d.newly_failing else 0)


if __name__ == "__main__":
    app()
