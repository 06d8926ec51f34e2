"""`python -m lib.bench`: run load tests and work with the run store from a terminal or CI.

    python -m lib.bench run --target "Simulator · chat" --concurrency 8 --duration 30
    python -m lib.bench run --base-url https://dify.example.com/v1 --api-key app-... --rate 5 --arrival poisson \\
        --requests 200 --json --slo-ttft-p95-ms 800        # exit 1 when the SLO is missed (CI gate)
    python -m lib.bench run --target A --target B --concurrency 4 --duration 20   # compare targets, ranked
    python -m lib.bench list | show RUN | compare RUN RUN... | export RUN --format parquet | delete RUN
    python -m lib.bench run ... --html report.html   # also: show RUN --html F, compare RUN RUN --html F

Exit codes: 0 ran and met every SLO; 1 an SLO was missed, every request failed or a stop rule
(--max-errors, --max-error-rate) ended it (both unless --allow-failures), the target was
over-saturated, or the run was client-bound with --fail-on-client-bound; 2 bad arguments (or the
production guard wants --confirm-production); 3 the run could not run (target unreachable, wrong
key) or failed; 130 cancelled with Ctrl-C (it stops sending, lets the answers in flight finish for
--cancel-grace seconds, a second Ctrl-C stops at once, and saves the run as cancelled with its
summary).

The key: --api-key, --api-key-file PATH or DIFY_API_KEY (the last two keep it out of the process
list). Sensitive header values (Authorization, Cookie, *key*/*token*/*secret*...) are masked in the
store, its exports and every view.

Built on typer (click underneath): subcommands, repeatable options (--target, --input, --slo) and
usage errors with exit code 2 come from type hints instead of argparse boilerplate, and its rich
dependency draws the progress bar and the tables. The progress bar and all human text go to stderr
or are skipped with --json, so stdout holds exactly one JSON object.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from lib.report.figures import cost_text
from lib.settings import SettingsError, find_target, load_targets, read_secrets_file

from . import prompts as P
from .config import STATS, RunConfig, Stage, Threshold, check_base_url, check_header, mask_headers
from .engine import Progress, RunOutcome, TargetSpec, compare_targets, run_benchmark
from .export import export_run
from .guard import confirmation_needed
from .stats import FORMULAS, compare_summaries, rank
from .store import BenchStore, StoreError

EXIT_SLO, EXIT_USAGE, EXIT_FAILED, EXIT_CANCELLED = 1, 2, 3, 130

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Load-test Dify apps with honest latency figures; every run is saved (see README, Benchmark).")
# Piped output (CI logs, tests) gets wide tables instead of rich's 80-column default.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)
_state: dict[str, Any] = {"db": None}


class Mode(StrEnum):
    streaming = "streaming"
    blocking = "blocking"


class Arrival(StrEnum):
    poisson = "poisson"
    constant = "constant"


class App(StrEnum):
    auto = "auto"
    chat = "chat"
    completion = "completion"
    workflow = "workflow"


class Load(StrEnum):
    closed = "closed"
    open = "open"


class Fmt(StrEnum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


HTML_HELP = "Also write the HTML report (one self-contained file: figures, charts, formulas, no key) to this file."
DB_HELP = "The run store file (default: $BENCH_DB or data/bench.sqlite); before or after the command."


@app.callback()
def main(db: Path | None = typer.Option(None, "--db", help=DB_HELP)) -> None:
    _state["db"] = db


def _db_option() -> Any:
    return typer.Option(None, "--db", help=DB_HELP)


def _store(db: Path | None = None) -> BenchStore:
    try:
        return BenchStore(db or _state["db"])
    except StoreError as exc:
        raise _usage(str(exc)) from None


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_USAGE)


# -- run ----------------------------------------------------------------------------------------------------


def _read_key_file(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise _usage(f"cannot read --api-key-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _usage(f"--api-key-file {path} is not a text file holding the key") from None
    if not key or "\n" in key:
        raise _usage(f"--api-key-file {path} must hold the app's key alone, on one line")
    return key


def _targets(names: list[str], base_url: str | None, api_key: str | None, key_file: Path | None = None) -> list[TargetSpec]:
    if names and base_url:
        raise _usage("give --target NAME or --base-url URL --api-key KEY, not both")
    if api_key and key_file:
        raise _usage("give --api-key or --api-key-file, not both")
    if base_url:
        try:
            base_url = check_base_url(base_url)
        except ValueError as exc:
            raise _usage(f"--base-url: {exc}") from None
        key = api_key or (_read_key_file(key_file) if key_file else None) or os.environ.get("DIFY_API_KEY")
        if not key:
            raise _usage("--base-url needs the app's key: --api-key-file PATH, DIFY_API_KEY in the environment, or --api-key")
        return [TargetSpec(base_url, base_url, key)]
    if api_key or key_file:
        raise _usage("--api-key and --api-key-file go with --base-url")
    if not names:
        raise _usage("say what to load: --target NAME (see the console's target list) or --base-url URL --api-key KEY")
    try:
        known = load_targets(read_secrets_file())
        return [TargetSpec(t.name, t.base_url, t.api_key) for t in (find_target(known, n) for n in names)]
    except SettingsError as exc:
        raise _usage(str(exc)) from None


def _pairs(items: list[str], sep: str, what: str) -> dict[str, str]:
    outd = {}
    for item in items:
        k, s, v = item.partition(sep)
        if not s or not k.strip():
            shown = mask_headers({k: v}).get(k, v) if s else item
            raise _usage(f"{what} takes NAME{sep}VALUE, got {(k + sep + shown) if s else shown!r}")
        outd[k.strip()] = v.strip(" \t")
    return outd


def _headers(items: list[str]) -> dict[str, str]:
    headers = _pairs(items, ":", "--header")
    for name, value in headers.items():
        try:
            check_header(name, value)
        except ValueError as exc:
            raise _usage(f"--header: {exc}") from None
    return headers


def _thresholds(pairs: list[tuple[str, float | None]], extra: list[str]) -> list[Threshold]:
    found = []
    for spec, value in pairs:
        if value is not None:
            metric, op = spec.split(" ")
            found.append(Threshold(metric=metric, op=op, limit=value))
    try:
        found += [Threshold.parse(x) for x in extra]
    except ValueError as exc:
        raise _usage(str(exc)) from None
    return found


@app.command()
def run(
    target: list[str] = typer.Option([], "--target", "-t", help="A target by name (repeat it to compare targets, ranked)."),
    base_url: str | None = typer.Option(None, "--base-url", help="A Dify Service API base URL (…/v1)."),
    api_key: str | None = typer.Option(None, "--api-key", help="The app's key (visible in the process list: prefer --api-key-file or DIFY_API_KEY)."),
    api_key_file: Path | None = typer.Option(None, "--api-key-file", help="A file holding the app's key."),
    concurrency: int | None = typer.Option(None, "--concurrency", "-c", min=1, help="Closed loop: this many users."),
    rate: float | None = typer.Option(None, "--rate", "-r", min=0.001, help="Open loop: requests per second."),
    arrival: Arrival = typer.Option(Arrival.poisson, "--arrival", help="Open-loop arrivals."),
    load: Load | None = typer.Option(None, "--load", help="closed or open (default: open with --rate or --trace, else closed); says what --stages levels are."),
    ramp_up: float = typer.Option(0.0, "--ramp-up", min=0, help="Seconds to reach --concurrency/--rate linearly from 0 (counted in the run; cover it with --warmup to leave it out)."),
    stages: str | None = typer.Option(None, "--stages", help="A load shape: SECONDS:LEVEL pieces moving linearly from 0, e.g. 10:4,30:4,10:0 (users, or req/s with --load open); sets the run's length."),
    trace: Path | None = typer.Option(None, "--trace", help="Open loop: replay the arrival times in this file (one number a line, or a CSV/JSONL `timestamp` column)."),
    trace_unit: str = typer.Option("s", "--trace-unit", help="The trace's time unit: s or ms."),
    synthetic_input: str | None = typer.Option(None, "--synthetic-input", help="No prompts file: generated prompts of MEAN[:STD] words (~tokens), e.g. 200:50."),
    synthetic_output: str | None = typer.Option(None, "--synthetic-output", help="With --synthetic-input: ask for answers of about MEAN[:STD] words."),
    synthetic_count: int = typer.Option(100, "--synthetic-count", min=1, help="How many synthetic prompts to generate (used in a seeded order)."),
    burstiness: float = typer.Option(1.0, "--burstiness", min=0.001, help="Poisson arrivals: gamma shape of the gaps (1 Poisson, <1 burstier, >1 more even)."),
    sweep: str | None = typer.Option(None, "--sweep", help="Levels of concurrency or rate, e.g. 1,2,4,8 (one run each)."),
    duration: float | None = typer.Option(None, "--duration", "-d", min=0.001, help="Seconds measured (default 30)."),
    requests: int | None = typer.Option(None, "--requests", "-n", min=1, help="Stop after this many measured requests."),
    warmup: float = typer.Option(0.0, "--warmup", min=0, help="Seconds sent but not counted, first."),
    max_in_flight: int | None = typer.Option(None, "--max-in-flight", min=1, help="Open loop: cap on requests in flight."),
    mode: Mode = typer.Option(Mode.streaming, "--mode"),
    app_kind: App = typer.Option(App.auto, "--app", help="Endpoint: auto asks Dify for the app's mode."),
    query: list[str] = typer.Option([], "--query", "-q", help="A query (repeat it for a list, used in a seeded order)."),
    prompts: Path | None = typer.Option(None, "--prompts", help="A CSV or JSONL file of prompts (columns fill inputs)."),
    inputs: list[str] = typer.Option([], "--input", help="An app input, NAME=VALUE (repeatable)."),
    header: list[str] = typer.Option([], "--header", help="An extra request header, NAME:VALUE (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seeds arrivals and prompt order."),
    timeout: float = typer.Option(120.0, "--timeout", min=0.001, help="Seconds a request may wait for its first event (and be silent, up to 60)."),
    retries: int = typer.Option(0, "--retries", min=0, max=10, help="Client retries (default 0: see every failure)."),
    drain: float | None = typer.Option(None, "--drain", min=0, help="Seconds to wait for answers in flight after the window (default: --timeout)."),
    cancel_grace: float = typer.Option(10.0, "--cancel-grace", min=0, help="After Ctrl-C: seconds answers in flight may still finish."),
    max_errors: int | None = typer.Option(None, "--max-errors", min=1, help="Stop sending after this many failed requests."),
    max_error_rate: float | None = typer.Option(None, "--max-error-rate", min=0.0001, max=1.0, help="Stop sending once this share failed (after 20 answers), e.g. 0.5."),
    stop_on_saturation: bool = typer.Option(True, "--stop-on-saturation/--no-stop-on-saturation", help="Open loop: stop when unanswered requests pile up without bound."),
    allow_failures: bool = typer.Option(False, "--allow-failures", help="Exit 0 even when every request failed or a stop rule ended the run."),
    name: str = typer.Option("", "--name", help="A label for the run."),
    slo_ttft_p50_ms: float | None = typer.Option(None, "--slo-ttft-p50-ms"),
    slo_ttft_p95_ms: float | None = typer.Option(None, "--slo-ttft-p95-ms"),
    slo_ttft_p99_ms: float | None = typer.Option(None, "--slo-ttft-p99-ms"),
    slo_e2e_p95_ms: float | None = typer.Option(None, "--slo-e2e-p95-ms"),
    slo_e2e_p99_ms: float | None = typer.Option(None, "--slo-e2e-p99-ms"),
    slo_tpot_p95_ms: float | None = typer.Option(None, "--slo-tpot-p95-ms"),
    slo_itl_p99_ms: float | None = typer.Option(None, "--slo-itl-p99-ms"),
    slo_min_success_rate: float | None = typer.Option(None, "--slo-min-success-rate", help="e.g. 0.99"),
    slo_min_throughput: float | None = typer.Option(None, "--slo-min-throughput", help="requests/s"),
    slo: list[str] = typer.Option([], "--slo", help="Any threshold: METRIC.STAT<=LIMIT or FIGURE>=LIMIT (repeatable)."),
    percentiles: str | None = typer.Option(None, "--percentiles", help="More percentiles of every latency, e.g. 75,99.99 (p50-p99.9 are always there)."),
    rank_by: str = typer.Option("ttft_ms.p95", "--rank-by", help="Comparing targets: the figure to rank by."),
    confirm_production: bool = typer.Option(False, "--confirm-production", help="Allow a heavy run against a non-local target."),
    fail_on_client_bound: bool = typer.Option(False, "--fail-on-client-bound", help="Exit 1 when the load generator was the bottleneck."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (and nothing else) on stdout."),
    html: Path | None = typer.Option(None, "--html", help=HTML_HELP),
    progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Progress bar on stderr (default: when a terminal)."),
    db: Path | None = _db_option(),
) -> None:
    """Run a load test (closed loop with --concurrency, open loop with --rate)."""
    if concurrency is not None and rate is not None:
        raise _usage("give --concurrency (closed loop) or --rate (open loop), not both")
    if duration is not None and requests is not None:
        raise _usage("give --duration or --requests, not both")
    if sum(x is not None for x in (prompts, synthetic_input)) + bool(query) > 1:
        raise _usage("give one of --query, --prompts and --synthetic-input")
    if synthetic_output is not None and synthetic_input is None:
        raise _usage("--synthetic-output goes with --synthetic-input")
    if (stages or trace) and (duration is not None or requests is not None):
        raise _usage("--stages and --trace set the run's length: give no --duration or --requests")
    if stages and trace:
        raise _usage("give --stages or --trace, not both")
    if trace and (concurrency is not None or load is Load.closed):
        raise _usage("a --trace replays arrivals in an open loop: give no --concurrency")
    if stages and (concurrency is not None or rate is not None):
        raise _usage("--stages give the levels: give no --concurrency or --rate (say --load open for request rates)")
    if load is Load.closed and rate is not None or load is Load.open and concurrency is not None:
        raise _usage("--load closed goes with --concurrency, --load open with --rate")
    targets = _targets(target, base_url, api_key, api_key_file)
    try:
        if synthetic_input is not None:
            spread_out = P.parse_spread(synthetic_output, "--synthetic-output") if synthetic_output else None
            prompt_list = P.synthetic(synthetic_count, P.parse_spread(synthetic_input, "--synthetic-input"), spread_out, seed)
        else:
            prompt_list = P.from_file(prompts) if prompts else (P.from_list(query) if query else P.from_query(None))
        trace_offsets = P.read_trace(trace, trace_unit) if trace else []
        stage_list = Stage.parse_list(stages) if stages else []
    except (P.PromptError, ValueError) as exc:
        raise _usage(str(exc)) from None
    kind = load.value if load else ("open" if rate is not None or trace else "closed")
    thresholds = _thresholds([
        ("ttft_ms.p50 <=", slo_ttft_p50_ms), ("ttft_ms.p95 <=", slo_ttft_p95_ms), ("ttft_ms.p99 <=", slo_ttft_p99_ms),
        ("e2e_ms.p95 <=", slo_e2e_p95_ms), ("e2e_ms.p99 <=", slo_e2e_p99_ms), ("tpot_ms.p95 <=", slo_tpot_p95_ms),
        ("itl_ms.p99 <=", slo_itl_p99_ms), ("success_rate >=", slo_min_success_rate),
        ("request_throughput >=", slo_min_throughput),
    ], slo)
    if mode is Mode.blocking and any(t.metric.startswith(("ttft_ms", "itl_ms", "tpot_ms")) for t in thresholds):
        raise _usage("blocking mode has no first token: TTFT, TPOT and inter-chunk SLOs do not apply to it; "
                     "limit the time to response with --slo-e2e-p95-ms (or --slo e2e_ms.p99<=MS)")
    try:
        levels = _numbers(sweep, "--sweep") if sweep else []
        extra_pcts = _numbers(percentiles, "--percentiles") if percentiles else []
        config = RunConfig(
            name=name, target=targets[0].name, base_url=targets[0].base_url, app=app_kind.value, mode=mode.value,
            load=kind, concurrency=concurrency or 1, rate=rate or 1.0, ramp_up_s=ramp_up, stages=stage_list,
            trace=trace_offsets, trace_source=trace.name if trace else "",
            arrival=arrival.value, burstiness=burstiness, sweep=levels, duration_s=duration, requests=requests, warmup_s=warmup,
            max_in_flight=max_in_flight, prompts=prompt_list,
            prompts_source=(f"synthetic:{synthetic_input}" + (f"/{synthetic_output}" if synthetic_output else "") if synthetic_input
                            else f"file:{prompts.name}" if prompts else ("list" if len(query) > 1 else "query")),
            inputs=_pairs(inputs, "=", "--input"), headers=_headers(header), seed=seed, timeout_s=timeout,
            retries=retries, slo=thresholds, drain_s=drain, cancel_grace_s=cancel_grace, max_errors=max_errors,
            max_error_rate=max_error_rate, stop_on_saturation=stop_on_saturation, percentiles=extra_pcts,
        )
    except ValueError as exc:
        raise _usage(_pydantic_message(exc)) from None
    if len(targets) > 1 and config.sweep:
        raise _usage("compare targets or sweep levels, not both in one command")
    for t in targets:
        why = confirmation_needed(config.model_copy(update={"base_url": t.base_url}))
        if why and not confirm_production:
            raise _usage(f"{why}. Add --confirm-production if this is intended.")

    store = _store(db)
    cancel, abort = threading.Event(), threading.Event()
    prog = Progress()
    def job() -> Any:
        if len(targets) > 1:
            return compare_targets(config, targets, store=store, progress=prog, cancel=cancel, abort=abort)
        return run_benchmark(config, targets[0].api_key, store=store, progress=prog, cancel=cancel, abort=abort)

    show_bar = progress if progress is not None else (err.is_terminal and not as_json)
    result = _run_with_progress(job, prog, cancel, abort, show_bar, config.cancel_grace_s)
    outcomes: list[RunOutcome] = [o for o in (result if isinstance(result, list) else [result]) if o is not None]
    code = _report(outcomes, config, as_json, rank_by if len(targets) > 1 else None, fail_on_client_bound, allow_failures)
    if html is not None and outcomes:
        _write_html(store, [o.run_id for o in outcomes], html, rank_by)
    raise typer.Exit(EXIT_CANCELLED if cancel.is_set() else code)


def _numbers(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise _usage(f"{what} takes numbers separated by commas, e.g. 1,2,4; got {text!r}") from None


def _pydantic_message(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg'].removeprefix('Value error, ')}" for e in errors())
    return str(exc)


def _run_with_progress(job: Callable[[], Any], prog: Progress, cancel: threading.Event, abort: threading.Event,
                       show: bool, grace_s: float) -> Any:
    """The engine in a thread of its own (its own event loop); this thread draws the bar and turns
    Ctrl-C into a clean cancel, so what was measured is kept: the first SIGINT stops sending and lets
    the answers in flight finish (up to the grace), a second stops waiting.

    SIGINT is handled here rather than as KeyboardInterrupt: an interrupted Thread.join can report a
    live thread as finished (Python 3.11), and an exception raised at an arbitrary point of this
    thread would skip the summary. The engine thread sets `done` itself, so no join is waited on."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = job()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    def on_sigint(signum: int, frame: Any) -> None:
        if not cancel.is_set():
            cancel.set()
            err.print(f"cancelling: no more requests; waiting up to {grace_s:g} s for the answers in flight "
                      "(Ctrl-C again to stop now). What was measured is kept.")
        elif not abort.is_set():
            abort.set()
            err.print("stopping now: answers still in flight are left out (counted as abandoned)")

    previous = signal.getsignal(signal.SIGINT)
    installed = threading.current_thread() is threading.main_thread()
    if installed:
        signal.signal(signal.SIGINT, on_sigint)
    thread = threading.Thread(target=target, name="bench-cli", daemon=True)
    try:
        thread.start()
        if show:
            from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            with Bar(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[counts]}"),
                     TimeElapsedColumn(), console=err, transient=False) as bar:
                task = bar.add_task("starting", total=1000, counts="")
                while not done.wait(0.2):
                    bar.update(task, completed=int(prog.overall() * 1000), description=_bar_label(prog),
                               counts=f"{prog.ok} ok · {prog.failed} failed · {prog.in_flight} in flight")
                bar.update(task, completed=1000, description=_bar_label(prog), counts=f"{prog.ok} ok · {prog.failed} failed")
        else:
            while not done.wait(0.2):
                pass
    finally:
        if installed:
            signal.signal(signal.SIGINT, previous)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _bar_label(prog: Progress) -> str:
    # Short, so the bar fits an 80-column terminal; the run's full label is printed with its results.
    step = f"[{prog.step}/{prog.steps}] " if prog.steps > 1 else ""
    return f"{step}{prog.phase:<9}"


