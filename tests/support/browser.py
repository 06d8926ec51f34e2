"""Drive the running console in headless Chromium, for pytest.

The console runs for real (`streamlit run app.py` on a free port, talking to a simulator), and Debian's
Chromium (/usr/bin/chromium) is driven through the PyPI `playwright` package; `playwright install` is
never used. A missing Chromium or playwright fails the test with a message that says how to install
them: browser tests never skip, in CI or anywhere else.

A live sync Playwright marks its event loop as running in the thread that started it, so `asyncio.run()`
and async tests in that thread fail until it stops. Keep one no longer than a test module: the `browser`
fixture in tests/conftest.py is module-scoped for that reason.

Waiting: Streamlit marks `[data-testid='stApp']` with `data-test-script-state='notRunning'` once a run has
finished, but the DOM may still be filling in (lazily loaded components), and right after a click the state
may still be the previous run's. So wait for what you expect to see (playwright's `expect(...)` polls),
then `wait_for_rerun`, then `assert_no_exception`. Never sleep a fixed time instead.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.procs import Server, free_port, start_process, start_simulator

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Slow enough that streaming is visible in the browser (tokens arrive one by one), exact timing.
SIMULATOR_FLAGS = ("--ttft-ms", "200", "--tokens-per-s", "60", "--jitter", "0")
VIEWPORT: ViewportSize = {"width": 1366, "height": 900}  # wide enough that the sidebar starts expanded

# Generous: the machine is small and shared. These bound waits for conditions, they are never slept.
TIMEOUT_MS = 60_000
START_TIMEOUT_S = 90.0

APP = "[data-testid='stApp']"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
EXCEPTION = "[data-testid='stException']"
NAV_LINK = "[data-testid='stSidebarNavLink']"
SIDEBAR = "[data-testid='stSidebar']"


# --- Requirements ------------------------------------------------------------------------------


def missing_browser_parts() -> list[str]:
    """What browser tests need and this machine lacks (empty when all is there)."""
    missing = []
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium at {CHROMIUM} (Debian package `chromium`)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python package `playwright` (requirements-dev.txt)")
    return missing


def require_browser() -> None:
    """Fail the test, never skip it, when Chromium or playwright is missing; say how to get them."""
    missing = missing_browser_parts()
    if not missing:
        return
    what = " and ".join(missing)
    if os.environ.get("CI", "").lower() in ("true", "1"):
        how = (
            "CI must provide them: run the suite through `make test` (as .ci/run does), which installs "
            "chromium with scripts/install_system_deps.sh (as root) and playwright from requirements-dev.txt."
        )
    else:
        how = (
            "Run the tests with `make test`, which installs chromium (apt, as root) and playwright (pip); "
            "or by hand: `sudo apt-get install -y --no-install-recommends chromium fonts-thai-tlwg` and "
            "`.venv/bin/pip install -r requirements-dev.txt`. Never `playwright install`."
        )
    pytest.fail(f"Browser tests need {what}, which is missing. {how}", pytrace=False)


# --- The console under test ----------------------------------------------------------------------


@dataclass
class Console:
    """A running `streamlit run app.py` and the simulator its targets point at."""

    app: Server
    simulator: Server

    @property
    def url(self) -> str:
        """The app's base URL, no trailing slash: `f"{console.url}/benchmark"`."""
        return self.app.url

    def stop(self) -> None:
        """Stop the app (not the simulator, which may be shared: stop it yourself)."""
        self.app.stop()


def start_console_simulator(tmp_dir: Path, *flags: str) -> Server:
    """A simulator paced for the browser (SIMULATOR_FLAGS unless `flags` are given)."""
    return start_simulator(tmp_dir, *(flags or SIMULATOR_FLAGS))


def start_console(tmp_dir: Path, simulator: Server, *, env: dict[str, str] | None = None) -> Console:
    """`streamlit run app.py` on a free port, its simulator targets at `simulator`; ready at /_stcore/health.

    Every call starts a new server process, so its first visit is the first since the server started
    (what a deep-link test needs). DIFY_* settings from the caller's environment are blanked so the picker
    lists what the test expects (a repo `.env` still applies: assert on the simulator targets, not on
    the whole list); `env` adds or overrides variables.
    """
    port = free_port()
    args = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless=true",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--browser.gatherUsageStats=false",
        # Others edit the tree while tests run: a file change must not rerun or reload the app under test.
        "--server.fileWatcherType=none",
    ]
    env = {
        "SIMULATOR_URL": simulator.url,
        "DIFY_API_BASE": "",
        "DIFY_API_KEY": "",
        "DIFY_TARGET_NAME": "",
        "GATEWAY_URL": "",  # no "Via gateway" target from a `make run` environment
        "GATEWAY_CALLER_KEY": "",
        **(env or {}),
    }
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_dir / f"streamlit-{port}.log"
    proc = start_process(args, f"{url}/_stcore/health", log_path, env=env, timeout=START_TIMEOUT_S)
    return Console(app=Server(proc=proc, url=url, log_path=log_path, args=args), simulator=simulator)


