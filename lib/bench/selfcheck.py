"""Is the load generator, not the target, setting the numbers? The engine watches itself.

- Event-loop lag: a task asks to sleep SAMPLE_S and records how late it wakes. Every latency the
  engine measures is late by about as much, since the same loop reads the responses.
- CPU of the loop's thread (`time.thread_time`): a loop busy nearly all the time queues its own work.
- Open loop: how late each request left against its scheduled time (not counting waits for the
  in-flight cap, which are the target's doing), and the achieved against the configured arrival rate.

`assess` turns these into `client_bound` with the reasons, using the limits below.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

clock = time.perf_counter

SAMPLE_S = 0.02  # the lag probe's sleep
MAX_LOOP_BUSY = 0.90  # share of wall time the loop's thread may spend on the CPU
MAX_LAG_P99_MS = 10.0  # loop lag p99 past this, and past LAG_SHARE of the TTFT p50, bends the figures
LAG_SHARE = 0.05
LATE_MS = 10.0  # an open-loop send this much after its slot is late
MAX_LATE_SHARE = 0.05
MIN_EVENTS = 3  # a lone hiccup (a GC pause, a neighbour's burst) in a short run is not a verdict
MIN_RATE_RATIO = 0.95  # achieved / configured arrival rate


class LoopMonitor:
    """Samples event-loop lag and the loop thread's CPU; start() and stop() run inside the loop."""

    def __init__(self, sample_s: float = SAMPLE_S) -> None:
        self.sample_s = sample_s
        self.lags: list[float] = []  # seconds late, one per sample
        self.times: list[float] = []  # perf_counter of each sample
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = self._wall0 = self._proc0 = 0.0
        self.cpu_s = self.wall_s = self.process_cpu_s = 0.0
        self._window: tuple[float, float, float] | None = None

    def start(self) -> None:
        self._cpu0, self._wall0, self._proc0 = time.thread_time(), clock(), time.process_time()
        self._task = asyncio.get_running_loop().create_task(self._probe())

    def mark_measurement(self) -> None:
        """Measurement starts now (after warm-up): CPU shares count from here."""
        self._cpu0, self._wall0, self._proc0 = time.thread_time(), clock(), time.process_time()

    async def _probe(self) -> None:
        s = self.sample_s
        while True:
            t = clock()
            await asyncio.sleep(s)
            now = clock()
            self.lags.append(max(0.0, now - t - s))
            self.times.append(now)

    async def stop(self) -> None:
        self.cpu_s = time.thread_time() - self._cpu0
        self.wall_s = clock() - self._wall0
        self.process_cpu_s = time.process_time() - self._proc0
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


@dataclass
class SelfCheck:
    client_bound: bool = False
    reasons: list[str] = field(default_factory=list)
    loop_lag_ms: dict[str, float | None] = field(default_factory=dict)  # p50, p99, max
    loop_busy: float | None = None  # loop thread CPU / wall, measurement window
    process_cpu: float | None = None  # whole process CPU / wall (may exceed 1 with threads)
    target_rate: float | None = None  # configured
    scheduled_rate: float | None = None  # of the arrivals drawn (a short Poisson schedule strays from the target)
    achieved_rate: float | None = None  # of the actual sends
    late_sends: int = 0
    late_share: float | None = None
    late_ms: dict[str, float | None] = field(default_factory=dict)  # p50, p99, max
    cap_waits: int = 0  # open loop: sends that waited for the in-flight cap (the target's pace, not ours)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pcts(values: Sequence[float] | np.ndarray, scale: float = 1.0) -> dict[str, float | None]:
    a = np.asarray(values, dtype=float) * scale
    if a.size == 0:
        return {"p50": None, "p99": None, "max": None}
    p50, p99 = np.percentile(a, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "max": round(float(a.max()), 3)}


def assess(
    monitor: LoopMonitor,
    *,
    measure_from: float,
    ttft_p50_ms: float | None,
    open_loop: bool,
    target_rate: float | None = None,
    dispatch_late_ms: Sequence[float] | None = None,
    dispatch_span_s: float | None = None,
    schedule_span_s: float | None = None,
    cap_waits: int = 0,
) -> SelfCheck:
    """The verdict. `dispatch_late_ms`: for each measured open-loop arrival, how late it was picked
    up after its slot; `dispatch_span_s` and `schedule_span_s`: first to last send, and first to last slot."""
    check = SelfCheck()
    lags = [lag for lag, t in zip(monitor.lags, monitor.times, strict=True) if t >= measure_from] or monitor.lags
    check.loop_lag_ms = _pcts(lags, 1000.0)
    if monitor.wall_s > 0:
        check.loop_busy = round(monitor.cpu_s / monitor.wall_s, 3)
        check.process_cpu = round(monitor.process_cpu_s / monitor.wall_s, 3)
    if check.loop_busy is not None and check.loop_busy > MAX_LOOP_BUSY:
        check.reasons.append(
            f"the engine's event loop was on the CPU {check.loop_busy:.0%} of the time (limit {MAX_LOOP_BUSY:.0%}): "
            "it had no slack to read answers the moment they came"
        )
    lag99 = check.loop_lag_ms.get("p99")
    lag_limit = max(MAX_LAG_P99_MS, LAG_SHARE * ttft_p50_ms) if ttft_p50_ms else MAX_LAG_P99_MS
    over = sum(1 for lag in lags if lag * 1000.0 > lag_limit)
    if lag99 is not None and lag99 > lag_limit and over >= MIN_EVENTS:
        check.reasons.append(
            f"event-loop lag p99 was {lag99:.1f} ms (limit {lag_limit:.1f} ms): latencies include up to that much of "
            "the engine's own delay"
        )
    if open_loop:
        check.target_rate = target_rate
        late = dispatch_late_ms or []
        check.late_ms = _pcts(late)
        check.late_sends = sum(1 for x in late if x > LATE_MS)
        check.late_share = round(check.late_sends / len(late), 4) if late else None
        check.cap_waits = cap_waits
        if dispatch_span_s and len(late) > 1:
            check.achieved_rate = round((len(late) - 1) / dispatch_span_s, 3)
        if schedule_span_s and len(late) > 1:
            check.scheduled_rate = round((len(late) - 1) / schedule_span_s, 3)
        if check.late_share is not None and check.late_share > MAX_LATE_SHARE and check.late_sends >= MIN_EVENTS:
            check.reasons.append(
                f"{check.late_share:.1%} of requests left more than {LATE_MS:g} ms after their scheduled time "
                f"(limit {MAX_LATE_SHARE:.0%}): the engine could not keep the arrival schedule"
            )
        planned = check.scheduled_rate or target_rate
        if planned and check.achieved_rate is not None and check.achieved_rate < MIN_RATE_RATIO * planned:
            check.reasons.append(
                f"the engine sent {check.achieved_rate:.2f} req/s against {planned:.2f} scheduled "
                f"(below {MIN_RATE_RATIO:.0%})"
            )
    check.client_bound = bool(check.reasons)
    return check
