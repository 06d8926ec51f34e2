"""Replay a real Dify 1.12.1's recorded answers (../shared/dify-captures/1.12.1/*.http) over real HTTP.

For what our simulator does not (yet) produce, e.g. a run that fails in a node: the console's client
reads the exact bytes a real Dify sent. Routes are served by the key in `Authorization` (one recorded
app per key), each from a capture file; anything else is a 404 in Dify's JSON shape.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.support.http_server import serve
from tests.support.procs import ROOT

CAPTURES = ROOT.parent / "shared" / "dify-captures" / "1.12.1"

# key -> {(method, path): capture file}
APPS = {
    "app-replay-failing-workflow": {
        ("GET", "/v1/info"): "49_wf_info.http",
        ("GET", "/v1/parameters"): "50_wf_parameters.http",
        ("POST", "/v1/workflows/run"): "72_wftemplate_streaming.http",
    },
    "app-replay-failing-chatflow": {
        ("GET", "/v1/info"): "01_chat_info.http",
        ("GET", "/v1/parameters"): "02_chat_parameters.http",
        ("GET", "/v1/conversations"): "09_conversations_list.http",
        ("POST", "/v1/chat-messages"): "74_chattemplate_streaming.http",
    },
}


def recorded_response(name: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """A capture's status, headers and body bytes, as recorded."""
    raw = (CAPTURES / name).read_bytes()
    response = raw.split(b"### RESPONSE\n", 1)[1]
    head, _, body = response.partition(b"\n\n")
    status_line, *header_lines = head.decode().splitlines()
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines if ":" in line]
    return int(status_line.split()[1]), headers, body  # type: ignore[return-value]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        name = APPS.get(key, {}).get((self.command, self.path.split("?", 1)[0]))
        if name is None:
            body = json.dumps({"code": "not_found", "message": "Not recorded.", "status": 404}).encode()
            status, headers = 404, [("content-type", "application/json")]
        else:
            status, headers, body = recorded_response(name)
        self.send_response(status)
        for header, value in headers:
            if header.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(header, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # quiet
        pass


@contextmanager
def replay_server() -> Iterator[str]:
    """Serve the recorded apps on a free port; yields the base URL (`.../v1`)."""
    missing = [n for routes in APPS.values() for n in routes.values() if not (CAPTURES / n).is_file()]
    assert not missing, f"captures missing from {CAPTURES}: {missing}"
    with serve(_Handler) as url:
        yield url
