"""Batch: a CSV or JSONL of inputs, one run per row, with bounded concurrency, into a results table.

Columns named like a form variable (or its label) fill that input; for a chat app the `query` column
(or `question`, `prompt`) is the message. Rows that fail the form's checks are reported, not sent.
Rows run on the shared, thread-safe sync client in a thread pool of `concurrency` workers; each row
is a new conversation, streamed so its time to first token is measured like in the chat.
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lib import workload as W
from lib.dify import DifyClient
from lib.workload import Table

from .app_profile import AppProfile
from .form import validate_inputs
from .live import LiveRun, RunRequest
from .transcript import Turn

QUERY_COLUMNS = ("query", "question", "prompt", "message")
MAX_ROWS = 1000
MAX_CONCURRENCY = 16
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on", "x"})


def read_table(name: str, data: bytes) -> Table:
    """Rows of a `.csv`/`.tsv` (header row first), `.jsonl` (one JSON object a line) or `.json` (an array),
    nested JSONL `inputs` as columns; lib.workload reads them (its WorkloadFileError says what is wrong)."""
    return W.read_table(name, data, max_rows=MAX_ROWS).flat()


# -- planning ---------------------------------------------------------------------------------------


@dataclass
class BatchItem:
    row: int  # 1-based, as in the file
    query: str
    inputs: dict[str, Any]
    errors: list[str] = field(default_factory=list)


@dataclass
class BatchPlan:
    items: list[BatchItem]
    input_columns: dict[str, str]  # column -> form variable
    query_column: str | None
    ignored_columns: list[str]
    missing_required: list[str]  # labels of required fields no column fills

    @property
    def valid(self) -> list[BatchItem]:
        return [i for i in self.items if not i.errors]

    @property
    def invalid(self) -> list[BatchItem]:
        return [i for i in self.items if i.errors]


def plan_batch(profile: AppProfile, table: Table) -> BatchPlan:
    """Map columns to the app's inputs and query, and check every row against the form."""
    fields = [f for f in profile.fields if f.supported and not f.is_file]
    by_name = {f.variable.casefold(): f for f in fields} | {f.label.casefold(): f for f in fields if f.label}
    input_columns: dict[str, str] = {}
    for col in table.columns:
        f = by_name.get(col.strip().casefold())
        if f is not None and f.variable not in input_columns.values():
            input_columns[col] = f.variable
    query_column = None
    if profile.kind != "workflow":
        query_column = next((c for c in table.columns if c.strip().casefold() in QUERY_COLUMNS and c not in input_columns), None)
    ignored = [c for c in table.columns if c not in input_columns and c != query_column]
    filled = set(input_columns.values())
    missing = [f.label for f in profile.fields if f.required and (f.is_file or f.variable not in filled)]
    items = []
    for n, row in enumerate(table.rows, start=1):
        values = {}
        for col, var in input_columns.items():
            field_ = profile.field(var)
            value = row.get(col)
            if field_ is not None and field_.control == "checkbox" and not isinstance(value, bool):
                value = str(value).strip().lower() in TRUE_WORDS
            values[var] = value
        result = validate_inputs(tuple(fields), values)
        errors = list(result.errors)
        query = str(row.get(query_column) or "").strip() if query_column else ""
        if profile.kind == "chat" and not query:
            errors.append("The query is empty: a chat app needs a message in the `query` column.")
        errors += [f"{f.label} is a required file field, which a batch cannot fill." for f in profile.fields if f.required and f.is_file]
        items.append(BatchItem(row=n, query=query, inputs=result.inputs, errors=errors))
    return BatchPlan(items, input_columns, query_column, ignored, missing)


# -- running ----------------------------------------------------------------------------------------


@dataclass
class BatchRow:
    item: BatchItem
    turn: Turn | None = None  # None: not sent (invalid, cancelled, or still queued)
    status: str = "queued"  # queued | running | done | stopped | error | invalid | cancelled


@dataclass(frozen=True)
class BatchTally:
    """How a batch's rows ended, each row counted once: a row skipped for bad input is never "answered"."""

    rows: int
    answered: int  # done
    failed: int  # error
    stopped: int  # cancelled while streaming: a partial answer
    cancelled: int  # cancelled before it was sent
    unfinished: int  # queued or running
    skipped: tuple[BatchItem, ...]  # invalid: not sent, with the reasons

    def sentence(self) -> str:
        """"Answered 3 of 4 rows; 1 skipped for bad input — row 4: The query is empty: …"."""
        parts = [f"Answered {self.answered} of {self.rows} row{'s' if self.rows != 1 else ''}"]
        parts += [f"{n} {word}" for n, word in ((self.failed, "failed"), (self.stopped, "stopped midway"),
                                                (self.cancelled, "cancelled before sending"),
                                                (self.unfinished, "not finished")) if n]
        text = "; ".join(parts)
        if not self.skipped:
            return text + "."
        return f"{text}; {len(self.skipped)} skipped for bad input — {skip_reasons(self.skipped)}"


def tally(rows: list[BatchRow]) -> BatchTally:
    by = [r.status for r in rows]
    return BatchTally(rows=len(rows), answered=by.count("done"), failed=by.count("error"), stopped=by.count("stopped"),
                      cancelled=by.count("cancelled"), unfinished=by.count("queued") + by.count("running"),
                      skipped=tuple(r.item for r in rows if r.status == "invalid"))


