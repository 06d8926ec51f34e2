"""The load engine: closed and open loops on AsyncDifyClient with the fast transport.

    outcome = run_benchmark(RunConfig(base_url=..., concurrency=8, duration_s=30), api_key, store=BenchStore())

One run = one event loop (uvloop) with one client, created and closed inside it: call `run_benchmark`
from a script, a CLI or a thread of its own (the page does). `run_sweep` runs one config at several
levels, `compare_targets` one workload against several targets, one after the other.

Honest numbers, by construction:
- A closed-loop user sends as soon as its last answer ended; its latencies count from that send.
  An open loop sends at scheduled instants whatever the answers do, and latencies count from each
  request's *scheduled* time, so waiting behind the in-flight cap or a late scheduler shows up.
- The client runs with no retries, no breaker and no rate limit unless configured: a benchmark
  must see every failure as it happened. Its concurrency cap is left off; the engine's own
  in-flight cap (open loop) is the only throttle, and the transport's pool is sized past the load.
- The hot path per request only creates the stream, reads it and builds one record; the rows go to
  the store from a writer thread (store.RunWriter), and the engine watches its own event-loop lag
  and CPU (selfcheck.py) to say when the figures are the generator's rather than the target's.
"""
from __future__ import annotations

import asyncio
import itertools
import math
import secrets
import threading
import time
from array import array
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from lib.dify import AsyncDifyClient, DifyAPIError, DifyError, FastTransport, RetryPolicy, RunFailedError, Timeouts, Timing
from lib.dify.events import NodeEvent

from . import prompts as P
from .config import DEFAULT_QUERY, Prompt, RunConfig, mask_config
from .environment import environment
from .records import COLUMNS, RequestRecord, build
from .selfcheck import LoopMonitor, assess
from .stats import EXACT_UP_TO, RunTally, check_thresholds, summarize
from .store import BenchStore, RunWriter

clock = time.perf_counter
CANCEL_POLL_S = 0.05
APP_KINDS = {"chat": "chat", "agent-chat": "chat", "advanced-chat": "chat", "agent": "chat",
             "completion": "completion", "workflow": "workflow"}
WORKFLOW_OK = ("succeeded", "partial-succeeded")


class BenchError(RuntimeError):
    """The run could not start (bad target, key or app); the message says what to fix."""


@dataclass
class Progress:
    """The live state of a run or a group of runs, written by the engine's thread and read by the
    page and the CLI's progress bar (plain attribute reads: no locks on the hot path)."""

    run_id: str = ""
    run_ids: list[str] = field(default_factory=list)
    step: int = 1  # which run of a group (sweep level, target), from 1
    steps: int = 1
    label: str = ""
    phase: str = "starting"  # starting | warmup | measuring | draining | done
    started_at: float = 0.0  # perf_counter of this run's start
    warmup_s: float = 0.0
    duration_s: float | None = None
    requests_target: int | None = None
    sent: int = 0
    done: int = 0
    ok: int = 0
    failed: int = 0
    measured_sent: int = 0
    measured_done: int = 0
    in_flight: int = 0
    last_error: str | None = None
    finished: bool = False  # the whole job (all its runs) is over
    status: str | None = None
    error: str | None = None

    @property
    def elapsed_s(self) -> float:
        return clock() - self.started_at if self.started_at else 0.0

    def fraction(self) -> float:
        """How far this run is, 0..1 (time for a duration run, measured answers for a count)."""
        if self.finished:
            return 1.0
        if self.requests_target:
            return min(1.0, self.measured_done / self.requests_target)
        total = self.warmup_s + (self.duration_s or 0.0)
        return min(1.0, self.elapsed_s / total) if total else 0.0

    def overall(self) -> float:
        if self.finished:
            return 1.0
        return max(0.0, min(1.0, ((max(1, self.step) - 1) + self.fraction()) / max(1, self.steps)))


@dataclass
class RunOutcome:
    run_id: str
    status: str  # finished | cancelled | failed
    config: RunConfig
    summary: dict[str, Any] | None
    error: str | None = None
    records: list[RequestRecord] = field(default_factory=list, repr=False)  # all of them up to KEEP_RECORDS
    store: BenchStore | None = field(default=None, repr=False)  # where the rest are, for a longer run

    def frame(self) -> pd.DataFrame:
        """Every request's row: from memory, or from the store when the run kept only the first records."""
        if self.store is not None:
            return self.store.requests(self.run_id).drop(columns="run_id")
        return records_frame(self.records)


NUMERIC = frozenset({"t_scheduled", "t_dispatched", "t_sent", "t_headers", "t_first_event", "t_first_content", "t_last_content",
                     "t_end", "ttft_ms", "e2e_ms", "ttfb_ms", "queue_ms", "client_queue_ms", "late_ms", "tpot_ms", "price"})


