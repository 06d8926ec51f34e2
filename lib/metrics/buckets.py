"""Histogram buckets sized for LLM latencies (5 ms to 120 s): prometheus_client's defaults stop at 10 s,
which would put every slow answer in +Inf. Shared by the console's client, the gateway and the simulator,
so their quantiles compare. No side effects: importing this registers no metric."""
from __future__ import annotations


def _steps(start: float, stop: float, step: float) -> tuple[float, ...]:
    """Bucket bounds from start to stop inclusive, rounded so `le` labels read cleanly (0.325, not 0.32499999)."""
    n = round((stop - start) / step)
    return tuple(round(start + i * step, 4) for i in range(n + 1))


# histogram_quantile interpolates linearly inside a bucket, so a quantile is only as exact as its bucket is
# narrow. Most TTFTs and short answers fall in 0.2-1 s: 25 ms steps there keep a p50 within ~5% of the true
# figure (with 0.3/0.5 bounds a 305 ms TTFT read as 400 ms); steps widen to ~10% of the value beyond.
LLM_LATENCY_BUCKETS = (
    (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175)
    + _steps(0.2, 1.0, 0.025)
    + _steps(1.1, 2.0, 0.1)
    + _steps(2.25, 3.0, 0.25)
    + (3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 90.0, 120.0)
)
INTER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
