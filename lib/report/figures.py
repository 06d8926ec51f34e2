"""A run's figures as people read them: names for the summary's keys, milliseconds with 0-1 decimals,
percent changes. The Benchmark page and the HTML reports show the same tables, so they share these."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from lib.bench.stats import compare_summaries, percentile_table

# The percentile table's rows, as people say them (the summary's keys are for code).
FIGURE_NAMES = {"ttft_ms": "Time to first token", "e2e_ms": "End-to-end", "itl_ms": "Inter-chunk gap",
                "tpot_ms": "Time per output token", "ttfb_ms": "Time to headers", "queue_ms": "Queue wait"}
STAT_NAMES = {"p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99", "mean": "mean", "max": "max"}
ALL_LATENCIES = ("ttft_ms", "e2e_ms", "itl_ms", "tpot_ms", "ttfb_ms", "queue_ms")


def ms_text(v: Any) -> str:
    """Milliseconds to read, not to parse: 1 decimal under 100 ms, none above (the clock is no finer than that)."""
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"


def percentiles_frame(summary: dict[str, Any], metrics: Sequence[str] = ALL_LATENCIES) -> pd.DataFrame:
    """The percentile table: human row names, ms as text with 0-1 decimals."""
    table = percentile_table(summary, metrics)
    shown = table.map(ms_text).rename(index=FIGURE_NAMES, columns=STAT_NAMES)
    shown.index.name = "ms"
    return shown


def figure_name(figure: str) -> str:
    """`ttft_ms.p95` -> `Time to first token p95 (ms)`."""
    metric, _, stat = figure.partition(".")
    if metric in FIGURE_NAMES:
        return f"{FIGURE_NAMES[metric]} {stat} (ms)"
    return {"requests": "Requests", "success_rate": "Success rate", "request_throughput": "Throughput (req/s)",
            "output_tokens_per_s": "Output tokens/s"}.get(figure, figure)


def figure_text(figure: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if figure == "success_rate":
        return f"{v:.1%}"
    if figure.partition(".")[0] in FIGURE_NAMES:
        return ms_text(v)
    if figure == "requests":
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def compare_frame(summaries: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """compare_summaries to read: named figures, readable values, `change` as a signed percent."""
    table = compare_summaries(summaries)
    shown = pd.DataFrame({c: [figure_text(f, v) for f, v in table[c].items()] for c in table.columns if c != "change"},
                         index=table.index)
    if "change" in table:
        shown["change (last vs first)"] = ["–" if v is None or v != v else f"{v:+.1%}" for v in table["change"]]
    shown.index = [figure_name(f) for f in table.index]
    return shown


def cost_text(cost: dict[str, Any] | None) -> str | None:
    """`0.001234 USD (0.000012 a request)`, or each currency's sum when a run mixed them; None without a price."""
    cost = cost or {}
    # a run saved before `by_currency` was kept has one currency's total
    by = cost.get("by_currency") or ({cost.get("currency") or "": cost["total"]} if cost.get("total") else {})
    by = {c: v for c, v in by.items() if v}
    if not by:
        return None
    if len(by) > 1:
        return " + ".join(f"{v:.6f} {c}" for c, v in by.items()) + " (mixed currencies: not added)"
    (currency, total), = by.items()
    per = cost.get("per_request")
    return f"{total:.6f} {currency}".strip() + (f" ({per:.6f} a request)" if per is not None else "")


def client_bound_reasons(summary: dict[str, Any]) -> list[str]:
    """Why the load generator, not the target, set the figures (as sentences); empty when it kept up."""
    if not summary.get("client_bound"):
        return []
    return [f"{r[:1].upper()}{r[1:]}." for r in summary.get("client_bound_reasons") or []]


def selfcheck_sentence(summary: dict[str, Any]) -> str | None:
    """`Self-check: the engine kept up (...)`, when it did and the run has a self-check."""
    check = summary.get("selfcheck") or {}
    if summary.get("client_bound") or not check:
        return None
    lag = (check.get("loop_lag_ms") or {}).get("p99")
    busy = check.get("loop_busy")
    return (f"Self-check: the engine kept up (event-loop lag p99 {ms_text(lag)} ms"
            + (f", loop busy {busy:.0%}" if busy is not None else "")
            + (f", sent {check['achieved_rate']:.2f} req/s of {check.get('scheduled_rate') or check['target_rate']:.2f} scheduled"
               if check.get("achieved_rate") else "")
            + ").")
