"""The live panel of a running eval: a fragment that redraws every second from the job's Progress."""
from __future__ import annotations

import streamlit as st

from lib.evals.jobs import Job

REFRESH_S = 1.0


@st.fragment(run_every=REFRESH_S)
def live_panel(job: Job) -> None:
    p = job.progress
    if not job.running:
        st.rerun()  # the whole page: the results replace this panel
    share = p.done / p.total if p.total else 0.0
    st.progress(share, text=f"{job.suite} · {p.done}/{p.total} answers · {p.failed} failed · {p.last}")
    st.button("Cancel run", key="evals_cancel", icon=":material/stop_circle:", on_click=job.cancel.set,
              help="Starts no new case; what was answered is kept.")
