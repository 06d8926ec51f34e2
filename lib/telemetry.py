"""Prometheus metrics shared by the console's processes.

Buckets are sized for LLM latencies (10 ms to 60 s): prometheus_client's defaults stop at 10 s,
which would put every slow answer in +Inf.
"""
from __future__ import annotations

LLM_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
INTER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


def status_class(status: int | None) -> str:
    """`2xx`..`5xx`, or `error` when no HTTP status arrived (connection failures, timeouts)."""
    return f"{status // 100}xx" if status else "error"
