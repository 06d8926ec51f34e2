"""An eval run as JUnit XML, the test report CI systems (GitLab, Jenkins, GitHub test reporters) show.

One <testsuite> per target (and variant), one <testcase> per case and repeat: a failed assertion is a
<failure> listing every failed assertion's reason; a run that failed inside Dify is an <error> with
lib.dify's sentence. The answer goes to <system-out>. Written with junitparser rather than by hand, so
escaping and the counts in the attributes are right.
"""
from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from .records import CaseResult, EvalRun

ANSWER_LIMIT = 4000  # characters of the answer kept in <system-out>


def _case(run: EvalRun, r: CaseResult, repeated: set[str]) -> TestCase:
    name = r.case_id + (f" #{r.repeat + 1}" if r.case_id in repeated else "")
    case = TestCase(name, f"{run.suite}.{r.target}", round(r.total_s or 0.0, 3))
    if r.error:
        err = Error(r.error.split(". ")[0][:200], r.error_class or "DifyError")
        err.text = r.error
        case.result = [err]
    elif not r.passed:
        failed = r.failed_checks
        fail = Failure(f"{len(failed)} assertion(s) failed: " + "; ".join(c.label for c in failed)[:300], "AssertionFailed")
        fail.text = "\n".join(f"{c.label}: {c.reason}" for c in failed)
        case.result = [fail]
    if r.answer:
        case.system_out = r.answer[:ANSWER_LIMIT]
    return case


def to_junit(run: EvalRun) -> JUnitXml:
    xml = JUnitXml(f"evals: {run.suite}")
    groups: dict[tuple[str, str], TestSuite] = {}
    repeated = {r.case_id for r in run.results if r.repeat}
    for r in run.results:
        key = (r.target, r.variant)
        if key not in groups:
            groups[key] = TestSuite(f"{run.suite} · {r.target}" + ("" if r.variant == "default" else f" · {r.variant}"))
            xml.add_testsuite(groups[key])
        groups[key].add_testcase(_case(run, r, repeated))
    for suite in groups.values():
        suite.update_statistics()
    xml.update_statistics()
    return xml


def write_junit(run: EvalRun, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_junit(run).write(str(path), pretty=True)
    return path
