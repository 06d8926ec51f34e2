"""Locust integration: the same client, records and figures as `python -m lib.bench`, across machines.

One machine (closed loop, 50 users):

    locust -f lib/bench/locustfile.py --headless -u 50 -r 10 -t 2m \\
        --host http://127.0.0.1:5001/v1 --dify-api-key app-sim-chat --bench-json summary.json

Distributed (Locust's master and workers; custom options are sent from the master to the workers):

    locust -f lib/bench/locustfile.py --master --headless -u 800 -r 50 -t 10m --expect-workers 4 \\
        --host https://dify.example.com/v1 --dify-api-key app-... --bench-slo "ttft_ms.p95<=1500"
    locust -f lib/bench/locustfile.py --worker --master-host 10.0.0.5      # on each worker machine

Each simulated user is a closed-loop user (it sends as soon as its last answer ended) driving
lib.dify's sync DifyClient (gevent makes its sockets cooperative), so a request is timed, typed and
failed exactly as the engine does it (lib.bench.records.build: an `error` event or a stream without
its final event is a failure even with HTTP 200). Locust's own statistics get one entry per request
(end-to-end, named by route) plus `TTFT` and `TPOT` entries, so its UI and CSVs show them per worker
and merged. The full per-request records travel from the workers to the master (custom messages,
every second and at the end); the master (or a lone process) saves them in the run store as they
come, as a run of its own, and at exit computes the summary with lib.bench.stats, prints it, writes
it to --bench-json, and exits 1 when a --bench-slo is missed.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.lock
from locust import User, constant, events, task
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `locust -f lib/bench/locustfile.py` from anywhere

from lib.bench import prompts as P
from lib.bench.config import RunConfig, Threshold, mask_config
from lib.bench.engine import ANSWER_END, APP_KINDS, WORKFLOW_OK, new_run_id, records_frame, run_failed
from lib.bench.environment import environment as env_info
from lib.bench.records import COLUMNS, RequestRecord, build
from lib.bench.stats import check_thresholds, summarize
from lib.bench.store import BenchStore
from lib.dify import DifyClient, DifyError, RetryPolicy, RunFailedError, Timeouts

log = logging.getLogger("lib.bench.locust")
clock = time.perf_counter
MESSAGE = "dify_bench_records"
SHIP_S = 1.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser.add_argument_group("Dify benchmark (lib.bench)")
    g.add_argument("--dify-api-key", default=os.environ.get("DIFY_API_KEY", ""), help="The app's key (or DIFY_API_KEY).")
    g.add_argument("--dify-app", default="auto", choices=["auto", "chat", "completion", "workflow"])
    g.add_argument("--dify-mode", default="streaming", choices=["streaming", "blocking"])
    g.add_argument("--dify-query", default="", help="One query for every request.")
    g.add_argument("--dify-prompts", default="", help="A CSV or JSONL prompts file (readable on every worker).")
    g.add_argument("--dify-inputs", default="", help="App inputs for every request, as a JSON object.")
    g.add_argument("--dify-timeout", type=float, default=120.0, help="Seconds: first event, and longest silence.")
    g.add_argument("--bench-db", default="", help="The run store (default: BENCH_DB or data/bench.sqlite). Master only.")
    g.add_argument("--bench-name", default="locust", help="The run's name in the store.")
    g.add_argument("--bench-json", default="", help="Write the summary here (the object `lib.bench run --json` prints).")
    g.add_argument("--bench-slo", action="append", default=[], help="A threshold, e.g. ttft_ms.p95<=800; missed -> exit 1.")
    g.add_argument("--bench-warmup", type=float, default=0.0, help="Seconds from the start not counted.")


class _Process:
    """This process's side: the client, the prompts and the records not yet shipped or saved."""

    def __init__(self) -> None:
        self.client: DifyClient | None = None
        self.calls: list[Any] = []
        self.kind = "chat"
        self.streaming = True
        self.t0 = clock()
        self.seq = 0
        self.index = 0  # the worker's index (0 on a lone process)
        self.order: P.PromptOrder | None = None
        self.pending: list[dict[str, Any]] = []
        self.warmup_s = 0.0
        self._lock = gevent.lock.Semaphore()

    def setup(self, env: Any) -> None:
        with self._lock:  # the first user sets up (GET /info, /parameters); the others wait for it
            if self.client is None:
                self._setup(env)

    def _setup(self, env: Any) -> None:
        o = env.parsed_options
        if not o.dify_api_key:
            raise RuntimeError("--dify-api-key (or DIFY_API_KEY) is required")
        t = o.dify_timeout
        self.client = DifyClient(env.host, o.dify_api_key, retry=RetryPolicy(max_attempts=1), breaker=None,
                                 timeouts=Timeouts(connect=min(10.0, t), first_event=t, idle=min(60.0, t)), max_connections=10_000)
        kind = o.dify_app
        if kind == "auto":
            kind = APP_KINDS.get(self.client.info().mode or "", "chat")
        self.kind = kind
        prompts = P.from_file(o.dify_prompts) if o.dify_prompts else P.from_query(o.dify_query or None)
        inputs = json.loads(o.dify_inputs) if o.dify_inputs else {}
        prompts = P.fill_required(prompts, self.client.parameters().input_fields(), inputs)
        self.streaming = o.dify_mode == "streaming"
        c, user = self.client, f"locust-{os.getpid()}"
        if kind == "chat":
            self.calls = [(lambda p=p: c.stream_chat(p.query or "", user=user, inputs=p.inputs)) if self.streaming
                          else (lambda p=p: c.chat(p.query or "", user=user, inputs=p.inputs)) for p in prompts]
        elif kind == "completion":
            self.calls = [(lambda p=p: c.stream_completion(p.inputs, user=user, query=p.query)) if self.streaming
                          else (lambda p=p: c.completion(p.inputs, user=user, query=p.query)) for p in prompts]
        else:
            self.calls = [(lambda p=p: c.stream_workflow(p.inputs, user=user)) if self.streaming
                          else (lambda p=p: c.run_workflow(p.inputs, user=user)) for p in prompts]
        self.order = P.PromptOrder(len(self.calls), self.index, True)
        self.warmup_s = o.bench_warmup

    def one(self, env: Any) -> None:
        """One request, timed and recorded; reported to Locust's statistics too."""
        assert self.order is not None
        scheduled = clock()
        seq, self.seq = self.index * 1_000_000_000 + self.seq, self.seq + 1
        prompt = self.order.next()
        err: DifyError | None = None
        final = None
        malformed = 0
        if self.streaming:
            stream = self.calls[prompt]()
            timing = stream.timing
            failed_node = None
            try:
                for ev in stream:
                    if ev.event in ANSWER_END:
                        final = clock()
                    elif ev.event == "node_finished" and ev.status == "failed":
                        failed_node = ev
                wf = stream.state.workflow if stream.state is not None else None
                if wf is not None and wf.status not in WORKFLOW_OK:
                    err = run_failed(wf.status, wf.error, failed_node)
            except DifyError as e:
                err = e
                wf = stream.state.workflow if stream.state is not None else None
                if wf is not None and wf.status not in WORKFLOW_OK and not isinstance(e, RunFailedError):
                    err = run_failed(wf.status, wf.error or e.message, failed_node)
            malformed = stream.state.malformed if stream.state is not None else 0
        else:
            try:
                result = self.calls[prompt]()
                timing = result.timing
                status = getattr(result, "status", None) if self.kind == "workflow" else None
                if status is not None and status not in WORKFLOW_OK:
                    err = run_failed(status, getattr(result, "error", None), None)
            except DifyError as e:
                err, timing = e, e.timing
        rec = build(seq=seq, warmup=scheduled - self.t0 < self.warmup_s, worker=self.index, prompt=prompt, t0=self.t0,
                    scheduled=scheduled, dispatched=scheduled, timing=timing, error=err, streaming=self.streaming,
                    final=final, malformed=malformed)
        self.pending.append(rec.as_dict())
        name = {"chat": "POST /chat-messages", "completion": "POST /completion-messages"}.get(self.kind, "POST /workflows/run")
        exc = None if rec.ok else (err or RuntimeError(rec.error_message or "failed"))
        fire = env.events.request.fire
        fire(request_type="DIFY", name=name, response_time=rec.e2e_ms or ((rec.t_end or 0) - rec.t_scheduled),
             response_length=rec.output_tokens or 0, exception=exc, context={})
        # TTFT and TPOT rows in Locust's table, logged on their own entries only: fired as requests they
        # would count in the Aggregated row (3x the requests and req/s).
        if rec.ok and rec.ttft_ms is not None:
            env.stats.get(name, "TTFT").log(rec.ttft_ms, 0)
        if rec.ok and rec.tpot_ms is not None:
            env.stats.get(name, "TPOT").log(rec.tpot_ms, 0)


