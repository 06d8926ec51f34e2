"""One prompt to two targets, or to one app with two input variants, streamed at the same time.

Each lane is a LiveRun in its own worker thread, started together, so both answers race under the
same conditions; the page polls both and redraws two columns until both have ended.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lib.dify import DifyClient

from .live import LiveRun, RunRequest
from .transcript import Turn


@dataclass
class Lane:
    label: str  # "A", "B", or a variant's name
    target: str  # the target's name
    client: DifyClient
    request: RunRequest


@dataclass
class CompareRun:
    query: str
    runs: list[LiveRun]
    started_at: float = field(default_factory=time.time)

    @property
    def turns(self) -> list[Turn]:
        return [r.turn for r in self.runs]

    @property
    def done(self) -> bool:
        return all(r.done.is_set() for r in self.runs)

    @property
    def version(self) -> tuple[int, ...]:
        return tuple(r.version for r in self.runs)

    def stop(self) -> None:
        for r in self.runs:
            r.stop()

    def heartbeat(self) -> None:
        for r in self.runs:
            r.heartbeat()

    def wait(self, seen: tuple[int, ...], timeout: float) -> tuple[int, ...]:
        """Until any lane changed since `seen`, all ended, or `timeout`: poll briefly on each lane."""
        deadline = time.monotonic() + timeout
        while self.version == seen and not self.done and time.monotonic() < deadline:
            # Waiting on one lane's condition would miss the other's news; a short slice keeps both fresh.
            self.runs[0].wait(seen[0], min(0.02, max(0.0, deadline - time.monotonic())))
        return self.version


def start_compare(query: str, lanes: list[Lane]) -> CompareRun:
    """Start every lane now (each in its own thread); the turns fill in as the answers stream."""
    runs = []
    for lane in lanes:
        turn = Turn(query=lane.request.query, kind=lane.request.kind, inputs=dict(lane.request.inputs),
                    target=lane.target, label=lane.label)
        runs.append(LiveRun(lane.client, lane.request, turn))
    for run in runs:
        run.start()
    return CompareRun(query=query, runs=runs)


def stats_rows(turns: list[Turn]) -> list[dict[str, Any]]:
    """One row per lane for a side-by-side table of what each answer took."""
    rows = []
    for t in turns:
        s = t.stats
        rows.append({
            "lane": t.label, "target": t.target, "status": t.status,
            "first token (ms)": round(s.ttft_s * 1000) if s and s.ttft_s is not None else None,
            "total (s)": round(s.total_s, 2) if s and s.total_s is not None else None,
            "output tokens": s.output_tokens if s else None,
            "tokens/s": round(s.tokens_per_s, 1) if s and s.tokens_per_s else None,
            "price": s.price if s else None,
            "characters": len(t.answer),
        })
    return rows
