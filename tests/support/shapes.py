"""Raw exchanges recorded from a real Dify (../shared/dify-captures) and a shape diff of two answers.

A shape is what a client depends on: the status, the media type, an error's `code`, the JSON field names
with their JSON types, and for a stream whether it opens with a ping, its event names in order (runs of
answer pieces collapsed: their count depends on the text) and each event's fields and types.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CAPTURES = REPO_ROOT.parent / "shared" / "dify-captures" / "1.12.1"
CONTENT_EVENTS = frozenset({"message", "agent_message", "text_chunk"})
NODE_EVENTS = frozenset({"node_started", "node_finished"})


@dataclass
class Exchange:
    """One captured request and Dify's answer to it."""

    name: str
    file: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    multipart: tuple[list, dict] | None  # (files as (field, filename, mime), form data)
    answer: Answer


@dataclass
class Answer:
    status: int
    media_type: str | None
    body: Any = None  # decoded JSON (None for an empty body), or the text when it is not JSON
    is_json: bool = False
    frames: list[tuple[str, dict | None]] | None = None  # a stream: ("ping", None) | ("data", event)
    headers: dict[str, str] = field(default_factory=dict)  # Dify's own headers (DIFY_HEADERS) as sent

    @property
    def events(self) -> list[dict]:
        return [e for kind, e in self.frames or [] if kind == "data"]


def media_type(content_type: str | None) -> str | None:
    return content_type.split(";")[0].strip().lower() if content_type else None


DIFY_HEADERS = ("x-version", "x-env", "access-control-allow-origin", "access-control-expose-headers")


def dify_headers(headers) -> dict[str, str]:
    """The headers Dify itself adds (version, environment, CORS) from (name, value) pairs."""
    return {k.lower(): v for k, v in headers if k.lower() in DIFY_HEADERS}


def answer_from(status: int, content_type: str | None, text: str, headers=()) -> Answer:
    mtype, extra = media_type(content_type), dify_headers(headers)
    if mtype == "text/event-stream":
        return Answer(status, mtype, frames=parse_sse(text), headers=extra)
    if not text.strip():
        return Answer(status, mtype, None, is_json=True, headers=extra)
    try:
        return Answer(status, mtype, json.loads(text), is_json=True, headers=extra)
    except ValueError:
        return Answer(status, mtype, text, headers=extra)


def parse_sse(text: str) -> list[tuple[str, dict | None]]:
    frames: list[tuple[str, dict | None]] = []
    for raw in text.split("\n\n"):
        raw = raw.strip("\n")
        if not raw:
            continue
        if raw == "event: ping":
            frames.append(("ping", None))
        else:
            assert raw.startswith("data: "), f"not a Dify SSE frame: {raw[:80]!r}"
            frames.append(("data", json.loads(raw[6:])))
    return frames


def load_captures() -> list[Exchange]:
    """Every capture in index order; a missing folder is an error, not a skip."""
    index = CAPTURES / "index.json"
    if not index.is_file():
        raise FileNotFoundError(f"the real-Dify captures are missing: {index} (the repo expects shared/ beside it)")
    out = []
    for entry in json.loads(index.read_text()):
        method, path, headers, body, multipart = _request_of((CAPTURES / entry["file"]).read_text())
        assert (method, path) == (entry["method"], entry["path"]), entry["file"]
        ctype = next((v for k, v in entry["headers"] if k.lower() == "content-type"), None)
        out.append(Exchange(entry["name"], entry["file"], method, path, headers, body, multipart,
                            answer_from(entry["status"], ctype, entry["body"], entry["headers"])))
    return out


def _request_of(text: str) -> tuple[str, str, dict[str, str], bytes | None, tuple | None]:
    """The request part of a `.http` capture: request line, headers, blank line, raw body."""
    request = text.split("### REQUEST\n", 1)[1].split("\n### RESPONSE", 1)[0]
    head, _, body = request.partition("\n\n")
    lines = head.split("\n")
    method, path = lines[0].split(" ", 1)
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    body = body.rstrip("\n")
    if body.startswith("(multipart: "):
        files_part, data_part = body[len("(multipart: files="):-1].split(" data=")
        return method, path, headers, None, (ast.literal_eval(files_part), ast.literal_eval(data_part))
    return method, path, headers, body.encode() if body else None, None


# --- shapes ----------------------------------------------------------------------------------
def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "list" if isinstance(value, list) else "object"