_proc = _Process()


class _Collector:
    """The master's (or a lone process's) side: every record, saved to the store as it arrives."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.unsaved: list[dict[str, Any]] = []
        self.store: BenchStore | None = None
        self.run_id = ""
        self.started = time.time()
        self.workers = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.records.extend(rows)
        self.unsaved.extend(rows)

    def save(self) -> None:
        if self.store is not None and self.unsaved:
            rows, self.unsaved = self.unsaved, []
            self.store.add_requests(self.run_id, rows)

    def start(self, env: Any) -> None:
        o = env.parsed_options
        self.store = BenchStore(o.bench_db or None)
        self.run_id = new_run_id()
        self.started = time.time()
        users = getattr(env.runner, "target_user_count", None) or getattr(o, "num_users", None) or 1
        config = _config(env, users)
        info = env_info("gevent")
        self.workers = _worker_count(env)
        info["locust"] = {"master": isinstance(env.runner, MasterRunner), "workers": self.workers}
        self.store.create_run(self.run_id, config=mask_config(config.model_dump(mode="json")), environment=info, name=o.bench_name,
                              target=env.host, base_url=env.host, app=o.dify_app, mode=o.dify_mode, description=config.describe())
        gevent.spawn(self._saver)

    def _saver(self) -> None:
        while True:
            gevent.sleep(SHIP_S)
            try:
                self.save()
                if self.store is not None:
                    self.store.update_run(self.run_id, heartbeat=time.time())
            except Exception:
                log.exception("saving benchmark records failed")

    def finish(self, env: Any) -> None:
        if self.store is None:
            return
        self.save()
        o = env.parsed_options
        thresholds = [Threshold.parse(x) for x in o.bench_slo]
        rows = [RequestRecord(**_fields(r)) for r in self.records]
        summary = summarize(records_frame(rows), thresholds)
        runner = env.runner
        cpu = bool(getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False))
        checks = check_thresholds(summary, thresholds)
        summary.update({
            "run_id": self.run_id, "status": "finished", "target": env.host, "app": _proc.kind, "mode": o.dify_mode,
            "description": f"locust, {self.workers or 1} worker process(es), {getattr(runner, 'target_user_count', '?')} users",
            "client_bound": cpu, "client_bound_reasons": ["a Locust process passed 90% CPU"] if cpu else [],
            "selfcheck": None, "slo_checks": checks, "slo_passed": all(c["ok"] for c in checks),
        })
        self.store.finish_run(self.run_id, "finished", summary=summary)
        from lib.bench.__main__ import JSON_ORDER

        view = {k: summary.get(k) for k in JSON_ORDER}
        text = json.dumps(view, indent=2)
        log.info("benchmark run %s saved to %s:\n%s", self.run_id, self.store.path, text)
        if o.bench_json:
            with open(o.bench_json, "w") as f:
                f.write(text + "\n")
        if not summary["slo_passed"]:
            env.process_exit_code = 1
        self.store = None


_collector = _Collector()


def _worker_count(env: Any) -> int:
    runner = env.runner
    return len(runner.clients.all) if isinstance(runner, MasterRunner) else 0


def _config(env: Any, users: int) -> RunConfig:
    o = env.parsed_options
    run_time = getattr(o, "run_time", None)
    return RunConfig(name=o.bench_name, target=env.host, base_url=env.host, app=o.dify_app, mode=o.dify_mode,
                     load="closed", concurrency=max(1, int(users)), duration_s=float(run_time) if run_time else None,
                     requests=None if run_time else 1_000_000_000, warmup_s=o.bench_warmup, timeout_s=o.dify_timeout,
                     slo=[Threshold.parse(x) for x in o.bench_slo], prompts_source="locust")


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    # Locust times --run-time with gevent.spawn_later, from the time gevent's loop last read the clock: before
    # this file's imports, seconds ago on a loaded machine. Unread, a `-t 4s` run lasted 4 s minus the imports,
    # nothing at all once they took longer (no request, every figure empty). Read it now, just before the timer.
    gevent.get_hub().loop.update_now()
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE, lambda msg, **kw: _collector.add(msg.data))


@events.test_start.add_listener
def _test_start(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _proc.index = runner.worker_index
        gevent.spawn(_ship, environment)
    _proc.t0 = clock()
    if isinstance(runner, (MasterRunner, LocalRunner)):
        _collector.start(environment)


def _ship(env: Any) -> None:
    while True:
        gevent.sleep(SHIP_S)
        _send(env)


def _send(env: Any) -> None:
    if _proc.pending:
        rows, _proc.pending = _proc.pending, []
        env.runner.send_message(MESSAGE, rows)


@events.test_stop.add_listener
def _test_stop(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _send(environment)  # before the worker tells the master it stopped
    elif isinstance(runner, LocalRunner):
        _collector.add(_proc.pending)
        _proc.pending = []


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, LocalRunner):
        _collector.add(_proc.pending)
        _proc.pending = []
    if isinstance(environment.runner, (MasterRunner, LocalRunner)):
        _collector.finish(environment)


class DifyUser(User):
    """A closed-loop user: one request after another, no think time."""

    wait_time = constant(0)

    def on_start(self) -> None:
        _proc.setup(self.environment)

    @task
    def ask(self) -> None:
        _proc.one(self.environment)
        if isinstance(self.environment.runner, LocalRunner) and len(_proc.pending) >= 200:
            _collector.add(_proc.pending)  # a lone process is its own master
            _proc.pending = []


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    """A saved row's values by RequestRecord's field names (a row from an older layout lacks some: None)."""
    return {k: row.get(k) for k in COLUMNS}
