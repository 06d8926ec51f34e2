"""Label values every exporter (the console's client, the gateway, the simulator) writes the same way,
so one PromQL query reads them all. No side effects: importing this registers no metric."""
from __future__ import annotations

# Circuit breaker state as a number, so it can be graphed: 0 closed, 1 half-open, 2 open.
BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


def status_class(status: int | None) -> str:
    """`2xx`..`5xx`, or `error` when no HTTP status arrived (connection failures, timeouts)."""
    return f"{status // 100}xx" if status else "error"
