"""app.py: navigation, the sidebar target picker, and each page rendering (Streamlit AppTest).

AppTest re-detects the `pages/` folder on every run, so from the second run on Streamlit runs the page file
alone in its legacy multipage mode, as the real server does for a deep link right after it starts. The
pages' ui.require_shell guard reruns them through app.py: the tests that run twice or more cover it.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.gateway import CALLER_KEY, start_gateway
from tests.support.procs import ROOT

APP = str(ROOT / "app.py")
PAGE_FILES = sorted((ROOT / "pages").glob("*.py"))
PAGES = {"pages/playground.py": "Playground", "pages/benchmark.py": "Benchmark", "pages/metrics.py": "Metrics", "pages/evals.py": "Evals"}
SIM_NAMES = [
    "Simulator · chat",
    "Simulator · advanced-chat",
    "Simulator · agent",
    "Simulator · completion",
    "Simulator · workflow",
]
KEY = "app-secretDifyKey0123456789QRST"


@pytest.fixture(autouse=True)
def no_dify_env(monkeypatch):
    for name in ("DIFY_API_BASE", "DIFY_API_KEY", "DIFY_TARGET_NAME", "SIMULATOR_URL", "GATEWAY_URL", "GATEWAY_CALLER_KEY"):
        monkeypatch.delenv(name, raising=False)


def run_app(**secrets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets.update(secrets)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rendered_text(at: AppTest) -> str:
    """Every field of every rendered element (protobuf text), plus the session state."""

    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    parts = [str(node.proto) for node in walk(at._tree) if getattr(node, "proto", None) is not None]
    parts += [repr(at.session_state[k]) for k in ("target", "target_name") if k in at.session_state]
    return "\n".join(parts)


def test_app_runs_and_lists_simulator_targets():
    at = run_app()
    picker = at.sidebar.selectbox(key="target_name")
    assert set(SIM_NAMES) <= set(picker.options)
    assert at.session_state["target"].name == picker.value
    assert at.title[0].value == "Playground"  # the first page is the default


def test_dify_from_env_is_first_and_its_key_is_never_rendered(monkeypatch):
    monkeypatch.setenv("DIFY_API_BASE", "https://api.dify.ai")
    monkeypatch.setenv("DIFY_API_KEY", KEY)
    monkeypatch.setenv("DIFY_TARGET_NAME", "Real Dify")
    at = run_app()
    picker = at.sidebar.selectbox(key="target_name")
    assert picker.options[0] == "Real Dify"
    assert picker.value == "Real Dify"
    caption = " ".join(c.value for c in at.sidebar.caption)
    assert "https://api.dify.ai/v1" in caption and "app-…QRST" in caption
    text = rendered_text(at)
    assert "Real Dify" in text
    assert KEY not in text and KEY[4:] not in text


def test_the_gateway_make_run_starts_is_a_target_that_answers(sim, tmp_path, monkeypatch):
    """make run hands the console GATEWAY_URL and a caller key: "Via gateway" is in the picker, and the
    Playground talks to the app behind it, with the caller key never on the page."""
    gateway = start_gateway(tmp_path, sim.url)
    try:
        monkeypatch.setenv("SIMULATOR_URL", sim.url)
        monkeypatch.setenv("GATEWAY_URL", gateway.url)
        monkeypatch.setenv("GATEWAY_CALLER_KEY", CALLER_KEY)
        at = run_app()
        picker = at.sidebar.selectbox(key="target_name")
        assert picker.options[-1] == "Via gateway"
        picker.set_value("Via gateway").run()
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        assert any("Simulated Chatbot" in c.value for c in at.caption)  # the app's /info, through the gateway
        assert CALLER_KEY not in rendered_text(at)
    finally:
        gateway.stop()


def test_targets_from_secrets_tables_are_listed():
    at = run_app(targets={"staging": {"base_url": "https://staging.example", "api_key": KEY}})
    assert "staging" in at.sidebar.selectbox(key="target_name").options
    assert KEY not in rendered_text(at)


def test_configuration_error_is_shown_not_raised(monkeypatch):
    monkeypatch.setenv("DIFY_API_BASE", "https://api.dify.ai")
    at = run_app()
    assert "DIFY_API_KEY" in at.error[0].value


def test_choosing_a_target_reaches_the_page():
    at = run_app()
    at.sidebar.selectbox(key="target_name").set_value("Simulator · workflow").run()
    assert not at.exception
    assert at.session_state["target"].api_key == "app-sim-workflow"
    assert any("Simulator · workflow" in md.value for md in at.markdown)


@pytest.mark.parametrize(("path", "title"), PAGES.items())
def test_each_page_renders_with_the_target(path, title):
    at = run_app()
    at.sidebar.selectbox(key="target_name").set_value("Simulator · agent").run()
    at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == title
    assert any("Simulator · agent" in md.value for md in at.markdown)
    # The picker lives in app.py, so it shows on every page and keeps its choice.
    assert at.sidebar.selectbox(key="target_name").value == "Simulator · agent"


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_every_page_starts_with_the_shell_guard(path):
    lines = path.read_text().splitlines()
    guard = next((i for i, line in enumerate(lines) if line.startswith("require_shell(__file__)")), None)
    first_draw = next((i for i, line in enumerate(lines) if line.startswith(("st.", "with st."))), len(lines))
    assert guard is not None and guard < first_draw, (
        f"{path.name} must call ui.require_shell(__file__) before drawing anything (see ui/shell.py)"
    )


def test_a_page_run_as_the_main_script_says_how_to_start_the_console():
    at = AppTest.from_file(str(ROOT / "pages" / "benchmark.py"), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "streamlit run app.py" in at.error[0].value
    assert not at.title  # the page body never ran without the shell