JSON_ORDER = ("run_id", "status", "target", "app", "mode", "description", "requests", "succeeded", "failed", "success_rate",
              "abandoned", "dropped", "stop_reason", "stop_detail", "duration_s", "window_start_ms", "window_end_ms",
              "last_end_ms", "request_throughput", "output_tokens", "output_tokens_per_s", "output_tokens_per_s_peak",
              "output_tokens_source", "input_tokens", "input_tokens_per_s", "total_tokens", "total_tokens_per_s",
              "user_output_tokens_per_s", "e2e_label", "ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "ttfb_ms", "queue_ms",
              "goodput", "cost", "errors", "errors_by_phase", "retries", "malformed_frames", "client_bound",
              "client_bound_reasons", "selfcheck", "slo_checks", "slo_passed")


def json_view(outcome: RunOutcome) -> dict[str, Any]:
    """The --json object of one run: the summary's figures, in a stable order."""
    s = outcome.summary or {}
    view = {k: s.get(k) for k in JSON_ORDER}
    view.update({"run_id": outcome.run_id, "status": outcome.status})
    if outcome.error:
        view["error"] = outcome.error
    extra = [k for k in (s.get("percentiles") or []) if k not in STATS]
    for metric in ("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "ttfb_ms", "queue_ms"):
        view[metric] = {k: (view.get(metric) or {}).get(k) for k in (*STATS, *extra)}
    view["errors"] = view.get("errors") or {}
    view["client_bound"] = bool(view.get("client_bound"))
    return view


def all_failed(summary: dict[str, Any] | None) -> bool:
    """Nothing succeeded and something was tried (failed or abandoned)."""
    s = summary or {}
    return not s.get("succeeded") and bool((s.get("failed") or 0) + (s.get("abandoned") or 0))


def _report(outcomes: list[RunOutcome], config: RunConfig, as_json: bool, rank_by: str | None, fail_on_client_bound: bool,
            allow_failures: bool = False) -> int:
    views = [json_view(o) for o in outcomes]
    failed = [o for o in outcomes if o.status == "failed"]
    missed = [v for v in views if v.get("slo_passed") is False]
    broken = [] if allow_failures else [o for o in outcomes if o.status != "failed" and (
        all_failed(o.summary) or (o.summary or {}).get("stop_reason") in ("max_errors", "max_error_rate"))]
    saturated = [o for o in outcomes if (o.summary or {}).get("stop_reason") == "over_saturated"]
    bound = [v for v in views if v["client_bound"]]
    ranking = rank({_label(o): o.summary or {} for o in outcomes}, rank_by) if rank_by else None
    if as_json:
        if rank_by:
            doc: dict[str, Any] = {"rank_by": rank_by, "ranking": ranking, "runs": views}
        elif len(views) > 1:
            doc = {"sweep": [v.get("description") for v in views], "runs": views}
        else:
            doc = views[0] if views else {}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for o in outcomes:
            _print_outcome(o)
        if ranking:
            _print_ranking(ranking, rank_by or "")
    if failed or not outcomes:
        if not as_json:
            for o in failed:
                err.print(f"[red]run {o.run_id} failed:[/red] {o.error}")
        return EXIT_FAILED
    if broken and not as_json:
        for o in broken:
            why = (o.summary or {}).get("stop_detail") or "every request failed"
            err.print(f"[red]run {o.run_id}:[/red] {why} (exit 1; --allow-failures to accept it)")
    if missed or broken or saturated or (fail_on_client_bound and bound):
        return EXIT_SLO
    return 0


def _label(o: RunOutcome) -> str:
    return o.config.target or o.config.base_url


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _print_outcome(o: RunOutcome, selfcheck_known: bool = True) -> None:
    s = o.summary
    out.print(f"\n[bold]Run {o.run_id}[/bold] {o.status} · {o.config.target or o.config.base_url} · {o.config.describe()}")
    if s is None:
        return
    out.print(f"requests {s['requests']} · succeeded {s['succeeded']} · failed {s['failed']} · "
              f"{_fmt(s['request_throughput'], 2)} req/s · {_fmt(s['output_tokens_per_s'])} output tokens/s "
              f"({s.get('output_tokens_source') or 'no tokens'}) · window {_fmt(s['duration_s'], 2)} s")
    extra = [f"{s[k]} {k}" for k in ("abandoned", "dropped") if s.get(k)]
    if s.get("stop_reason") not in (None, "duration", "requests"):
        extra.append(f"stopped: {s.get('stop_detail') or s['stop_reason']}")
    if extra:
        out.print("[yellow]" + " · ".join(extra) + "[/yellow]")
    blocking = s.get("e2e_label") == "time to response" or o.config.mode == "blocking"
    stats = (*STATS, *(k for k in (s.get("percentiles") or []) if k not in STATS))
    table = Table("ms", *stats, title=None, box=None, pad_edge=False)
    rows = ((("e2e_ms", "time to response"), ("queue_ms", "queue")) if blocking else
            (("ttft_ms", "TTFT"), ("e2e_ms", "end-to-end"), ("itl_ms", "inter-chunk"), ("tpot_ms", "TPOT"), ("queue_ms", "queue")))
    for metric, label in rows:
        table.add_row(label, *(_fmt((s.get(metric) or {}).get(k)) for k in stats))
    out.print(table)
    user = (s.get("user_output_tokens_per_s") or {}).get("p50")
    tokens = [f"peak {_fmt(s.get('output_tokens_per_s_peak'))} output tokens/s (1 s buckets)" if s.get("output_tokens_per_s_peak") else "",
              f"input {_fmt(s.get('input_tokens_per_s'))} tokens/s" if s.get("input_tokens") else "",
              f"total {_fmt(s.get('total_tokens_per_s'))} tokens/s" if s.get("total_tokens") else "",
              f"per user p50 {_fmt(user)} output tokens/s" if user else "",
              f"[yellow]{s['malformed_frames']} malformed frames skipped[/yellow]" if s.get("malformed_frames") else ""]
    if any(tokens):
        out.print(" · ".join(t for t in tokens if t))
    if s.get("errors"):
        out.print("errors: " + ", ".join(f"{k} {v}" for k, v in s["errors"].items())
                  + " (by phase: " + ", ".join(f"{k} {v}" for k, v in s.get("errors_by_phase", {}).items()) + ")")
    if s.get("goodput"):
        g = s["goodput"]
        out.print(f"goodput {_fmt(g['rate'], 2)} req/s ({g['share']:.1%} of requests within {', '.join(g['slo'])})")
    cost = cost_text(s.get("cost"))
    if cost:
        out.print(f"cost {cost}")
    check = s.get("selfcheck") or {}
    lag = (check.get("loop_lag_ms") or {}).get("p99")
    if s.get("client_bound"):
        out.print("[yellow]CLIENT-BOUND:[/yellow] these figures are the load generator's, not the target's: "
                  + "; ".join(s.get("client_bound_reasons") or []))
    elif not selfcheck_known or not check:
        out.print("[yellow]self-check: not available[/yellow] (the run did not finish, so the engine's own lag and CPU "
                  "were never assessed; the figures above come from the rows it saved)")
    else:
        out.print(f"self-check ok: event-loop lag p99 {_fmt(lag, 2)} ms, loop busy {_fmt((check.get('loop_busy') or 0) * 100, 0)}%")
    for c in s.get("slo_checks") or []:
        mark = "[green]met[/green]" if c["ok"] else "[red]MISSED[/red]"
        out.print(f"SLO {c['slo']}: {_fmt(c['value'], 2)} {mark}")


def _print_ranking(ranking: list[dict[str, Any]], by: str) -> None:
    table = Table("rank", "target", by, "× best", box=None, pad_edge=False, title=f"ranked by {by}")
    for r in ranking:
        table.add_row(_fmt(r["rank"]), r["label"], _fmt(r["value"], 2), _fmt(r["vs_best"], 3))
    out.print(table)


def _write_html(store: BenchStore, run_ids: list[str], path: Path, rank_by: str = "ttft_ms.p95") -> None:
    from lib.report.bench import write_bench_report  # plotly and jinja2: only when a report is asked for

    try:
        written = write_bench_report(store, run_ids, path, rank_by=rank_by)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot write the HTML report to {path}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_FAILED) from None
    err.print(f"wrote {written}")


