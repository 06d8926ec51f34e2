"""The target (Dify app) chosen in app.py's sidebar picker, for the pages."""
from __future__ import annotations

import streamlit as st

from lib.settings import Target

TARGET_KEY = "target"  # app.py stores the chosen lib.settings.Target here, every run
TARGETS_KEY = "targets"  # ...and the list it offered (configured + session targets)


def current_target() -> Target | None:
    """The target picked in the sidebar, or None when there is none (a configuration error)."""
    # No isinstance check: on a code change Streamlit re-imports lib.settings, and a Target made by the
    # new class would fail a check against the class this module imported first.
    return st.session_state.get(TARGET_KEY)


def all_targets() -> list[Target]:
    """Every target the sidebar picker offers, in its order."""
    return list(st.session_state.get(TARGETS_KEY, []))


# -- targets added from the Playground for this browser session ------------------------------------
# Kept in session state only (memory, this session): never written to disk, shown masked. app.py lists
# them after the configured targets.
SESSION_TARGETS_KEY = "session_targets"


def session_targets() -> list[Target]:
    return list(st.session_state.get(SESSION_TARGETS_KEY, []))


def add_session_target(target: Target) -> None:
    st.session_state[SESSION_TARGETS_KEY] = [t for t in session_targets() if t.name != target.name] + [target]


def remove_session_target(name: str) -> None:
    st.session_state[SESSION_TARGETS_KEY] = [t for t in session_targets() if t.name != name]
