"""Tables of a run for the page and notebooks: the cases x targets matrix and one row per answer."""
from __future__ import annotations

import pandas as pd

from .records import CaseResult, EvalRun


def _cell(results: list[CaseResult]) -> str:
    passed = sum(r.passed for r in results)
    head = "✅ pass" if passed == len(results) else ("❌ error" if any(r.error for r in results) else "❌ fail")
    if len(results) > 1:
        head += f" {passed}/{len(results)}"
    times = sorted(r.total_s for r in results if r.total_s is not None)
    costs = [r.cost for r in results if r.cost is not None]
    parts = [head]
    if times:
        parts.append(f"{times[len(times) // 2] * 1000:.0f} ms")
    if costs:
        parts.append(f"{sum(costs) / len(costs):.6f} {results[0].currency}")
    return " · ".join(parts)


def row_label(r: CaseResult, variants: int) -> str:
    return r.case_id if variants <= 1 else f"{r.case_id} · {r.variant}"


def matrix_frame(run: EvalRun, *, failures_only: bool = False) -> pd.DataFrame:
    """Rows: cases (and variants); columns: targets; each cell pass/fail, median time and mean cost over repeats.
    With `failures_only`, only the rows where some cell failed."""
    nvar = len(run.variants)
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for r in run.results:
        groups.setdefault((row_label(r, nvar), r.target), []).append(r)
    rows = list(dict.fromkeys(row_label(r, nvar) for r in run.results))
    if failures_only:
        failing = {row for (row, _), rs in groups.items() if not all(r.passed for r in rs)}
        rows = [r for r in rows if r in failing]
    data = {t: [_cell(groups[(row, t)]) if (row, t) in groups else "" for row in rows] for t in run.targets}
    return pd.DataFrame(data, index=pd.Index(rows, name="case"))


def results_frame(run: EvalRun, *, failures_only: bool = False) -> pd.DataFrame:
    """One row per answer: case, target, variant, repeat, passed, the reasons it failed, timing, tokens, cost."""
    rows = [{
        "case": r.case_id, "target": r.target, "variant": r.variant, "repeat": r.repeat + 1, "passed": r.passed,
        "why": "; ".join(r.reasons()), "ttft_ms": None if r.ttft_s is None else r.ttft_s * 1000,
        "total_ms": None if r.total_s is None else r.total_s * 1000, "tokens": r.tokens, "cost": r.cost,
    } for r in run.results if not (failures_only and r.passed)]
    return pd.DataFrame(rows, columns=["case", "target", "variant", "repeat", "passed", "why", "ttft_ms", "total_ms",
                                       "tokens", "cost"])
