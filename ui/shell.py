"""Keep every page inside app.py's shell (navigation + sidebar target picker), even on a deep link.

Why: the pages live in a folder named `pages/`, so Streamlit starts in its legacy multipage mode
(`PagesManager.uses_pages_directory`). That mode ends for the whole server the first time any script
calls `st.navigation`, which app.py does. But if the first visit after the server starts is a deep link
such as /benchmark, Streamlit runs pages/benchmark.py on its own, without app.py: no target picker, and
a sidebar listing "app, benchmark, metrics, playground".

How: app.py runs the page with `run_page(page)`, which marks the run as being inside the shell. Each page
starts with `require_shell(__file__)`. Outside the shell, it calls `st.navigation` (which turns legacy mode
off for good) and `st.rerun()`s the same page, keeping its URL and query parameters: the rerun goes
through app.py. That happens at most once per server process; from then on the guard is a no-op.
The page's URL path must stay its file name (app.py's default), which is how the rerun finds the page.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import streamlit as st

# True while app.py's page.run() executes, in the script thread of this run only.
_in_shell: ContextVar[bool] = ContextVar("dify_console_in_shell", default=False)
# Set in session state while require_shell's rerun is on its way to app.py.
_REDIRECTED_KEY = "_ui_shell_redirected"


@contextmanager
def _shell() -> Iterator[None]:
    token = _in_shell.set(True)
    try:
        yield
    finally:
        _in_shell.reset(token)


def run_page(page: st.Page) -> None:
    """app.py: run the page that st.navigation returned, inside the shell."""
    with _shell():
        page.run()


def in_shell() -> bool:
    """Whether this code runs inside app.py's shell during the current script run."""
    return _in_shell.get()


def require_shell(page_file: str) -> None:
    """A page's first line, `require_shell(__file__)`: if app.py did not run it, rerun it through app.py.

    Does not return in that case (st.rerun raises Streamlit's rerun signal), so the page body never
    renders without the shell.
    """
    if in_shell():
        st.session_state.pop(_REDIRECTED_KEY, None)
        return
    if st.session_state.get(_REDIRECTED_KEY):
        # Rerun once already and still no shell: the page is the main script (`streamlit run pages/x.py`,
        # AppTest.from_file on a page). Say so instead of rerunning forever.
        st.error("This page runs inside the Dify Console: start it with `streamlit run app.py`.")
        st.stop()
    st.session_state[_REDIRECTED_KEY] = True
    # Any st.navigation call ends legacy pages/ mode for the whole server. Register this page (hidden)
    # so that it stays the current page for the rerun; the default page is a stand-in that never runs,
    # there only so this page keeps its URL (/benchmark, not the default's /) and the history no entry.
    st.navigation(
        [st.Page(_never_runs, title="Dify Console", default=True), st.Page(page_file)],
        position="hidden",
    )
    st.rerun()


def _never_runs() -> None:
    """The stand-in default page of require_shell's one-off navigation; st.rerun comes first."""
