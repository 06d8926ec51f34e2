"""The Benchmark page's results: one run in full, several overlaid, the history table, downloads (exports and
the HTML report of a run or a comparison, lib.report.bench)."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from lib import charts
from lib.bench import nodes
from lib.bench.chartdata import chart_data, run_charts
from lib.bench.export import MIME, export_bytes
from lib.bench.stats import FORMULAS, rank, summaries_frame
from lib.bench.store import BenchStore, RunInfo
from lib.charts.waterfall import node_stats_figure, request_waterfall_figure
from lib.report.bench import bench_report_html, report_file_name
from lib.report.figures import (
    ALL_LATENCIES,
    client_bound_reasons,
    compare_frame,
    cost_text,
    percentiles_frame,
    selfcheck_sentence,
)
from lib.waterfall import FORMULAS as WATERFALL_FORMULAS
from lib.waterfall import slowest_node, stats_table

RANK_FIGURES = ["ttft_ms.p95", "ttft_ms.p50", "ttft_ms.p99", "e2e_ms.p95", "e2e_ms.p50", "tpot_ms.p50", "itl_ms.p99",
                "request_throughput", "output_tokens_per_s", "success_rate"]


def _plot(fig: Any, key: str) -> None:
    st.plotly_chart(fig, key=key, width="stretch")


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f} ms"


def history_frame(store: BenchStore, runs: Sequence[RunInfo]) -> pd.DataFrame:
    rows = []
    for r in runs:
        s = r.summary or {}
        rows.append({
            "id": r.id, "status": r.status, "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at)),
            "name": r.name, "target": r.target, "load": r.description, "group": r.group_kind or "",
            "requests": s.get("requests"), "success": s.get("success_rate"),
            "TTFT p50 ms": (s.get("ttft_ms") or {}).get("p50"), "TTFT p95 ms": (s.get("ttft_ms") or {}).get("p95"),
            "e2e p95 ms": (s.get("e2e_ms") or {}).get("p95"), "req/s": s.get("request_throughput"),
            "client-bound": s.get("client_bound"),
        })
    return pd.DataFrame(rows)


def history(store: BenchStore, runs: Sequence[RunInfo]) -> None:
    st.dataframe(history_frame(store, runs), hide_index=True, width="stretch", height=min(38 + 35 * len(runs), 300),
                 column_config={"success": st.column_config.NumberColumn(format="percent")})


PENDING_DELETE = "bench_delete_pending"
DELETED = "bench_deleted"


def ask_delete(run_ids: Sequence[str]) -> None:
    """The Delete button's callback: nothing is deleted until the user confirms (delete_confirmation)."""
    st.session_state[PENDING_DELETE] = list(run_ids)


def delete_confirmation(store: BenchStore) -> None:
    """The pending delete's question, with Delete and Keep; then (once) what was deleted."""
    if st.session_state.get(DELETED):
        st.success(st.session_state.pop(DELETED), icon=":material/delete:")
    pending = st.session_state.get(PENDING_DELETE)
    if not pending:
        return
    present = [r for r in pending if _exists(store, r)]
    running = [r for r in present if store.get(r).status == "running"]
    if running:  # its worker still writes to it: deleting now would fail the run halfway
        st.info(f"{_runs(len(running)).capitalize()} still going cannot be deleted: cancel it or let it end first.")
    labels = store.labels([r for r in present if r not in running])
    if not labels:
        st.session_state.pop(PENDING_DELETE, None)
        return
    with st.container(border=True):
        one = len(labels) == 1
        st.warning(f"Delete {_runs(len(labels))} and all {'its' if one else 'their'} measurements? This cannot be undone.\n\n"
                   + "\n".join(f"- {label} (`{rid}`)" for rid, label in labels.items()), icon=":material/warning:")
        c1, c2, _ = st.columns([1, 1, 4])
        c1.button(f"Delete {_runs(len(labels))}", type="primary", key="bench_delete_confirm", icon=":material/delete:",
                  on_click=delete_runs, args=(store, list(labels)))
        c2.button("Keep it" if one else "Keep them", key="bench_delete_keep", on_click=lambda: st.session_state.pop(PENDING_DELETE, None))


