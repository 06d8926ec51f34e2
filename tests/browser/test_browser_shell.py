"""The console's shell in a real browser: navigation, the sidebar target picker, deep links.

Each test drives `streamlit run app.py` in headless Chromium (tests/support/browser.py). The deep-link
test gets a server of its own, because what it checks only happens on the first visit after a start.
"""
from __future__ import annotations

import re
import sys

import pytest

from tests.support import browser as browser_support
from tests.support.browser import (
    SIDEBAR,
    assert_no_exception,
    choose,
    expect,
    expect_nav,
    open_app,
    screenshot,
    selectbox,
    selectbox_options,
    selected,
    wait_for_rerun,
)

NAV = ["Playground", "Benchmark", "Metrics", "Evals"]
SIM_TARGETS = [
    "Simulator · chat",
    "Simulator · advanced-chat",
    "Simulator · agent",
    "Simulator · completion",
    "Simulator · workflow",
    "Simulator · judge",
]


def expect_page(page, title: str) -> None:
    """The main area shows the page titled `title`, with no error."""
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    wait_for_rerun(page)
    assert_no_exception(page)


def expect_shown_target(page, name: str) -> None:
    """The page (not the sidebar) names `name` as its target."""
    # stMainBlockContainer: the main area in both layouts (with st.chat_input there is no stMain).
    expect(page.locator("[data-testid='stMainBlockContainer']").get_by_text(f"Target: {name}", exact=True)).to_be_visible()


def test_root_shows_navigation_and_target_picker(page, console, tmp_path):
    open_app(page, console, "/")
    expect_page(page, "Playground")  # the first page is the default
    expect_nav(page, NAV)
    picker = selectbox(page, "Target", scope=SIDEBAR)
    expect(picker).to_be_visible()
    options = selectbox_options(page, "Target", scope=SIDEBAR)
    # A developer's .env may add a Dify target in front; the simulator's six are always there, in order.
    assert [o for o in options if o.startswith("Simulator · ")] == SIM_TARGETS
    expect_shown_target(page, selected(page, "Target", scope=SIDEBAR))
    assert_no_exception(page)
    screenshot(page, tmp_path / "shell.png")


def test_deep_link_as_first_visit_shows_the_page_inside_the_shell(page, fresh_console):
    # Nothing has visited this server yet: this is the case where Streamlit's legacy pages/ mode
    # would run pages/benchmark.py alone, without app.py's navigation and picker.
    open_app(page, fresh_console, "/benchmark")
    expect_page(page, "Benchmark")
    expect(selectbox(page, "Target", scope=SIDEBAR)).to_be_visible()
    expect_nav(page, NAV)  # not "app, benchmark, metrics, playground"
    expect(page).to_have_url(re.compile(r"/benchmark$"))  # still the deep link, not the default page
    expect_shown_target(page, selected(page, "Target", scope=SIDEBAR))
    assert_no_exception(page)
    page.go_back()  # no detour through / left in the history: Back leaves the console
    expect(page).to_have_url("about:blank")


def test_switching_targets_updates_the_page(page, console):
    open_app(page, console, "/benchmark")
    expect_page(page, "Benchmark")
    for name in ("Simulator · workflow", "Simulator · agent"):
        choose(page, "Target", name, scope=SIDEBAR)
        expect_shown_target(page, name)
        expect(selectbox(page, "Target", scope=SIDEBAR)).to_have_value(name)
        wait_for_rerun(page)
        assert_no_exception(page)


def test_the_chosen_target_follows_every_page(page, console):
    open_app(page, console, "/")
    expect_page(page, "Playground")
    choose(page, "Target", "Simulator · completion", scope=SIDEBAR)
    expect_shown_target(page, "Simulator · completion")
    for title in ["Metrics", "Benchmark", "Playground"]:
        page.locator(SIDEBAR).get_by_role("link", name=title).click()
        expect_page(page, title)
        expect(page).to_have_url(re.compile("/$" if title == "Playground" else f"/{title.lower()}$"))
        expect_shown_target(page, "Simulator · completion")
        expect(selectbox(page, "Target", scope=SIDEBAR)).to_have_value("Simulator · completion")


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_chromium_or_playwright_fails_and_says_how_to_install(monkeypatch, tmp_path, ci):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(browser_support, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setitem(sys.modules, "playwright", None)  # as if the package were not installed
    with pytest.raises(pytest.fail.Exception) as failed:
        browser_support.require_browser()
    message = str(failed.value)
    assert "no-chromium" in message and "`playwright`" in message
    assert "make test" in message
    if ci:
        assert "CI must provide them" in message
