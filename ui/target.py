"""The target (Dify app) chosen in app.py's sidebar picker, for the pages."""
from __future__ import annotations

import streamlit as st

from lib.settings import Target

TARGET_KEY = "target"  # app.py stores the chosen lib.settings.Target here, every run


def current_target() -> Target | None:
    """The target picked in the sidebar, or None when there is none (a configuration error)."""
    # No isinstance check: on a code change Streamlit re-imports lib.settings, and a Target made by the
    # new class would fail a check against the class this module imported first.
    return st.session_state.get(TARGET_KEY)
