"""What does the gateway add? TTFT and throughput through `python -m lib.gateway`, beside a bare proxy.

Drives the simulator (TTFT 200 ms, 100 tokens/s, jitter 0) with raw aiohttp at 50 concurrent
closed-loop streams (--levels) three ways in the same run: directly, through a bare passthrough proxy
(Starlette on the gateway's server stack, uvicorn + uvloop + httptools, relaying the upstream body chunk
by chunk from aiohttp: the floor of what any Python proxy adds), and through the gateway (rate limit off,
warning-level logs, caller isolation on as by default). The three run in interleaved rounds, the order
rotated each round, so a noisy neighbour on the shared machine hits all of them alike; added TTFT is taken
per round. Prints per round and path req/s, TTFT p50/p99, the added TTFT over direct access in that
round, the proxy's CPU time per stream and the load average; then the medians over rounds and the
verdict: gateway added p50 / bare added p50 and the same at p99 (target <= 2), throughput through the
gateway / through the bare proxy (target >= 0.95). A median over rounds, so a burst of a neighbour's
work during one path's turn does not decide the verdict.

    .venv/bin/python benchmarks/gateway_overhead.py [--levels 50] [--rounds 5] [--seconds 6] [--warmup 2]

On this 2-core machine the load generator is pinned to core 0, the simulator and both proxies to core 1
(--proxy-cpu -1: where the OS puts them). The bare proxy's upstream: raw aiohttp (--bare aiohttp) or
httpx on lib.dify's aiohttp transport (--bare httpx, the proxy design.md measured).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from simulator_capacity import (  # noqa: E402  (same folder, found through the path set above)
    LOG_DIR,
    TOKENS_PER_S,
    TTFT_S,
    answer_frames,
    drive,
    pct,
    pin,
    start_paced_simulator,
    stop,
)

from tests.support.procs import free_port, start_process  # noqa: E402

CALLER_KEY = "gw-bench-key"
SIM_KEY = "app-sim-chat"
PATHS = ("direct", "bare", "gateway")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_app(upstream: str, kind: str):
    """The bare passthrough: POST /v1/chat-messages relayed as it arrives, nothing checked or counted."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    state: dict = {}
    keep = ("authorization", "content-type")

    async def lifespan(app):
        if kind == "httpx":
            import httpx

            from lib.dify import FastTransport

            state["http"] = httpx.AsyncClient(transport=FastTransport(), timeout=30)
        else:
            import aiohttp

            state["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
        yield
        await (state["http"].aclose() if kind == "httpx" else state["http"].close())

    async def relay(request: Request):
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k in keep}
        http = state["http"]
        if kind == "httpx":
            resp = await http.send(http.build_request("POST", upstream, headers=headers, content=body), stream=True)
            chunks, close, status = resp.aiter_raw(), resp.aclose, resp.status_code
        else:
            resp = await http.post(upstream, data=body, headers=headers)
            chunks, close, status = resp.content.iter_any(), resp.release, resp.status

        async def body_iter():
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                r = close()
                if r is not None:
                    await r

        return StreamingResponse(body_iter(), status_code=status, media_type=resp.headers.get("content-type"))

    async def ready(request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/v1/chat-messages", relay, methods=["POST"]), Route("/health", ready)],
                     lifespan=lifespan)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="50")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--bare", choices=("aiohttp", "httpx"), default="aiohttp")
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--upstream", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_bare:
        import uvicorn

        uvicorn.run(bare_app(args.upstream, args.bare), host="127.0.0.1", port=args.serve_bare, loop="uvloop",
                    http="httptools", log_level="warning", access_log=False, timeout_keep_alive=75, backlog=4096)
        return 0

    levels = [int(x) for x in args.levels.split(",")]
    with contextlib.ExitStack() as stack:
        sim, sim_base = start_paced_simulator(stack, "gw-bench-sim.log")
        direct = f"{sim_base}/chat-messages"
        gw_port, bare_port = free_port(), free_port()
        gw_env = {"DIFY_API_BASE": sim_base, "DIFY_API_KEY": SIM_KEY, "GATEWAY_API_KEYS": f"bench:{CALLER_KEY}",
                  "GATEWAY_RATE_LIMIT": "0", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
        gw = start_process([sys.executable, "-m", "lib.gateway", "--port", str(gw_port), "--log-level", "warning"],
                           f"http://127.0.0.1:{gw_port}/health", LOG_DIR / "gw-bench-gateway.log", env=gw_env)
        stack.callback(stop, gw)
        bare = start_process([sys.executable, __file__, "--serve-bare", str(bare_port), "--upstream", direct,
                              "--bare", args.bare], f"http://127.0.0.1:{bare_port}/health", LOG_DIR / "gw-bench-bare.log")
        stack.callback(stop, bare)
        pin(sim.pid, 1)
        if args.proxy_cpu >= 0:
            pin(gw.pid, args.proxy_cpu)
            pin(bare.pid, args.proxy_cpu)
        frames = answer_frames(direct)
        targets = {"direct": (direct, {"Authorization": f"Bearer {SIM_KEY}"}, None),
                   "bare": (f"http://127.0.0.1:{bare_port}/v1/chat-messages", {"Authorization": f"Bearer {SIM_KEY}"}, bare.pid),
                   "gateway": (f"http://127.0.0.1:{gw_port}/v1/chat-messages", {"Authorization": f"Bearer {CALLER_KEY}"}, gw.pid)}
        return compare(levels, args, targets, frames)


def added(runs: dict[str, list[tuple[float, float, float, float]]], name: str, i: int) -> float:
    """The median over rounds of (path - direct in the same round), in ms; i: 1 for p50, 2 for p99."""
    return statistics.median(run[i] - d[i] for run, d in zip(runs[name], runs["direct"], strict=True)) * 1000


def compare(levels: list[int], args: argparse.Namespace, targets: dict, frames: int) -> int:
    pin(0, 0)
    print(f"configured TTFT {TTFT_S * 1000:.0f} ms, {TOKENS_PER_S:.0f} tokens/s, {frames} frames an answer; "
          f"{args.rounds} interleaved rounds of {args.warmup:.0f} s warm-up + {args.seconds:.0f} s measured per path; "
          f"bare proxy upstream: {args.bare}; proxies on core {args.proxy_cpu if args.proxy_cpu >= 0 else '(any)'}\n")
    print(f"{'streams':>7} | {'round':>5} | {'path':<8} | {'req/s':>6} | {'TTFT p50':>9} | {'TTFT p99':>9} | "
          f"{'added p50':>9} | {'added p99':>9} | {'CPU/req':>8} | load avg")
    print("-" * 104)
    ok = True
    verdicts = []
    for n in levels:
        # per path and round: (req/s, p50, p99, proxy CPU seconds per stream, warm-up and drain included)
        runs: dict[str, list[tuple[float, float, float, float]]] = {p: [] for p in PATHS}
        for name in PATHS:  # untimed: every path's connections opened and code paths warm before round 1
            asyncio.run(drive(targets[name][0], targets[name][1], n, 0, 1.0))
        for r in range(args.rounds):
            for name in PATHS[r % 3:] + PATHS[:r % 3]:
                url, headers, pid = targets[name]
                before, tally = cpu_seconds(pid), {}
                ttfts, count = asyncio.run(drive(url, headers, n, args.warmup, args.seconds, tally))
                runs[name].append((count / args.seconds, pct(ttfts, 50), pct(ttfts, 99),
                                   (cpu_seconds(pid) - before) / max(1, tally["streams"])))
            for name in PATHS:  # the round's added TTFT: against direct access in the same round
                rps, p50, p99, cpu = runs[name][r]
                extra = ("", "") if name == "direct" else (
                    f"{(p50 - runs['direct'][r][1]) * 1000:+7.1f}ms", f"{(p99 - runs['direct'][r][2]) * 1000:+7.1f}ms")
                print(f"{n:>7} | {r + 1:>5} | {name:<8} | {rps:>6.1f} | {p50 * 1000:>7.1f}ms | {p99 * 1000:>7.1f}ms | "
                      f"{extra[0]:>9} | {extra[1]:>9} | {f'{cpu * 1000:.2f} ms' if targets[name][2] else '':>8} | "
                      f"{os.getloadavg()[0]:.2f}", flush=True)

        b50, b99, g50, g99 = (added(runs, p, i) for p in ("bare", "gateway") for i in (1, 2))
        rate = {p: statistics.mean(run[0] for run in runs[p]) for p in PATHS}
        cpu = {p: statistics.median(run[3] for run in runs[p]) * 1000 for p in ("bare", "gateway")}
        # a ratio of added times means nothing when the bare proxy adds (about) nothing: its floor is 0.5 ms
        r50, r99, rps = g50 / max(b50, 0.5), g99 / max(b99, 0.5), rate["gateway"] / rate["bare"]
        level_ok = r50 <= 2 and r99 <= 2 and rps >= 0.95
        ok &= level_ok
        verdicts.append(f"  {n:>3} streams (medians over {args.rounds} rounds): added TTFT p50 bare {b50:+.1f} ms, "
                        f"gateway {g50:+.1f} ms -> ratio {r50:.2f}; added p99 bare {b99:+.1f} ms, gateway {g99:+.1f} ms "
                        f"-> ratio {r99:.2f}; throughput gateway / bare {rps:.3f} (gateway / direct "
                        f"{rate['gateway'] / rate['direct']:.3f}); proxy CPU per stream bare {cpu['bare']:.2f} ms, "
                        f"gateway {cpu['gateway']:.2f} ms [targets <= 2, <= 2, >= 0.95: {'PASS' if level_ok else 'FAIL'}]")
    print("\nthe gateway's cost beside a bare proxy, same load, same run:")
    print("\n".join(verdicts))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min; 2 cores)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
