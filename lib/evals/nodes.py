"""Where an eval run's time goes, per node: each answer's waterfall and each target's p50/p95 per node.

Each turn of a workflow or chatflow case keeps `waterfall_record(timing)` (records.TurnRecord.waterfall);
lib.waterfall turns those into one request's segments or a run's per-node statistics. A turn is one
request, so a conversation of three turns counts three requests of its target.
"""
from __future__ import annotations

import pandas as pd

from lib.waterfall import Waterfall, node_stats, request_waterfall

from .records import CaseResult, EvalRun, TurnRecord


def turn_waterfall(turn: TurnRecord) -> Waterfall | None:
    """The turn's request waterfall, or None when it had no node events (a chat app, or a run from before
    waterfalls were stored)."""
    return None if not turn.waterfall else request_waterfall(turn.waterfall)


def has_nodes(run: EvalRun) -> bool:
    return any(t.waterfall and t.waterfall.get("nodes") for r in run.results for t in r.turns)


def target_node_stats(run: EvalRun) -> dict[str, pd.DataFrame]:
    """Per target (in the run's order), lib.waterfall.node_stats over every turn that had node events;
    targets without any are left out."""
    out: dict[str, pd.DataFrame] = {}
    for target in run.targets:
        records = [t.waterfall for r in run.results if r.target == target for t in r.turns if t.waterfall]
        if records:
            stats = node_stats(records)
            if not stats.empty:
                out[target] = stats
    return out


def slowest_answer(run: EvalRun, target: str) -> tuple[CaseResult, int] | None:
    """The answer (and its turn index) of `target` with the longest end-to-end among those with node events:
    the one whose waterfall a report shows."""
    best: tuple[float, CaseResult, int] | None = None
    for r in run.results:
        if r.target != target:
            continue
        for i, t in enumerate(r.turns):
            e2e = (t.waterfall or {}).get("e2e_ms")
            if t.waterfall and t.waterfall.get("nodes") and e2e is not None and (best is None or e2e > best[0]):
                best = (float(e2e), r, i)
    return None if best is None else (best[1], best[2])