def shape(value: Any, path: str = "", into: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Field path (`.a.b`, `.items[]`; `$` for the root) -> the JSON types seen there."""
    into = {} if into is None else into
    into.setdefault(path or "$", set()).add(json_type(value))
    if isinstance(value, dict):
        for key, item in value.items():
            shape(item, f"{path}.{key}", into)
    elif isinstance(value, list):
        for item in value:
            shape(item, f"{path}[]", into)
    return into


def sequence(events: list[dict], *, nodes: bool = True) -> list[str]:
    """Event names in order, a run of answer pieces as one name; without node events if `nodes` is False."""
    out: list[str] = []
    for e in events:
        name = e.get("event", "?")
        if not nodes and name in NODE_EVENTS:
            continue
        if out and name == out[-1] and name in CONTENT_EVENTS:
            continue
        out.append(name)
    return out


def node_types(events: list[dict]) -> list[str]:
    return [e["data"]["node_type"] for e in events if e.get("event") == "node_started"]


@dataclass(frozen=True)
class Diff:
    capture: str
    # status | media-type | header | code | message | body | opening-ping | sequence | graph | node-status | only-real | only-sim | types
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.capture}: {self.kind}: {self.detail}"


@dataclass
class ShapeDiff:
    capture: str
    diffs: list[Diff] = field(default_factory=list)

    def add(self, kind: str, detail: str) -> None:
        self.diffs.append(Diff(self.capture, kind, detail))

    def fields(self, where: str, real: dict[str, set[str]], sim: dict[str, set[str]]) -> None:
        for path in sorted(real.keys() | sim.keys()):
            if path not in sim:
                self.add("only-real", f"{where}{path} {sorted(real[path])}")
            elif path not in real:
                self.add("only-sim", f"{where}{path} {sorted(sim[path])}")
            elif real[path] != sim[path]:
                self.add("types", f"{where}{path} real {sorted(real[path])} sim {sorted(sim[path])}")


def diff(name: str, real: Answer, sim: Answer) -> list[Diff]:
    d = ShapeDiff(name)
    if real.status != sim.status:
        d.add("status", f"real {real.status} sim {sim.status}")
    if real.media_type != sim.media_type:
        d.add("media-type", f"real {real.media_type} sim {sim.media_type}")
    for header in DIFY_HEADERS:
        if real.headers.get(header) != sim.headers.get(header):
            d.add("header", f"{header} real {real.headers.get(header)!r} sim {sim.headers.get(header)!r}")
    if real.frames is not None and sim.frames is not None:
        _diff_streams(d, real, sim)
    elif real.is_json and sim.is_json:
        if isinstance(real.body, dict) and isinstance(sim.body, dict):
            _diff_error(d, real.body, sim.body)
        d.fields("body", shape(real.body), shape(sim.body))
    elif not (real.is_json or sim.is_json) and real.frames is None and sim.frames is None:
        if str(real.body).strip() != str(sim.body).strip():
            d.add("body", f"real {str(real.body)[:60]!r} sim {str(sim.body)[:60]!r}")
    else:
        d.add("body", "real " + _kind(real) + " sim " + _kind(sim))
    return d.diffs


def _pydantic_neutral(message: str) -> str:
    # Dify's validation messages are pydantic's; only the pydantic release in their URLs may differ.
    return re.sub(r"errors\.pydantic\.dev/\d+\.\d+/", "errors.pydantic.dev/X.Y/", message)


def _diff_error(d: ShapeDiff, real: dict, sim: dict) -> None:
    """An error envelope's `code`, and its `message` (the sentence a client shows or matches on)."""
    if "code" not in real and "code" not in sim:
        return
    if real.get("code") != sim.get("code"):
        d.add("code", f"real {real.get('code')} sim {sim.get('code')}")
    elif _pydantic_neutral(str(real.get("message"))) != _pydantic_neutral(str(sim.get("message"))):
        d.add("message", f"real {real.get('message')!r} sim {sim.get('message')!r}")


def _kind(a: Answer) -> str:
    return "stream" if a.frames is not None else "JSON" if a.is_json else "text"


def _diff_streams(d: ShapeDiff, real: Answer, sim: Answer) -> None:
    # Pings after the first frame come from timing (10 s of quiet), not from the shape.
    real_ping, sim_ping = bool(real.frames) and real.frames[0][0] == "ping", bool(sim.frames) and sim.frames[0][0] == "ping"
    if real_ping != sim_ping:
        d.add("opening-ping", f"real {real_ping} sim {sim_ping}")
    re, se = real.events, sim.events
    if sequence(re) != sequence(se):
        real_nodes, sim_nodes = node_types(re), node_types(se)
        if real_nodes != sim_nodes:
            d.add("graph", f"real {' '.join(real_nodes)} sim {' '.join(sim_nodes)}")
        if sequence(re, nodes=False) != sequence(se, nodes=False) or real_nodes == sim_nodes:
            d.add("sequence", f"real {' '.join(sequence(re))} | sim {' '.join(sequence(se))}")
    real_status = [e["data"]["status"] for e in re if e.get("event") == "node_finished"][-1:]
    sim_status = [e["data"]["status"] for e in se if e.get("event") == "node_finished"][-1:]
    if real_status != sim_status:
        d.add("node-status", f"last node_finished real {real_status} sim {sim_status}")
    for name in sorted({e.get("event") for e in re} | {e.get("event") for e in se}):
        real_shape: dict[str, set[str]] = {}
        sim_shape: dict[str, set[str]] = {}
        for e in re:
            if e.get("event") == name:
                shape(e, "", real_shape)
        for e in se:
            if e.get("event") == name:
                shape(e, "", sim_shape)
        if name == "error":
            real_errors = [e for e in re if e.get("event") == name]
            sim_errors = [e for e in se if e.get("event") == name]
            for r, s in zip(real_errors, sim_errors, strict=False):  # counts are compared as the event order
                _diff_error(d, r, s)
        d.fields(f"{name}:", real_shape, sim_shape)
