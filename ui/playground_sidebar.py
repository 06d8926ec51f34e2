"""The Playground's sidebar: the end-user id, and that user's conversations with the chosen app
(open, rename, delete, new, load more), as Dify lists them for (app, user)."""
from __future__ import annotations

import streamlit as st

from lib.dify import DifyError
from lib.playground import conversations as conv
from lib.playground.transcript import Transcript
from ui.playground_state import USER_KEY, PageContext, current_user, flash


def user_box() -> str:
    """The `user` sent with every request (Dify scopes conversations to it); editable."""
    current_user()  # sets the default
    st.sidebar.text_input("User", key=USER_KEY, help="The end-user id sent to Dify as `user`. Conversations, "
                          "feedback and files belong to one user: change it to see another user's conversations.")
    return current_user()


def conversation_list(page: PageContext) -> None:
    session = page.session
    side = st.sidebar
    side.subheader("Conversations")
    side.button("New conversation", key=f"pg:new-conv:{page.tid}", on_click=new_conversation, args=(page,),
                icon=":material/add_comment:", disabled=session.busy, width="stretch")
    if not session.conversations.loaded and session.conversations_error is None:
        _load(page)
    if session.conversations_error:
        side.error(session.conversations_error)
        side.button("Retry", key=f"pg:conv-retry:{page.tid}", on_click=_reload, args=(page,))
        return
    listing = session.conversations
    if not listing.items:
        side.caption("No conversations yet for this user.")
    current = page.transcript.conversation_id
    for c in listing.items:
        name = c.name or "Untitled"
        cols = side.columns([5, 1], vertical_alignment="center")
        cols[0].button(("▸ " if c.id == current else "") + name, key=f"pg:open:{c.id}", on_click=open_conversation,
                       args=(page, c.id, name), disabled=session.busy, type="tertiary",
                       help=f"Open this conversation ({c.id[:8]}…)")
        with cols[1].popover("", icon=":material/more_vert:", help="Rename or delete"):
            st.text_input("Name", value=name, key=f"pg:rename-name:{c.id}")
            st.button("Rename", key=f"pg:rename:{c.id}", on_click=_rename, args=(page, c.id), icon=":material/edit:")
            st.button("Delete", key=f"pg:delete:{c.id}", on_click=_delete, args=(page, c.id), icon=":material/delete:",
                      disabled=session.busy)
    if listing.has_more:
        side.button("Load more", key=f"pg:conv-more:{page.tid}", on_click=_more, args=(page,), width="stretch")
    side.button("Refresh", key=f"pg:conv-refresh:{page.tid}", on_click=_reload, args=(page,), icon=":material/refresh:",
                type="tertiary")


def new_conversation(page: PageContext) -> None:
    page.session.transcript = Transcript()


def open_conversation(page: PageContext, conversation_id: str, name: str) -> None:
    try:
        page.session.transcript = conv.load_history(page.client, conversation_id, page.user, name=name)
    except DifyError as err:
        flash(f"Could not open the conversation: {err}")


def _load(page: PageContext) -> None:
    try:
        page.session.conversations = conv.load_conversations(page.client, page.user)
        page.session.conversations_error = None
    except DifyError as err:
        page.session.conversations_error = f"Could not list conversations: {err}"


def _reload(page: PageContext) -> None:
    page.session.conversations.loaded = False
    page.session.conversations_error = None


def _more(page: PageContext) -> None:
    try:
        page.session.conversations = conv.load_conversations(page.client, page.user, page.session.conversations)
    except DifyError as err:
        flash(f"Could not load more conversations: {err}")


def _rename(page: PageContext, conversation_id: str) -> None:
    name = str(st.session_state.get(f"pg:rename-name:{conversation_id}") or "").strip()
    if not name:
        flash("Give the conversation a name.")
        return
    try:
        conv.rename(page.client, page.session.conversations, conversation_id, name, page.user)
    except DifyError as err:
        flash(f"Could not rename the conversation: {err}")
        return
    if page.transcript.conversation_id == conversation_id:
        page.transcript.name = name


def _delete(page: PageContext, conversation_id: str) -> None:
    try:
        conv.delete(page.client, page.session.conversations, conversation_id, page.user)
    except DifyError as err:
        flash(f"Could not delete the conversation: {err}")
        return
    if page.transcript.conversation_id == conversation_id:
        page.session.transcript = Transcript()
    flash("Conversation deleted.", "success")
