"""Per-node latency waterfall of workflow and chatflow requests: where each request's time goes.

One request (`request_waterfall`) becomes segments on its timing record's clock, in ms since the
request was sent (the record's `sent`, the origin of its e2e):

    dify   Dify before the first node: sent -> the first node_started arrived (Dify's own overhead:
           auth, app and graph loading, queueing the run, the network both ways)
    node   each node execution: its node_started arrived -> its node_finished arrived
    gap    between nodes: no node running (from a node_finished to the next node_started)
    tail   after the last node: the last node_finished -> the record's end (the rest of the stream,
           to the terminal event)

Many requests (`node_stats`, a run or an eval) become one DataFrame row per segment kind and per
node (by node_id) with p50/p95/mean of its time per request and its share of end-to-end, so a user
sees which node to fix. The page shows `FORMULAS[...]` beside each figure.

Input: a lib.dify `Timing` (its `nodes` spans), or its JSON-ready form `waterfall_record(timing)`, which
is what a benchmark or eval store keeps per request. Pure: no Streamlit, no plotly (lib/charts/waterfall.py
draws these frames). Instants are what the client saw arrive, so they include the network; Dify's own
measure of each node (`elapsed_time`) is kept beside it (`dify_elapsed_ms`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from lib.dify.timing import NodeSpan, Timing

KINDS = ("dify", "node", "gap", "tail")
LABELS = {
    "dify": "Dify before the first node",
    "gap": "between nodes",
    "tail": "after the last node",
    "e2e": "end-to-end",
}

FORMULAS: dict[str, str] = {
    "origin": "All instants are when the client saw each event arrive, in ms since the request was sent "
              "(the send of its last attempt); they include the network.",
    "dify": "Dify before the first node = first node_started arrival − sent.",
    "node": "Node time = its node_finished arrival − its node_started arrival; a node with no node_finished "
            "(the run failed, was stopped or the stream broke) runs to the end of the request. Per request, a "
            "node that ran several times (in an iteration or loop) counts the sum of its runs.",
    "gap": "Between nodes = time after the first node_started and before the last node_finished when no node was "
           "running; per request, the sum of those gaps.",
    "tail": "After the last node = end − last node_finished arrival: the rest of the stream up to the terminal "
            "event (message_end or workflow_finished).",
    "e2e": "End-to-end = end − sent = Dify before the first node + node time (overlaps counted once) + between "
           "nodes + after the last node.",
    "dify_elapsed": "Dify's elapsed = the node's own elapsed_time in node_finished, measured inside Dify "
                    "(no network, no event delivery).",
    "share_of_e2e": "Share of e2e = sum of this segment's time over the requests / sum of their end-to-end. "
                    "Parallel branches overlap, so node shares may add up to more than 1.",
    "percentiles": "p50/p95 over the requests the segment appears in, interpolating linearly between order "
                   "statistics (numpy's default); mean is the arithmetic mean.",
}

NO_NODES = ("No node events: a blocking call, and an app without nodes (chat, agent, completion), send none. "
            "Stream a workflow or chatflow app to see where its time goes.")

SEGMENT_COLUMNS = (
    "kind", "label", "node_id", "title", "node_type", "status", "failed", "start_ms", "end_ms", "duration_ms",
    "own_ms", "dify_elapsed_ms", "tokens", "price", "currency", "error", "parent",
)
# own_ms: the part of a segment no earlier segment covers; own_ms of all segments add up to e2e_ms.

STATS_COLUMNS = (
    "kind", "label", "node_id", "title", "node_type", "requests", "runs", "failed", "p50_ms", "p95_ms", "mean_ms",
    "max_ms", "share_of_e2e", "dify_elapsed_p50_ms", "start_p50_ms", "tokens_mean", "price_mean",
)

FAILED_STATUSES = frozenset({"failed", "exception"})
UNFINISHED = "unfinished"


def _ms(t: float | None, origin: float) -> float | None:
    return None if t is None else (t - origin) * 1000.0


def _span_record(span: NodeSpan, origin: float) -> dict[str, Any]:
    return {
        "node_id": span.node_id, "title": span.title, "type": span.type, "index": span.index,
        "status": span.status, "start_ms": _ms(span.started, origin), "end_ms": _ms(span.finished, origin),
        "elapsed_ms": None if span.elapsed is None else span.elapsed * 1000.0, "tokens": span.tokens,
        "price": span.price, "currency": span.currency, "error": span.error, "parent": span.parent,
        "retries": span.retries,
    }


def waterfall_record(timing: Timing) -> dict[str, Any]:
    """The JSON-ready form of a timing record's node spans (ms since sent): what a store keeps per
    request, and what `request_waterfall` / `node_stats` read back. `nodes` is None when no node event came."""
    origin = timing.sent if timing.sent is not None else timing.start
    nodes = None if timing.nodes is None else [_span_record(s, origin) for s in timing.nodes]
    return {
        "e2e_ms": _ms(timing.end, origin), "ttft_ms": _ms(timing.first_content, origin),
        "ttfb_ms": _ms(timing.first_byte, origin), "outcome": timing.outcome, "nodes": nodes,
    }


Source = Timing | Mapping[str, Any] | str | bytes  # str/bytes: a waterfall_record() as JSON (a store's column)


class WaterfallInputError(ValueError):
    """A waterfall was given something that is not a timing record or its stored form."""


def _record(source: Source) -> Mapping[str, Any]:
    if isinstance(source, Timing):
        return waterfall_record(source)
    if isinstance(source, (str, bytes)):
        try:
            source = orjson.loads(source)
        except orjson.JSONDecodeError as exc:
            raise WaterfallInputError(f"a stored waterfall record is not valid JSON ({exc}); store waterfall_record(timing) "
                                      "as JSON and pass it back as it was") from None
    if isinstance(source, Mapping):
        return source
    raise WaterfallInputError(f"a waterfall needs a lib.dify Timing or a waterfall_record() dict (or its JSON), "
                              f"not {type(source).__name__}")


@dataclass(frozen=True)
class Waterfall:
    """One request's segments (`segments`, SEGMENT_COLUMNS, in start order) and its landmarks in ms since sent.
    `note` says why there are no segments (no node events, no end), else None."""

    segments: pd.DataFrame
    e2e_ms: float | None
    ttft_ms: float | None
    ttfb_ms: float | None
    outcome: str | None
    note: str | None = None

    @property
    def failed_node(self) -> str | None:
        """The title of the first node that failed, if one did."""
        failed = self.segments[self.segments["failed"].astype(bool)] if not self.segments.empty else self.segments
        return None if failed.empty else str(failed.iloc[0]["title"])

    def breakdown(self) -> dict[str, Any]:
        """Totals per kind (ms) and the slowest node: a one-line summary for an eval result or a table."""
        seg = self.segments
        out: dict[str, Any] = {"e2e_ms": self.e2e_ms, "ttft_ms": self.ttft_ms}
        for kind in KINDS:
            part = seg[seg["kind"] == kind] if not seg.empty else seg
            out[f"{kind}_ms"] = float(part["own_ms"].sum()) if not part.empty else (0.0 if not seg.empty else None)
        nodes = seg[seg["kind"] == "node"] if not seg.empty else seg
        if nodes.empty:
            out.update(slowest_node=None, slowest_node_ms=None)
        else:
            slowest = nodes.loc[nodes["duration_ms"].idxmax()]
            out.update(slowest_node=str(slowest["title"]), slowest_node_ms=float(slowest["duration_ms"]))
        out["failed_node"] = self.failed_node
        return out


def _empty_segments() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c.endswith("_ms") or c == "price" else "object")
                         for c in SEGMENT_COLUMNS})


def _segment(kind: str, label: str, start: float, end: float, own: float, **node: Any) -> dict[str, Any]:
    row = dict.fromkeys(SEGMENT_COLUMNS)
    row.update(kind=kind, label=label, start_ms=start, end_ms=end, duration_ms=end - start, own_ms=own, failed=False)
    row.update(node)
    return row


def request_waterfall(source: Source) -> Waterfall:
    """The segments of one request (see the module docstring and FORMULAS). Nodes are clamped to [0, e2e]
    (a node still running at the end ends there, status "unfinished"); `own_ms` of all segments sum to e2e."""
    rec = _record(source)
    e2e, nodes = rec.get("e2e_ms"), rec.get("nodes")
    args = {"e2e_ms": e2e, "ttft_ms": rec.get("ttft_ms"), "ttfb_ms": rec.get("ttfb_ms"), "outcome": rec.get("outcome")}
    if not nodes:
        return Waterfall(_empty_segments(), note=NO_NODES, **args)
    if e2e is None:
        return Waterfall(_empty_segments(), note="The request has not ended (or was never sent): no waterfall yet.", **args)
    spans = sorted(nodes, key=lambda n: (n.get("start_ms") or 0.0, n.get("index") or 0))
    rows: list[dict[str, Any]] = []
    first = min(max(spans[0].get("start_ms") or 0.0, 0.0), e2e)
    rows.append(_segment("dify", LABELS["dify"], 0.0, first, first))
    covered = first  # the instant up to which the timeline is accounted for
    seen: dict[str, int] = {}
    node_rows: list[dict[str, Any]] = []
    for n in spans:
        start = min(max(n.get("start_ms") or 0.0, 0.0), e2e)
        end = n.get("end_ms")
        status = n.get("status") or UNFINISHED
        end = e2e if end is None else min(max(end, start), e2e)
        if start > covered:  # nothing ran between the last covered instant and this node
            node_rows.append(_segment("gap", LABELS["gap"], covered, start, start - covered))
        own = max(0.0, end - max(start, covered))
        covered = max(covered, end)
        title = str(n.get("title") or n.get("node_id") or "node")
        seen[title] = seen.get(title, 0) + 1
        label = title if seen[title] == 1 else f"{title} ({seen[title]})"
        elapsed = n.get("elapsed_ms")
        node_rows.append(_segment(
            "node", label, start, end, own, node_id=n.get("node_id"), title=title, node_type=n.get("type") or "",
            status=status, failed=status in FAILED_STATUSES, dify_elapsed_ms=elapsed, tokens=n.get("tokens"),
            price=n.get("price"), currency=n.get("currency"), error=n.get("error"), parent=n.get("parent"),
        ))
    rows.extend(node_rows)
    rows.append(_segment("tail", LABELS["tail"], covered, e2e, e2e - covered))
    df = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    return Waterfall(df, **args)


# -- a run: many requests ----------------------------------------------------------------------------------


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def _stat_row(kind: str, label: str, per_request: list[float], total_e2e: float, **extra: Any) -> dict[str, Any]:
    v = np.asarray(per_request, dtype=float)
    row = dict.fromkeys(STATS_COLUMNS)
    row.update(
        kind=kind, label=label, requests=int(v.size), runs=int(v.size), failed=0,
        p50_ms=_pct(v, 50), p95_ms=_pct(v, 95), mean_ms=float(v.mean()) if v.size else None,
        max_ms=float(v.max()) if v.size else None, share_of_e2e=float(v.sum() / total_e2e) if total_e2e > 0 else None,
    )
    row.update(extra)
    return row


def empty_stats() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object" if c in ("kind", "label", "node_id", "title", "node_type") else "float64")
                         for c in STATS_COLUMNS})


def node_stats(sources: Iterable[Source], *, ok_only: bool = False) -> pd.DataFrame:
    """Per-segment statistics over many requests (STATS_COLUMNS), one row each for Dify before the first
    node, every node (by node_id, in median start order), between nodes, after the last node, and
    end-to-end last. Requests without node spans or without an end are skipped (`attrs["skipped"]`);
    `ok_only` keeps only requests whose outcome is "ok". Times are per request (FORMULAS)."""
    per_kind: dict[str, list[float]] = {"dify": [], "gap": [], "tail": []}
    e2es: list[float] = []
    nodes: dict[str, dict[str, Any]] = {}
    skipped = 0
    for source in sources:
        wf = request_waterfall(source)
        if wf.segments.empty or (ok_only and wf.outcome != "ok"):
            skipped += 1
            continue
        seg = wf.segments
        e2es.append(float(wf.e2e_ms or 0.0))
        for kind, values in per_kind.items():
            values.append(float(seg.loc[seg["kind"] == kind, "own_ms"].sum()))
        for node_id, runs in seg[seg["kind"] == "node"].groupby("node_id", sort=False, dropna=False):
            key = str(node_id)
            acc = nodes.setdefault(key, {"title": runs["title"].iloc[0], "node_type": runs["node_type"].iloc[0],
                                         "ms": [], "elapsed": [], "start": [], "runs": 0, "failed": 0,
                                         "tokens": [], "price": []})
            acc["ms"].append(float(runs["duration_ms"].sum()))
            elapsed = runs["dify_elapsed_ms"].dropna()
            if not elapsed.empty:
                acc["elapsed"].append(float(elapsed.sum()))
            acc["start"].append(float(runs["start_ms"].min()))
            acc["runs"] += len(runs)
            acc["failed"] += int(runs["failed"].astype(bool).sum())
            tokens, price = runs["tokens"].dropna(), runs["price"].dropna()
            if not tokens.empty:
                acc["tokens"].append(float(tokens.sum()))
            if not price.empty:
                acc["price"].append(float(price.sum()))
    if not e2es:
        df = empty_stats()
        df.attrs.update(requests=0, skipped=skipped)
        return df
    total = float(sum(e2es))
    rows = [_stat_row("dify", LABELS["dify"], per_kind["dify"], total, start_p50_ms=0.0)]
    node_rows = []
    for node_id, acc in nodes.items():
        row = _stat_row("node", str(acc["title"]), acc["ms"], total, node_id=node_id, title=acc["title"],
                        node_type=acc["node_type"], runs=acc["runs"], failed=acc["failed"],
                        dify_elapsed_p50_ms=_pct(np.asarray(acc["elapsed"]), 50),
                        start_p50_ms=_pct(np.asarray(acc["start"]), 50),
                        tokens_mean=float(np.mean(acc["tokens"])) if acc["tokens"] else None,
                        price_mean=float(np.mean(acc["price"])) if acc["price"] else None)
        node_rows.append(row)
    node_rows.sort(key=lambda r: (r["start_p50_ms"] or 0.0))
    rows.extend(node_rows)
    rows.append(_stat_row("gap", LABELS["gap"], per_kind["gap"], total))
    rows.append(_stat_row("tail", LABELS["tail"], per_kind["tail"], total))
    rows.append(_stat_row("e2e", LABELS["e2e"], e2es, total))
    df = pd.DataFrame(rows, columns=list(STATS_COLUMNS))
    df.attrs.update(requests=len(e2es), skipped=skipped)
    return df


def slowest_node(stats: pd.DataFrame, by: str = "p95_ms") -> dict[str, Any] | None:
    """The node row with the largest `by` (p95 by default): the one to fix first. None without nodes."""
    nodes = stats[stats["kind"] == "node"] if not stats.empty else stats
    if nodes.empty or nodes[by].isna().all():
        return None
    return nodes.loc[nodes[by].astype(float).idxmax()].to_dict()


# -- for people ------------------------------------------------------------------------------------

STATS_SHOWN = {"label": "segment", "node_type": "type", "requests": "requests", "failed": "failed", "p50_ms": "p50 ms",
               "p95_ms": "p95 ms", "mean_ms": "mean ms", "share_of_e2e": "share of e2e",
               "dify_elapsed_p50_ms": "Dify's elapsed p50 ms"}


def stats_table(stats: pd.DataFrame) -> pd.DataFrame:
    """node_stats as people read it: a segment's name, p50/p95/mean in ms (1 decimal), its share in percent."""
    df = stats[list(STATS_SHOWN)].rename(columns=STATS_SHOWN).copy()
    for col in ("p50 ms", "p95 ms", "mean ms", "Dify's elapsed p50 ms"):
        df[col] = [("–" if pd.isna(v) else f"{float(v):,.1f}") for v in df[col]]
    df["share of e2e"] = ["–" if pd.isna(v) else f"{float(v):.1%}" for v in df["share of e2e"]]
    df["type"] = df["type"].fillna("")
    df["failed"] = df["failed"].fillna(0).astype(int)
    df["requests"] = df["requests"].fillna(0).astype(int)
    return df
