"""The Playground's sidebar: the end-user id, and that user's conversations with the chosen app
(open, rename, delete, new, load more), as Dify lists them for (app, user)."""
from __future__ import annotations

import streamlit as st

from lib.dify import DifyError
from lib.playground import conversations as conv
from lib.playground.markdown import escape_markdown
from lib.playground.transcript import Transcript
from ui.playground.state import USER_KEY, PageContext, current_user, flash


def user_box() -> str:
    """The `user` sent with every request (Dify scopes conversations to it); editable."""
    current_user()  # sets the default
    st.sidebar.text_input("User", key=USER_KEY, help="The end-user id sent to Dify as `user`. Conversations, "
                          "feedback and files belong to one user: change it to see another user's conversations.")
    user = current_user()
    if not str(st.session_state.get(USER_KEY) or "").strip():  # say which user an empty box stands for
        st.sidebar.caption(f"Empty: requests go as `{user}`.")
    return user


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
        # A button's label is Markdown: escaped, a name shows as typed.
        cols[0].button(("▸ " if c.id == current else "") + escape_markdown(name), key=f"pg:open:{c.id}", on_click=open_conversation,
                       args=(page, c.id, name), disabled=session.busy, type="tertiary",
                       help=f"Open this conversation ({c.id[:8]}…)")
        with cols[1].popover("", icon=":material/more_vert:", help="Rename or delete"):
            st.text_input("Name", value=name, key=f"pg:rename-name:{c.id}")
            st.button("Rename", key=f"pg:rename:{c.id}", on_click=_rename, args=(page, c.id), icon=":material/edit:")
            st.button("Delete", key=f"pg:delete:{c.id}", on_click=_ask_delete, args=(page, c.id, name),
                      icon=":material/delete:", disabled=session.busy)
        if st.session_state.get(_confirm_key(page)) == (c.id, name):
            _confirm_delete(page, c.id, name)
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


def _confirm_key(page: PageContext) -> str:
    return f"pg:confirm-delete:{page.tid}"


def _ask_delete(page: PageContext, conversation_id: str, name: str) -> None:
    """Deleting cannot be undone in Dify: ask first, under the conversation's row."""
    st.session_state[_confirm_key(page)] = (conversation_id, name)


def _confirm_delete(page: PageContext, conversation_id: str, name: str) -> None:
    side = st.sidebar
    side.warning(f"Delete the conversation “{escape_markdown(name)}” and all its messages from Dify? "
                 "This cannot be undone.", icon=":material/delete:")
    cols = side.columns(2)
    cols[0].button("Delete it", key=f"pg:delete-yes:{conversation_id}", type="primary", on_click=_delete,
                   args=(page, conversation_id, name), width="stretch", disabled=page.session.busy)
    cols[1].button("Cancel", key=f"pg:delete-no:{conversation_id}", on_click=_cancel_delete, args=(page,), width="stretch")


def _cancel_delete(page: PageContext) -> None:
    st.session_state.pop(_confirm_key(page), None)


def _delete(page: PageContext, conversation_id: str, name: str) -> None:
    st.session_state.pop(_confirm_key(page), None)
    try:
        conv.delete(page.client, page.session.conversations, conversation_id, page.user)
    except DifyError as err:
        flash(f"Could not delete the conversation “{escape_markdown(name)}”: {err}")
        return
    was_open = page.transcript.conversation_id == conversation_id
    if was_open:
        page.session.transcript = Transcript()
    flash(f"Deleted the conversation “{escape_markdown(name)}” ({conversation_id[:8]}…) and its messages from Dify"
          + (" (it was open: this is a new conversation)." if was_open else "."), "success")
