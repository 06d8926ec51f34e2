"""The Playground page: the target's app, the toolbar, and the view picked (chat or runs, compare, batch).

pages/playground.py calls `playground_page()` once it is inside app.py's shell.
"""
from __future__ import annotations

import streamlit as st

from ui.clients import get_client
from ui.playground.app_profile import app_details, app_profile, app_summary
from ui.playground.batch import batch_view
from ui.playground.chat import chat_view
from ui.playground.compare import compare_view
from ui.playground.export import export_buttons
from ui.playground.runs import runs_view
from ui.playground.sidebar import conversation_list, user_box
from ui.playground.state import VALUE_PREFIX, PageContext, keep_typed_values, session_for, set_default, show_flashes
from ui.playground.targets import add_target_panel
from ui.target import all_targets, current_target


def playground_page() -> None:
    keep_typed_values()
    target = current_target()

    st.title("Playground")
    if target is None:
        st.markdown("No target selected.")
        return
    st.markdown(f"Target: **{target.name}**")
    show_flashes()
    user = user_box()

    client = get_client(target)
    profile = app_profile(target, client)  # on failure: an st.error with the client's sentence, and a Retry
    app_summary(profile)

    page = None
    view = None
    if profile is not None:
        page = PageContext(target=target, client=client, profile=profile, user=user, session=session_for(target, user))
        page.session.adopt_conversation()  # before the sidebar lists conversations
        if profile.is_chat:
            conversation_list(page)
        first_view = {"chat": "Chat", "completion": "Generator", "workflow": "Workflow"}[profile.kind]

    toolbar = st.container(horizontal=True, vertical_alignment="center")
    with toolbar:
        if page is not None:
            view_key = f"{VALUE_PREFIX}view"
            set_default(view_key, first_view)
            if st.session_state[view_key] not in (first_view, "Compare", "Batch"):
                st.session_state[view_key] = first_view  # the app's kind changed (another target)
            view = st.segmented_control("View", [first_view, "Compare", "Batch"], key=view_key,
                                        label_visibility="collapsed", required=True)
        app_details(target, profile)
        add_target_panel([t.name for t in all_targets()])
        if page is not None and view == first_view:
            export_buttons(page)

    if page is None:
        return
    if view == "Compare":
        compare_view(page, all_targets())
    elif view == "Batch":
        batch_view(page)
    elif profile.is_chat:
        chat_view(page)
    else:
        runs_view(page)