def records_frame(records: Sequence[RequestRecord]) -> pd.DataFrame:
    """The records as the store returns rows (itl_ms an array per row), built column by column:
    a dict per record would hold every gap as a boxed Python float."""
    columns: dict[str, Any] = {}
    for c in COLUMNS:
        values = [getattr(r, c) for r in records]
        if c == "itl_ms":  # zero-copy views of each record's array
            columns[c] = [np.frombuffer(v, dtype=np.float32 if v.typecode == "f" else float) if isinstance(v, array)
                          else np.asarray(v, dtype=float) for v in values]
        elif c in NUMERIC:  # a float column, None as NaN: no boxed value per cell
            columns[c] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            columns[c] = values
    return pd.DataFrame(columns, columns=list(COLUMNS))


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def arrivals(rate: float, arrival: str, seed: int, *, burstiness: float = 1.0, block: int = 1000) -> Iterator[float]:
    """Offsets in seconds from the run's start. `constant`: every 1/rate. `poisson`: gaps from a gamma
    distribution of shape `burstiness` (1: exponential gaps, Poisson arrivals; below 1 burstier, above 1
    more even) and mean 1/rate, drawn from numpy's generator seeded with `seed`, `block` at a time; each
    block is rescaled so its gaps sum to exactly block/rate (as vLLM does), so a run of `block` arrivals
    offers exactly `rate` on average instead of a draw that strays by several percent. The same seed
    and block, the same schedule."""
    if arrival == "constant":
        i = 0
        while True:
            yield i / rate
            i += 1
    rng = np.random.default_rng(seed)
    block = max(1, int(block))
    base, span = 0.0, block / rate
    while True:
        gaps = rng.gamma(burstiness, 1.0 / (rate * burstiness), size=block)
        offsets = np.concatenate(([0.0], np.cumsum(gaps[:-1]) * (span / gaps.sum())))
        yield from (base + offsets).tolist()
        base += span  # exactly: a block ends where the next begins, with no rounding drift


def shaped(pieces: Sequence[tuple[float, float, float, float]], unit: Iterator[float]) -> Iterator[float]:
    """Arrival offsets for a rate that changes over time: `unit` is a schedule at 1 request/s, mapped
    through the inverse of the cumulative rate Λ(t) = ∫ rate (time rescaling), so a piece at rate r
    gets r arrivals a second, constant gaps stay even and Poisson ones stay Poisson."""
    cum = 0.0
    bounds = []
    for a, b, la, lb in pieces:
        span = b - a
        area = float("inf") if span == float("inf") else (la + lb) / 2.0 * span
        bounds.append((a, b, la, lb, cum, cum + area))
        cum += area
    i = 0
    for u in unit:
        while i < len(bounds) and u >= bounds[i][5]:
            i += 1
        if i == len(bounds):
            return
        a, b, la, lb, c0, _ = bounds[i]
        k = 0.0 if b == float("inf") else (lb - la) / (b - a)
        du = u - c0
        if k == 0.0:
            if la <= 0:
                continue
            yield a + du / la
        else:
            yield a + (-la + math.sqrt(max(0.0, la * la + 2.0 * k * du))) / k


def expected_arrivals(pieces: Sequence[tuple[float, float, float, float]], until: float) -> float:
    """Λ(until): the arrivals the shape expects in [0, until)."""
    total = 0.0
    for a, b, la, lb in pieces:
        if until <= a:
            break
        end = min(b, until)
        rate_end = la + (lb - la) * ((end - a) / (b - a)) if b != float("inf") and b > a else lb
        total += (la + rate_end) / 2.0 * (end - a)
    return total


def offsets(config: RunConfig) -> Iterator[float]:
    """The open loop's arrival offsets (s from the start): a trace as given, a shaped rate, or the plain schedule."""
    if config.trace:
        first = min(config.trace)
        return iter(sorted(t - first for t in config.trace))
    pieces = config.shape()
    if pieces is None:
        return arrivals(config.rate, config.arrival, config.seed, burstiness=config.burstiness, block=schedule_block(config))
    horizon = config.warmup_s + (config.duration_s or 0.0) if config.duration_s is not None else pieces[-1][0] + 3600.0
    block = max(1, round(expected_arrivals(pieces, horizon))) if config.duration_s is not None else schedule_block(config)
    return shaped(pieces, arrivals(1.0, config.arrival, config.seed, burstiness=config.burstiness, block=block))