def skip_reasons(items: tuple[BatchItem, ...] | list[BatchItem], groups: int = 3) -> str:
    """Why rows were not sent, rows with the same reasons together: "rows 2, 5: Topic is required. Row 7: …"."""
    by_reason: dict[str, list[int]] = {}
    for item in items:
        by_reason.setdefault(" ".join(item.errors) or "bad input.", []).append(item.row)
    out = []
    for reason, numbers in list(by_reason.items())[:groups]:
        shown = ", ".join(map(str, numbers[:10])) + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
        out.append(f"{'row' if len(numbers) == 1 else 'rows'} {shown}: {reason}")
    rest = sum(len(n) for n in list(by_reason.values())[groups:])
    if rest:
        out.append(f"{rest} more row{'s' if rest != 1 else ''} for other reasons (see the table).")
    text = " ".join(part[0].upper() + part[1:] if i else part for i, part in enumerate(out))
    return text if text.endswith((".", "?", "!")) else text + "."


class BatchJob:
    """Runs a plan's rows in a pool of `concurrency` threads; read `progress`, `rows`, `frame()`."""

    def __init__(self, client: DifyClient, profile: AppProfile, plan: BatchPlan, *, user: str, concurrency: int = 4,
                 target: str = "", headers: dict[str, str] | None = None) -> None:
        self.client, self.profile, self.user, self.target, self.headers = client, profile, user, target, headers
        self.concurrency = max(1, min(int(concurrency), MAX_CONCURRENCY))
        self.rows = [BatchRow(item, status="invalid" if item.errors else "queued") for item in plan.items]
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._live: dict[int, LiveRun] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0
        self.done = threading.Event()

    @property
    def total(self) -> int:
        return sum(1 for r in self.rows if r.status != "invalid")

    @property
    def finished(self) -> int:
        return sum(1 for r in self.rows if r.status in ("done", "stopped", "error", "cancelled"))

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def tally(self) -> BatchTally:
        return tally(self.rows)

    def start(self) -> BatchJob:
        self.started_at = time.time()
        todo = [r for r in self.rows if r.status == "queued"]
        self._pending = len(todo)
        if not todo:
            self._all_done()
            return self
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="playground-batch")
        for row in todo:
            self._executor.submit(self._run_row, row)
        self._executor.shutdown(wait=False)  # threads end when the queue is empty
        return self

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def cancel(self) -> None:
        """Rows not started are skipped; rows streaming now are stopped in Dify, keeping what arrived."""
        self._cancelled.set()
        with self._lock:
            running = list(self._live.values())
        for live in running:
            live.stop()

    def _run_row(self, row: BatchRow) -> None:
        try:
            if self._cancelled.is_set():
                row.status = "cancelled"
                return
            item, kind = row.item, self.profile.kind
            request = RunRequest(kind=kind, user=self.user, query=item.query, inputs=item.inputs, headers=self.headers)
            turn = Turn(query=item.query, kind=kind, inputs=item.inputs, target=self.target, label=f"row {item.row}")
            live = LiveRun(self.client, request, turn, orphan_after_s=None)
            with self._lock:
                self._live[item.row] = live
            row.turn, row.status = turn, "running"
            live.run()
            row.status = turn.status
            with self._lock:
                self._live.pop(item.row, None)
        finally:
            with self._lock:
                self._pending -= 1
                last = self._pending == 0
            if last:
                self._all_done()

    def _all_done(self) -> None:
        self.finished_at = time.time()
        self.done.set()

    def frame(self) -> pd.DataFrame:
        """One row per input row: the answer, its status or error, TTFT, total time, tokens, price."""
        records = []
        for r in self.rows:
            t, s = r.turn, (r.turn.stats if r.turn else None)
            records.append({
                "row": r.item.row,
                "query": r.item.query,
                "inputs": json.dumps(r.item.inputs, ensure_ascii=False),
                "status": r.status,
                "answer": (t.answer or _outputs_text(t)) if t else "",
                "error": (t.error if t and t.error else "; ".join(r.item.errors)) or "",
                "ttft_ms": round(s.ttft_s * 1000, 1) if s and s.ttft_s is not None else None,
                "total_s": round(s.total_s, 3) if s and s.total_s is not None else None,
                "output_tokens": s.output_tokens if s else None,
                "tokens_per_s": round(s.tokens_per_s, 1) if s and s.tokens_per_s else None,
                "price": s.price if s else None,
                "currency": s.currency if s and s.price is not None else None,
                "message_id": t.message_id if t else None,
                "workflow_run_id": t.workflow_run_id if t else None,
            })
        frame = pd.DataFrame.from_records(records)
        # A skipped row's None would make the counts floats ("84.0" in the CSV): pandas' nullable integers keep them whole.
        return frame.astype({"output_tokens": "Int64"}) if len(frame) else frame


def _outputs_text(turn: Turn) -> str:
    return json.dumps(turn.outputs, ensure_ascii=False) if turn.outputs else ""


def frame_to_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 with a BOM, so spreadsheet apps read Thai and emoji right."""
    return frame.to_csv(index=False).encode("utf-8-sig")


def frame_to_jsonl(frame: pd.DataFrame) -> bytes:
    lines = (json.dumps({k: _plain(v) for k, v in rec.items()}, ensure_ascii=False) for rec in frame.to_dict("records"))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        return None if v != v else v  # NaN -> null
    try:
        return v.item()  # numpy scalars
    except AttributeError:
        return str(v)
