"""Start `python -m lib.gateway` on a free port in front of a given upstream, for tests."""
from __future__ import annotations

import sys
from pathlib import Path

from tests.support.procs import Server, free_port, start_process

CALLER_KEY = "gw-test-key-0123456789"  # caller "web"
OTHER_KEY = "gw-other-key-9876543210"  # caller "partner"
CALLER_KEYS = f"web:{CALLER_KEY},partner:{OTHER_KEY}"


def start_gateway(tmp_dir: Path, upstream: str, dify_key: str = "app-sim-chat", *, port: int | None = None,
                  env: dict[str, str] | None = None, log_level: str = "info") -> Server:
    """The gateway on `port` (default a free one) with caller keys CALLER_KEYS; ready at /health.

    Its rate limit is off unless `env` sets GATEWAY_RATE_LIMIT; OTEL_EXPORTER_OTLP_ENDPOINT is blanked
    unless `env` sets it. Base URL: `server.url` (no /v1)."""
    port = port or free_port()
    args = [sys.executable, "-m", "lib.gateway", "--host", "127.0.0.1", "--port", str(port), "--log-level", log_level]
    full_env = {
        "DIFY_API_BASE": upstream,
        "DIFY_API_KEY": dify_key,
        "GATEWAY_API_KEYS": CALLER_KEYS,
        "GATEWAY_RATE_LIMIT": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        **(env or {}),
    }
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_dir / f"gateway-{port}.log"
    proc = start_process(args, f"{url}/health", log_path, env=full_env)
    return Server(proc=proc, url=url, log_path=log_path, args=args)


def auth(key: str = CALLER_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class RecordingUpstream:
    """A Dify-shaped upstream on a free port (a real uvicorn server in a thread) that records every request
    it receives: method, the raw path as sent on the wire, query, headers and the `user` it carried. Any path answers 200 JSON
    with the key `app-good`, Dify's 401 envelope with any other key."""

    GOOD_KEY = "app-good"

    def __init__(self) -> None:
        import threading

        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route

        self.seen: list[dict] = []

        async def anything(request: Request):
            body = await request.body()
            self.seen.append({"method": request.method, "raw_path": request.scope["raw_path"].decode("latin-1"),
                              "query": request.scope["query_string"].decode("latin-1"), "headers": dict(request.headers),
                              "body": body})
            user = self.seen[-1]["user"] = self.user_of(self.seen[-1], body)
            if request.url.path == "/v1/" or request.url.path == "/v1":
                return JSONResponse({"welcome": "Dify OpenAPI"})
            if request.headers.get("authorization") != f"Bearer {self.GOOD_KEY}":
                return JSONResponse({"code": "unauthorized", "message": "Access token is invalid", "status": 401},
                                    status_code=401)
            if request.url.path.endswith("/chat-messages") and b'"streaming"' in body:
                return StreamingResponse(self._events(user), media_type="text/event-stream")
            return JSONResponse({"result": "success", "path": request.url.path, "user": user,
                                 "message": f"input_value={{'user': '{user}'}}"})

        app = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])])
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                     lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> RecordingUpstream:
        import time

        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the recording upstream did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @staticmethod
    def user_of(seen: dict, body: bytes) -> str | None:
        """The `user` a request carried: JSON body, multipart form field or query string."""
        import json
        import re
        from urllib.parse import parse_qs

        if seen["headers"].get("content-type", "").startswith("application/json") and body:
            return json.loads(body).get("user")
        found = re.search(rb'name="user"\r\n\r\n([^\r]*)\r\n', body)
        if found:
            return found.group(1).decode()
        return (parse_qs(seen["query"]).get("user") or [None])[0]

    @staticmethod
    async def _events(user: str):
        """SSE naming the user, cut mid-line between chunks as a network may cut it."""
        import asyncio

        frame = f'data: {{"event": "message", "answer": "hi", "from": "{user}"}}\n\n'.encode()
        yield frame[:len(frame) - 12]
        await asyncio.sleep(0.05)
        yield frame[len(frame) - 12:]
        yield f'data: {{"event": "message_end", "metadata": {{}}, "inputs": {{"sys.user_id": "{user}"}}}}\n\n'.encode()

    def paths(self, method: str | None = None) -> list[str]:
        """Raw paths received (excluding readiness probes of `/v1/`)."""
        return [s["raw_path"] for s in self.seen if s["raw_path"] not in ("/v1/", "/v1")
                and (method is None or s["method"] == method)]
