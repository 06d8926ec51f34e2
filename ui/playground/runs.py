"""The text-generator and workflow views: the app's input form, Generate / Run, and the runs of this
session newest first, each with its timing caption (a workflow's with its node timeline and outputs)."""
from __future__ import annotations

import time

import streamlit as st

from lib.playground.form import validate_inputs
from lib.playground.live import LiveRun, RunRequest
from lib.playground.transcript import Turn
from ui.playground.form import pending_file, raw_values, render_form
from ui.playground.state import VALUE_PREFIX, PageContext, PendingSend, set_default
from ui.playground.turns import feedback, follow_live, show_answer

VIEW = "run"


def runs_view(page: PageContext) -> None:
    profile, session = page.profile, page.session
    scope = page.scope(VIEW)
    action = "Generate" if profile.kind == "completion" else "Run"
    with st.form(f"pg:run-form:{scope}", enter_to_submit=False):
        render_form(profile.fields, scope, max_upload_mb=profile.upload.widget_limit_mb())
        if _has_query_box(page):
            set_default(_query_key(page), "")
            st.text_area("Query", key=_query_key(page), height=80,
                         help="Sent as the request's `query` (text generators from older Dify builds read it).")
        if profile.upload.can_upload:
            st.file_uploader("Files", key=_files_key(page), accept_multiple_files=True,
                             type=profile.upload.widget_extensions(), max_upload_size=profile.upload.widget_limit_mb(),
                             help=f"Sent with the run, up to {profile.upload.number_limit} ({', '.join(profile.upload.types)}).")
        st.form_submit_button(action, type="primary", on_click=_queue, args=(page,), disabled=session.busy,
                              icon=":material/play_arrow:")
    if session.form_error:
        st.error(session.form_error)
        session.form_error = None
    if session.pending is not None:
        _start_pending(page)
    # A run streams in a box of its own above the finished ones. Drawn where a finished run's box was, it
    # would keep that box's elements (a caption, the outputs, faded) until it has streamed to its end:
    # Streamlit reuses a container's old children until the script run is over.
    live_box = st.container()
    following = None
    for turn in reversed(page.transcript.turns):
        live = session.live if session.live is not None and session.live.turn is turn else None
        if live is not None and not live.done.is_set():
            following = (turn, live)  # followed once the finished runs are drawn, at their usual places
            continue
        with st.container(border=True):
            _run_header(turn)
            show_answer(turn)
            feedback(turn, page.client, page.user)
    if following is not None:
        turn, live = following
        with live_box, st.container(border=True):
            _run_header(turn)
            follow_live(live)
        st.rerun()

def _has_query_box(page: PageContext) -> bool:
    return page.profile.kind == "completion" and page.profile.field("query") is None


def _query_key(page: PageContext) -> str:
    return f"{VALUE_PREFIX}query:{page.scope(VIEW)}"


def _files_key(page: PageContext) -> str:
    return f"pgf:files:{page.scope(VIEW)}"


def _queue(page: PageContext) -> None:
    query = str(st.session_state.get(_query_key(page)) or "").strip() if _has_query_box(page) else ""
    files = [pending_file(f) for f in st.session_state.get(_files_key(page)) or []]
    page.session.pending = PendingSend(query=query, values=raw_values(page.profile.fields, page.scope(VIEW)), files=files)


def _start_pending(page: PageContext) -> None:
    session, profile = page.session, page.profile
    pending, session.pending = session.pending, None  # taken: a rerun cannot send it again
    if pending is None:
        return
    form = validate_inputs(profile.fields, pending.values)
    if form.errors:
        session.form_error = "Not sent: " + " ".join(form.errors)
        st.rerun()  # redraw the form's button enabled, with the message under it
    turn = Turn(query=pending.query, kind=profile.kind, inputs=form.inputs, target=page.target.name,
                files=[f.name for f in pending.files + form.files])
    page.transcript.turns.append(turn)
    request = RunRequest(
        kind=profile.kind, user=page.user, query=pending.query, inputs=form.inputs,
        files=list(pending.files) + form.files, upload_rules=profile.upload,
        single_file_fields=frozenset(f.variable for f in profile.fields if f.control == "file"),
    )
    session.live = LiveRun(page.client, request, turn).start()


def _run_header(turn: Turn) -> None:
    inputs = " · ".join(f"{k}: {_short(v)}" for k, v in turn.inputs.items())
    when = time.strftime("%H:%M:%S", time.localtime(turn.created_at))
    parts = [when, inputs or "no inputs"]
    if turn.query:
        parts.append(f"query: {_short(turn.query)}")
    if turn.files:
        parts.append(":material/attach_file: " + ", ".join(turn.files))
    st.caption(" · ".join(parts))


def _short(v: object, limit: int = 40) -> str:
    text = " ".join(str(v).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
