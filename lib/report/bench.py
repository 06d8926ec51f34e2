"""A benchmark run, or a comparison of runs, as a shareable HTML report (lib.report.html).

The report holds what the Benchmark page shows (figures, percentiles, the same charts) plus what a
reader elsewhere needs to trust them: the formula of each figure (lib.bench.stats.FORMULAS), the run's
configuration and the environment it ran in. The API key is never in a run, so never in a report;
extra header values are masked (they may carry a token), except the simulator's own X-Sim-* knobs.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from lib import charts
from lib.bench import nodes
from lib.bench.chartdata import chart_data, run_charts
from lib.bench.stats import FORMULAS, rank, summaries_frame
from lib.bench.store import BenchStore, RunInfo
from lib.charts.waterfall import node_stats_figure, request_waterfall_figure
from lib.waterfall import FORMULAS as WATERFALL_FORMULAS
from lib.waterfall import slowest_node, stats_table

from .figures import (
    ALL_LATENCIES,
    client_bound_reasons,
    compare_frame,
    cost_text,
    figure_name,
    percentiles_frame,
    selfcheck_sentence,
)
from .html import Chart, Facts, Paragraph, Report, Section, Table, render, value_text

__all__ = ["bench_report", "bench_report_html", "comparison_report", "mask_headers", "report_file_name", "run_report",
           "write_bench_report"]

CLEAR_HEADERS = ("x-sim-",)  # the simulator's pacing and fault knobs: no secret, and needed to reproduce a run
# Each figure in the formulas section, in reading order.
FORMULA_ORDER = ("origin", "ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "ttfb_ms", "queue_ms", "duration_s",
                 "request_throughput", "output_tokens_per_s", "success_rate", "goodput", "cost")
# The per-node waterfall's figures (workflow/chatflow runs), after the run's own.
WATERFALL_ORDER = ("origin", "dify", "node", "gap", "tail", "e2e", "dify_elapsed", "share_of_e2e", "percentiles")
WATERFALL_NAMES = {"origin": "Waterfall origin", "dify": "Dify before the first node", "node": "Node time",
                   "gap": "Between nodes", "tail": "After the last node", "e2e": "Waterfall end-to-end",
                   "dify_elapsed": "Dify's elapsed", "share_of_e2e": "Share of end-to-end", "percentiles": "Node percentiles"}
FORMULA_NAMES = {"origin": "Origin", "duration_s": "Duration", "request_throughput": "Request throughput",
                 "output_tokens_per_s": "Output tokens/s", "success_rate": "Success rate", "goodput": "Goodput",
                 "cost": "Cost", "ttft_ms": "Time to first token (TTFT)", "e2e_ms": "End-to-end", "itl_ms": "Inter-chunk latency",
                 "tpot_ms": "Time per output token (TPOT)", "ttfb_ms": "Time to headers", "queue_ms": "Queue"}


# -- entry points ---------------------------------------------------------------------------------------


def write_bench_report(store: BenchStore, run_ids: Sequence[str], path: str | Path, *, rank_by: str = "ttft_ms.p95") -> Path:
    """Write the report of one run (one id) or a comparison (two or more) to `path`; return the path.
    Raises KeyError for an unknown run id, ValueError for no ids."""
    path = Path(path)
    path.write_text(bench_report_html(store, run_ids, rank_by=rank_by), encoding="utf-8")
    return path


def bench_report_html(store: BenchStore, run_ids: Sequence[str], *, rank_by: str = "ttft_ms.p95") -> str:
    return render(bench_report(store, run_ids, rank_by=rank_by))


def bench_report(store: BenchStore, run_ids: Sequence[str], *, rank_by: str = "ttft_ms.p95") -> Report:
    ids = list(dict.fromkeys(r for r in run_ids if r))
    if not ids:
        raise ValueError("a report needs at least one run id")
    return run_report(store, ids[0]) if len(ids) == 1 else comparison_report(store, ids, rank_by=rank_by)


def report_file_name(run_ids: Sequence[str]) -> str:
    ids = list(dict.fromkeys(run_ids))
    return f"bench-{ids[0]}.html" if len(ids) == 1 else f"bench-compare-{len(ids)}-runs-{ids[0]}.html"


# -- one run --------------------------------------------------------------------------------------------


def run_report(store: BenchStore, run_id: str) -> Report:
    info = store.get(run_id)
    s = store.summary(info.id)
    sections = [Section("Summary", _summary_blocks(info, s))]
    if s.get("requests"):
        sections.append(Section("Percentiles", [
            Table(_ms_table(percentiles_frame(s, ALL_LATENCIES)), numeric=True),
            _definitions("origin", "ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "ttfb_ms", "queue_ms"),
        ]))
        sections.append(Section("Charts", _run_charts(run_charts(store, info.id)), columns=2))
        sections += _node_sections(store, info.id)
        if info.group_id:
            sections += _group_sections(store, info)
    sections += [
        Section("Configuration", [Facts(config_facts(info), caption="As saved with the run. The API key is never saved; "
                                        "extra header values are masked.")]),
        Section("Environment", [Facts(environment_facts(info.environment),
                                      caption="Where the load generator ran: the same figures from another machine or "
                                              "client version are another measurement.")]),
        _formulas_section(waterfall=nodes.has_spans(store, info.id)),
    ]
    return Report(title=f"Benchmark run: {info.label}", subtitle=_run_line(info), sections=sections)


def _run_line(info: RunInfo) -> str:
    return f"{info.id} · {info.status} · {info.target} ({_safe_url(info.base_url)}) · {info.description} · started {_when(info.created_at)}"


def _summary_blocks(info: RunInfo, s: dict[str, Any]) -> list[Any]:
    blocks: list[Any] = []
    if info.error:
        blocks.append(Paragraph(info.error, tone="note" if info.status == "cancelled" else "error"))
    if not s.get("requests"):
        blocks.append(Paragraph("No measured requests.", tone="note"))
        return blocks
    if s.get("client_bound"):
        blocks.append(Paragraph("Client-bound: these figures are the load generator's, not the target's.",
                                tone="warning", items=client_bound_reasons(s)))
    elif sentence := selfcheck_sentence(s):
        blocks.append(Paragraph(sentence, tone="note"))
    rows = [
        ("Requests", f"{s['requests']:,}", f"{s.get('succeeded', 0):,} succeeded, {s.get('failed', 0):,} failed"
         + (f", {s['warmup_requests']:,} warm-up not counted" if s.get("warmup_requests") else ""), ""),
        ("Success rate", _pct(s.get("success_rate")), "", FORMULAS["success_rate"]),
        ("Duration", f"{s.get('duration_s') or 0:,.2f} s", "", FORMULAS["duration_s"]),
        ("Throughput", f"{s.get('request_throughput') or 0:,.2f} req/s", "", FORMULAS["request_throughput"]),
        ("Output tokens/s", f"{s.get('output_tokens_per_s') or 0:,.0f}", f"source: {s.get('output_tokens_source') or '–'}",
         FORMULAS["output_tokens_per_s"]),
        ("TTFT p95", _ms((s.get("ttft_ms") or {}).get("p95")), "", FORMULAS["ttft_ms"]),
        ("End-to-end p95", _ms((s.get("e2e_ms") or {}).get("p95")), "", FORMULAS["e2e_ms"]),
    ]
    if s.get("goodput"):
        g = s["goodput"]
        rows.append(("Goodput", f"{g['rate']:.2f} req/s", f"{g['share']:.1%} within {', '.join(g['slo'])}", FORMULAS["goodput"]))
    cost = cost_text(s.get("cost"))
    if cost:
        rows.append(("Cost", cost, "", FORMULAS["cost"]))
    if s.get("errors"):
        rows.append(("Errors", ", ".join(f"{k}: {v}" for k, v in s["errors"].items()), "", ""))
    blocks.append(Table(pd.DataFrame(rows, columns=["figure", "value", "detail", "formula"]), index=False))
    if s.get("slo_checks"):
        checks = pd.DataFrame(s["slo_checks"])[["slo", "value", "ok"]].assign(ok=lambda d: d["ok"].map({True: "pass", False: "FAIL"}))
        blocks.append(Table(checks.rename(columns={"slo": "SLO", "ok": "result"}), index=False,
                            caption="Each SLO checked on the run's summary; a missing figure fails."))
    return blocks


def _run_charts(figs: dict[str, Any]) -> list[Chart]:
    """The run view's charts (lib.bench.chartdata.run_charts, as the page draws them), each with what it shows."""
    over_time = ("Each succeeded request at the moment its answer ended, with a rolling median; failures marked at 0. "
                 if not _subtitle(figs["over_time"]) else "")
    return [
        Chart(figs["ttft_hist"], FORMULAS["ttft_ms"] + " Lines: p50, p95, p99."),
        Chart(figs["ttft_cdf"], "Share of requests at or below each TTFT. " + FORMULAS["ttft_ms"]),
        Chart(figs["e2e_hist"], FORMULAS["e2e_ms"]),
        Chart(figs["e2e_cdf"], "Share of requests at or below each end-to-end time. " + FORMULAS["e2e_ms"]),
        Chart(figs["over_time"], over_time + FORMULAS["origin"]),
        Chart(figs["throughput"], "Per second of the time answers ended. " + FORMULAS["request_throughput"]
              + " " + FORMULAS["output_tokens_per_s"]),
        Chart(figs["itl"], FORMULAS["itl_ms"]),
        Chart(figs["errors"], FORMULAS["success_rate"]),
    ]


