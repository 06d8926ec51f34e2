"""What does the gateway add? TTFT and throughput through `python -m lib.gateway` against direct access.

Drives the simulator (TTFT 200 ms, 100 tokens/s, jitter 0) with raw aiohttp at 50 and 200 concurrent
closed-loop streams, directly and through the gateway (rate limit off, warning-level logs), same load,
and prints for each level the TTFT p50/p99 of both, the gateway's added TTFT at p50 and p99, and the
throughput ratio (req/s through the gateway / req/s direct).

    .venv/bin/python benchmarks/gateway_overhead.py [--levels 50,200] [--seconds 8] [--warmup 2]

On this 2-core machine the load generator is pinned to core 0 and the simulator to core 1; the gateway
runs where the OS puts it, sharing the machine with both, as it would in a small deployment.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from simulator_capacity import TOKENS_PER_S, TTFT_S, LOG_DIR, answer_frames, drive, pct, pin, start_paced_simulator, stop  # noqa: E402

from tests.support.procs import free_port, start_process  # noqa: E402

CALLER_KEY = "gw-bench-key"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="50,200")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with contextlib.ExitStack() as stack:
        sim, sim_base = start_paced_simulator(stack, "gw-bench-sim.log")
        gw_port = free_port()
        gw_env = {"DIFY_API_BASE": sim_base, "DIFY_API_KEY": "app-sim-chat",
                  "GATEWAY_API_KEYS": f"bench:{CALLER_KEY}", "GATEWAY_RATE_LIMIT": "0", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
        gw = start_process([sys.executable, "-m", "lib.gateway", "--port", str(gw_port), "--log-level", "warning"],
                           f"http://127.0.0.1:{gw_port}/health", LOG_DIR / "gw-bench-gateway.log", env=gw_env)
        stack.callback(stop, gw)
        pin(sim.pid, 1)
        direct = f"{sim_base}/chat-messages"
        frames = answer_frames(direct)
        return compare(levels, args, direct, f"http://127.0.0.1:{gw_port}/v1/chat-messages", frames)


def compare(levels: list[int], args: argparse.Namespace, direct: str, gateway: str, frames: int) -> int:
    pin(0, 0)
    print(f"configured TTFT {TTFT_S * 1000:.0f} ms, {TOKENS_PER_S:.0f} tokens/s, {frames} frames an answer, "
          f"warm-up {args.warmup:.0f} s, {args.seconds:.0f} s measured per run\n")
    print(f"{'streams':>7} | {'path':<8} | {'req/s':>7} | {'TTFT p50':>9} | {'TTFT p99':>9}")
    print("-" * 52)
    summary = []
    for n in levels:
        results = {}
        for name, url, headers in (("direct", direct, {"Authorization": "Bearer app-sim-chat"}),
                                   ("gateway", gateway, {"Authorization": f"Bearer {CALLER_KEY}"})):
            ttfts, done = asyncio.run(drive(url, headers, n, args.warmup, args.seconds))
            rps, p50, p99 = done / args.seconds, pct(ttfts, 50), pct(ttfts, 99)
            results[name] = (rps, p50, p99)
            print(f"{n:>7} | {name:<8} | {rps:>7.1f} | {p50 * 1000:>7.1f}ms | {p99 * 1000:>7.1f}ms")
        (d_rps, d50, d99), (g_rps, g50, g99) = results["direct"], results["gateway"]
        summary.append((n, (g50 - d50) * 1000, (g99 - d99) * 1000, g_rps / d_rps))
    print("\nthe gateway's cost, same load:")
    for n, add50, add99, ratio in summary:
        print(f"  {n:>3} streams: added TTFT p50 {add50:+.1f} ms, p99 {add99:+.1f} ms; "
              f"throughput through the gateway / direct = {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
