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
