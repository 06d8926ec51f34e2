"""Shared fixtures: real servers on free ports."""
from __future__ import annotations

import os

import pytest

# The console's /metrics server (lib.metrics.exporter.start_metrics_server) binds a random port in tests and in the
# consoles they start, never make run's 9464: a developer's running console must not collide with them.
os.environ.setdefault("CONSOLE_METRICS_PORT", "0")

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


# --- Browser tests: the real console in headless Chromium (tests/support/browser.py) -----------------
from tests.support.browser import Console, chromium, new_page, start_console, start_console_simulator  # noqa: E402


@pytest.fixture(scope="session")
def console_sim(tmp_path_factory) -> Server:
    """The simulator behind the browser tests' consoles, paced so streaming is visible (browser.SIMULATOR_FLAGS)."""
    server = start_console_simulator(tmp_path_factory.mktemp("console-sim"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def console(console_sim, tmp_path_factory) -> Console:
    """`streamlit run app.py` on a free port, shared by the session; open pages at `console.url`."""
    app = start_console(tmp_path_factory.mktemp("console"), console_sim)
    yield app
    app.stop()


@pytest.fixture
def fresh_console(console_sim, tmp_path) -> Console:
    """A console server of the test's own, just started: the test makes its first visit."""
    app = start_console(tmp_path, console_sim)
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium. Module-scoped: a live sync Playwright breaks asyncio.run() in this thread."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser):
    """A fresh browser page (its own context: no session shared with other tests)."""
    with new_page(browser) as fresh:
        yield fresh
