"""The verdict at the top of an eval report: a cancelled run is not called a pass, nor a failure."""
from __future__ import annotations

from lib.evals.records import CaseResult, EvalRun
from lib.report.evals import eval_report
from lib.report.html import Paragraph


def verdict(run: EvalRun) -> Paragraph:
    summary = eval_report(run).sections[0]
    return next(b for b in summary.blocks if isinstance(b, Paragraph))


def run_of(status: str, *passed: bool) -> EvalRun:
    results = [CaseResult(f"c{i}", "T", passed=p, seq=i) for i, p in enumerate(passed)]
    return EvalRun("eval-1", "Suite", ["T"], ["default"], status=status, results=results)


def test_the_verdict_says_what_the_run_was():
    assert verdict(run_of("finished", True, True)).text == "Every answer passed."
    assert verdict(run_of("finished", True, False)).text == "1 of 2 answers failed."
    cancelled = verdict(run_of("cancelled", True))  # was "0 of 1 answers failed."
    assert cancelled.text == "The run was cancelled after 1 answers (0 failed): the cases it did not reach were not run."
    assert cancelled.tone == "warning"
