"""The fast transport reads aiohttp's body directly (lib/dify/transport._Stream), not through httpx-aiohttp's
generators: this fails if an upgrade of httpx-aiohttp moves the private reader it uses, so the slow path
is never taken silently. Error mapping on that path is covered by test_client_faults (drops, stalls)."""
from __future__ import annotations

import httpx

from lib.dify.transport import FastTransport, _Stream


async def test_a_stream_is_read_straight_from_aiohttp(sim):
    async with httpx.AsyncClient(transport=FastTransport()) as client:
        body = {"query": "Tell me about rivers", "inputs": {}, "user": "transport", "response_mode": "streaming"}
        async with client.stream("POST", sim.url + "/chat-messages", json=body,
                                 headers={"Authorization": "Bearer app-sim-chat"}) as response:
            assert response.status_code == 200
            inner = response.stream._stream  # type: ignore[attr-defined]  # under httpx's BoundAsyncStream
            assert isinstance(inner, _Stream) and inner._content is not None
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
    frames = [f for f in raw.split(b"\n\n") if f.startswith(b"data: ")]
    assert b'"event":"message_end"' in frames[-1].replace(b" ", b"") and len(frames) > 3