# -- the store ----------------------------------------------------------------------------------------------


def _get(store: BenchStore, run_id: str):
    try:
        return store.get(run_id)
    except KeyError as exc:
        raise _usage(str(exc.args[0])) from None


@app.command("list")
def list_runs(limit: int = typer.Option(50, "--limit"), as_json: bool = typer.Option(False, "--json"), db: Path | None = _db_option()) -> None:
    """The saved runs, newest first."""
    runs = _store(db).runs(limit=limit)
    rows = []
    for run in runs:
        s = run.summary or {}
        rows.append({"id": run.id, "status": run.status, "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.created_at)),
                     "name": run.name, "target": run.target, "description": run.description, "group": run.group_id,
                     "requests": s.get("requests"), "success_rate": s.get("success_rate"),
                     "ttft_p50_ms": (s.get("ttft_ms") or {}).get("p50"), "ttft_p95_ms": (s.get("ttft_ms") or {}).get("p95"),
                     "e2e_p95_ms": (s.get("e2e_ms") or {}).get("p95"), "request_throughput": s.get("request_throughput"),
                     "client_bound": s.get("client_bound")})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("id", "status", "created", "target", "load", "requests", "ok", "TTFT p50", "TTFT p95", "e2e p95", "req/s", box=None)
    for r in rows:
        table.add_row(r["id"], r["status"], r["created"], r["target"], r["description"], _fmt(r["requests"]),
                      _fmt(r["success_rate"], 3), _fmt(r["ttft_p50_ms"]), _fmt(r["ttft_p95_ms"]), _fmt(r["e2e_p95_ms"]),
                      _fmt(r["request_throughput"], 2))
    out.print(table)