def schedule_block(config: RunConfig) -> int:
    """How many arrivals one rescaled block of the schedule holds: the whole run's (warm-up included)."""
    if config.duration_s is not None:
        return max(1, round(config.rate * (config.warmup_s + config.duration_s)))
    return max(1, (config.requests or 1) + round(config.rate * config.warmup_s))


def run_failed(status: str | None, message: str | None, node: NodeEvent | None) -> RunFailedError:
    """The typed failure of a workflow/chatflow run that ended other than succeeded (HTTP 200), naming
    the failed node when a node_finished event said which."""
    where = f" in node {node.title!r} ({node.node_type})" if node is not None and node.title else ""
    error = message or (node.data.get("error") if node is not None else None) or ""
    text = f"The workflow run {status or 'failed'}{where}" + (f": {error}" if error else "")
    return RunFailedError(text, code="run_failed", message=error or None, node_id=node.node_id if node else None,
                          node_title=node.title if node else None, node_type=node.node_type if node else None)


# Events that end an answer: the e2e ends at the last of them to arrive (a chatflow sends both, in
# either order: 1.12 workflow_finished then message_end, 1.13 the other way round).
ANSWER_END = frozenset({"message_end", "workflow_finished"})
LATE_YIELD_EVERY = 16  # a scheduler behind its schedule yields to the loop this often, so answers keep being read
SATURATION_SAMPLE_S = 0.5
SATURATION_SAMPLES = 10  # 5 s of samples
MIN_REQUESTS_FOR_ERROR_RATE = 20
KEEP_RECORDS = EXACT_UP_TO  # records kept in memory with a store (exact percentiles); a longer run's summary is its RunTally
SHAPE_POLL_S = 0.01  # a shaped closed loop's idle user looks this often whether it is on


# -- one run ------------------------------------------------------------------------------------------------


