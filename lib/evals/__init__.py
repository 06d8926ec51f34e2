"""Evals: regression suites for Dify apps (README, "Evals").

    from lib.evals import load_suite, run_suite, EvalStore

    suite = load_suite("examples/simulator-passes.yaml")     # SuiteError names the line and what is wrong
    run = run_suite(suite, [target], store=EvalStore())       # every case x target x variant x repeat
    run.passed, run.pass_rate, run.results[0].checks

A suite is a YAML or JSON file of cases (suite.py), each with assertions (assertions.py); runner.py sends
them with lib.dify.AsyncDifyClient; store.py keeps runs in SQLite beside the benchmark runs; diff.py
compares a run with a baseline; nodes.py reads each turn's stored waterfall (per-node p50/p95 per
target); lib/report/evals.py writes a run's HTML report; `python -m lib.evals run SUITE --target NAME` is the CI gate.
"""
from .assertions import CheckResult, Observation
from .diff import RunDiff, diff_runs
from .records import CaseResult, EvalRun, TurnRecord
from .runner import CannotRunError, run_suite, run_suite_async
from .store import EvalStore
from .suite import Case, Suite, SuiteError, load_suite, parse_suite

__all__ = [
    "CannotRunError", "Case", "CaseResult", "CheckResult", "EvalRun", "EvalStore", "Observation", "RunDiff", "Suite",
    "SuiteError", "TurnRecord", "diff_runs", "load_suite", "parse_suite", "run_suite", "run_suite_async",
]
