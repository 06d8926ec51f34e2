"""Can the simulator serve 200 concurrent streams on one core without becoming the bottleneck?

Drives `python -m lib.simulator` (TTFT 200 ms, 100 tokens/s, jitter 0) with raw aiohttp at 50, 100
and 200 concurrent closed-loop streams, and does the same against a minimal Starlette SSE endpoint
streaming the same number of frames at the same pace: the floor for this machine. Prints req/s and
measured/configured TTFT at p50 and p99 for each, and the verdict against the targets at 200 streams
(p50 within 5% of the configured TTFT; p99 within 15% of the minimal endpoint's p99).

    .venv/bin/python benchmarks/simulator_capacity.py [--levels 50,100,200] [--seconds 8] [--warmup 2]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import free_port, start_process  # noqa: E402

TTFT_S = 0.2
TOKENS_PER_S = 100.0
BODY = {"query": "Benchmark the simulator please", "user": "bench", "inputs": {}, "response_mode": "streaming"}


def minimal_app(frames: int):
    """The floor: Starlette streaming `frames` Dify-sized frames at the simulator's pace."""
    import orjson
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    async def endpoint(request):
        await request.body()

        async def gen():
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(frames):
                delay = start + TTFT_S + i / TOKENS_PER_S - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                yield b"data: " + orjson.dumps({"event": "message", "task_id": "t" * 36, "conversation_id": "c" * 36,
                                                "message_id": "m" * 36, "created_at": 1, "id": "m" * 36, "answer": " word"}) + b"\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream; charset=utf-8")

    async def ready(request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/v1/chat-messages", endpoint, methods=["POST"]), Route("/v1/", ready)])


LOG_DIR = ROOT / "data" / "bench-logs"


def start_paced_simulator(stack: contextlib.ExitStack, log_name: str) -> tuple[subprocess.Popen, str]:
    """The simulator at the benchmarks' pace (TTFT_S, TOKENS_PER_S, no jitter), stopped with `stack`; returns it and its /v1 URL."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    proc = start_process([sys.executable, "-m", "lib.simulator", "--port", str(port), "--ttft-ms", str(TTFT_S * 1000),
                          "--tokens-per-s", str(TOKENS_PER_S), "--jitter", "0"], f"{base}/", LOG_DIR / log_name)
    stack.callback(stop, proc)
    return proc, base


def pin(pid: int, cpu: int) -> None:
    """Server on one core, load generator on the other (pid 0: this process), so neither steals from the other."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})


async def drive(url: str, headers: dict, concurrency: int, warmup: float, seconds: float,
                tally: dict[str, int] | None = None) -> tuple[list[float], int]:
    """Closed loop: `concurrency` workers, each starting its next stream when the last one ends.
    `tally["streams"]`, when given, counts every stream that ended, warm-up and drain included."""
    ttfts: list[float] = []
    done = 0
    if tally is not None:
        tally["streams"] = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        measure_from, stop_at = t0 + warmup, t0 + warmup + seconds

        async def worker():
            nonlocal done
            while loop.time() < stop_at:
                sent = loop.time()
                first = None
                async with session.post(url, json=BODY, headers=headers) as resp:
                    async for chunk in resp.content.iter_any():
                        if first is None and b'"event":"message"' in chunk:
                            first = loop.time()
                if tally is not None:
                    tally["streams"] += 1
                if sent >= measure_from and loop.time() <= stop_at and first is not None:
                    ttfts.append(first - sent)
                    done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ttfts, done


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def answer_frames(url: str) -> int:
    import httpx

    r = httpx.post(url, json={**BODY, "response_mode": "blocking"}, headers={"Authorization": "Bearer app-sim-chat"}, timeout=30)
    return r.json()["metadata"]["usage"]["completion_tokens"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="50,100,200")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--serve-minimal", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--frames", type=int, default=90, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_minimal:
        import uvicorn

        uvicorn.run(minimal_app(args.frames), host="127.0.0.1", port=args.serve_minimal, loop="uvloop", http="httptools",
                    log_level="warning", access_log=False, backlog=4096)
        return 0

    levels = [int(x) for x in args.levels.split(",")]
    with contextlib.ExitStack() as stack:
        sim, sim_base = start_paced_simulator(stack, "sim.log")
        sim_url = f"{sim_base}/chat-messages"
        frames = answer_frames(sim_url)
        min_port = free_port()
        floor = start_process([sys.executable, __file__, "--serve-minimal", str(min_port), "--frames", str(frames)],
                              f"http://127.0.0.1:{min_port}/v1/", LOG_DIR / "minimal.log")
        stack.callback(stop, floor)
        pin(sim.pid, 1)
        pin(floor.pid, 1)
        return compare(levels, args, sim_url, f"http://127.0.0.1:{min_port}/v1/chat-messages", frames)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def compare(levels: list[int], args: argparse.Namespace, sim_url: str, min_url: str, frames: int) -> int:
    pin(0, 0)
    print(f"configured TTFT {TTFT_S * 1000:.0f} ms, {TOKENS_PER_S:.0f} tokens/s, {frames} frames an answer, "
          f"warm-up {args.warmup:.0f} s, {args.seconds:.0f} s measured per level\n")
    print(f"{'streams':>7} | {'server':<10} | {'req/s':>7} | {'TTFT p50':>9} | {'p50/cfg':>7} | {'TTFT p99':>9} | {'p99/cfg':>7}")
    print("-" * 74)
    results = {}
    for n in levels:
        for name, url, headers in (("simulator", sim_url, {"Authorization": "Bearer app-sim-chat"}),
                                   ("minimal", min_url, {})):
            ttfts, done = asyncio.run(drive(url, headers, n, args.warmup, args.seconds))
            p50, p99 = pct(ttfts, 50), pct(ttfts, 99)
            results[(n, name)] = (done / args.seconds, p50, p99)
            print(f"{n:>7} | {name:<10} | {done / args.seconds:>7.1f} | {p50 * 1000:>7.1f}ms | {p50 / TTFT_S:>7.3f} | "
                  f"{p99 * 1000:>7.1f}ms | {p99 / TTFT_S:>7.3f}")
    n = max(levels)
    _, s50, s99 = results[(n, "simulator")]
    _, _, m99 = results[(n, "minimal")]
    p50_ok = abs(s50 / TTFT_S - 1) <= 0.05
    p99_ok = s99 <= m99 * 1.15
    print(f"\nat {n} streams: simulator TTFT p50 / configured = {s50 / TTFT_S:.3f} (target within 5%: {'PASS' if p50_ok else 'FAIL'}); "
          f"simulator p99 / minimal p99 = {s99 / m99:.3f} (target <= 1.15: {'PASS' if p99_ok else 'FAIL'}); "
          f"req/s simulator / minimal = {results[(n, 'simulator')][0] / results[(n, 'minimal')][0]:.3f}")
    return 0 if p50_ok and p99_ok else 1


if __name__ == "__main__":
    sys.exit(main())
