"""The Benchmark page's layout: the run form, the live panel while a run goes, then the runs and their results.

The work is lib.bench (engine, store, stats) and lib.charts, drawn by ui.bench.form, live and results.
A run goes to a background job (lib.bench.jobs) so it survives reruns and page changes; the session
only remembers the job's id.
"""
from __future__ import annotations

import streamlit as st

from lib.bench.jobs import get_job, running_job
from lib.bench.store import BenchStore
from lib.settings import Target
from ui.bench.form import NEW_RUN_OPEN, run_form, start_run
from ui.bench.live import live_panel
from ui.bench.results import ask_delete, delete_confirmation, history, show_runs


def benchmark_page(target: Target | None) -> None:
    st.title("Benchmark")
    header = st.empty()  # the targets the form will load, written once the form has been drawn
    st.caption("Load-test Dify apps: time to first token, inter-chunk latency, end-to-end, throughput, errors and cost. "
               "Every run is saved as it goes, so a closed tab or a crash loses nothing already measured.")

    store = BenchStore()
    job = get_job(st.session_state.get("bench_job")) or running_job()

    # Keyed, so it stays as the user left it: start_run folds it away, and it does not open again when the run
    # ends (it used to, pushing the results a screen down).
    with st.expander("New run", expanded=True, key=NEW_RUN_OPEN, on_change="rerun"):
        form = run_form(target)
        confirmed = True
        if form.needs_confirmation:
            st.warning(f"Production guard: {form.needs_confirmation}.", icon=":material/shield:")
            confirmed = st.checkbox("I understand, and this load is intended", key="bench_confirm")
        # Started in the button's callback: it runs before the rerun, whichever script the rerun starts with.
        st.button("Start benchmark", type="primary", key="bench_start", icon=":material/play_arrow:",
                  disabled=form.config is None or not confirmed or (job is not None and job.running),
                  on_click=start_run, args=(form, store))
        if form.problem:
            st.caption(form.problem)
        if st.session_state.get("bench_start_error"):
            st.error(st.session_state.pop("bench_start_error"))
    job = get_job(st.session_state.get("bench_job")) or running_job()
    chosen = [t.name for t in form.targets]
    header.markdown(f"Target{'s' if len(chosen) > 1 else ''}: " + ", ".join(f"**{n}**" for n in chosen) if chosen
                    else "No target selected.")

    if job is not None and job.running:
        st.subheader("Running")
        live_panel(job, str(store.path))
    elif job is not None and st.session_state.get("bench_shown_job") != job.id:
        # The job just ended: show its runs (one run, a sweep's levels or the compared targets).
        st.session_state["bench_shown_job"] = job.id
        st.session_state["bench_show"] = job.run_ids
        if job.error:
            st.error(f"The run stopped: {job.error}")

    runs = store.runs(limit=200)
    st.header("Runs")
    delete_confirmation(store)  # a delete asked for (Delete / Keep), or what the last one deleted
    if not runs:
        st.info("No runs yet: start one above.")
    else:
        history(store, runs)  # newest first
        ids = [r.id for r in runs]
        labels = {r.id: f"{r.label} · {r.status} · {r.id}" for r in runs}
        current = [r for r in st.session_state.get("bench_show", []) if r in ids]
        st.session_state["bench_show"] = current or ids[:1]
        shown = st.multiselect("Show runs (two or more: compared)", ids, format_func=labels.get, key="bench_show")
        if shown:
            st.button(f"Delete {'this run' if len(shown) == 1 else f'these {len(shown)} runs'}", key="bench_delete",
                      icon=":material/delete:", on_click=ask_delete, args=(shown,))
        if job is not None and job.running:
            # Drawing a run's charts costs this machine's CPU (here and in the browser), which the run needs.
            st.caption("The runs' charts are drawn again when the run going now has ended.")
        else:
            show_runs(store, shown)
