"""Shared fixtures: real servers on free ports."""
from __future__ import annotations

import pytest

from tests.support.procs import Server, start_simulator

# The simulator's documented demo keys, one app of each mode.
KEYS = {
    "chat": "app-sim-chat",
    "advanced-chat": "app-sim-advanced-chat",
    "agent-chat": "app-sim-agent",
    "completion": "app-sim-completion",
    "workflow": "app-sim-workflow",
}


@pytest.fixture(scope="session")
def sim(tmp_path_factory) -> Server:
    """A simulator in --fast mode (no latency), shared by the session. Base URL: `sim.url` (ends in /v1)."""
    server = start_simulator(tmp_path_factory.mktemp("sim"), "--fast", "--seed", "7")
    yield server
    server.stop()


@pytest.fixture
def sim_factory(tmp_path):
    """Start simulators with custom flags; each is stopped after the test."""
    started: list[Server] = []

    def make(*flags: str) -> Server:
        server = start_simulator(tmp_path, *flags)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