def _subtitle(fig: Any) -> str | None:
    """The note under a chart's title (a long run's chart says how it was reduced), None when it has none."""
    return fig.layout.title.subtitle.text


def _node_sections(store: BenchStore, run_id: str) -> list[Section]:
    """Workflow/chatflow runs: each node's p50/p95 per request (succeeded, measured requests), and the waterfall of
    the median request. None for a run without node spans (chat apps, blocking calls)."""
    if not nodes.has_spans(store, run_id):
        return []
    frame = nodes.spans(store, run_id)
    stats = nodes.run_node_stats(frame) if len(frame) else pd.DataFrame()
    if stats.empty:
        return [Section("Where the time goes", [Paragraph("No succeeded measured request kept node spans.", tone="note")])]
    slow = slowest_node(stats)
    counted = (f"an evenly spread sample of {stats.attrs.get('requests', 0):,} of its {stats.attrs['of']:,} succeeded requests"
               if stats.attrs.get("sampled") else f"{stats.attrs.get('requests', 0):,} succeeded requests")
    blocks: list[Any] = []
    if slow is not None:
        blocks.append(Paragraph(f"Slowest node: {slow['title']} ({slow.get('node_type') or 'node'}), p95 {slow['p95_ms']:,.1f} ms "
                                f"and p50 {slow['p50_ms']:,.1f} ms per request, over {counted}."))
    blocks.append(Paragraph(nodes.CLOCK_NOTE, tone="note"))
    blocks += [
        Table(stats_table(stats), index=False, numeric=True,
              caption=WATERFALL_FORMULAS["percentiles"] + " " + WATERFALL_FORMULAS["share_of_e2e"]),
        Chart(node_stats_figure(stats), "Bar: p50 per request; whisker: p95. " + WATERFALL_FORMULAS["dify"] + " "
              + WATERFALL_FORMULAS["node"]),
    ]
    picked = nodes.pick(frame, "median")
    if picked is not None:
        row, wf = picked
        blocks.append(Chart(request_waterfall_figure(wf, f"The median request ({int(row['seq'])})"),
                            WATERFALL_FORMULAS["origin"] + " " + WATERFALL_FORMULAS["gap"] + " " + WATERFALL_FORMULAS["tail"]))
    return [Section("Where the time goes", blocks)]


