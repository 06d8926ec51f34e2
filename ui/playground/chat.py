"""The chat view (chat, agent and chatflow apps): inputs, opening statement, suggested questions,
the conversation with timing under every answer, feedback, follow-ups, and the chat input.

Sending: the chat input's (or a suggestion button's) callback stores a PendingSend; the script takes
it (consumed before anything is sent, so a rerun never resends), starts a LiveRun and follows it.
"""
from __future__ import annotations

import streamlit as st

from lib.dify import DifyError
from lib.playground.conversations import load_earlier
from lib.playground.form import validate_inputs
from lib.playground.live import LiveRun, RunRequest
from lib.playground.markdown import safe_markdown
from lib.playground.transcript import Turn
from ui.playground.form import pending_file, raw_values, render_form
from ui.playground.state import PageContext, PendingSend, flash
from ui.playground.turns import feedback, follow_live, show_answer, suggestion_buttons

VIEW = "chat"


def chat_view(page: PageContext) -> None:
    session, profile, transcript = page.session, page.profile, page.transcript
    _chat_input(page)
    _inputs_form(page)
    _welcome(page, first=not transcript.turns and session.pending is None)
    if transcript.has_earlier:
        st.button("Load earlier messages", key=f"pg:earlier:{page.scope(VIEW)}", on_click=_load_earlier, args=(page,),
                  icon=":material/history:")
    for turn in transcript.turns:
        live = session.live if session.live is not None and session.live.turn is turn else None
        _show_turn(page, turn, live)
    if session.pending is not None:
        _send_pending(page)
    last = transcript.last
    if profile.suggested_after_answer and last is not None and last.suggestions and not session.busy:
        st.caption("Suggested follow-ups")
        suggestion_buttons(last.suggestions, f"pg:followup:{page.scope(VIEW)}:{last.id}", lambda q: queue(page, q))


def queue(page: PageContext, query: str, files: list | None = None) -> None:
    """Callback: a message to send on this run (typed, a suggestion, a retry)."""
    page.session.pending = PendingSend(query=query, values=raw_values(page.profile.fields, page.scope(VIEW)), files=files or [])


def _chat_input(page: PageContext) -> None:
    upload = page.profile.upload
    key = f"pg:chat-input:{page.scope(VIEW)}"
    kwargs = {}
    if upload.can_upload:
        # The app's own size limit, not Streamlit's 200 MB default, on the widget.
        kwargs = {"accept_file": "multiple", "file_type": upload.widget_extensions(), "max_upload_size": upload.widget_limit_mb()}
    st.chat_input(
        f"Message {page.profile.name}", key=key, on_submit=_on_submit, args=(page, key),
        disabled=page.session.busy, **kwargs,
    )


def _on_submit(page: PageContext, key: str) -> None:
    value = st.session_state.get(key)
    text = getattr(value, "text", value) or ""
    files = [pending_file(f) for f in getattr(value, "files", None) or []]
    if text.strip() or files:
        queue(page, text.strip(), files)


def _inputs_form(page: PageContext) -> None:
    fields = page.profile.fields
    if not fields:
        return
    started = page.transcript.conversation_id is not None
    title = f"App inputs ({len(fields)})" + (" · fixed for this conversation" if started else "")
    with st.expander(title, expanded=bool(page.profile.required_fields) and not page.transcript.turns):
        if started:
            st.caption("Dify keeps the inputs a conversation started with. Start a new conversation to change them.")
        render_form(fields, page.scope(VIEW), disabled=started, max_upload_mb=page.profile.upload.widget_limit_mb())


def _welcome(page: PageContext, *, first: bool) -> None:
    """The opening statement heads every conversation, as in Dify; suggested questions only start one."""
    profile = page.profile
    if profile.opening_statement and not page.transcript.has_earlier:
        with st.chat_message("assistant"):
            st.markdown(profile.opening_statement)
    if first and profile.suggested_questions:
        suggestion_buttons(profile.suggested_questions, f"pg:suggested:{page.scope(VIEW)}", lambda q: queue(page, q))


def _show_turn(page: PageContext, turn: Turn, live: LiveRun | None) -> None:
    with st.chat_message("user"):
        st.markdown(safe_markdown(turn.query))
        if turn.files:
            st.caption(":material/attach_file: " + ", ".join(turn.files))
    with st.chat_message("assistant"):
        if live is not None and not live.done.is_set():
            follow_live(live)
            st.rerun()  # redraw the finished turn with its caption, feedback and follow-ups
        show_answer(turn)
        if turn.status == "error":  # a failed turn has no rating: Retry goes where the thumbs would be
            st.button("Retry", key=f"pg:retry:{turn.id}", on_click=_retry, args=(page, turn), icon=":material/refresh:")
        else:
            feedback(turn, page.client, page.user)


def _send_pending(page: PageContext) -> None:
    session, profile, transcript = page.session, page.profile, page.transcript
    pending, session.pending = session.pending, None  # taken: a rerun cannot send it again
    if pending is None:
        return
    if session.live is not None and not session.live.done.is_set():
        session.live.stop()  # one answer at a time in a conversation
        session.live.join(5)
    form = validate_inputs(profile.fields, pending.values)
    started = transcript.conversation_id is not None  # Dify reuses the stored inputs then
    turn = Turn(query=pending.query, kind="chat", inputs=form.inputs, target=page.target.name,
                files=[f.name for f in pending.files + form.files])
    transcript.turns.append(turn)
    if form.errors and not started:
        turn.status = "error"
        turn.error = "Not sent: fix the app inputs above first. " + " ".join(form.errors)
        st.rerun()
    request = RunRequest(
        kind="chat", user=page.user, query=pending.query, inputs=form.inputs,
        conversation_id=transcript.conversation_id, files=list(pending.files) + ([] if started else form.files),
        single_file_fields=frozenset(f.variable for f in profile.fields if f.control == "file"),
        upload_rules=profile.upload, fetch_suggestions=profile.suggested_after_answer,
    )
    session.live = LiveRun(page.client, request, turn).start()
    _show_turn(page, turn, session.live)


def _retry(page: PageContext, turn: Turn) -> None:
    transcript = page.transcript
    if turn in transcript.turns:
        transcript.turns.remove(turn)
    queue(page, turn.query)


def _load_earlier(page: PageContext) -> None:
    try:
        load_earlier(page.client, page.transcript, page.user)
    except DifyError as err:
        flash(f"Could not load earlier messages: {err}")
