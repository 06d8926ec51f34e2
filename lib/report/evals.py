"""An eval run, or an eval run against a baseline, as a shareable HTML report (lib.report.html).

What the Evals page shows (the cases x targets matrix, the failures and their reasons, where each target's
time goes per node) plus what a reader elsewhere needs: the suite as it was run, the formulas (assertion
semantics, the pass rate, the diff's thresholds, the waterfall's segments) and the environment. Keys are
never stored with a run (only app-…last4); the suite's header values are masked like a benchmark's.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lib.charts.waterfall import node_stats_figure, request_waterfall_figure
from lib.evals.diff import RunDiff, diff_runs
from lib.evals.formulas import ASSERTIONS, DIFF, RUN
from lib.evals.matrix import matrix_frame, row_label
from lib.evals.nodes import slowest_answer, target_node_stats, turn_waterfall
from lib.evals.records import EvalRun
from lib.waterfall import FORMULAS as WATERFALL_FORMULAS
from lib.waterfall import stats_table

from .bench import _safe_url, environment_facts, mask_headers
from .html import Chart, Facts, Paragraph, Report, Section, Table, render

__all__ = ["eval_report", "eval_report_html", "masked_suite_text", "report_file_name", "write_eval_report"]

FAILURES_LISTED = 200
WATERFALL_ORDER = ("origin", "dify", "node", "gap", "tail", "e2e", "dify_elapsed", "share_of_e2e", "percentiles")


def write_eval_report(run: EvalRun, path: str | Path, *, baseline: EvalRun | None = None, suite_text: str | None = None) -> Path:
    path = Path(path)
    path.write_text(eval_report_html(run, baseline=baseline, suite_text=suite_text), encoding="utf-8")
    return path


def eval_report_html(run: EvalRun, *, baseline: EvalRun | None = None, suite_text: str | None = None) -> str:
    return render(eval_report(run, baseline=baseline, suite_text=suite_text))


def report_file_name(run: EvalRun, baseline: EvalRun | None = None) -> str:
    return f"{run.id}.html" if baseline is None else f"{run.id}-vs-{baseline.id}.html"


def eval_report(run: EvalRun, *, baseline: EvalRun | None = None, suite_text: str | None = None) -> Report:
    sections = [Section("Summary", _summary(run)), Section("Matrix", _matrix(run))]
    failures = _failures(run)
    if failures:
        sections.append(Section("Failures", failures))
    if baseline is not None:
        sections.append(Section(f"Against baseline {baseline.id}", _diff_blocks(diff_runs(baseline, run), baseline)))
    sections += _node_sections(run)
    sections += [
        Section("Configuration", _config_blocks(run, suite_text)),
        Section("Environment", [Facts(environment_facts(run.config.get("environment")),
                                      caption="Where the suite ran: the same suite from another machine is another "
                                              "measurement of its times.")]),
        _formulas_section(),
    ]
    title = f"Eval run: {run.suite}" + (f" against {baseline.id}" if baseline is not None else "")
    subtitle = f"{run.id} · {run.status} · {', '.join(run.targets)} · started {_when(run.created_at)}"
    return Report(title=title, subtitle=subtitle, sections=sections)


def _summary(run: EvalRun) -> list[Any]:
    s = run.summary()
    blocks: list[Any] = []
    if run.error:
        blocks.append(Paragraph(f"The run stopped: {run.error}", tone="error"))
    if run.status == "cancelled":  # a part of the suite: its answers may all have passed, the run did not
        verdict = (f"The run was cancelled after {s['total']:,} answers ({s['failed']:,} failed): the cases it did "
                   "not reach were not run.")
    else:
        verdict = "Every answer passed." if run.passed else f"{s['failed']} of {s['total']} answers failed."
    blocks.append(Paragraph(verdict, tone="" if run.passed else "warning"))
    rows = [("Answers", f"{s['total']:,}", RUN["answer"]), ("Passed", f"{s['passed']:,}", ""),
            ("Failed", f"{s['failed']:,}", f"{s['errors']:,} of them failed inside Dify (not judged)"),
            ("Pass rate", f"{s['pass_rate']:.1%}", RUN["pass_rate"]),
            ("Cost", "–" if s.get("cost") is None else f"{s['cost']:.6f}", "sum of the answers' reported prices"),
            ("Status", run.status, ""), ("Targets", ", ".join(run.targets), ""), ("Variants", ", ".join(run.variants), "")]
    blocks.append(Table(pd.DataFrame(rows, columns=["figure", "value", "how"]), index=False))
    return blocks


def _matrix(run: EvalRun) -> list[Any]:
    m = matrix_frame(run)
    if m.empty:
        return [Paragraph("This run has no answers.", tone="note")]
    return [Table(m, caption="Rows: cases (and variants); columns: targets. " + RUN["cell"])]


def _failures(run: EvalRun) -> list[Any]:
    failed = [r for r in run.results if not r.passed]
    if not failed:
        return []
    nvar = len(run.variants)
    rows = [{"case": row_label(r, nvar), "target": r.target, "repeat": r.repeat + 1,
             "kind": "error (inside Dify)" if r.error else "assertion", "reasons": "\n".join(r.reasons()),
             "answer": (r.answer[:300] + ("…" if len(r.answer) > 300 else ""))} for r in failed[:FAILURES_LISTED]]
    blocks: list[Any] = [Table(pd.DataFrame(rows), index=False, caption="Each failed answer with every reason: the run's "
                                                                        "error, then each failed assertion.")]
    if len(failed) > FAILURES_LISTED:
        blocks.append(Paragraph(f"…and {len(failed) - FAILURES_LISTED} more failed answers not listed.", tone="note"))
    return blocks


def _diff_blocks(d: RunDiff, baseline: EvalRun) -> list[Any]:
    counts = pd.DataFrame([("Newly failing", len(d.newly_failing)), ("Fixed", len(d.fixed)), ("Slower", len(d.slower)),
                           ("Dearer", len(d.dearer)), ("Unchanged", d.unchanged)], columns=["change", "cells"])
    blocks: list[Any] = [
        Paragraph(f"Baseline: {baseline.suite} · {', '.join(baseline.targets)} · {baseline.status} · started "
                  f"{_when(baseline.created_at)}.", tone="warning" if d.has_regressions else "note"),
        Table(counts, index=False, caption=" ".join(DIFF.values())),
    ]
    for title, group in (("Newly failing", d.newly_failing), ("Fixed", d.fixed), ("Slower", d.slower), ("Dearer", d.dearer)):
        if group:
            blocks.append(Table(pd.DataFrame([{"cell": c.label, "change": c.detail} for c in group]), index=False,
                                caption=title))
    if d.added or d.removed:
        blocks.append(Paragraph(f"Only in this run: {', '.join(d.added) or 'none'}. Only in the baseline: "
                                f"{', '.join(d.removed) or 'none'}.", tone="note"))
    return blocks


def _node_sections(run: EvalRun) -> list[Section]:
    per_target = target_node_stats(run)
    if not per_target:
        return []
    sections = []
    for target, stats in per_target.items():
        blocks: list[Any] = [
            Table(stats_table(stats), index=False, numeric=True,
                  caption=f"{stats.attrs.get('requests', 0)} requests (turns) with node events. "
                          + WATERFALL_FORMULAS["percentiles"] + " " + WATERFALL_FORMULAS["share_of_e2e"]),
            Chart(node_stats_figure(stats, "Time per node across the run"),  # the target is in the section title
                  "Bar: p50 per request; whisker: p95. " + WATERFALL_FORMULAS["node"]),
        ]
        slow = slowest_answer(run, target)
        if slow is not None:
            r, i = slow
            wf = turn_waterfall(r.turns[i])
            if wf is not None:
                name = row_label(r, len(run.variants)) + (f" #{r.repeat + 1}" if r.repeat else "") + (
                    f" turn {i + 1}" if len(r.turns) > 1 else "")
                blocks.append(Chart(request_waterfall_figure(wf, f"Slowest answer: {name}"),
                                    WATERFALL_FORMULAS["dify"] + " " + WATERFALL_FORMULAS["gap"] + " "
                                    + WATERFALL_FORMULAS["tail"]))
        sections.append(Section(f"Where the time goes · {target}", blocks, columns=2))
    return sections


def masked_suite_text(text: str) -> str:
    """The suite as it was read, with every `headers:` value masked (a header may carry a token); the text
    as it was when it holds no headers (comments kept)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return "(the suite's text is not shown: it could not be read back to mask its headers)"
    found = [False]

    def mask(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "headers" and isinstance(v, dict):
                    found[0] = True
                    out[k] = mask_headers(v)
                else:
                    out[k] = mask(v)
            return out
        if isinstance(node, list):
            return [mask(x) for x in node]
        return node

    masked = mask(data)
    return yaml.safe_dump(masked, allow_unicode=True, sort_keys=False) if found[0] else text


def _config_blocks(run: EvalRun, suite_text: str | None) -> list[Any]:
    c = run.config or {}
    facts: dict[str, Any] = {"suite": run.suite, "suite file": c.get("suite_source"), "suite digest": c.get("suite_digest"),
                             "cases at once": c.get("concurrency"), "repeats": c.get("repeats") or "as the suite says",
                             "variants": run.variants}
    for t in c.get("targets") or []:
        facts[f"target {t.get('name')}"] = f"{_safe_url(t.get('base_url') or '')} · key {t.get('key') or '–'}"
    blocks: list[Any] = [Facts(facts, caption="As saved with the run. The API key is never saved (only app-…last4).")]
    if suite_text:
        blocks.append(Facts({"suite as run": masked_suite_text(suite_text)},
                            caption="The suite file as it was read when the run started; header values masked."))
    return blocks


def _formulas_section() -> Section:
    rows = ([("assertion", k, v) for k, v in ASSERTIONS.items()] + [("run", k.replace("_", " "), v) for k, v in RUN.items()]
            + [("diff", k.replace("_", " "), v) for k, v in DIFF.items()]
            + [("waterfall", k.replace("_", " "), WATERFALL_FORMULAS[k]) for k in WATERFALL_ORDER if k in WATERFALL_FORMULAS])
    return Section("How each result and figure is computed", [Table(pd.DataFrame(rows, columns=["of", "name", "definition"]),
                                                                    index=False)])


def _when(t: float | None) -> str:
    return "–" if not t else time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(t))