# --- Chromium --------------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Browser]:
    """Playwright and headless Chromium for a `with` block; both stop when it ends."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies, storage or Streamlit session from other tests)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


# --- Helpers on a page -----------------------------------------------------------------------------


def expect(target, message: str | None = None):
    """playwright's `expect` with the generous TIMEOUT_MS (its own default is 5 s); fails clearly
    when playwright is missing, where importing it at the top of a test module would not."""
    require_browser()
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    return playwright_expect(target, message)


def open_app(page: Page, console: Console | str, path: str = "/") -> None:
    """Go to `path` of the console and wait until its first run has finished."""
    base = console.url if isinstance(console, Console) else console.rstrip("/")
    page.goto(f"{base}/{path.lstrip('/')}")
    wait_for_rerun(page)


def wait_for_rerun(page: Page, timeout_ms: float = TIMEOUT_MS) -> None:
    """Wait until the app's current script run has finished (`data-test-script-state='notRunning'`).

    After an action, first wait for something the action makes appear: until the rerun starts,
    the state is still the previous run's.
    """
    page.locator(IDLE).wait_for(state="attached", timeout=timeout_ms)


def assert_no_exception(page: Page) -> None:
    """No `st.exception` box (an uncaught error in a page) anywhere on the page."""
    errors = page.locator(EXCEPTION)
    count = errors.count()
    if count:
        texts = "\n---\n".join(errors.all_inner_texts())
        raise AssertionError(f"{count} Streamlit exception(s) on {page.url}:\n{texts}")


def screenshot(page: Page, path: str | Path, *, full_page: bool = True) -> Path:
    """Save a PNG of the page to `path` (folders are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path


# Every distinct text the elements matching a selector showed, from a MutationObserver: an element that is
# on screen for less than playwright's polling interval (a progress bar of a short run) is still seen.
_WATCH_JS = """selector => {
    const seen = (window.__watched = window.__watched || {})[selector] = [];
    const note = () => document.querySelectorAll(selector).forEach(e => {
        const text = e.innerText.trim();
        if (text && !seen.includes(text)) seen.push(text);
    });
    new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
    note();
}"""


def watch_texts(page: Page, selector: str) -> None:
    """From now on, record every text the elements matching `selector` show (read them with `watched_texts`)."""
    page.evaluate(_WATCH_JS, selector)


def watched_texts(page: Page, selector: str) -> list[str]:
    """The distinct texts seen since `watch_texts(page, selector)`, in the order they first showed."""
    return page.evaluate("selector => (window.__watched || {})[selector] || []", selector)


# The navigation links' labels, without the text of their icons (material icons are ligatures).
_NAV_LABELS_JS = """() => [...document.querySelectorAll("[data-testid='stSidebarNavLink']")].map(link => {
    const copy = link.cloneNode(true);
    copy.querySelectorAll("[data-testid='stIconMaterial'], [data-testid='stIconEmoji']").forEach(i => i.remove());
    return copy.textContent.trim();
})"""


def nav_labels(page: Page) -> list[str]:
    """The sidebar navigation's entries as shown now (an empty list before it has rendered)."""
    return page.evaluate(_NAV_LABELS_JS)


def expect_nav(page: Page, labels: list[str], timeout_ms: float = TIMEOUT_MS) -> None:
    """Wait until the sidebar navigation shows exactly `labels`, in order; fail saying what it shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(
            f"expected => JSON.stringify(({_NAV_LABELS_JS})()) === JSON.stringify(expected)",
            arg=labels,
            timeout=timeout_ms,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(f"navigation shows {nav_labels(page)}, expected {labels} ({page.url})") from None


def selectbox(page: Page, label: str, *, scope: str = APP) -> Locator:
    """The input of the `st.selectbox` labelled `label` (a combobox; its value is the chosen option)."""
    return page.locator(scope).get_by_role("combobox", name=label, exact=True)


def _open(page: Page, label: str, scope: str) -> Locator:
    """Open the selectbox's list; return its options."""
    combobox = page.get_by_role("combobox", name=label, exact=True)  # `has=` is relative to each box
    box = page.locator(scope).locator("[data-testid='stSelectbox']").filter(has=combobox)
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    options = page.get_by_role("listbox").get_by_role("option")
    # A live fragment's rerun (the Metrics page refreshes its panels) can close a list that has just opened:
    # open it again rather than wait for a list that is gone.
    for attempt in range(4):
        box.get_by_role("button", name="Open").click()
        try:
            options.first.wait_for(timeout=15_000)
            return options
        except PlaywrightTimeoutError:
            if attempt == 3:
                raise AssertionError(f"the selectbox {label!r} did not open its list") from None
            page.keyboard.press("Escape")
    return options


def selectbox_options(page: Page, label: str, *, scope: str = APP) -> list[str]:
    """Open the selectbox labelled `label`, read its options, and close it again.

    Streamlit virtualises long lists: for one of those, only the options in view are read.
    """
    options = _open(page, label, scope)
    texts = [text.strip() for text in options.all_inner_texts()]
    page.keyboard.press("Escape")
    page.get_by_role("listbox").wait_for(state="detached")
    return texts


def choose(page: Page, label: str, option: str, *, scope: str = APP) -> None:
    """Pick `option` in the selectbox labelled `label`. The app reruns: wait for the effect you expect."""
    _open(page, label, scope)
    page.get_by_role("listbox").get_by_role("option", name=option, exact=True).click()
    page.get_by_role("listbox").wait_for(state="detached")


def selected(page: Page, label: str, *, scope: str = APP) -> str:
    """The option the selectbox labelled `label` shows as chosen."""
    return selectbox(page, label, scope=scope).input_value()


# --- When a browser test fails ---------------------------------------------------------------------

PAGE_TEXT_LIMIT = 8_000
LOG_LINES = 60


def failure_evidence(page: Page, consoles: list[Console], folder: Path) -> list[tuple[str, str]]:
    """What the page showed when a test failed, as (title, text) report sections: its URL and script state,
    any exception box, the main area's text, a screenshot of the whole main area (saved in `folder`), and the
    end of each console's server log. Never raises: a page that is gone says so."""
    sections: list[tuple[str, str]] = []
    try:
        state = page.locator(APP).get_attribute("data-test-script-state", timeout=2_000)
        sections.append(("page", f"{page.url} · script {state}"))
        errors = page.locator(EXCEPTION).all_inner_texts()
        if errors:
            sections.append(("page exceptions", "\n---\n".join(errors)))
        text = page.locator("[data-testid='stMain']").inner_text(timeout=5_000)
        cut = f"\n…({len(text) - PAGE_TEXT_LIMIT} more characters)" if len(text) > PAGE_TEXT_LIMIT else ""
        sections.append(("page text", text[:PAGE_TEXT_LIMIT] + cut))
        # The main area scrolls inside a fixed window: make the window as tall as it to get all of it.
        height = page.evaluate("() => document.querySelector(\"[data-testid='stMain']\")?.scrollHeight || 0")
        page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height), 10_000))})
        shot = screenshot(page, folder / "failure.png")
        sections.append(("page screenshot", str(shot)))
    except Exception as exc:  # noqa: BLE001 -- evidence is best effort: the failure itself is reported anyway
        sections.append(("page", f"could not read the page: {type(exc).__name__}: {exc}"))
    for console in consoles:
        lines = console.app.log().splitlines()[-LOG_LINES:]
        sections.append((f"streamlit log {console.url} (last {len(lines)} lines)", "\n".join(lines)))
    return sections


# Plotly neither wraps nor shrinks a title: a long one is drawn past its chart's edge, where it is cut off.
_OVERFLOWING_TITLES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(p => {
    const right = p.getBoundingClientRect().right;
    return Array.from(p.querySelectorAll('.gtitle, .gtitle-subtitle, .xtitle, .ytitle'))
        .filter(t => t.getBoundingClientRect().right > right + 1).map(t => t.textContent); })"""


def overflowing_titles(page: Page) -> list[str]:
    """The chart titles, subtitles and axis titles on the page that run past their chart's right edge."""
    return page.evaluate(_OVERFLOWING_TITLES)
