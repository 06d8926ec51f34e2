"""Helpers for the lib.dify tests against the simulator: one API over the sync and async clients.

Tests take the `api` fixture (parametrized sync/async) and call `await api(...)` / `await
api.stream(...)` the same way for both clients. `fault()` builds the simulator's X-Sim-* headers and
`count()` reads how many requests carried a fault key (GET /_sim/requests), to assert attempts exactly.
"""
from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from lib.dify import AsyncDifyClient, DifyClient, Event, RetryPolicy
from tests.conftest import KEYS

FAST_RETRY = RetryPolicy(max_attempts=3, base=0.01, cap=0.05)


class Api:
    """Calls one client, sync or async, with the same awaitable interface."""

    def __init__(self, client: DifyClient | AsyncDifyClient) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncDifyClient)

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        return await result if self.is_async else result

    async def stream(self, method: str, *args: Any, **kwargs: Any) -> tuple[list[Event], Any]:
        """All events of a stream, and the stream (its state, timing, result)."""
        stream = getattr(self.client, method)(*args, **kwargs)
        events: list[Event] = []
        await self._drain(stream, events)
        return events, stream

    async def stream_until_error(self, method: str, *args: Any, **kwargs: Any) -> tuple[list[Event], Any, BaseException]:
        """Read a stream that must fail: the events before the failure, the stream, the exception."""
        stream = getattr(self.client, method)(*args, **kwargs)
        events: list[Event] = []
        try:
            await self._drain(stream, events)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return events, stream, exc
        raise AssertionError(f"the stream ended without an error after {len(events)} events")

    async def _drain(self, stream: Any, events: list[Event]) -> None:
        """Append every event of `stream` to `events` (kept by the caller when the stream fails)."""
        if self.is_async:
            async for ev in stream:
                events.append(ev)
        else:
            events.extend(stream)

    async def close(self) -> None:
        if self.is_async:
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture(params=["sync", "async"])
async def api(request, sim):
    """`api(key="chat", **client_options)` -> Api over a DifyClient or an AsyncDifyClient on the --fast simulator."""
    made: list[Api] = []

    def make(app: str = "chat", url: str | None = None, **options: Any) -> Api:
        options.setdefault("retry", FAST_RETRY)
        cls = AsyncDifyClient if request.param == "async" else DifyClient
        a = Api(cls(url or sim.url, KEYS.get(app, app), **options))
        made.append(a)
        return a

    yield make
    for a in made:
        await a.close()


def fault(name: str | None = None, *, key: str | None = None, times: int | None = None, after: int | None = None,
          **extra: Any) -> dict[str, str]:
    """The simulator's test-only fault headers (X-Sim-*)."""
    h: dict[str, str] = {}
    if name:
        h["X-Sim-Fault"] = name
    if key:
        h["X-Sim-Fault-Key"] = key
    if times is not None:
        h["X-Sim-Fault-Times"] = str(times)
    if after is not None:
        h["X-Sim-Drop-After"] = str(after)
    for k, v in extra.items():
        h["X-Sim-" + k.replace("_", "-").title().replace("Ttft", "TTFT")] = str(v)
    return h


def new_key() -> str:
    return "k-" + uuid.uuid4().hex[:12]


def count(sim, key: str) -> int:
    """How many requests the simulator received carrying this X-Sim-Fault-Key."""
    host = sim.url.removesuffix("/v1")
    return httpx.get(f"{host}/_sim/requests", params={"key": key}, timeout=5).json()["count"]
