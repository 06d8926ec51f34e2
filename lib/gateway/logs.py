"""JSON log lines, one object a line, and request ids.

The gateway logs what an operator needs to follow a request (id, route, caller name, status, timing)
and nothing that is a secret or personal: no header values, no keys, no query strings, no bodies.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

log = logging.getLogger("lib.gateway")

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName", "color_message"}


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token (so traces join up), else a new one."""
    if incoming and _SAFE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_json_logging(level: str = "info") -> None:
    """Route the root logger (the gateway's and uvicorn's error logs) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every upstream URL at INFO, query string included (Dify's `user` ids ride there): keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
