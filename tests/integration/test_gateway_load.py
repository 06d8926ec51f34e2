"""200 concurrent streams through the gateway: every one completes, and no connection outlives its stream."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx
import orjson
import psutil

from tests.support.gateway import CALLER_KEY, start_gateway

STREAMS = 200
PACE = {"X-Sim-TTFT-Ms": "200", "X-Sim-Tokens-Per-S": "100"}  # ~1 s a stream: all 200 overlap
BODY = {"query": "Load test", "user": "load", "inputs": {}, "response_mode": "streaming"}


async def one_stream(session: aiohttp.ClientSession, url: str) -> str:
    async with session.post(url, json=BODY, headers={"Authorization": f"Bearer {CALLER_KEY}", **PACE}) as r:
        if r.status != 200:
            return f"HTTP {r.status}"
        body = await r.read()
    frames = [line for line in body.split(b"\n") if line.startswith(b"data:")]
    last = orjson.loads(frames[-1][5:]) if frames else {}
    return "ok" if last.get("event") == "message_end" else f"ended with {last.get('event')}"


async def run_streams(url: str) -> list[str]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await asyncio.gather(*(one_stream(session, url) for _ in range(STREAMS)), return_exceptions=False)


def established(proc: psutil.Process, port: int, remote: bool) -> int:
    """ESTABLISHED TCP connections of `proc` whose remote (or local) port is `port`."""
    count = 0
    for c in proc.net_connections(kind="tcp"):
        addr = c.raddr if remote else c.laddr
        if c.status == psutil.CONN_ESTABLISHED and addr and addr.port == port and c.raddr:
            count += 1
    return count


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_200_concurrent_streams_without_errors_or_leaked_connections(sim, tmp_path):
    gw = start_gateway(tmp_path, sim.url, log_level="warning")
    try:
        sim_port = int(sim.url.rsplit(":", 1)[1].split("/")[0])
        gw_port = int(gw.url.rsplit(":", 1)[1])
        proc = psutil.Process(gw.proc.pid)

        results = asyncio.run(run_streams(f"{gw.url}/v1/chat-messages"))
        failures = [r for r in results if r != "ok"]
        assert not failures, f"{len(failures)} of {STREAMS} streams failed: {sorted(set(failures))}"

        text = httpx.get(f"{gw.url}/metrics").text
        assert metric(text, "dify_gateway_requests_in_flight") == 0
        assert metric(text, 'dify_gateway_requests_total{caller="web",method="POST",route="/chat-messages",status_class="2xx"}') == STREAMS
        assert metric(text, "dify_gateway_upstream_errors_total") == 0

        # The callers' connections are gone now that their session closed; idle upstream connections
        # are closed by the pool's keep-alive expiry (5 s). Anything left after that is a leak.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            upstream, callers = established(proc, sim_port, remote=True), established(proc, gw_port, remote=False)
            if upstream == 0 and callers == 0:
                break
            time.sleep(0.25)
        assert (upstream, callers) == (0, 0), f"{upstream} upstream and {callers} caller connections still open"
    finally:
        gw.stop()
