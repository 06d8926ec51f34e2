"""How much does lib.dify cost on top of raw HTTP? Run: python benchmarks/client_overhead.py

Drives the simulator in --fast mode (no model latency, so the client side is what is measured)
with the client and with raw httpx and raw aiohttp, blocking and streaming, at 1 and 100
concurrent requests, and prints req/s, TTFT p50/p99 and the ratios the client must meet:

- the async client on its fast (aiohttp) transport, 100 streams: >= 0.9x raw aiohttp's req/s
- the sync client: >= 0.9x raw httpx's req/s

TTFT is measured the same way for everyone, from the caller's side: from just before the request
to the first chunk holding answer text (raw) or the first content event (client). A blocking
call's TTFT is its whole answer. `--micro` adds the per-event parsing cost behind the client's
design choices (hand-split SSE + orjson + dataclass events vs httpx-sse and pydantic).

Options: --url URL (use a running simulator), --seconds S, --rounds N, --concurrency 1,100, --micro.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402

from lib.dify import AsyncDifyClient, DifyClient, RetryPolicy  # noqa: E402

KEY = "app-sim-chat"
USER = "bench"
QUERY = "How does streaming change what a user sees first?"
clock = time.perf_counter


def body(streaming: bool) -> bytes:
    return orjson.dumps({"query": QUERY, "inputs": {}, "user": USER, "response_mode": "streaming" if streaming else "blocking"})


HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


class Stats:
    def __init__(self) -> None:
        self.ttft: list[float] = []
        self.done = 0
        self.errors = 0

    def add(self, t0: float, ttft: float | None, end: float, window: tuple[float, float]) -> None:
        if window[0] <= end <= window[1]:
            self.done += 1
            if ttft is not None:
                self.ttft.append(ttft)


# -- async drivers: one request each, returning TTFT -------------------------------------------------


def raw_aiohttp(url: str, streaming: bool, session: aiohttp.ClientSession) -> Callable[[], Awaitable[float | None]]:
    data = body(streaming)

    async def one() -> float | None:
        t0 = clock()
        ttft = None
        async with session.post(url + "/chat-messages", data=data, headers=HEADERS) as r:
            if r.status != 200:
                raise RuntimeError(r.status)
            async for chunk in r.content.iter_any():
                if ttft is None and b'"answer"' in chunk:
                    ttft = clock() - t0
        return ttft

    return one


def raw_httpx_async(url: str, streaming: bool, client: httpx.AsyncClient) -> Callable[[], Awaitable[float | None]]:
    data = body(streaming)

    async def one() -> float | None:
        t0 = clock()
        ttft = None
        async with client.stream("POST", url + "/chat-messages", content=data, headers=HEADERS) as r:
            if r.status_code != 200:
                raise RuntimeError(r.status_code)
            async for chunk in r.aiter_bytes():
                if ttft is None and b'"answer"' in chunk:
                    ttft = clock() - t0
        return ttft

    return one


def dify_async(streaming: bool, client: AsyncDifyClient) -> Callable[[], Awaitable[float | None]]:
    async def one() -> float | None:
        t0 = clock()
        if not streaming:
            await client.chat(QUERY, user=USER)
            return clock() - t0
        ttft = None
        async for ev in client.stream_chat(QUERY, user=USER):
            if ttft is None and ev.text:
                ttft = clock() - t0
        return ttft

    return one


async def drive_async(one: Callable[[], Awaitable[float | None]], concurrency: int, seconds: float, warmup: float) -> Stats:
    stats = Stats()
    start = clock()
    window = (start + warmup, start + warmup + seconds)

    async def worker() -> None:
        while clock() < window[1]:
            t0 = clock()
            try:
                ttft = await one()
            except Exception:
                stats.errors += 1
                continue
            stats.add(t0, ttft, clock(), window)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return stats


# -- sync drivers ------------------------------------------------------------------------------------------


def raw_httpx_sync(url: str, streaming: bool, client: httpx.Client) -> Callable[[], float | None]:
    data = body(streaming)

    def one() -> float | None:
        t0 = clock()
        ttft = None
        with client.stream("POST", url + "/chat-messages", content=data, headers=HEADERS) as r:
            if r.status_code != 200:
                raise RuntimeError(r.status_code)
            for chunk in r.iter_bytes():
                if ttft is None and b'"answer"' in chunk:
                    ttft = clock() - t0
        return ttft

    return one


def dify_sync(streaming: bool, client: DifyClient) -> Callable[[], float | None]:
    def one() -> float | None:
        t0 = clock()
        if not streaming:
            client.chat(QUERY, user=USER)
            return clock() - t0
        ttft = None
        for ev in client.stream_chat(QUERY, user=USER):
            if ttft is None and ev.text:
                ttft = clock() - t0
        return ttft

    return one


def drive_sync(one: Callable[[], float | None], concurrency: int, seconds: float, warmup: float) -> Stats:
    stats = Stats()
    lock = threading.Lock()
    start = clock()
    window = (start + warmup, start + warmup + seconds)

    def worker() -> None:
        while clock() < window[1]:
            t0 = clock()
            try:
                ttft = one()
            except Exception:
                with lock:
                    stats.errors += 1
                continue
            end = clock()
            with lock:
                stats.add(t0, ttft, end, window)

    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    return stats


# -- scenarios ------------------------------------------------------------------------------------------------


def client_options() -> dict[str, Any]:
    # Measure the client's own cost: no breaker or retries that could change the request count.
    return {"breaker": None, "retry": RetryPolicy(max_attempts=1)}


async def run_async(name: str, url: str, streaming: bool, concurrency: int, seconds: float, warmup: float) -> Stats:
    if name == "raw aiohttp":
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            return await drive_async(raw_aiohttp(url, streaming, session), concurrency, seconds, warmup)
    if name == "raw httpx async":
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await drive_async(raw_httpx_async(url, streaming, client), concurrency, seconds, warmup)
    transport = "aiohttp" if name == "AsyncDifyClient[aiohttp]" else "httpx"
    async with AsyncDifyClient(url, KEY, transport=transport, **client_options()) as client:
        return await drive_async(dify_async(streaming, client), concurrency, seconds, warmup)


def run_sync(name: str, url: str, streaming: bool, concurrency: int, seconds: float, warmup: float) -> Stats:
    limits = httpx.Limits(max_connections=max(100, concurrency), max_keepalive_connections=max(100, concurrency))
    if name == "raw httpx sync":
        with httpx.Client(limits=limits, timeout=60) as client:
            return drive_sync(raw_httpx_sync(url, streaming, client), concurrency, seconds, warmup)
    with DifyClient(url, KEY, max_connections=max(100, concurrency), **client_options()) as client:
        return drive_sync(dify_sync(streaming, client), concurrency, seconds, warmup)


ASYNC = ["raw aiohttp", "AsyncDifyClient[aiohttp]", "raw httpx async", "AsyncDifyClient[httpx]"]
SYNC = ["raw httpx sync", "DifyClient"]
RATIOS = {"AsyncDifyClient[aiohttp]": "raw aiohttp", "AsyncDifyClient[httpx]": "raw httpx async", "DifyClient": "raw httpx sync"}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def run_all(url: str, seconds: float, warmup: float, concurrencies: list[int], rounds: int) -> list[dict[str, Any]]:
    """Each group (mode, concurrency) runs its clients in turn, `rounds` times, interleaved: on a shared
    machine load drifts, and interleaving spreads the drift over every client. req/s is the median of
    the rounds; TTFT percentiles pool every round's samples."""
    rows = []
    for streaming in (False, True):
        for conc in concurrencies:
            runs: dict[str, list[Stats]] = {name: [] for name in ASYNC + SYNC}
            for _ in range(rounds):
                for name in ASYNC + SYNC:
                    if name in SYNC:
                        runs[name].append(run_sync(name, url, streaming, conc, seconds, warmup))
                    else:
                        runs[name].append(asyncio.run(run_async(name, url, streaming, conc, seconds, warmup)))
            for name, stats in runs.items():
                ttft = [v for s in stats for v in s.ttft]
                row = {
                    "mode": "streaming" if streaming else "blocking", "concurrency": conc, "client": name,
                    "rps": statistics.median(s.done / seconds for s in stats), "p50": pct(ttft, 0.5), "p99": pct(ttft, 0.99),
                    "errors": sum(s.errors for s in stats),
                }
                rows.append(row)
                print(f"  {row['mode']:9} c={conc:<3} {name:26} {row['rps']:8.1f} req/s  TTFT p50 {row['p50']:8.2f} ms"
                      f"  p99 {row['p99']:8.2f} ms  errors {row['errors']}", flush=True)
    return rows


