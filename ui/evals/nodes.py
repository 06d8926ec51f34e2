"""Where an eval run's time goes, per node: each target's p50/p95 per node, and one answer's waterfall."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.charts.waterfall import node_stats_figure, request_waterfall_figure
from lib.evals.nodes import target_node_stats, turn_waterfall
from lib.evals.records import EvalRun, TurnRecord
from lib.waterfall import FORMULAS, stats_table


@st.cache_data(max_entries=16, show_spinner=False)
def _stats(run_id: str, answers: int, _run: EvalRun) -> dict[str, pd.DataFrame]:
    # node_stats reads every turn's segments (about 7 ms an answer): once per run and number of answers saved
    return target_node_stats(_run)


def node_stats_panel(run: EvalRun) -> None:
    """Per target, each node's p50/p95 per request across the run (workflow and chatflow targets only)."""
    per_target = _stats(run.id, len(run.results), run)
    if not per_target:
        return
    st.subheader("Where the time goes")
    st.caption("Per target, each node's time per request across the run (bar p50, whisker p95): the node to fix is "
               "the longest bar. " + FORMULAS["node"] + " " + FORMULAS["dify"])
    tabs = st.tabs(list(per_target)) if len(per_target) > 1 else [st.container()]
    for n, (tab, (target, stats)) in enumerate(zip(tabs, per_target.items(), strict=True)):
        with tab:
            st.plotly_chart(node_stats_figure(stats, f"Time per node · {target}"), width="stretch",
                            key=f"evals_nodestats_{run.id}_{n}")
            with st.expander(f"Per-node table ({stats.attrs.get('requests', 0)} requests)"):
                st.dataframe(stats_table(stats), hide_index=True, width="stretch", key=f"evals_nodetable_{run.id}_{n}")
                st.caption(FORMULAS["percentiles"] + " " + FORMULAS["share_of_e2e"])


def turn_waterfall_chart(run_id: str, seq: int, n: int, turn: TurnRecord) -> None:
    """The turn's request waterfall, when its app sent node events."""
    wf = turn_waterfall(turn)
    if wf is None or wf.segments.empty:
        return
    st.plotly_chart(request_waterfall_figure(wf), width="stretch", key=f"evals_waterfall_{run_id}_{seq}_{n}")
    st.caption(FORMULAS["origin"] + " " + FORMULAS["gap"] + " " + FORMULAS["tail"])
