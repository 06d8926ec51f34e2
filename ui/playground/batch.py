"""Batch: upload a CSV or JSONL of inputs, run every row through the app with bounded concurrency
and a progress bar, and get a table of answers with time to first token, total time, tokens and price."""
from __future__ import annotations

import statistics

import streamlit as st

from lib.playground.batch import (
    MAX_CONCURRENCY,
    QUERY_COLUMNS,
    BatchJob,
    frame_to_csv,
    frame_to_jsonl,
    plan_batch,
    read_table,
)
from lib.playground.transcript import format_price
from lib.workload import WorkloadFileError
from ui.playground.state import VALUE_PREFIX, PageContext, set_default


def batch_view(page: PageContext) -> None:
    session, profile = page.session, page.profile
    variables = [f"`{f.variable}`" for f in profile.fields if f.supported and not f.is_file]
    wants = (["`query`"] if profile.kind == "chat" else []) + variables
    st.caption("One run per row, each a new conversation. Columns named like the app's inputs fill them"
               + (f" ({', '.join(wants)})" if wants else "") + "; other columns are ignored.")
    upload = st.file_uploader("CSV or JSONL of inputs", type=["csv", "tsv", "jsonl", "ndjson", "json"],
                              key=f"pgf:batch:{page.tid}")
    if upload is not None and (upload.name, upload.size) != session.batch_file:
        session.batch_file = (upload.name, upload.size)  # type: ignore[assignment]
        session.batch_table, session.batch_plan = None, None
        try:
            session.batch_table = read_table(upload.name, upload.getvalue())
        except WorkloadFileError as err:
            st.error(str(err))
    if upload is None and session.batch is None:
        session.batch_file, session.batch_table, session.batch_plan = None, None, None
    if session.batch_table is not None:
        session.batch_plan = plan_batch(profile, session.batch_table)
        _plan_summary(page)
    job = session.batch
    if job is not None:
        _progress(job)
        _results(page, job)


def _plan_summary(page: PageContext) -> None:
    plan, table = page.session.batch_plan, page.session.batch_table
    assert plan is not None and table is not None
    mapped = ", ".join(f"`{c}` → {v}" for c, v in plan.input_columns.items()) or "none"
    st.markdown(f"**{len(plan.items)} rows** · inputs: {mapped}"
                + (f" · message: `{plan.query_column}`" if plan.query_column else "")
                + (f" · ignored: {', '.join(f'`{c}`' for c in plan.ignored_columns)}" if plan.ignored_columns else ""))
    if page.profile.kind == "chat" and plan.query_column is None:
        st.warning(f"No message column: name one of {', '.join(QUERY_COLUMNS)}.")
    if plan.missing_required:
        st.warning(f"No column for the required input(s): {', '.join(plan.missing_required)}.")
    with st.expander("Preview", expanded=False):
        st.dataframe(table.frame().head(50), hide_index=True, width="stretch")
    if plan.invalid:
        lines = [f"row {i.row}: {' '.join(i.errors)}" for i in plan.invalid[:10]]
        more = f"\n\n…and {len(plan.invalid) - 10} more" if len(plan.invalid) > 10 else ""
        st.warning(f"{len(plan.invalid)} row(s) will not be sent:\n\n" + "\n\n".join(lines) + more)
    running = page.session.batch is not None and not page.session.batch.done.is_set()
    conc_key = f"{VALUE_PREFIX}batch-concurrency:{page.tid}"
    set_default(conc_key, 4)
    cols = st.columns([2, 1, 1], vertical_alignment="bottom")
    cols[0].slider("Concurrency", 1, MAX_CONCURRENCY, key=conc_key, help="Rows in flight at once.")
    cols[1].button(f"Run {len(plan.valid)} rows", key=f"pg:batch-go:{page.tid}", type="primary",
                   disabled=running or not plan.valid, on_click=_start, args=(page,), icon=":material/play_arrow:")
    if running:
        cols[2].button("Cancel", key=f"pg:batch-cancel:{page.tid}", on_click=page.session.batch.cancel,  # type: ignore[union-attr]
                       icon=":material/cancel:")


def _start(page: PageContext) -> None:
    plan = page.session.batch_plan
    if plan is None or not plan.valid:
        return
    concurrency = int(st.session_state.get(f"{VALUE_PREFIX}batch-concurrency:{page.tid}") or 4)
    page.session.batch = BatchJob(page.client, page.profile, plan, user=f"{page.user}-batch", concurrency=concurrency,
                                  target=page.target.name).start()


def _progress(job: BatchJob) -> None:
    total = max(job.total, 1)
    skipped = len(job.rows) - job.total  # rows not sent for bad input: not in the bar, said beside it
    aside = f" · {skipped} more skipped for bad input" if skipped else ""
    if job.done.is_set():
        st.progress(1.0, text=f"{job.finished} of {job.total} rows finished" + (" (cancelled)" if job.cancelled else "") + aside)
        return
    bar = st.progress(0.0, text="Starting…")
    while not job.done.is_set():
        bar.progress(job.finished / total, text=f"{job.finished} of {job.total} rows finished · {job.concurrency} at a time{aside}")
        job.wait(0.25)
    st.rerun()  # draw the finished table


def _results(page: PageContext, job: BatchJob) -> None:
    frame = job.frame()
    sent = frame[frame["status"].isin(["done", "stopped", "error"])]
    ok = frame[frame["status"] == "done"]
    counts = job.tally()
    cols = st.columns(4)
    cols[0].metric("Answered", f"{counts.answered} of {counts.rows}")
    ttfts = [v for v in ok["ttft_ms"].tolist() if v == v and v is not None]
    cols[1].metric("Median first token", f"{statistics.median(ttfts):.0f} ms" if ttfts else "–")
    totals = [v for v in ok["total_s"].tolist() if v == v and v is not None]
    cols[2].metric("Median total", f"{statistics.median(totals):.2f} s" if totals else "–")
    prices = [v for v in sent["price"].tolist() if v == v and v is not None]
    currency = next((c for c in sent["currency"].tolist() if isinstance(c, str)), "USD")
    cols[3].metric("Total price", format_price(sum(prices), currency) if prices else "–")
    st.caption(counts.sentence())
    shown = frame.drop(columns=["query"]) if page.profile.kind == "workflow" else frame  # workflows take no query
    st.dataframe(
        shown, hide_index=True, width="stretch",
        column_config={
            "answer": st.column_config.TextColumn("answer", width="large"),
            "ttft_ms": st.column_config.NumberColumn("first token (ms)", format="%.0f"),
            "total_s": st.column_config.NumberColumn("total (s)", format="%.2f"),
            "price": st.column_config.NumberColumn("price", format="%.6f"),
        },
    )
    stem = f"batch-{page.profile.name.lower().replace(' ', '-')}"
    cols = st.columns(2)
    cols[0].download_button("Download CSV", frame_to_csv(frame), file_name=f"{stem}.csv", mime="text/csv",
                            key=f"pg:batch-csv:{page.tid}", on_click="ignore", icon=":material/download:")
    cols[1].download_button("Download JSONL", frame_to_jsonl(frame), file_name=f"{stem}.jsonl", mime="application/jsonl",
                            key=f"pg:batch-jsonl:{page.tid}", on_click="ignore", icon=":material/download:")
