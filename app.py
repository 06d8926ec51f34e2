"""Dify Console: navigation and the sidebar target picker; the pages do the rest.

The chosen target is left in st.session_state["target"] (a lib.settings.Target) for the pages, which
read it with ui.current_target(), its name in st.session_state["target_name"], and the list offered in
st.session_state["targets"] (ui.target.all_targets(); it includes targets added in the Playground). Pages run through
ui.run_page so that a deep link (/benchmark) shows them inside this shell too (see ui/shell.py).
"""
import streamlit as st

from lib.settings import SettingsError, find_target, load_targets
from ui import run_page
from ui.clients import ensure_metrics_server
from ui.target import TARGET_KEY, TARGETS_KEY, session_targets

st.set_page_config(page_title="Dify Console", layout="wide")
ensure_metrics_server()  # this process's client metrics on CONSOLE_METRICS_PORT, once per process

page = st.navigation(
    [
        st.Page("pages/playground.py", title="Playground", icon=":material/chat:"),
        st.Page("pages/benchmark.py", title="Benchmark", icon=":material/speed:"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
        st.Page("pages/evals.py", title="Evals", icon=":material/fact_check:"),
    ]
)


def _secrets() -> dict | None:
    try:
        return st.secrets.to_dict()
    except FileNotFoundError as exc:  # StreamlitSecretNotFoundError: no secrets.toml, or unreadable
        if getattr(exc, "error_id", None) != "no-secrets-found":
            st.sidebar.warning(f"Ignoring secrets.toml: {exc}")
        return None


try:
    targets = load_targets(_secrets()) + session_targets()  # + those added in the Playground
except SettingsError as exc:
    st.error(f"Configuration error: {exc}")
    st.stop()

names = [t.name for t in targets]
if st.session_state.get("target_name") not in names:  # first run, or the configuration changed
    st.session_state.pop("target_name", None)

with st.sidebar:
    name = st.selectbox("Target", names, key="target_name", help="The Dify app that pages send requests to.")
    target = find_target(targets, name)
    st.session_state[TARGET_KEY] = target
    st.session_state[TARGETS_KEY] = targets
    st.caption(f"{target.base_url}  \nkey `{target.masked_key}` · {target.kind}")

run_page(page)
