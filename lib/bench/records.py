"""One row per request: the client's Timing and error turned into what a benchmark keeps.

Instants are milliseconds since the run's start (`t0`, a perf_counter value), so rows of one run line
up on one monotonic clock: scheduled (the arrival slot, or the closed-loop send moment), dispatched
(the engine picked it up), sent (handed to the transport), headers, first event, first content, last
content, end. Latencies are derived with the formulas of stats.py.
"""
from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from lib.dify import DifyAPIError, DifyConnectionError, DifyError, RunFailedError, Timing
from lib.waterfall import waterfall_record

from .stats import ABANDONED, gaps_ms, tpot_ms

PHASES = ("client", "connect", "headers", "response", "first_event", "stream", "run")
# client: never sent (circuit open, deadline while queued); connect: no connection; headers: sent, no
# answer; response: an HTTP error status; first_event: answer headers, no event; stream: broke, an
# `error` event or no final event; run: Dify ran the workflow/chatflow and a node failed
# (RunFailedError, whatever the HTTP status).
RUN_FAILED = "RunFailedError"


@dataclass(slots=True)
class RequestRecord:
    seq: int
    warmup: bool
    worker: int | None
    prompt: int
    t_scheduled: float
    t_dispatched: float | None = None
    t_sent: float | None = None
    t_headers: float | None = None
    t_first_event: float | None = None
    t_first_content: float | None = None
    t_last_content: float | None = None
    t_end: float | None = None
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    ttfb_ms: float | None = None
    queue_ms: float | None = None
    client_queue_ms: float | None = None
    late_ms: float | None = None
    tpot_ms: float | None = None
    chunks: int = 0
    itl_ms: Sequence[float] = field(default_factory=list)  # an array('f') from build(): 8x smaller than a list
    output_tokens: int | None = None
    output_tokens_source: str | None = None  # usage | chunks
    prompt_tokens: int | None = None
    total_tokens: int | None = None
    price: float | None = None
    currency: str | None = None
    ok: bool = False
    http_status: int | None = None
    error_class: str | None = None
    error_code: str | None = None
    error_phase: str | None = None
    error_message: str | None = None
    attempts: int = 0
    retries: int = 0
    malformed: int = 0  # SSE frames the client could not read and skipped
    # lib.waterfall.waterfall_record(timing) as JSON text (ms since sent): the node spans of a streamed
    # workflow/chatflow request; None for chat apps and blocking calls (no node events), so they pay nothing
    waterfall: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in COLUMNS}
        d["itl_ms"] = list(self.itl_ms)
        return d


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RequestRecord))


def _ms(t: float | None, t0: float) -> float | None:
    return None if t is None else round((t - t0) * 1000.0, 3)


