"""A run's results: counts, the cases x targets matrix (optionally failures only), and one answer in full."""
from __future__ import annotations

import streamlit as st

from lib.evals.matrix import matrix_frame, results_frame, row_label
from lib.evals.records import CaseResult, EvalRun
from lib.report.evals import eval_report_html, report_file_name
from ui.evals.nodes import node_stats_panel, turn_waterfall_chart

FAILURES_LISTED = 50
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+-.!|~$"})


def _md(text: str) -> str:
    """Text shown literally inside markdown (an answer's asterisks are not emphasis)."""
    return " ".join(text.split()).translate(_MD_SPECIAL)


def show_run(run: EvalRun, suite_text: str | None = None) -> None:
    s = run.summary()
    c = st.columns(5)
    c[0].metric("Passed", f"{s['passed']}/{s['total']}")
    c[1].metric("Pass rate", f"{s['pass_rate']:.0%}")
    c[2].metric("Failed", s["failed"])
    c[3].metric("Errors", s["errors"], help="Answers that failed inside Dify (or never came): not judged.")
    c[4].metric("Cost", "-" if s.get("cost") is None else f"{s['cost']:.6f}")
    report_button(run, suite_text=suite_text)
    if run.error:
        st.error(f"The run stopped: {run.error}")
    elif run.status != "finished":
        st.caption(f"Status: {run.status}")
    failures_only = st.toggle("Only failures", key="evals_failures_only")
    matrix = matrix_frame(run, failures_only=failures_only)
    if matrix.empty:
        st.success("Every case passed." if failures_only else "This run has no answers.")
        return
    st.subheader("Matrix")
    if failures_only:
        total = len(matrix_frame(run))
        st.caption(f"Only failures: {len(matrix)} of {total} case rows failed on some target.")
    st.dataframe(matrix, width="stretch", key="evals_matrix")
    failed = [r for r in run.results if not r.passed]
    if failed:
        st.subheader("Failures")
        nvar = len(run.variants)
        lines = [f"- **{_md(row_label(r, nvar))}** · {_md(r.target)}{f' · #{r.repeat + 1}' if r.repeat else ''}: "
                 + _md("; ".join(r.reasons())) for r in failed[:FAILURES_LISTED]]
        st.markdown("\n".join(lines))
        if len(failed) > FAILURES_LISTED:
            st.caption(f"…and {len(failed) - FAILURES_LISTED} more: see the table of all answers below.")
    node_stats_panel(run)
    pool = {r.seq: r for r in run.results if not (failures_only and r.passed)}
    nvar = len(run.variants)
    labels = {seq: f"{row_label(r, nvar)} · {r.target}{f' · #{r.repeat + 1}' if r.repeat else ''} · "
                   f"{'pass' if r.passed else 'FAIL'}" for seq, r in pool.items()}
    # One widget per run and filter: with a key of its own, a selectbox keeps showing the label it had when its
    # options change under it (another run, the filter toggled), whatever the value it returns.
    seq = st.selectbox("Answer in full", list(pool), format_func=labels.__getitem__,
                       key=f"evals_detail_{run.id}_{'failures' if failures_only else 'all'}")
    if seq is not None:
        _detail(run.id, pool[seq])
    with st.expander("All answers (table)"):
        st.dataframe(results_frame(run), hide_index=True, width="stretch", key="evals_all")


def report_button(run: EvalRun, baseline: EvalRun | None = None, suite_text: str | None = None, *, key: str = "") -> None:
    """The run's HTML report (against `baseline` when given), built when clicked: it inlines plotly.js (about 5 MB)."""
    st.download_button("Download HTML report" if baseline is None else "Download HTML report of this diff",
                       data=lambda: eval_report_html(run, baseline=baseline, suite_text=suite_text).encode(),
                       file_name=report_file_name(run, baseline), mime="text/html", on_click="ignore",
                       key=key or f"evals_report_{run.id}_{baseline.id if baseline else ''}", icon=":material/description:",
                       help="One self-contained file: the matrix, failures and reasons, per-node figures, the suite "
                            "(no key), the formulas and the environment. Opens in any browser, offline.")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def _detail(run_id: str, r: CaseResult) -> None:
    c = st.columns(4)
    c[0].metric("TTFT (last turn)", _ms(r.ttft_s))
    c[1].metric("Total time", _ms(r.total_s))
    c[2].metric("Tokens", "-" if r.tokens is None else r.tokens)
    c[3].metric("Cost", "-" if r.cost is None else f"{r.cost:.6f} {r.currency}")
    if r.error:
        st.error(r.error)
    for n, turn in enumerate(r.turns, 1):
        if len(r.turns) > 1:
            st.markdown(f"**Turn {n}**: {turn.query}")
        st.text_area("Answer", turn.answer, height=120, disabled=True, key=f"evals_answer_{run_id}_{r.seq}_{n}")
        if turn.outputs is not None:
            st.json(turn.outputs, expanded=False)
        checks = turn.checks + (r.checks if n == len(r.turns) else [])
        if checks:
            st.markdown("\n".join(f"- {'✅' if ch.passed else '❌'} `{ch.label.replace('`', '')}`: {_md(ch.reason)}"
                                  for ch in checks))
        turn_waterfall_chart(run_id, r.seq, n, turn)
        if turn.nodes:
            st.caption("Nodes (ms after sending)")
            st.dataframe([{"node": x.title, "type": x.node_type, "started": _ms(x.started_s), "finished": _ms(x.finished_s),
                           "status": x.status, "Dify's elapsed": _ms(x.elapsed_s)} for x in turn.nodes],
                         hide_index=True, width="stretch", key=f"evals_nodes_{run_id}_{r.seq}_{n}")