def delete_runs(store: BenchStore, run_ids: Sequence[str]) -> None:
    """The confirmation's callback (runs before the rerun, so it may reset the selection widget)."""
    labels = store.labels([r for r in run_ids if _exists(store, r) and store.get(r).status != "running"])
    deleted = [f"{label} (`{rid}`)" for rid, label in labels.items() if store.delete_run(rid)]
    st.session_state.pop(PENDING_DELETE, None)
    st.session_state["bench_show"] = []
    if deleted:
        st.session_state[DELETED] = f"Deleted {_runs(len(deleted))}: " + "; ".join(deleted) + "."


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _exists(store: BenchStore, run_id: str) -> bool:
    try:
        return store.get(run_id).id == run_id
    except KeyError:
        return False


def show_runs(store: BenchStore, run_ids: Sequence[str]) -> None:
    """One run in full, or two or more overlaid for comparison."""
    run_ids = [r for r in run_ids if r]
    if not run_ids:
        return
    if len(run_ids) == 1:
        single(store, run_ids[0])
    else:
        compare(store, run_ids)


def _selfcheck(summary: dict[str, Any]) -> None:
    if summary.get("client_bound"):
        st.warning("**Client-bound**: these figures are the load generator's, not the target's.\n\n"
                   + "\n".join(f"- {r}" for r in client_bound_reasons(summary)), icon=":material/warning:")
    elif sentence := selfcheck_sentence(summary):
        st.caption(sentence)


