"""The Evals page's body (pages/evals.py only calls render): pick a suite and targets, run it in the
background with live progress, then the cases x targets matrix, its failures, and a diff against a baseline."""
from __future__ import annotations

import streamlit as st

from lib.evals import EvalStore
from lib.evals.assertions import preload_language_profiles
from lib.evals.jobs import get_job
from ui.evals.diff import baseline_diff
from ui.evals.form import run_form
from ui.evals.live import live_panel
from ui.evals.matrix import show_run
from ui.target import current_target

JOB_KEY = "evals_job"
SHOWN_KEY = "evals_show"


def render() -> None:
    st.title("Evals")
    st.caption("Regression suites for Dify apps: run a suite of cases against one or more targets and see what "
               "passes, what fails and why, how long each answer took and what it cost. Every run is saved.")
    target = current_target()
    st.markdown(f"Target: **{target.name}** (preselected in the form)" if target else "No target selected.")
    preload_language_profiles()  # ~0.5 s of CPU: while the form is read, not after Run is pressed
    store = EvalStore()
    job = get_job(st.session_state.get(JOB_KEY))
    with st.expander("New run", expanded=job is None or not job.running):
        run_form(store, target, JOB_KEY)
    job = get_job(st.session_state.get(JOB_KEY))
    if job is not None and job.running:
        st.subheader("Running")
        live_panel(job)
        if st.session_state.get("evals_followed_job") != job.id:
            st.session_state["evals_followed_job"] = job.id  # once: then the user may look at an earlier run
            st.session_state[SHOWN_KEY] = job.id  # the Runs list shows the run just started, not the last one looked at
    elif job is not None and st.session_state.get("evals_shown_job") != job.id:
        st.session_state["evals_shown_job"] = job.id  # the job just ended: show its run
        st.session_state[SHOWN_KEY] = job.id
    runs = store.runs(limit=200)
    if job is not None and not job.running and job.error and not any(r.id == job.id and r.error for r in runs):
        st.error(f"The run could not complete: {job.error}")  # the run's own box says it when the run was saved

    st.header("Runs")
    live = job.id if job is not None and job.running else None
    ids = [r.id for r in runs]
    if live is not None and live not in ids:
        ids.insert(0, live)  # its thread has not saved it yet
    if not ids:
        st.info("No runs yet: start one above.")
        return
    if st.session_state.get(SHOWN_KEY) not in ids:
        st.session_state[SHOWN_KEY] = ids[0]
    labels = {r.id: f"{r.suite} · {', '.join(r.targets)} · {r.summary().get('passed', 0)}/{r.summary().get('total', 0)} "
                    f"passed · {r.status} · {r.id}" for r in runs}
    if live is not None and job is not None:
        labels[live] = f"{job.suite} · {', '.join(job.targets)} · running · {live}"
    shown = st.selectbox("Run", ids, format_func=labels.get, key=SHOWN_KEY)
    if shown == live:
        st.info("This run is live: its progress is above, and its matrix appears here when it ends. "
                "Pick an earlier run to look at meanwhile.", icon=":material/hourglass_top:")
        return
    run = store.get_run(shown)
    if run is None:
        st.warning("That run was deleted.")
        return
    show_run(run, store.suite_text(run.id))
    baseline_diff(store, run, [r for r in runs if r.id != run.id])
