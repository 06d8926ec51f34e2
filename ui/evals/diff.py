"""The diff of the shown run against a baseline run: newly failing, fixed, slower, dearer."""
from __future__ import annotations

import streamlit as st

from lib.evals import EvalStore, diff_runs
from lib.evals.records import EvalRun
from ui.evals.matrix import report_button

NONE = "(none)"


def baseline_diff(store: EvalStore, run: EvalRun, others: list[EvalRun]) -> None:
    st.subheader("Against a baseline")
    if not others:
        st.caption("Run the suite again (after changing the app) to compare with this run.")
        return
    # Same suite first: that is the usual baseline.
    others = sorted(others, key=lambda r: (r.suite != run.suite, -r.created_at))
    labels = {r.id: f"{r.suite} · {', '.join(r.targets)} · {r.status} · {r.id}" for r in others}
    choice = st.selectbox("Baseline run", [NONE, *labels], format_func=lambda i: labels.get(i, i), key="evals_baseline")
    if choice == NONE:
        return
    base = store.get_run(choice)
    if base is None:
        st.warning("That run was deleted.")
        return
    d = diff_runs(base, run)
    c = st.columns(5)
    c[0].metric("Newly failing", len(d.newly_failing))
    c[1].metric("Fixed", len(d.fixed))
    c[2].metric("Slower", len(d.slower))
    c[3].metric("Dearer", len(d.dearer))
    c[4].metric("Unchanged", d.unchanged)
    for title, group in (("Newly failing", d.newly_failing), ("Fixed", d.fixed), ("Slower", d.slower), ("Dearer", d.dearer)):
        if group:
            st.markdown(f"**{title}**")
            st.dataframe([{"case": ch.label, "change": ch.detail} for ch in group], hide_index=True, width="stretch",
                         key=f"evals_diff_{title}")
    if d.added or d.removed:
        st.caption(f"Only in this run: {', '.join(d.added) or 'none'}. Only in the baseline: {', '.join(d.removed) or 'none'}.")
    report_button(run, base, store.suite_text(run.id))
