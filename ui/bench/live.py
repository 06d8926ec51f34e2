"""The Benchmark page's live panel: progress and counters of the job running now, live charts on request.

A fragment that reruns every REFRESH_S on its own (st.fragment(run_every=...)), reading the job's
progress (the worker process's last report, lib.bench.jobs) and, for the charts, the rows the store
already has; it never waits on the job. When the job ends it reruns the whole page once, which then
shows the results. The run itself is in another process; still, on a small machine every redraw here
(and in the browser) takes CPU from it, so the refresh is slow and the live charts are opt-in.
"""
from __future__ import annotations

import streamlit as st

from lib import charts
from lib.bench.jobs import Job
from lib.bench.store import BenchStore

REFRESH_S = 2.0
LIVE_ROWS = 3000  # the newest answers drawn live: enough to see a trend, cheap to reload


@st.fragment(run_every=REFRESH_S)
def live_panel(job: Job, store_path: str) -> None:
    p = job.progress
    if not job.running:
        st.rerun()  # the whole page: the results replace this panel
    step = f"run {p.step} of {p.steps} · " if p.steps > 1 else ""
    target = p.label or job.config.describe()
    st.progress(p.overall(), text=f"{step}{p.phase} · {target} · {p.elapsed_s:.0f} s")
    c = st.columns(5)
    c[0].metric("Sent", p.sent)
    c[1].metric("Succeeded", p.ok)
    c[2].metric("Failed", p.failed)
    c[3].metric("In flight", p.in_flight)
    c[4].metric("Measured", p.measured_done)
    if job.cancel_requested:
        st.caption("Cancelling: the run stops and keeps what was measured.")
    if p.last_error:
        st.caption(f"Last error: {p.last_error}")
    c1, c2 = st.columns([1, 3])
    c1.button("Cancel run", key="bench_cancel", icon=":material/stop_circle:", on_click=job.cancel,
              disabled=job.cancel_requested, help="Stops sending and keeps what was measured.")
    live = c2.toggle("Live charts", key="bench_live_charts",
                     help="Redrawn every few seconds. On a small machine drawing them takes CPU from the run "
                          "(the self-check says when the figures suffered).")
    if live and p.run_id:
        df = BenchStore(store_path).requests(p.run_id, label=True, last=LIVE_ROWS)
        if not df.empty:
            c1, c2 = st.columns(2)
            with c1:
                st.plotly_chart(charts.latency_over_time(df), key="bench_live_latency", width="stretch")
            with c2:
                st.plotly_chart(charts.throughput_over_time(df), key="bench_live_throughput", width="stretch")
