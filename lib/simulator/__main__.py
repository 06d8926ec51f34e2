"""`python -m lib.simulator`: serve the Dify-compatible simulator on uvicorn."""
from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from . import APPS, FAULTS, Latency, NodeTiming, SimConfig, create_app
from .profiles import DEFAULT_VERSION, PROFILES


def _fault_rate(text: str) -> tuple[str, float]:
    name, _, rate = text.partition("=")
    if name not in FAULTS:
        raise argparse.ArgumentTypeError(f"unknown fault {name!r}; choose from {', '.join(FAULTS)}")
    try:
        value = float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate for {name} must be a number between 0 and 1") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"rate for {name} must be between 0 and 1")
    return name, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lib.simulator",
        description="A Dify-compatible Service API server with a latency model and fault injection.",
        epilog="Demo keys: " + ", ".join(f"{k} ({a.mode})" for k, a in APPS.items()),
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--seed", type=int, default=0, help="answers and jitter are the same for the same seed")
    p.add_argument("--fast", action="store_true", help="no latency at all (tests, overhead benchmarks)")
    p.add_argument("--ttft-ms", type=float, default=500.0, help="time to first token (default 500)")
    p.add_argument("--tokens-per-s", type=float, default=40.0, help="streaming pace after the first token (default 40)")
    p.add_argument("--jitter", type=float, default=0.2, help="relative spread of each delay; 0 makes timing exact")
    p.add_argument("--node-overhead-ms", type=float, default=30.0,
                   help="workflow/chatflow runs: Dify's own time before the first node (default 30; 0 with --fast)")
    p.add_argument("--node-ms", type=float, default=4.0,
                   help="workflow/chatflow runs: time of each node without I/O: Start, Answer, End, Template "
                        "(default 4; 0 with --fast); the LLM node spans the generation")
    p.add_argument("--max-active-requests", type=int, default=0, help="per-app concurrent request limit, 0 = off (Dify's 429 past it)")
    p.add_argument("--fault", type=_fault_rate, action="append", default=[], metavar="NAME=RATE",
                   help=f"inject a fault into this share of generation calls; NAME in {', '.join(FAULTS)}")
    p.add_argument("--dify-version", choices=list(PROFILES), default=DEFAULT_VERSION,
                   help=f"which Dify release to behave as (default {DEFAULT_VERSION}, the newest); "
                        "a request's X-Sim-Dify-Version header overrides it")
    p.add_argument("--ping-interval", type=float, default=10.0, help="seconds of quiet before an `event: ping` (default 10)")
    p.add_argument("--stall-limit", type=float, default=300.0, help="seconds a stalled stream stays open")
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)
    if sum(rate for _, rate in args.fault) > 1:
        p.error("the fault rates add up to more than 1")
    if args.node_overhead_ms < 0 or args.node_ms < 0:
        p.error("--node-overhead-ms and --node-ms must be 0 or more")
    return args


def config_from(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        seed=args.seed,
        latency=Latency(ttft_s=args.ttft_ms / 1000, tokens_per_s=args.tokens_per_s, jitter=args.jitter),
        fast=args.fast,
        fault_rates=dict(args.fault),
        max_active_requests=args.max_active_requests,
        ping_interval_s=args.ping_interval,
        stall_limit_s=args.stall_limit,
        dify_version=args.dify_version,
        nodes=NodeTiming(overhead_s=args.node_overhead_ms / 1000, step_s=args.node_ms / 1000),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(config_from(args))
    print(f"Dify simulator on http://{args.host}:{args.port}/v1", file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        access_log=False,
        timeout_keep_alive=75,
        backlog=4096,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
