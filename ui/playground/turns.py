"""Drawing turns: an answer with its timing caption and details, live or finished.

`follow_live` shows a LiveRun while it streams (st.write_stream over `LiveRun.follow`, a Stop button,
a live line of tool calls / workflow nodes); `show_answer` draws a finished turn. Both go inside
whatever container the caller opened (a chat message, a column, a results list).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable

import streamlit as st

from lib.dify import DifyClient, DifyError
from lib.playground.live import LiveRun
from lib.playground.markdown import escape_markdown, safe_markdown
from lib.playground.transcript import Turn, format_seconds, node_rows, progress_lines
from ui.playground.state import flash

RATINGS = {1: "like", 0: "dislike"}


def follow_live(live: LiveRun, *, stop_label: str = "Stop") -> None:
    """Stream the run's answer into the current container until it ends (the caller then reruns)."""
    turn = live.turn
    st.button(stop_label, key=f"pg:stop:{turn.id}", on_click=live.stop, icon=":material/stop_circle:",
              help="Ask Dify to stop this answer; what arrived so far is kept.")
    progress = st.empty()
    shown = {"details": -1, "tick": 0.0, "waiting": True}
    started = time.monotonic()

    def tick(run: LiveRun) -> None:
        # Redraw the progress line when steps/nodes changed, when the first token came (the waiting
        # timer goes), and the waiting timer a few times a second.
        now = time.monotonic()
        waiting = not run.turn.answer and not run.done.is_set()
        if (run.details_version == shown["details"] and waiting == shown["waiting"]
                and not (waiting and now - shown["tick"] > 0.25)):
            return
        shown.update(details=run.details_version, tick=now, waiting=waiting)
        with run.lock:
            lines = progress_lines(run.turn)
        if waiting:
            lines.append(("Stopping" if run.stop_requested else "Waiting for the first token")
                         + f" · {now - started:.1f} s")
        if lines:
            progress.caption("  \n".join(lines))
        else:
            progress.empty()

    # Not st.write_stream: it renders the raw text as Markdown; each redraw goes through safe_markdown.
    answer = st.empty()
    for _ in live.follow(on_tick=tick):
        with live.lock:
            text = live.turn.answer
        answer.markdown(safe_markdown(text))


def show_answer(turn: Turn) -> None:
    """A finished turn's answer (or outputs), status, error, details and timing caption."""
    if turn.answer:
        st.markdown(safe_markdown(turn.answer))
    elif turn.outputs:
        st.json(turn.outputs)
    elif turn.status == "done":
        st.caption("The app sent no text.")
    if turn.kind == "workflow" and turn.outputs and turn.answer:
        with st.expander("Outputs"):
            st.json(turn.outputs)
    if turn.status == "stopped":
        st.caption(":material/stop_circle: Stopped: the answer above is what arrived before the stop.")
    if turn.error:
        st.error(turn.error, icon=":material/error:")
    show_details(turn)
    if turn.stats:
        st.caption(turn.stats.caption())


def show_details(turn: Turn) -> None:
    """Agent steps, workflow node timeline and citations, each in an expander."""
    if turn.thoughts:
        tools = sum(1 for s in turn.thoughts if s.tool)
        with st.expander(f"Agent thoughts and tool calls ({tools})"):
            for step in turn.thoughts:
                if step.tool:
                    st.markdown(f"**Step {step.position}** · tool `{step.tool}`")
                    if step.tool_input:
                        st.code(_pretty_json(step.tool_input), language="json")
                    if step.observation:
                        st.markdown("Observation:")
                        st.code(step.observation, language=None)
                if step.thought and not step.tool:
                    st.markdown(f"**Step {step.position}** · thought")
                    st.caption(safe_markdown(step.thought[:500] + ("…" if len(step.thought) > 500 else "")))
    if turn.nodes:
        total = turn.stats.total_s if turn.stats else None
        with st.expander(f"Workflow nodes ({len(turn.nodes)})" + (f" · {format_seconds(total)}" if total else "")):
            st.dataframe(
                node_rows(turn), hide_index=True, width="stretch",
                column_config={"share of run": st.column_config.ProgressColumn("share of run", min_value=0.0, max_value=1.0,
                                                                               format="percent")},
            )
    if turn.citations:
        with st.expander(f"Citations ({len(turn.citations)})"):
            for c in turn.citations:
                score = f" · score {c.score:.2f}" if c.score is not None else ""
                st.markdown(f"**{c.position}. {safe_markdown(c.document_name)}** · {safe_markdown(c.dataset_name)}{score}")
                st.caption(safe_markdown(c.content))


def feedback(turn: Turn, client: DifyClient, user: str) -> None:
    """Thumbs up/down, sent to Dify (POST /messages/{id}/feedbacks)."""
    if not turn.can_rate:
        return
    default = {"like": 1, "dislike": 0}.get(turn.feedback or "")
    st.feedback("thumbs", key=f"pg:fb:{turn.id}", default=default, on_change=_send_feedback, args=(turn, client, user))


def _send_feedback(turn: Turn, client: DifyClient, user: str) -> None:
    rating = RATINGS.get(st.session_state.get(f"pg:fb:{turn.id}"))  # type: ignore[arg-type]
    if rating is None and turn.feedback is None:
        return  # nothing to revoke
    try:
        client.feedback(turn.message_id or "", rating, user=user)  # type: ignore[arg-type]
    except DifyError as err:
        flash(f"Feedback not saved: {err}")
        return
    turn.feedback = rating


def suggestion_buttons(questions: list[str] | tuple[str, ...], key: str, on_pick: Callable[[str], None]) -> None:
    """Questions as buttons in a row; a click queues the question like a typed message."""
    if not questions:
        return
    cols = st.columns(min(len(questions), 3))
    for i, q in enumerate(questions):
        cols[i % len(cols)].button(escape_markdown(q), key=f"{key}:{i}", on_click=on_pick, args=(q,), width="stretch")


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    except ValueError:
        return text