@app.command()
def show(run_id: str, as_json: bool = typer.Option(False, "--json"), html: Path | None = typer.Option(None, "--html", help=HTML_HELP),
         db: Path | None = _db_option()) -> None:
    """One run's figures (computed from its rows if it crashed)."""
    store = _store(db)
    info = _get(store, run_id)
    summary = store.summary(info.id)
    if html is not None:
        _write_html(store, [info.id], html)
    if as_json:
        doc = {"run_id": info.id, "status": info.status, "name": info.name, "target": info.target,
               "description": info.description, "created_at": info.created_at, "error": info.error,
               "config": info.config, "environment": info.environment, "summary": summary}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    config = RunConfig.model_validate(info.config)
    _print_outcome(RunOutcome(info.id, info.status, config, summary, error=info.error), selfcheck_known=info.summary is not None)
    if info.error:
        out.print(f"note: {info.error}")
    out.print(f"\n[dim]{FORMULAS['ttft_ms']} {FORMULAS['tpot_ms']} {FORMULAS['request_throughput']}[/dim]")


@app.command()
def compare(run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or unique prefixes)."),
            by: str = typer.Option("ttft_ms.p95", "--by", help="Rank by this figure."),
            as_json: bool = typer.Option(False, "--json"), html: Path | None = typer.Option(None, "--html", help=HTML_HELP),
            db: Path | None = _db_option()) -> None:
    """Runs side by side, with the change from the first to the last, ranked."""
    if len(run_ids) < 2:
        raise _usage("compare needs two or more runs")
    store = _store(db)
    infos = [_get(store, r) for r in run_ids]
    if html is not None:
        _write_html(store, [i.id for i in infos], html, by)
    summaries = {f"{i.id} {i.label}": store.summary(i.id) for i in infos}
    table = compare_summaries(summaries)
    ranking = rank(summaries, by)
    if as_json:
        doc = {"runs": [i.id for i in infos], "table": json.loads(table.to_json(orient="index")), "rank_by": by, "ranking": ranking}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    t = Table("figure", *table.columns, box=None)
    for fig, row in table.iterrows():
        t.add_row(str(fig), *(f"{v:+.1%}" if c == "change" and v == v and v is not None else _fmt(v, 2) for c, v in row.items()))
    out.print(t)
    _print_ranking(ranking, by)


@app.command()
def export(run_id: str, fmt: Fmt = typer.Option(Fmt.csv, "--format", "-f"),
           out_path: Path | None = typer.Option(None, "--out", "-o", help="Default: RUN_ID.FORMAT here."),
           db: Path | None = _db_option()) -> None:
    """Write a run's per-request rows (CSV, Parquet) or everything (JSON) to a file."""
    store = _store(db)
    info = _get(store, run_id)
    path = export_run(store, info.id, fmt.value, out_path)
    err.print(f"wrote {path}")


@app.command()
def delete(run_id: str, db: Path | None = _db_option()) -> None:
    """Delete a run and its rows."""
    store = _store(db)
    info = _get(store, run_id)
    store.delete_run(info.id)
    err.print(f"deleted {info.id}")


if __name__ == "__main__":
    app(prog_name="python -m lib.bench")