class _Run:
    def __init__(self, config: RunConfig, api_key: str, store: BenchStore | None, progress: Progress,
                 cancel: threading.Event | None, run_id: str, abort: threading.Event | None = None) -> None:
        self.config, self.api_key, self.store = config, api_key, store
        self.progress, self.cancel_event, self.abort_event, self.run_id = progress, cancel, abort, run_id
        self.records: list[RequestRecord] = []
        self.cancelled = False
        self.cancel_at: float | None = None
        self.stopping = False
        self.stop_reason: str | None = None
        self.stop_detail: str | None = None
        self.window_end: float | None = None  # perf_counter: sending stopped (duration runs: the window's end)
        self.drain_limited = False
        self.dropped = 0  # arrivals due inside the window that were never sent
        self.measured_failed = 0
        self.seq = 0
        self.order = P.PromptOrder(len(config.prompts), config.seed, config.shuffle)
        self.writer: RunWriter | None = None
        self.monitor = LoopMonitor()
        # array('d'), not lists: 8 bytes a request instead of a boxed float's 32
        self.late_ms = array("d")  # open loop, measured arrivals: picked up this late after their slot
        self.dispatch_times = array("d")
        self.slot_times = array("d")
        self.cap_waits = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.scheduler: asyncio.Task[Any] | None = None
        self.wake: asyncio.Event | None = None
        self.backlog: list[tuple[float, int]] = []  # open loop: (time, requests issued and not answered)
        self.recent_service = array("d")  # ms from the actual send to the end, measured successes
        self.failure: BaseException | None = None
        self.spilled = False
        self.tally = RunTally(config.slo, percentiles=config.percentiles, load=config.load)  # the summary past KEEP_RECORDS

    # setup

    async def _prepare(self, client: AsyncDifyClient) -> None:
        cfg = self.config
        kind = cfg.app
        try:
            if kind == "auto":
                info = await client.info()
                kind = APP_KINDS.get(info.mode or "", "chat")  # type: ignore[assignment]
            fields = (await client.parameters()).input_fields()
        except DifyError as exc:
            raise BenchError(f"could not read the app at {cfg.base_url}: {exc}") from None
        self.kind = kind
        self.prompts = P.fill_required(cfg.prompts, fields, cfg.inputs)
        self.streaming = cfg.mode == "streaming"
        make = _caller(client, kind, self.streaming, cfg.user or f"bench-{self.run_id}", dict(cfg.headers))
        # One call per prompt, built before the clock starts: the hot path only calls it.
        self.calls: list[Callable[[], Any]] = [make(p) for p in self.prompts]

    def _timeouts(self) -> Timeouts:
        # No `total` deadline: the client would then wrap every chunk read in asyncio.timeout, a timer
        # per chunk on the hot path. first_event bounds the wait for an answer and idle (aiohttp's read
        # timeout, free) a stalled stream; the engine's drain bounds the end of the run.
        t = self.config.timeout_s
        return Timeouts(connect=min(10.0, t), first_event=t, idle=min(60.0, t), total=None)

    def _client(self) -> AsyncDifyClient:
        cfg = self.config
        width = cfg.concurrency if cfg.load == "closed" else (cfg.max_in_flight or 0)
        return AsyncDifyClient(
            cfg.base_url, self.api_key,
            timeouts=self._timeouts(),
            retry=RetryPolicy(max_attempts=1 + cfg.retries),
            rate_limit=cfg.client_rate_limit, max_concurrency=None, breaker=None,
            transport=FastTransport(max_connections=max(1000, 2 * width)),
        )

    # the hot path

    async def _one(self, seq: int, prompt: int, worker: int | None, scheduled: float, warm: bool,
                   sem: asyncio.Semaphore | None = None) -> None:
        dispatched = clock()
        if sem is not None:
            if not warm:
                self.late_ms.append((dispatched - scheduled) * 1000.0)
                self.dispatch_times.append(dispatched)
                self.slot_times.append(scheduled)
            if sem.locked():
                self.cap_waits += not warm
            try:
                await sem.acquire()
            except asyncio.CancelledError:  # still waiting for the in-flight cap when the run ended: never sent
                self.dropped += not warm
                raise
        progress = self.progress
        progress.in_flight += 1
        err: DifyError | None = None
        timing: Timing | None = None
        final: float | None = None
        abandoned = False
        stream: Any = None
        try:
            if self.streaming:
                stream = self.calls[prompt]()
                timing = stream.timing
                failed_node: NodeEvent | None = None
                try:
                    async for ev in stream:
                        name = ev.event
                        if name in ANSWER_END:
                            final = clock()
                        elif name == "node_finished" and ev.status == "failed":
                            failed_node = ev
                except DifyError as e:
                    err = e
                    wf = stream.state.workflow if stream.state is not None else None
                    if wf is not None and wf.status not in WORKFLOW_OK and not isinstance(e, RunFailedError):
                        # A chatflow's failed run ends workflow_finished (failed) then an `error` event:
                        # the run failed in a node, which is not a model or stream failure.
                        err = run_failed(wf.status, wf.error or e.message, failed_node)
                else:
                    wf = stream.state.workflow if stream.state is not None else None
                    if wf is not None and wf.status not in WORKFLOW_OK:
                        err = run_failed(wf.status, wf.error, failed_node)
            else:
                try:
                    result = await self.calls[prompt]()
                    timing = result.timing
                    status = getattr(result, "status", None) if self.kind == "workflow" else None
                    if status is not None and status not in WORKFLOW_OK:
                        err = run_failed(status, getattr(result, "error", None), None)
                except DifyError as e:
                    err = e
                    timing = e.timing or _ended_timing()
                    if isinstance(e, DifyAPIError) and e.status == 400 and (e.message or "").startswith("Run failed"):
                        # A blocking chatflow whose node failed: Dify's 400 invalid_param "Run failed: ..."
                        err = RunFailedError(f"The chatflow run failed: {e.message}", code=e.code, status=400, message=e.message)
        except asyncio.CancelledError:  # the drain limit or the cancel grace ran out with this answer in flight
            abandoned = True
            timing = timing or _ended_timing()
            raise
        except Exception as e:  # not the client's typed error: a bug or an unexpected library error
            err = DifyError(f"{type(e).__name__}: {e}", code=type(e).__name__)
            timing = timing or _ended_timing()
            if timing.end is None:
                timing.end = clock()
        finally:
            progress.in_flight -= 1
            if sem is not None:
                sem.release()
            if abandoned:
                self._record(build(seq=seq, warmup=warm, worker=worker, prompt=prompt, t0=self.t0, scheduled=scheduled,
                                   dispatched=dispatched, timing=timing or _ended_timing(), error=None, streaming=self.streaming,
                                   abandoned=True))
        state = stream.state if stream is not None else None
        rec = build(seq=seq, warmup=warm, worker=worker, prompt=prompt, t0=self.t0, scheduled=scheduled,
                    dispatched=dispatched, timing=timing, error=err, streaming=self.streaming, final=final,
                    malformed=state.malformed if state is not None else 0)
        self._record(rec)
        progress.done += 1
        if rec.ok:
            progress.ok += 1
            if not warm and rec.t_end is not None and rec.t_sent is not None:
                self.recent_service.append(rec.t_end - rec.t_sent)
        else:
            progress.failed += 1
            progress.last_error = f"{rec.error_class}: {rec.error_message}"
        if not warm:
            progress.measured_done += 1
            if not rec.ok:
                self.measured_failed += 1
                if not self.stopping:
                    self._check_errors()  # at once: a fast failing target fails hundreds of requests a poll

    def _record(self, rec: RequestRecord) -> None:
        self.tally.add(rec)
        if self.writer is None or len(self.records) < KEEP_RECORDS:
            self.records.append(rec)
        else:
            self.spilled = True  # a long run: the rest live in the store only, and the summary is the tally's
        if self.writer is not None:
            self.writer.add(rec)

    def _stop(self, reason: str, detail: str | None = None) -> None:
        """Send no more: the window ends now (or at its planned end, whichever is first)."""
        if self.stopping:
            return
        self.stopping = True
        self.stop_reason, self.stop_detail = reason, detail
        now = clock()
        if self.config.duration_s is None:
            self.window_end = now
        else:  # the planned end, unless a cancel or a stop rule came first
            self.window_end = self.t_stop if reason == "duration" else min(now, self.t_stop)
        if self.wake is not None:
            self.wake.set()
        if reason not in ("duration", "requests") and self.scheduler is not None:
            self.scheduler.cancel()  # interrupts its sleep; answers in flight are left to the drain

    def _issue(self, now: float) -> tuple[int, int, bool] | None:
        """The next request's (seq, prompt, warm-up?), or None when the run should send no more."""
        if self.stopping:
            return None
        cfg = self.config
        warm = now < self.t_measure
        if cfg.duration_s is not None and now >= self.t_stop:
            self._stop("duration")
            return None
        if cfg.requests is not None and not warm and self.progress.measured_sent >= cfg.requests:
            self._stop("requests")
            return None
        seq = self.seq
        self.seq += 1
        self.progress.sent += 1
        if not warm:
            self.progress.measured_sent += 1
        return seq, self.order.next(), warm

    async def _worker(self, w: int) -> None:
        shape = self.config.shape()
        while True:
            now = clock()
            if shape is not None and w >= self.config.level_at(now - self.t0):
                # A shaped closed loop: this user is not on yet (ramping up) or no longer (ramping down).
                if self.stopping or (self.config.duration_s is not None and now >= self.t_stop):
                    return
                await asyncio.sleep(SHAPE_POLL_S)
                continue
            nxt = self._issue(now)
            if nxt is None:
                return
            seq, prompt, warm = nxt
            await self._one(seq, prompt, w, now, warm)

    def _track(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()  # a bug in the engine: re-raised at the end, never swallowed

    async def _closed(self) -> None:
        workers = [self._track(asyncio.ensure_future(self._worker(w))) for w in range(self.config.concurrency)]
        # Duration runs: the window closes at t_stop; workers still holding an answer finish it in _drain.
        # Count runs: the workers return once the last measured request was answered. A cancel or a
        # stop rule wakes this up at once.
        assert self.wake is not None
        every = asyncio.ensure_future(asyncio.wait(workers))
        woken = asyncio.ensure_future(self.wake.wait())
        await asyncio.wait([every, woken], timeout=self._issue_window(), return_when=asyncio.FIRST_COMPLETED)
        every.cancel()
        woken.cancel()
        self._stop("duration" if self.config.duration_s is not None else "requests")

    async def _open(self) -> None:
        self.scheduler = self._track(asyncio.ensure_future(self._schedule()))  # a task, so a stop interrupts its sleep
        await asyncio.wait([self.scheduler])
        self._stop("duration" if self.config.duration_s is not None else "requests")

    async def _schedule(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        sem: Any = asyncio.Semaphore(cfg.max_in_flight) if cfg.max_in_flight else _NoCap()
        t0 = self.t0
        timed = cfg.duration_s is not None
        late = 0
        schedule = offsets(cfg)
        for offset in schedule:
            slot = t0 + offset
            if timed and slot >= self.t_stop:
                break
            now = clock()
            delay = slot - now
            if delay > 0.0005:
                late = 0
                await asyncio.sleep(delay)
            else:
                if timed and now >= self.t_stop:
                    # The window closed with arrivals still due: the generator fell behind. They are
                    # counted as dropped (k6's dropped_iterations), not sent late after the window.
                    self.dropped += 1 + sum(1 for _ in itertools.takewhile(lambda o: t0 + o < self.t_stop, schedule))
                    self._stop("duration")
                    break
                late += 1
                if late % LATE_YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            nxt = self._issue(slot)
            if nxt is None:
                break
            seq, prompt, warm = nxt
            self._track(loop.create_task(self._one(seq, prompt, None, slot, warm, sem)))

    def _issue_window(self) -> float | None:
        if self.config.duration_s is None:
            return None
        return max(0.0, self.t_stop - clock())

    # stop rules

    def _check_errors(self) -> None:
        cfg = self.config
        failed, done = self.measured_failed, self.progress.measured_done
        if cfg.max_errors is not None and failed >= cfg.max_errors:
            self._stop("max_errors", f"{failed} failed requests reached --max-errors {cfg.max_errors}")
        elif cfg.max_error_rate is not None and done >= MIN_REQUESTS_FOR_ERROR_RATE and failed / done > cfg.max_error_rate:
            self._stop("max_error_rate", f"{failed} of {done} requests failed ({failed / done:.0%}), "
                                         f"past --max-error-rate {cfg.max_error_rate:g}")

    def _check_rules(self, now: float) -> None:
        cfg = self.config
        if cfg.load == "open" and cfg.stop_on_saturation and now >= self.t_measure:
            if not self.backlog or now - self.backlog[-1][0] >= SATURATION_SAMPLE_S:
                self.backlog.append((now, max(0, len(self.tasks) - 1)))
                why = self._saturated()
                if why:
                    self._stop("over_saturated", why)

    def _saturated(self) -> str | None:
        """Open loop: the backlog (requests issued, not yet answered, queued ones included) grows without
        bound. Over the last 5 s it rose by at least a tenth of the arrivals (a least-squares slope), and it
        holds more than twice what Little's law expects from the answers' own time: rate x the median
        service time (actual send to end) of at least 10 answers. Service time, not end-to-end: an
        end-to-end that counts the queue grows with it, and would always make the backlog look expected.
        A target that has answered nothing yet is not judged (its answers may just be long): the drain
        limit ends that run."""
        if len(self.backlog) < SATURATION_SAMPLES or len(self.recent_service) < 10:
            return None
        window = self.backlog[-SATURATION_SAMPLES:]
        times = np.array([t for t, _ in window]) - window[0][0]
        sizes = np.array([n for _, n in window], dtype=float)
        slope = float(np.polyfit(times, sizes, 1)[0])
        rate = self.config.level_at(clock() - self.t0) if self.config.shape() is not None else self.config.rate
        if self.config.trace:
            rate = len(self.config.trace) / max(1e-9, max(self.config.trace) - min(self.config.trace))
        service_s = float(np.median(self.recent_service[-200:])) / 1000.0
        expected = rate * service_s
        if slope > 0.1 * rate and sizes[-1] > max(20.0, 2.0 * expected):
            return (f"over-saturated: {int(sizes[-1])} requests waiting for an answer and growing by {slope:.1f}/s at "
                    f"{rate:g} req/s offered (the target cannot keep up; about {expected:.0f} expected in flight)")
        return None

    async def _watch(self) -> None:
        """Polls the cancel flag and the stop rules; marks the end of warm-up for the self-check and the progress."""
        measured = False
        while True:
            now = clock()
            if not measured and now >= self.t_measure:
                measured = True
                self.monitor.mark_measurement()
                if self.progress.phase == "warmup":
                    self.progress.phase = "measuring"
            if self.cancel_event is not None and self.cancel_event.is_set() and not self.cancelled:
                self.cancelled, self.cancel_at = True, now
                self._stop("cancelled")
            if not self.stopping:
                self._check_rules(now)
            await asyncio.sleep(CANCEL_POLL_S)

    async def _drain(self) -> None:
        """Wait for the answers still in flight (up to drain_s; after a cancel, up to cancel_grace_s from
        it; not at all after an abort), then cancel what is left: those rows are marked abandoned."""
        cfg = self.config
        self.progress.phase = "draining"
        deadline = clock() + (cfg.drain_s if cfg.drain_s is not None else cfg.timeout_s)
        while True:
            pending = [t for t in list(self.tasks) if not t.done()]
            if not pending:
                break
            if self.cancelled and self.cancel_at is not None:
                deadline = min(deadline, self.cancel_at + cfg.cancel_grace_s)
            left = deadline - clock()
            if left <= 0 or (self.abort_event is not None and self.abort_event.is_set()):
                self.drain_limited = True
                break
            await asyncio.wait(pending, timeout=min(left, 2 * CANCEL_POLL_S))
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def execute(self) -> RunOutcome:
        cfg, progress = self.config, self.progress
        client = self._client()
        try:
            await self._prepare(client)
            self.writer = self.store.writer(self.run_id) if self.store is not None else None
            self.wake = asyncio.Event()
            self.t0 = clock()
            self.t_measure = self.t0 + cfg.warmup_s
            self.t_stop = self.t_measure + (cfg.duration_s or 0.0)
            progress.started_at = self.t0
            progress.phase = "warmup" if cfg.warmup_s > 0 else "measuring"
            self.monitor.start()
            watcher = asyncio.ensure_future(self._watch())
            try:
                if self.cancel_event is not None and self.cancel_event.is_set():  # cancelled while reading the app
                    self.cancelled, self.cancel_at = True, clock()
                    self._stop("cancelled")
                elif cfg.load == "closed":
                    await self._closed()
                else:
                    await self._open()
                await self._drain()
                progress.phase = "done"
            finally:
                watcher.cancel()
                await self.monitor.stop()
        finally:
            await client.aclose()
            if self.writer is not None:
                self.writer.close()
        if self.failure is not None:
            raise self.failure
        return self._outcome()

    def _outcome(self) -> RunOutcome:
        cfg = self.config
        window_end_ms = (self.window_end - self.t0) * 1000.0 if cfg.duration_s is not None and self.window_end else None
        if self.spilled:  # a long run: summed as it went (sketched percentiles), its rows never read back
            summary = self.tally.summary(window_end_ms=window_end_ms, streaming=self.streaming)
        else:
            summary = summarize(records_frame(self.records), cfg.slo, window_end_ms=window_end_ms, streaming=self.streaming,
                                percentiles=cfg.percentiles, load=cfg.load)
        sends, slots = sorted(self.dispatch_times), sorted(self.slot_times)
        span = (sends[-1] - sends[0]) if len(sends) > 1 else None
        planned = (slots[-1] - slots[0]) if len(slots) > 1 else None
        check = assess(self.monitor, measure_from=self.t_measure, ttft_p50_ms=(summary.get("ttft_ms") or {}).get("p50"),
                       open_loop=cfg.load == "open", target_rate=cfg.rate if cfg.load == "open" else None,
                       dispatch_late_ms=self.late_ms, dispatch_span_s=span, schedule_span_s=planned, cap_waits=self.cap_waits)
        status = "cancelled" if self.cancelled else "finished"
        checks = check_thresholds(summary, cfg.slo)
        summary.update({
            "run_id": self.run_id, "status": status, "target": cfg.target, "base_url": cfg.base_url,
            "app": self.kind, "mode": cfg.mode, "load": cfg.load, "level": cfg.level, "description": cfg.describe(),
            "stop_reason": self.stop_reason, "stop_detail": self.stop_detail, "dropped": self.dropped,
            "drain_limited": self.drain_limited,
            "client_bound": check.client_bound, "client_bound_reasons": check.reasons, "selfcheck": check.as_dict(),
            "slo_checks": checks, "slo_passed": all(c["ok"] for c in checks),
        })
        if self.store is not None:
            self.store.finish_run(self.run_id, status, summary=summary, selfcheck=check.as_dict())
        return RunOutcome(self.run_id, status, cfg, summary, records=self.records, store=self.store if self.spilled else None)


class _NoCap:
    """Stands in for the in-flight semaphore when there is no cap (the open loop's dispatch path stays one)."""

    def locked(self) -> bool:
        return False

    async def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


def _caller(
    client: AsyncDifyClient, kind: str, streaming: bool, user: str, headers: dict[str, str]
) -> Callable[[Prompt], Callable[[], Any]]:
    """prompt -> a no-argument call that starts one request of this app kind and mode."""
    opts: dict[str, Any] = {"headers": headers} if headers else {}
    if kind == "chat":
        chat = client.stream_chat if streaming else client.chat
        return lambda p: partial(chat, p.query or DEFAULT_QUERY, user=user, inputs=p.inputs, **opts)
    if kind == "completion":
        complete = client.stream_completion if streaming else client.completion
        return lambda p: partial(complete, p.inputs, user=user, query=p.query, **opts)
    run = client.stream_workflow if streaming else client.run_workflow
    return lambda p: partial(run, p.inputs, user=user, **opts)


def _ended_timing() -> Timing:
    t = Timing()
    t.end = clock()
    return t


# -- entry points -----------------------------------------------------------------------------------------


async def run_async(config: RunConfig, api_key: str, *, store: BenchStore | None = None, progress: Progress | None = None,
                    cancel: threading.Event | None = None, run_id: str | None = None, group_id: str | None = None,
                    group_kind: str | None = None, loop_name: str = "asyncio", abort: threading.Event | None = None) -> RunOutcome:
    """One run (no sweep) inside the running event loop. Saves it to `store` as it goes.

    `cancel` set: send no more and wait for the answers in flight up to `config.cancel_grace_s`
    (status cancelled, the summary of what was measured). `abort` set as well: stop waiting now."""
    if config.sweep:
        raise ValueError("run_async runs one level: use run_sweep for a sweep")
    run_id = run_id or new_run_id()
    progress = progress or Progress()
    progress.run_id, progress.label = run_id, " · ".join(x for x in (config.target, config.describe()) if x)
    progress.warmup_s, progress.duration_s, progress.requests_target = config.warmup_s, config.duration_s, config.requests
    for name in ("sent", "done", "ok", "failed", "measured_sent", "measured_done", "in_flight"):
        setattr(progress, name, 0)
    progress.phase, progress.started_at, progress.last_error = "starting", 0.0, None
    if run_id not in progress.run_ids:
        progress.run_ids.append(run_id)
    if store is not None:
        store.create_run(run_id, config=mask_config(config.model_dump(mode="json")), environment=environment(loop_name), name=config.name,
                         target=config.target, base_url=config.base_url, app=config.app, mode=config.mode,
                         description=config.describe(), group_id=group_id, group_kind=group_kind, level=config.level)
    run = _Run(config, api_key, store, progress, cancel, run_id, abort)
    try:
        outcome = await run.execute()
    except BenchError as exc:
        if store is not None:
            store.finish_run(run_id, "failed", error=str(exc))
        return RunOutcome(run_id, "failed", config, None, error=str(exc))
    except BaseException as exc:
        if store is not None:  # keep what was measured; say why it stopped
            status = "cancelled" if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)) else "failed"
            store.finish_run(run_id, status, error=f"{type(exc).__name__}: {exc}")
        raise
    if store is not None and outcome.status == "finished":
        store.update_run(run_id, app=run.kind)
    return outcome