def build(
    *,
    seq: int,
    warmup: bool,
    worker: int | None,
    prompt: int,
    t0: float,
    scheduled: float,
    dispatched: float,
    timing: Timing,
    error: DifyError | None,
    streaming: bool = True,
    final: float | None = None,
    abandoned: bool = False,
    malformed: int = 0,
) -> RequestRecord:
    """The record of one finished request. `scheduled`, `dispatched`, `final` and the timing's instants
    are perf_counter values; `error` is what the client raised, or the engine's RunFailedError for a
    workflow that finished other than succeeded (HTTP 200, still a failure); None on success. `final`:
    when the last answer-ending event (message_end / workflow_finished) arrived: the end of the answer,
    whatever came after it on the connection. `abandoned`: still in flight when the run stopped waiting."""
    t = timing
    end = final if final is not None else t.end
    rec = RequestRecord(
        seq=seq, warmup=warmup, worker=worker, prompt=prompt,
        t_scheduled=_ms(scheduled, t0),  # type: ignore[arg-type]
        t_dispatched=_ms(dispatched, t0), t_sent=_ms(t.sent, t0), t_headers=_ms(t.first_byte, t0),
        t_first_event=_ms(t.first_event, t0), t_first_content=_ms(t.first_content, t0),
        t_last_content=_ms(t.content[-1], t0) if t.content else None, t_end=_ms(end, t0),
        attempts=t.attempts, retries=max(0, t.attempts - 1),
        client_queue_ms=round(t.queued * 1000.0, 3), late_ms=round((dispatched - scheduled) * 1000.0, 3),
        chunks=len(t.content) if streaming else 0, malformed=malformed,
    )
    if t.sent is not None:
        rec.queue_ms = round((t.sent - scheduled) * 1000.0, 3)
        if t.first_byte is not None:
            rec.ttfb_ms = round((t.first_byte - t.sent) * 1000.0, 3)
    if abandoned:
        rec.t_end = None
        rec.error_class, rec.error_phase = ABANDONED, phase_of(DifyError("abandoned"), t)
        rec.error_message = "still in flight when the run stopped waiting (drain limit or cancel grace); not counted"
        return rec
    rec.waterfall = waterfall_json(t, end)
    usage = t.usage
    if usage is not None:
        rec.prompt_tokens = usage.prompt_tokens or None
        rec.total_tokens = usage.total_tokens or None
        rec.price = usage.price  # a workflow's: the sum of its nodes' (lib.dify); None when priced in several currencies
        rec.currency = usage.currency if usage.price is not None else None
    if usage is not None and usage.completion_tokens > 0:
        rec.output_tokens, rec.output_tokens_source = usage.completion_tokens, "usage"
    elif t.content and streaming:
        # A blocking answer arrives as one piece: its "chunk count" of 1 is no token count, so a blocking
        # run without Dify's completion_tokens (a workflow reports only a total) has none.
        rec.output_tokens, rec.output_tokens_source = len(t.content), "chunks"
    if error is None:
        rec.ok = True
        rec.http_status = 200
        if end is not None:
            rec.e2e_ms = round((end - scheduled) * 1000.0, 3)
        if streaming:
            # Blocking: the whole answer arrives at once, so there is no first token: its end-to-end is
            # the time to response, and TTFT, inter-chunk and TPOT are left empty rather than made up.
            if t.first_content is not None:
                rec.ttft_ms = round((t.first_content - scheduled) * 1000.0, 3)
            rec.itl_ms = array("f", gaps_ms(t.content))  # float32: ample for ms, half the memory of a run's gaps
            rec.tpot_ms = _round(tpot_ms(rec.e2e_ms, rec.ttft_ms, rec.output_tokens))
        return rec
    rec.error_class = type(error).__name__
    rec.error_code = error.code
    rec.error_message = (error_text(error) or "")[:300]
    rec.error_phase = "run" if isinstance(error, RunFailedError) else phase_of(error, t)
    # A failed run's `status` is the HTTP status of a blocking answer (400 "Run failed"), but inside a stream it is
    # the `error` event's field: that answer came with HTTP 200.
    streamed = t.first_event is not None
    if isinstance(error, DifyAPIError) or (isinstance(error, RunFailedError) and error.status and not streamed):
        rec.http_status = error.status
    elif t.first_byte is not None:
        rec.http_status = 200  # the answer began fine; the stream failed (error event, cut, stall, failed node)
    return rec


def waterfall_json(t: Timing, end: float | None) -> str | None:
    """The request's node spans as compact JSON (None without node events). Its end is the row's end (the
    answer-ending event, `final`), so the waterfall's tail and the row's t_end agree; floats to the µs, and
    empty fields left out (lib.waterfall reads a missing field as None)."""
    if t.nodes is None:
        return None
    rec = waterfall_record(t)
    if end is not None and t.sent is not None:
        rec["e2e_ms"] = (end - t.sent) * 1000.0
    rec["nodes"] = [_compact(n) for n in rec["nodes"]]
    return orjson.dumps(_compact(rec)).decode()


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    # the times to the µs; a price is left whole (0.000175 to three places would read as free)
    return {k: round(v, 3) if isinstance(v, float) and k != "price" else v
            for k, v in d.items() if v is not None and not (k == "retries" and v == 0)}


def error_text(error: DifyError) -> str:
    """The row's error message: for a failed run the node and Dify's own message, else the summary."""
    summary = error.summary or str(error)
    if isinstance(error, RunFailedError) and error.node_title and not (error.message and error.message in summary):
        node = f"{error.node_title!r} ({error.node_type})" if error.node_type else repr(error.node_title)
        return f"node {node} failed: {error.message or summary}"
    return summary


def phase_of(error: DifyError, t: Timing) -> str:
    """Where the request failed (see PHASES)."""
    if t.sent is None:
        return "client"
    if isinstance(error, DifyAPIError):
        return "response"
    if t.first_byte is None:
        never_sent = isinstance(error, DifyConnectionError) and not error.may_have_been_processed
        return "connect" if never_sent else "headers"
    if t.first_event is None:
        return "first_event"
    return "stream"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
