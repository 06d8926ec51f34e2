"""A strict reader of Dify's SSE framing for simulator tests (independent of lib.dify on purpose)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Frame:
    kind: str  # "data" | "ping" | "malformed"
    event: dict | None
    raw: bytes
    at: float  # seconds since the request was sent


@dataclass
class StreamResult:
    status: int
    headers: httpx.Headers
    frames: list[Frame] = field(default_factory=list)
    complete: bool = True  # False when the connection broke mid-body
    sent_at: float = 0.0  # time.monotonic() when the request was sent: every frame's `at` counts from it
    error: str | None = None

    @property
    def events(self) -> list[dict]:
        return [f.event for f in self.frames if f.kind == "data"]

    @property
    def names(self) -> list[str]:
        return [e["event"] for e in self.events]

    def text(self, *names: str) -> str:
        names = names or ("message", "agent_message")
        out = []
        for e in self.events:
            if e["event"] == "text_chunk" and "text_chunk" in names:
                out.append(e["data"]["text"])
            elif e["event"] in names:
                out.append(e["answer"])
        return "".join(out)


def parse_frame(raw: bytes) -> Frame:
    if raw == b"event: ping":
        return Frame("ping", None, raw, 0.0)
    assert raw.startswith(b"data: "), raw[:80]
    try:
        return Frame("data", json.loads(raw[6:]), raw, 0.0)
    except ValueError:
        return Frame("malformed", None, raw, 0.0)


def stream(client: httpx.Client, path: str, key: str, body: dict, headers: dict | None = None,
           on_frame=None, timeout: float = 30.0) -> StreamResult:
    """POST and read SSE frames as they arrive; `on_frame(frame, result)` may act mid-stream."""
    start = time.monotonic()
    hdrs = {"Authorization": f"Bearer {key}", **(headers or {})}
    with client.stream("POST", path, json=body, headers=hdrs, timeout=timeout) as resp:
        result = StreamResult(resp.status_code, resp.headers, sent_at=start)
        if resp.status_code != 200 or not resp.headers.get("content-type", "").startswith("text/event-stream"):
            resp.read()
            result.frames = []
            result.error = resp.text
            return result
        buf = b""
        try:
            for chunk in resp.iter_raw():
                buf += chunk
                while b"\n\n" in buf:
                    raw, buf = buf.split(b"\n\n", 1)
                    f = parse_frame(raw)
                    f.at = time.monotonic() - start
                    result.frames.append(f)
                    if on_frame:
                        on_frame(f, result)
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            result.complete = False
            result.error = repr(exc)
        assert not buf.strip() or not result.complete, f"trailing bytes: {buf[:80]!r}"
        return result