def _runner() -> asyncio.Runner:
    try:
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is pinned in requirements.txt
        return asyncio.Runner()


def _in_own_loop(make: Callable[[str], Coroutine[Any, Any, Any]]) -> Any:
    """Run the coroutine in a fresh uvloop event loop; from a thread that already runs a loop
    (Jupyter), in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with _runner() as runner:
            return runner.run(make(_loop_name(runner)))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with _runner() as runner:
                box["value"] = runner.run(make(_loop_name(runner)))
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="bench-run")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _loop_name(runner: asyncio.Runner) -> str:
    return type(runner.get_loop()).__module__.split(".")[0]


def run_benchmark(config: RunConfig, api_key: str, *, store: BenchStore | None = None, progress: Progress | None = None,
                  cancel: threading.Event | None = None, abort: threading.Event | None = None) -> RunOutcome | list[RunOutcome]:
    """Run `config` in an event loop of its own: one run, or a list of runs for a sweep."""
    if config.sweep:
        return run_sweep(config, api_key, store=store, progress=progress, cancel=cancel, abort=abort)
    return _in_own_loop(lambda loop: run_async(config, api_key, store=store, progress=progress, cancel=cancel, loop_name=loop,
                                               abort=abort))


def run_sweep(config: RunConfig, api_key: str, *, store: BenchStore | None = None, progress: Progress | None = None,
              cancel: threading.Event | None = None, abort: threading.Event | None = None) -> list[RunOutcome]:
    """One run per sweep level, one after the other, in one group (the throughput/latency curve)."""
    levels = config.sweep or [config.level]
    return _run_group([(config.at_level(x), api_key) for x in levels], "sweep", store, progress, cancel, abort)


@dataclass
class TargetSpec:
    """A target for compare_targets: display name, base URL and key (the key is never stored)."""

    name: str
    base_url: str
    api_key: str = field(repr=False)


def compare_targets(config: RunConfig, targets: Sequence[TargetSpec], *, store: BenchStore | None = None,
                    progress: Progress | None = None, cancel: threading.Event | None = None,
                    abort: threading.Event | None = None) -> list[RunOutcome]:
    """The same workload against each target, one after the other (so they never share the machine)."""
    if len(targets) < 2:
        raise ValueError("comparing needs two or more targets")
    jobs = [(config.model_copy(update={"target": t.name, "base_url": t.base_url, "name": config.name or t.name}), t.api_key)
            for t in targets]
    return _run_group(jobs, "compare", store, progress, cancel, abort)


def _run_group(jobs: list[tuple[RunConfig, str]], kind: str, store: BenchStore | None, progress: Progress | None,
               cancel: threading.Event | None, abort: threading.Event | None = None) -> list[RunOutcome]:
    progress = progress or Progress()
    progress.steps = len(jobs)
    group_id = new_run_id() if len(jobs) > 1 else None

    async def run_all(loop_name: str) -> list[RunOutcome]:
        outcomes = []
        for i, (cfg, key) in enumerate(jobs, 1):
            if cancel is not None and cancel.is_set():
                break
            progress.step = i
            outcomes.append(await run_async(cfg, key, store=store, progress=progress, cancel=cancel,
                                            group_id=group_id, group_kind=kind if group_id else None, loop_name=loop_name,
                                            abort=abort))
        return outcomes

    return _in_own_loop(run_all)