def _group_sections(store: BenchStore, info: RunInfo) -> list[Section]:
    """The run's sweep curve, or its comparison's ranking (the group it was run in)."""
    members = store.runs(group_id=info.group_id)
    if info.group_kind == "sweep":
        points = summaries_frame({m.label: store.summary(m.id) for m in members}, _levels(members))
        note = "One point per sweep level (labelled), joined in level order. " + FORMULAS["request_throughput"]
        return [Section("Sweep", [Chart(charts.sweep_curve(points, "ttft_ms"), note),
                                  Chart(charts.sweep_curve(points, "e2e_ms"), note)], columns=2)]
    if info.group_kind == "compare":
        ranking = rank({m.target or m.label: store.summary(m.id) for m in members}, "ttft_ms.p95")
        return [Section("Compared targets", [Chart(charts.ranking_bar(ranking, "ttft_ms.p95"), FORMULAS["ttft_ms"])])]
    return []


# -- a comparison ---------------------------------------------------------------------------------------


def comparison_report(store: BenchStore, run_ids: Sequence[str], *, rank_by: str = "ttft_ms.p95") -> Report:
    infos = [store.get(r) for r in run_ids]
    labels = store.labels([i.id for i in infos])
    summaries = {labels[i.id]: store.summary(i.id) for i in infos}
    data = chart_data(store, [i.id for i in infos])
    df = data.rows
    runs = pd.DataFrame([{"run": labels[i.id], "id": i.id, "status": i.status, "target": i.target,
                          "base URL": _safe_url(i.base_url), "load": i.description, "started": _when(i.created_at),
                          "client-bound": "yes" if (summaries[labels[i.id]] or {}).get("client_bound") else "no"}
                         for i in infos])
    bound = [labels[i.id] for i in infos if summaries[labels[i.id]].get("client_bound")]
    overview: list[Any] = [Table(runs, index=False)]
    if bound:
        overview.append(Paragraph("Client-bound runs (their figures are the load generator's, not the target's): "
                                  + ", ".join(bound) + ".", tone="warning"))
    chart_list = [
        Chart(charts.ranking_bar(rank(summaries, rank_by), rank_by), f"Best first by {figure_name(rank_by)}. "
              + _formulas(rank_by.partition(".")[0])),
        Chart(charts.latency_cdf(df, "ttft_ms"), "Share of requests at or below each TTFT, one line per run. " + FORMULAS["ttft_ms"]),
        Chart(charts.latency_cdf(df, "e2e_ms"), "Share of requests at or below each end-to-end time. " + FORMULAS["e2e_ms"]),
        Chart(charts.percentile_bars(summaries, "ttft_ms"), FORMULAS["ttft_ms"]),
        Chart(charts.percentile_bars(summaries, "e2e_ms"), FORMULAS["e2e_ms"]),
        Chart(charts.latency_histogram(df, "ttft_ms"), FORMULAS["ttft_ms"]),
        Chart(charts.itl_distribution(data.gaps, of=data.gaps_of), FORMULAS["itl_ms"]),
    ]
    if len({i.group_id for i in infos}) == 1 and infos[0].group_kind == "sweep":
        points = summaries_frame(summaries, {labels[i.id]: float(i.level or 0) for i in infos})
        chart_list.append(Chart(charts.sweep_curve(points, "ttft_ms"), "One point per sweep level. " + FORMULAS["request_throughput"]))
    chart_list.append(Chart(charts.throughput_over_time(df), FORMULAS["request_throughput"] + " " + FORMULAS["output_tokens_per_s"]))
    configs = {labels[i.id]: config_facts(i) for i in infos}
    envs = {labels[i.id]: environment_facts(i.environment) for i in infos}
    sections = [
        Section("Runs", overview),
        Section("Figures", [Table(compare_frame(summaries), numeric=True,
                                  caption="Change: the last run against the first, in percent of the first."),
                            _definitions("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "request_throughput", "output_tokens_per_s",
                                         "success_rate")]),
        Section("Charts", chart_list, columns=2),
        Section("Configuration", [Table(_side_by_side(configs), caption="As saved with each run. The API key is never "
                                        "saved; extra header values are masked.")]),
        Section("Environment", [Table(_side_by_side(envs), caption="Where each run's load generator ran.")]),
        _formulas_section(),
    ]
    return Report(title=f"Benchmark comparison: {len(infos)} runs", subtitle=" · ".join(labels[i.id] for i in infos),
                  sections=sections)