def single(store: BenchStore, run_id: str) -> None:
    info = store.get(run_id)
    s = store.summary(info.id)
    st.subheader(info.label)
    st.caption(f"`{info.id}` · {info.status} · {info.target} ({info.base_url}) · {info.description}")
    if info.error:
        (st.info if info.status == "cancelled" else st.error)(info.error)
    if not s.get("requests"):
        st.info("No measured requests yet.")
        return
    # Two rows of three: six columns cut the longer figures ("12.34 req/s") off on a laptop screen.
    cols = st.columns(3) + st.columns(3)
    cols[0].metric("Requests", s["requests"], help=FORMULAS["success_rate"])
    cols[1].metric("Success", f"{s['success_rate']:.1%}" if s.get("success_rate") is not None else "–")
    cols[2].metric("Throughput (req/s)", f"{s['request_throughput']:.2f}", help=FORMULAS["request_throughput"])
    cols[3].metric("Output tokens/s", f"{s['output_tokens_per_s']:.0f}", help=FORMULAS["output_tokens_per_s"]
                   + f" Source: {s.get('output_tokens_source') or '–'}.")
    cols[4].metric("TTFT p95", _ms((s.get("ttft_ms") or {}).get("p95")), help=FORMULAS["ttft_ms"])
    cols[5].metric("End-to-end p95", _ms((s.get("e2e_ms") or {}).get("p95")), help=FORMULAS["e2e_ms"])
    _selfcheck(s)
    if s.get("goodput"):
        g = s["goodput"]
        within = ", ".join(g["slo"])
        st.markdown(f"**Goodput** {g['rate']:.2f} req/s: {g['share']:.1%} of requests within {within}. *{FORMULAS['goodput']}*")
    if s.get("slo_checks"):
        st.dataframe(pd.DataFrame(s["slo_checks"])[["slo", "value", "ok"]], hide_index=True)
    cost = cost_text(s.get("cost"))
    if cost:
        st.caption(f"Cost {cost}. {FORMULAS['cost']}")
    st.markdown("**Percentiles (ms)**")
    st.dataframe(percentiles_frame(s, ALL_LATENCIES), width="stretch")
    st.caption(" ".join(FORMULAS[k] for k in ("origin", "ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "queue_ms", "duration_s", "percentiles")))
    figs = run_charts(store, info.id)
    key = f"bench_{info.id}"
    c1, c2 = st.columns(2)
    with c1:
        _plot(figs["ttft_hist"], key + "_ttft_hist")
        _plot(figs["e2e_hist"], key + "_e2e_hist")
    with c2:
        _plot(figs["ttft_cdf"], key + "_ttft_cdf")
        _plot(figs["e2e_cdf"], key + "_e2e_cdf")
    _plot(figs["over_time"], key + "_over_time")
    _plot(figs["throughput"], key + "_throughput")
    c1, c2 = st.columns(2)
    with c1:
        _plot(figs["itl"], key + "_itl")
        st.caption(FORMULAS["itl_ms"])
    with c2:
        _plot(figs["errors"], key + "_errors")
    where_the_time_goes(store, info.id, s.get("requests") or 0)
    if info.group_id:
        group(store, info.group_id, key)
    downloads(store, info.id)


PICK_NAMES = {"median": "the median request", "slowest": "the slowest request", "request": "a request by its number"}


@st.cache_data(max_entries=16, show_spinner=False)
def _node_stats(db: str, run_id: str, requests: int, ok_only: bool, _store: BenchStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    # node_stats costs a few ms a request: once per run, its number of requests (a running run grows) and the choice
    frame = nodes.spans(_store, run_id, ok_only=ok_only)
    return frame, (nodes.run_node_stats(frame) if len(frame) else pd.DataFrame())


def where_the_time_goes(store: BenchStore, run_id: str, requests: int) -> None:
    """Workflow/chatflow runs: each node's p50/p95 per request across the run, and one request's waterfall."""
    if not nodes.has_spans(store, run_id):
        return
    key = f"bench_nodes_{run_id}"
    st.subheader("Where the time goes")
    ok_only = not st.toggle("Include failed requests", key=key + "_failed",
                            help="Off: the succeeded requests only, as the latency figures above. On: failed requests too "
                                 "(a failed node runs to the end of its request).")
    frame, stats = _node_stats(str(store.path), run_id, requests, ok_only, store)
    if stats.empty:
        st.info("No " + ("succeeded " if ok_only else "") + "measured request of this run kept node spans.")
        return
    slow = slowest_node(stats)
    sample = (f" (an evenly spread sample of {stats.attrs.get('requests', 0):,} of its {stats.attrs['of']:,} requests)"
              if stats.attrs.get("sampled") else f" ({stats.attrs.get('requests', 0):,} requests)")
    if slow is not None:
        st.markdown(f"Slowest node: **{slow['title']}** ({slow.get('node_type') or 'node'}), p95 {_ms1(slow['p95_ms'])} "
                    f"and p50 {_ms1(slow['p50_ms'])} per request"
                    + (f", {slow['share_of_e2e']:.0%} of end-to-end" if slow.get("share_of_e2e") is not None else "") + f"{sample}.")
    st.caption(nodes.CLOCK_NOTE + " " + WATERFALL_FORMULAS["dify"] + " " + WATERFALL_FORMULAS["node"])
    c1, c2 = st.columns(2)
    with c1:
        _plot(node_stats_figure(stats), key + "_stats")
        st.dataframe(stats_table(stats), hide_index=True, width="stretch", key=key + "_table")
        st.caption(WATERFALL_FORMULAS["percentiles"] + " " + WATERFALL_FORMULAS["share_of_e2e"])
    with c2:
        how = st.radio("Waterfall of", nodes.PICKS, format_func=PICK_NAMES.get, horizontal=True, key=key + "_pick")
        seq = None
        if how == "request":
            seqs = frame["seq"].astype(int)
            seq = int(st.number_input("Request number (seq)", min_value=int(seqs.min()), max_value=int(seqs.max()),
                                      value=int(seqs.min()), step=1, key=key + "_seq"))
        picked = nodes.pick(frame, how, seq)
        if picked is None:
            st.info(f"Request {seq} kept no node spans" + (" or failed" if ok_only else "") + ": pick another.")
        else:
            row, wf = picked
            _plot(request_waterfall_figure(wf, f"Request {int(row['seq'])}"), key + "_waterfall")
            st.caption(f"Request {int(row['seq'])}: {_ms1(row['wf_e2e_ms'])} from its send to its end here; "
                       f"{_ms1(row['e2e_ms'])} end-to-end in the benchmark's figures (from its scheduled time). "
                       + WATERFALL_FORMULAS["origin"] + " " + WATERFALL_FORMULAS["gap"] + " " + WATERFALL_FORMULAS["tail"])


def _ms1(v: Any) -> str:
    return "–" if v is None or v != v else f"{float(v):,.1f} ms"


def group(store: BenchStore, group_id: str, key: str) -> None:
    """A sweep's throughput-against-latency curve, or a comparison's ranking."""
    members = store.runs(group_id=group_id)
    summaries = {m.label: store.summary(m.id) for m in members}
    kind = members[0].group_kind if members else None
    if kind == "sweep":
        points = summaries_frame(summaries, {m.label: m.level for m in members})
        c1, c2 = st.columns(2)
        with c1:
            _plot(charts.sweep_curve(points, "ttft_ms"), key + "_sweep_ttft")
        with c2:
            _plot(charts.sweep_curve(points, "e2e_ms"), key + "_sweep_e2e")
    elif kind == "compare":
        by = st.selectbox("Rank targets by", RANK_FIGURES, key=key + "_rank_by")
        _plot(charts.ranking_bar(rank({m.target or m.label: store.summary(m.id) for m in members}, by), by), key + "_rank")


def compare(store: BenchStore, run_ids: Sequence[str]) -> None:
    infos = [store.get(r) for r in run_ids]
    labels = store.labels([i.id for i in infos])
    summaries = {labels[i.id]: store.summary(i.id) for i in infos}
    st.subheader(f"{len(infos)} runs compared")
    st.dataframe(compare_frame(summaries), width="stretch")
    st.caption("Change: the last run against the first, in percent of the first. " + FORMULAS["ttft_ms"] + " " + FORMULAS["tpot_ms"])
    by = st.selectbox("Rank by", RANK_FIGURES, key="bench_compare_rank_by")
    data = chart_data(store, [i.id for i in infos])
    df = data.rows
    key = "bench_cmp_" + "_".join(i.id[-6:] for i in infos)
    report_button(st, store, [i.id for i in infos], key=key + "_html", rank_by=by)
    _plot(charts.ranking_bar(rank(summaries, by), by), key + "_rank")
    c1, c2 = st.columns(2)
    with c1:
        _plot(charts.latency_cdf(df, "ttft_ms"), key + "_ttft_cdf")
        _plot(charts.percentile_bars(summaries, "ttft_ms"), key + "_ttft_bars")
        _plot(charts.latency_histogram(df, "ttft_ms"), key + "_ttft_hist")
    with c2:
        _plot(charts.latency_cdf(df, "e2e_ms"), key + "_e2e_cdf")
        _plot(charts.percentile_bars(summaries, "e2e_ms"), key + "_e2e_bars")
        _plot(charts.itl_distribution(data.gaps, of=data.gaps_of), key + "_itl")
    groups = {i.group_id for i in infos}
    if len(groups) == 1 and infos[0].group_kind == "sweep":
        points = summaries_frame(summaries, {labels[i.id]: i.level for i in infos})
        _plot(charts.sweep_curve(points, "ttft_ms"), key + "_sweep")
    _plot(charts.throughput_over_time(df), key + "_throughput")


FORMAT_NAMES = {"csv": "CSV", "json": "JSON", "parquet": "Parquet"}


def downloads(store: BenchStore, run_id: str) -> None:
    cols = st.columns(4)
    for col, fmt in zip(cols, ("csv", "json", "parquet"), strict=False):  # the 4th column: the HTML report
        col.download_button(f"Download {FORMAT_NAMES[fmt]}", data=lambda f=fmt: export_bytes(store, run_id, f),
                            file_name=f"bench-{run_id}.{fmt}", mime=MIME[fmt], key=f"bench_dl_{fmt}_{run_id}",
                            on_click="ignore")
    report_button(cols[3], store, [run_id], key=f"bench_dl_html_{run_id}")


def report_button(where: Any, store: BenchStore, run_ids: Sequence[str], key: str, rank_by: str = "ttft_ms.p95") -> None:
    """The HTML report, built when clicked (it inlines plotly.js, about 5 MB)."""
    where.download_button("Download HTML report", data=lambda: bench_report_html(store, run_ids, rank_by=rank_by).encode(),
                          file_name=report_file_name(run_ids), mime="text/html", key=key, on_click="ignore",
                          icon=":material/description:",
                          help="One self-contained file: figures, charts, formulas, configuration (no key) and "
                               "environment. Opens in any browser, offline.")
