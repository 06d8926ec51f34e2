"""Shared fixtures: real servers on free ports; the tier markers, applied by directory."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The console's /metrics server (lib.metrics.exporter.start_metrics_server) binds a random port in tests and in the
# consoles they start, never make run's 9464: a developer's running console must not collide with them.
os.environ.setdefault("CONSOLE_METRICS_PORT", "0")

from tests.support.procs import Server, start_simulator

# Each test's tier is its directory (tests/unit, tests/integration, tests/browser), marked so `-m "not browser"` works.
TIERS = ("unit", "integration", "browser")
# Fixtures that start servers, processes or Chromium: a unit test taking one belongs in another tier.
SERVING_FIXTURES = {"sim", "sim_factory", "console_sim", "console", "fresh_console", "browser", "page"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    misplaced = []
    for item in items:
        tier = item.path.relative_to(tests_dir).parts[0] if item.path.is_relative_to(tests_dir) else None
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives in one of tests/{{{','.join(TIERS)}}}/; move it there.")
        item.add_marker(getattr(pytest.mark, tier))
        if tier == "unit" and SERVING_FIXTURES & set(getattr(item, "fixturenames", ())):
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError("unit tests must not start servers; move these to tests/integration/: " + ", ".join(misplaced))


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test's report shows what the page showed (text, screenshot path, server log)."""
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    if report.when != "call" or not report.failed or "page" not in funcargs:
        return
    from tests.support.browser import failure_evidence

    consoles = [value for value in funcargs.values() if isinstance(value, Console)]
    folder = funcargs.get("tmp_path") or Path(tempfile.mkdtemp(prefix="browser-failure-"))
    for title, text in failure_evidence(funcargs["page"], consoles, Path(folder)):
        report.sections.append((title, text))