def _levels(members: Sequence[RunInfo]) -> dict[str, float]:
    return {m.label: float(m.level or 0) for m in members}


def _side_by_side(facts: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows: fields (in first-seen order); one column per run; values as text."""
    names = list(dict.fromkeys(k for f in facts.values() for k in f))
    return pd.DataFrame({run: [value_text(f.get(n), "; ") for n in names] for run, f in facts.items()}, index=names)


# -- configuration and environment ----------------------------------------------------------------------


def mask_headers(headers: dict[str, Any]) -> dict[str, str]:
    """Header values as `…last4` (nothing of a short one), except the simulator's X-Sim-* knobs. A report goes to
    people outside the team, so it masks every header, not only those the store masks (lib.bench.config); a value
    the store already masked (it holds "…") is shown as stored."""
    out = {}
    for name, value in (headers or {}).items():
        text = str(value)
        clear = name.lower().startswith(CLEAR_HEADERS) or "…" in text
        out[name] = text if clear else (f"…{text[-4:]}" if len(text) >= 16 else "…")
    return out


def config_facts(info: RunInfo) -> dict[str, Any]:
    """The run's saved configuration to read: every field, prompts summarised, headers masked, SLOs as rules."""
    c = dict(info.config or {})
    prompts = c.pop("prompts", None) or []
    facts: dict[str, Any] = {"name": c.pop("name", "") or info.label, "target": c.pop("target", "") or info.target,
                             "base_url": _safe_url(c.pop("base_url", "") or info.base_url)}
    facts["load (described)"] = info.description
    facts.update({k: v for k, v in c.items() if k not in ("headers", "slo")})
    facts["prompts"] = f"{len(prompts)} prompt{'' if len(prompts) == 1 else 's'} ({c.get('prompts_source') or '–'})"
    for i, p in enumerate(prompts[:5], 1):
        query = (p.get("query") or "") if isinstance(p, dict) else str(p)
        inputs = p.get("inputs") if isinstance(p, dict) else None
        facts[f"prompt {i}"] = (query[:300] + ("…" if len(query) > 300 else "")) + (f"  inputs: {inputs}" if inputs else "")
    if len(prompts) > 5:
        facts["prompts not shown"] = len(prompts) - 5
    facts["headers"] = mask_headers(c.get("headers") or {})
    facts["slo"] = [_rule(t) for t in c.get("slo") or []]
    return facts


def environment_facts(env: dict[str, Any] | None) -> dict[str, Any]:
    env = dict(env or {})
    packages = env.pop("packages", None) or {}
    facts = {k: v for k, v in env.items()}
    facts.update({f"package {k}": v for k, v in packages.items()})
    return facts


def _rule(t: Any) -> str:
    if isinstance(t, dict):
        return f"{t.get('metric')} {t.get('op', '<=')} {t.get('limit'):g}" if t.get("limit") is not None else str(t.get("metric"))
    return str(t)


def _safe_url(url: str) -> str:
    """A base URL without any user:password in it."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = (parts.hostname or "") + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


# -- formulas --------------------------------------------------------------------------------------------


def _formulas(*keys: str) -> str:
    return " ".join(FORMULAS[k] for k in keys if k in FORMULAS)


def _definitions(*keys: str) -> Paragraph:
    return Paragraph("Definitions:", tone="note", items=[FORMULAS[k] for k in keys if k in FORMULAS])


def _ms_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The unit in the table's corner rather than on a header row of its own."""
    frame = frame.rename_axis(None)
    frame.columns.name = "ms"
    return frame


def _formulas_section(waterfall: bool = False) -> Section:
    pairs = [(FORMULA_NAMES.get(k, k), FORMULAS[k]) for k in FORMULA_ORDER if k in FORMULAS]
    if waterfall:
        pairs += [(WATERFALL_NAMES.get(k, k), WATERFALL_FORMULAS[k]) for k in WATERFALL_ORDER if k in WATERFALL_FORMULAS]
    rows = pd.DataFrame(pairs, columns=["figure", "definition"])
    return Section("How each figure is computed", [Table(rows, index=False, caption=(
        "Latency figures are over the succeeded, measured requests (warm-up excluded); failures are counted apart. "
        "Percentiles interpolate linearly between order statistics."))])


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.1%}"


def _ms(v: Any) -> str:
    return "–" if v is None else f"{v:,.0f} ms"


def _when(t: float | None) -> str:
    return "–" if not t else time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(t))