def print_ratios(rows: list[dict[str, Any]]) -> None:
    print("\nratios (client / its raw baseline):  req/s ratio  |  TTFT p50 ratio")
    index = {(r["mode"], r["concurrency"], r["client"]): r for r in rows}
    for (mode, conc, name), r in index.items():
        base_name = RATIOS.get(name)
        if not base_name:
            continue
        base = index[(mode, conc, base_name)]
        rps = r["rps"] / base["rps"] if base["rps"] else float("nan")
        ttft = r["p50"] / base["p50"] if base["p50"] else float("nan")
        target = ""
        if name in ("AsyncDifyClient[aiohttp]", "DifyClient") and (name == "DifyClient" or (mode == "streaming" and conc == 100)):
            target = "  target >= 0.90: " + ("MET" if rps >= 0.9 else "MISSED")
        print(f"  {mode:9} c={conc:<3} {name:26} vs {base_name:16} {rps:6.3f}x  |  {ttft:6.3f}x{target}")
    by = {(r["mode"], r["concurrency"], r["client"]): r["rps"] for r in rows}
    for mode in ("blocking", "streaming"):
        for conc in sorted({r["concurrency"] for r in rows}):
            a, h = by.get((mode, conc, "AsyncDifyClient[aiohttp]")), by.get((mode, conc, "raw httpx async"))
            if a and h:
                print(f"  {mode:9} c={conc:<3} AsyncDifyClient[aiohttp] vs raw httpx async      {a / h:6.3f}x  (why the fast transport)")


