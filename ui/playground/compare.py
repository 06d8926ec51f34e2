"""Compare: one prompt to two targets, or to this app with two input variants, streamed side by side
at the same time, each answer with its timing caption, then a table of what each took."""
from __future__ import annotations

import streamlit as st

from lib.playground.app_profile import AppProfile
from lib.playground.compare import CompareRun, Lane, start_compare, stats_rows
from lib.playground.form import validate_inputs
from lib.playground.live import RunRequest
from lib.playground.markdown import safe_markdown
from lib.playground.transcript import progress_lines
from lib.settings import Target
from ui.clients import get_client
from ui.playground.app_profile import app_profile
from ui.playground.form import raw_values, render_form
from ui.playground.state import VALUE_PREFIX, PageContext, set_default
from ui.playground.turns import show_answer

OTHER_TARGET, VARIANTS = "Another target", "Two input variants"


def compare_view(page: PageContext, targets: list[Target]) -> None:
    tid = page.tid
    st.caption("Send one prompt to two apps, or to this app with two sets of inputs, at the same time: "
               "both answers stream side by side with their timing and cost.")
    how_key = f"{VALUE_PREFIX}compare-how:{tid}"
    set_default(how_key, OTHER_TARGET if len(targets) > 1 else VARIANTS)
    how = st.radio("Compare", [OTHER_TARGET, VARIANTS], key=how_key, horizontal=True, label_visibility="collapsed")
    lanes = _lane_setup(page, targets, how)
    if lanes is None:
        return
    (a_target, a_profile, a_scope), (b_target, b_profile, b_scope) = lanes
    needs_query = a_profile.kind != "workflow" or b_profile.kind != "workflow"
    query_key = f"{VALUE_PREFIX}compare-query:{tid}"
    query_b_key = f"{VALUE_PREFIX}compare-query-b:{tid}"
    if needs_query:
        set_default(query_key, "")
        st.text_area("Prompt", key=query_key, height=90, placeholder="The message both sides get")
        if how == VARIANTS:
            set_default(query_b_key, "")
            st.text_input("Prompt for B (empty: the same as A)", key=query_b_key)
    if page.session.compare_pending:
        page.session.compare_pending = False  # taken: a rerun cannot send it again
        query_a = str(st.session_state.get(query_key) or "").strip() if needs_query else ""
        query_b = (str(st.session_state.get(query_b_key) or "").strip() or query_a) if how == VARIANTS else query_a
        started = _start(page, [("A", a_target, a_profile, a_scope, query_a), ("B", b_target, b_profile, b_scope, query_b)])
        if started is not None:
            page.session.compare = started
    running = page.session.compare is not None and not page.session.compare.done
    cols = st.columns([1, 1, 4])
    cols[0].button("Send to both", key=f"pg:compare-go:{tid}", type="primary", disabled=running,
                   on_click=_queue, args=(page,), icon=":material/compare_arrows:")
    if running:
        cols[1].button("Stop both", key=f"pg:compare-stop:{tid}", on_click=page.session.compare.stop,
                       icon=":material/stop_circle:")
    if page.session.compare is not None:
        _show(page.session.compare)


def _lane_setup(page: PageContext, targets: list[Target], how: str):
    """Each lane's (target, profile, form scope), with its form drawn; None when B is not usable."""
    a = (page.target, page.profile, page.scope("compare-a"))
    if how == OTHER_TARGET:
        others = [t for t in targets if t.name != page.target.name]
        if not others:
            st.info("Add another target (above) to compare two apps.")
            return None
        b_key = f"{VALUE_PREFIX}compare-b:{page.tid}"
        set_default(b_key, others[0].name)
        if st.session_state[b_key] not in [t.name for t in others]:
            st.session_state[b_key] = others[0].name
        name = st.selectbox("Target B", [t.name for t in others], key=b_key)
        b_target = next(t for t in others if t.name == name)
        b_profile = app_profile(b_target, get_client(b_target))
        if b_profile is None:
            return None
        b = (b_target, b_profile, f"compare-b:{page.tid}:{b_target.name}")
    else:
        b = (page.target, page.profile, page.scope("compare-b"))
    cols = st.columns(2)
    for col, (label, (target, profile, scope)) in zip(cols, (("A", a), ("B", b)), strict=True):
        with col:
            st.markdown(f"**{label} · {target.name}** · {profile.name} ({profile.mode_label})")
            if profile.fields:
                # Open when it has a required field: "Not sent: A: Topic is required." under a closed box hid the field.
                required = f" ({len(profile.required_fields)} required)" if profile.required_fields else ""
                with st.expander(f"Inputs {label}{required}", expanded=how == VARIANTS or bool(required)):
                    render_form(profile.fields, scope, max_upload_mb=profile.upload.widget_limit_mb())
    return a, b


def _queue(page: PageContext) -> None:
    page.session.compare_pending = True


def _start(page: PageContext, lanes: list[tuple[str, Target, AppProfile, str, str]]) -> CompareRun | None:
    built, problems = [], []
    for label, target, profile, scope, query in lanes:
        form = validate_inputs(profile.fields, raw_values(profile.fields, scope))
        problems += [f"{label}: {e}" for e in form.errors]
        if profile.kind == "chat" and not query:
            problems.append(f"{label}: write a prompt ({profile.name} is a chat app).")
        request = RunRequest(kind=profile.kind, user=f"{page.user}-compare", query=query, inputs=form.inputs)
        built.append(Lane(label=label, target=target.name, client=get_client(target), request=request))
    if problems:
        st.error("Not sent: " + " ".join(problems))
        return None
    return start_compare(lanes[0][4], built)


def _show(compare: CompareRun) -> None:
    cols = st.columns(2)
    if compare.done:
        for col, turn in zip(cols, compare.turns, strict=True):
            with col, st.container(border=True):
                st.markdown(f"**{turn.label} · {turn.target}**")
                show_answer(turn)
        st.dataframe(stats_rows(compare.turns), hide_index=True, width="stretch")
        return
    slots = []
    for col, turn in zip(cols, compare.turns, strict=True):
        with col, st.container(border=True):
            st.markdown(f"**{turn.label} · {turn.target}**")
            slots.append((st.empty(), st.empty()))
    seen: tuple[int, ...] = tuple(-1 for _ in compare.runs)
    while True:
        compare.heartbeat()
        now = compare.wait(seen, 0.15)
        for i, (run, (answer, progress)) in enumerate(zip(compare.runs, slots, strict=True)):
            if now[i] == seen[i]:
                continue
            with run.lock:
                text, lines = run.turn.answer, progress_lines(run.turn)
            answer.markdown(safe_markdown(text) + ("" if run.done.is_set() else " ▌"))
            progress.caption("  \n".join(lines) if lines else ("Waiting for the first token…" if not text else " "))
        seen = now
        if compare.done:
            break
    st.rerun()  # redraw both finished answers with their captions and the table
