"""Send a generation's script as Dify's SSE, on time, with pings, stop and in-stream faults."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .faults import Fault
from .generation import Generation, Script, script_for

PING = b"event: ping\n\n"
STOP_POLL_S = 0.05  # how soon a stopped task notices while waiting for its next event


class DropConnection(Exception):
    """Raised inside a stream to cut the connection without the chunked terminator."""


def frame(event: dict) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


async def pace(
    gen: Generation,
    *,
    ping_interval: float,
    opening_ping: bool,
    fault: Fault | None,
    stall_limit: float,
    on_done: Callable[[Generation], None],
    on_first_content: Callable[[Generation], None] | None = None,
) -> AsyncIterator[bytes]:
    """Yield SSE frames of the generation's script at their scheduled times.

    The offsets count from the request's arrival (`gen.started`), not from this body's first step: counted
    from here the whole schedule would slip by whatever came first (the response's setup, a loaded machine's
    late wake-up). Time is time.monotonic(), the clock of `gen.started`: uvloop's loop.time() is libuv's clock in
    whole milliseconds (another clock, truncated) and its timers round a delay to the millisecond, so a sleep
    may end a little early; the loop below checks the clock again rather than trust the sleep."""
    clock = time.monotonic
    start = gen.started
    last_sent = start
    sent_events = 0
    script: Script = script_for(gen)
    try:
        if opening_ping:
            yield PING
        sent = None
        while True:
            try:
                offset, event = script.send(sent) if sent is not None else next(script)
            except StopIteration:
                gen.completed = True
                break
            target = start + offset
            while not gen.task.stopped:
                now = clock()
                if now >= target:
                    break
                next_ping = last_sent + ping_interval
                if now >= next_ping:
                    yield PING
                    last_sent = now
                    continue
                await asyncio.sleep(min(target - now, next_ping - now, STOP_POLL_S))
            if gen.task.stopped and (_is_content(event) or event.get("event") == "node_finished"):
                sent = False  # stopped while waiting: this piece never went out, the running node never finishes
                continue
            if fault and sent_events >= fault.after_events:
                if fault.name == "error-event":
                    gen.status, gen.error = "error", _FAULT_MESSAGE
                    if gen.app.is_workflow_based:
                        from .generation import workflow_finished

                        yield frame(workflow_finished(gen, "failed", _FAULT_MESSAGE))
                    yield frame(gen.error_event("completion_request_error", 400, _FAULT_MESSAGE))
                    return
                if fault.name == "drop":
                    gen.status, gen.error = "error", "connection dropped (simulated fault)"
                    raise DropConnection()
                if fault.name == "stall":
                    gen.status, gen.error = "error", "stream stalled (simulated fault)"
                    deadline = clock() + stall_limit
                    while clock() < deadline and not gen.task.stopped:
                        await asyncio.sleep(0.2)
                    return
                if fault.name == "malformed-event":
                    yield b'data: {"event": "message", "answer": "unterminated\n\n'
                    fault = None
            yield frame(event)
            last_sent = clock()
            sent_events += 1
            sent = True
            if on_first_content is not None and _is_content(event):
                on_first_content(gen)
                on_first_content = None
    finally:
        script.close()
        on_done(gen)


async def collect(gen: Generation, on_done: Callable[[Generation], None]) -> list[dict]:
    """Run the script for a blocking call: wait as long as the stream would take (from the request's arrival,
    as pace()), return all events."""
    start = gen.started
    events: list[dict] = []
    script = script_for(gen)
    try:
        sent = None
        while True:
            try:
                offset, event = script.send(sent) if sent is not None else next(script)
            except StopIteration:
                gen.completed = True
                break
            while (delay := start + offset - time.monotonic()) > 0:  # uvloop rounds a sleep to the ms: never early
                await asyncio.sleep(delay)
            events.append(event)
            sent = True
    finally:
        script.close()
        on_done(gen)
    return events


_FAULT_MESSAGE = "[simulated fault] The model provider returned an error: upstream model overloaded, please retry later."
_CONTENT_EVENTS = frozenset({"message", "agent_message", "text_chunk"})


def _is_content(event: dict) -> bool:
    return event.get("event") in _CONTENT_EVENTS


class SSEResponse(StreamingResponse):
    """Dify's SSE response: `text/event-stream; charset=utf-8`, chunked, and a real cut on DropConnection."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], transport_of: Callable[[], asyncio.Transport | None]):
        super().__init__(content, media_type="text/event-stream; charset=utf-8")
        self._transport_of = transport_of

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        except DropConnection:
            transport = self._transport_of()
            if transport is not None:
                transport.abort()  # no chunked terminator: the client sees an incomplete body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()  # release the app's concurrency slot even if the client left