# -- micro: per-event parsing cost -------------------------------------------------------------------------------


def micro() -> None:
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder
    from pydantic import BaseModel, ConfigDict

    from lib.dify.core import ClientCore, Spec
    from lib.dify.events import parse_event

    events = [{"event": "message", "task_id": "t" * 36, "id": "m" * 36, "message_id": "m" * 36, "conversation_id": "c" * 36,
               "answer": f" token{i}", "created_at": 1700000000} for i in range(200)]
    chunk = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
    n, reps = len(events), 200

    def per_event(fn: Callable[[], Any]) -> float:
        fn()
        t0 = clock()
        for _ in range(reps):
            fn()
        return (clock() - t0) / (reps * n) * 1e6

    core = ClientCore("http://x/v1", "app-k", breaker=None)

    def client_feed() -> None:
        call = core.call(Spec("POST", "/chat-messages", "POST /chat-messages", kind="stream", stream_mode="chat"), {})
        from lib.dify.stream import StreamState

        state = StreamState(call)
        for _ in state.feed(chunk):
            pass

    def httpx_sse_json() -> None:
        lines, dec = SSELineDecoder(), SSEDecoder()
        for line in lines.decode(chunk.decode()):
            sse = dec.decode(line)
            if sse is not None:
                parse_event(orjson.loads(sse.data))

    class PMessage(BaseModel):
        model_config = ConfigDict(extra="allow")
        event: str
        answer: str = ""
        message_id: str | None = None
        conversation_id: str | None = None

    def split_pydantic() -> None:
        for frame in chunk.split(b"\n\n")[:-1]:
            PMessage.model_validate(orjson.loads(frame[6:]))

    def split_dataclass() -> None:
        for frame in chunk.split(b"\n\n")[:-1]:
            parse_event(orjson.loads(frame[6:]))

    print("\nper-event parsing cost (µs/event, 200 `message` events in one chunk):")
    print(f"  client StreamState.feed (split + orjson + event + state + timing) {per_event(client_feed):6.2f}")
    print(f"  httpx-sse line decoder + orjson + dataclass event                 {per_event(httpx_sse_json):6.2f}")
    print(f"  hand split + orjson + dataclass event                             {per_event(split_dataclass):6.2f}")
    print(f"  hand split + orjson + pydantic model                              {per_event(split_pydantic):6.2f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running simulator's /v1 URL (default: start one in --fast mode)")
    p.add_argument("--seconds", type=float, default=1.5, help="measured seconds per scenario and round")
    p.add_argument("--warmup", type=float, default=0.3)
    p.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; req/s is their median")
    p.add_argument("--concurrency", default="1,100")
    p.add_argument("--micro", action="store_true", help="also measure per-event parsing cost")
    args = p.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    server = None
    url = args.url
    if url is None:
        import tempfile

        from tests.support.procs import start_simulator  # the same helper the tests use

        server = start_simulator(Path(tempfile.mkdtemp()), "--fast", "--seed", "1")
        url = server.url
    try:
        print(f"simulator {url} (--fast); {args.rounds} interleaved rounds of {args.seconds:g} s per scenario after "
              f"{args.warmup:g} s warm-up; app {KEY}; python {sys.version.split()[0]}")
        rows = run_all(url, args.seconds, args.warmup, concurrencies, args.rounds)
        print_ratios(rows)
        if args.micro:
            micro()
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
