"""Download the conversation (or the session's runs) as Markdown and JSON; the key is never in them."""
from __future__ import annotations

import streamlit as st

from lib.playground.export import ExportMeta, to_json, to_markdown
from ui.playground.state import PageContext


def export_buttons(page: PageContext) -> None:
    transcript = page.transcript
    if not transcript.turns:
        return
    meta = ExportMeta(target=page.target.name, base_url=page.target.base_url, app_name=page.profile.name,
                      mode=page.profile.mode, user=page.user)
    stem = meta.file_stem(transcript)
    # on_click="ignore": a download must not rerun the script (it would interrupt a streaming answer's view).
    st.download_button("Markdown", to_markdown(transcript, meta), file_name=f"{stem}.md", mime="text/markdown",
                            key=f"pg:export-md:{page.tid}", on_click="ignore", icon=":material/download:",
                            help="Export this conversation as Markdown")
    st.download_button("JSON", to_json(transcript, meta), file_name=f"{stem}.json", mime="application/json",
                            key=f"pg:export-json:{page.tid}", on_click="ignore", icon=":material/download:",
                            help="Export this conversation as JSON (turns, timing, usage, steps, citations)")
