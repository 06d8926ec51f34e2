"""A run against a baseline run: what newly fails, what got fixed, what got slower or dearer.

Cells are matched by (case, target, variant). When each run has a single target and the names differ (the
same suite on staging, then on production), they are matched by (case, variant). A cell with repeats passes
when every repeat passed; its time and cost are the median of its repeats. "Slower" means the median total
time grew by more than `slower_ratio` and by more than `min_slower_s` (noise on fast answers is not news);
"dearer" means the cost grew by more than `dearer_ratio`.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from .records import CaseResult, EvalRun

SLOWER_RATIO, MIN_SLOWER_S, DEARER_RATIO = 0.2, 0.05, 0.1  # the defaults; a report quotes them


@dataclass
class Cell:
    key: tuple[str, ...]
    passed: bool
    total_s: float | None
    cost: float | None
    reasons: list[str]

    @property
    def label(self) -> str:
        return " · ".join(k for k in self.key if k and k != "default")


@dataclass
class Change:
    label: str
    before: Cell | None
    after: Cell | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        def cell(c: Cell | None) -> dict[str, Any] | None:
            return None if c is None else {"passed": c.passed, "total_s": c.total_s, "cost": c.cost}

        return {"cell": self.label, "detail": self.detail, "before": cell(self.before), "after": cell(self.after)}


@dataclass
class RunDiff:
    baseline: str
    run: str
    newly_failing: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    slower: list[Change] = field(default_factory=list)
    dearer: list[Change] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def has_regressions(self) -> bool:
        return bool(self.newly_failing or self.slower or self.dearer)

    def as_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "run": self.run, "unchanged": self.unchanged, "added": self.added,
                "removed": self.removed, **{k: [c.as_dict() for c in getattr(self, k)]
                                            for k in ("newly_failing", "fixed", "slower", "dearer")}}


def _cells(run: EvalRun, by_target: bool) -> dict[tuple[str, ...], Cell]:
    groups: dict[tuple[str, ...], list[CaseResult]] = {}
    for r in run.results:
        key = (r.case_id, r.target, r.variant) if by_target else (r.case_id, r.variant)
        groups.setdefault(key, []).append(r)

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    return {k: Cell(k, all(r.passed for r in rs), median([r.total_s for r in rs]), median([r.cost for r in rs]),
                    [reason for r in rs for reason in r.reasons()]) for k, rs in groups.items()}


def diff_runs(baseline: EvalRun, run: EvalRun, *, slower_ratio: float = SLOWER_RATIO, min_slower_s: float = MIN_SLOWER_S,
              dearer_ratio: float = DEARER_RATIO) -> RunDiff:
    by_target = not (len(baseline.targets) == 1 and len(run.targets) == 1 and baseline.targets != run.targets)
    before, after = _cells(baseline, by_target), _cells(run, by_target)
    d = RunDiff(baseline.id, run.id)
    d.added = [after[k].label for k in after if k not in before]
    d.removed = [before[k].label for k in before if k not in after]
    for key in after.keys() & before.keys():
        b, a = before[key], after[key]
        changed = False
        if b.passed and not a.passed:
            d.newly_failing.append(Change(a.label, b, a, "; ".join(a.reasons) or "failed"))
            changed = True
        elif a.passed and not b.passed:
            d.fixed.append(Change(a.label, b, a, "passes now"))
            changed = True
        if b.total_s is not None and a.total_s is not None and a.total_s - b.total_s > max(min_slower_s, b.total_s * slower_ratio):
            d.slower.append(Change(a.label, b, a, f"{b.total_s * 1000:.0f} ms -> {a.total_s * 1000:.0f} ms"))
            changed = True
        if b.cost is not None and a.cost is not None and a.cost - b.cost > b.cost * dearer_ratio and a.cost > b.cost:
            d.dearer.append(Change(a.label, b, a, f"{b.cost:.6f} -> {a.cost:.6f}"))
            changed = True
        d.unchanged += not changed
    for group in (d.newly_failing, d.fixed, d.slower, d.dearer):
        group.sort(key=lambda c: c.label)
    return d
