"""Add a Dify app as a target for this browser session: name, base URL, key.

The key stays in this session's memory only (never written anywhere) and is shown masked. The app is
checked first (/info and /parameters with the key): one that does not answer is not added, and the form
keeps what was typed with the client's sentence under it. A target that passes joins the sidebar picker
and becomes the chosen one.
"""
from __future__ import annotations

import streamlit as st

from lib.playground.targets import TargetCheckFailed, check_target
from lib.settings import SettingsError, Target
from ui.playground.state import VALUE_PREFIX, flash, set_default
from ui.target import add_session_target, remove_session_target, session_targets

NAME_KEY = f"{VALUE_PREFIX}add-target:name"
URL_KEY = f"{VALUE_PREFIX}add-target:url"
KEY_KEY = "pg:add-target:key"  # not a `pgv:` value (not kept across pages); cleared once the target is added
ERROR_KEY = "pg:add-target:error"
PICKER_KEY = "target_name"  # app.py's sidebar selectbox


def add_target_panel(known_names: list[str]) -> None:
    ours = session_targets()
    with st.popover("Add target", icon=":material/add_link:", help="Add a Dify app for this browser session"):
        set_default(NAME_KEY, "")
        set_default(URL_KEY, "")
        with st.form("pg:add-target", enter_to_submit=True, border=False):
            cols = st.columns(3)
            cols[0].text_input("Name", key=NAME_KEY, placeholder="Support bot (staging)")
            cols[1].text_input("Base URL", key=URL_KEY, placeholder="https://api.dify.ai/v1")
            cols[2].text_input("API key", key=KEY_KEY, type="password", placeholder="app-…",
                               help="Kept in this browser session's memory only, never saved; shown masked.")
            st.form_submit_button("Add and use", on_click=_add, args=(known_names,), icon=":material/add:",
                                  help="Checks the app first (its /info and /parameters with this key).")
        error = st.session_state.pop(ERROR_KEY, None)
        if error:
            st.error(error)
        for t in ours:
            cols = st.columns([6, 1], vertical_alignment="center")
            cols[0].caption(f"**{t.name}** · {t.base_url} · key `{t.masked_key}`")
            cols[1].button("Remove", key=f"pg:remove-target:{t.name}", on_click=_remove, args=(t.name,), type="tertiary")


def _add(known_names: list[str]) -> None:
    name = str(st.session_state.get(NAME_KEY) or "").strip()
    url = str(st.session_state.get(URL_KEY) or "").strip()
    key = str(st.session_state.get(KEY_KEY) or "").strip()
    problems = [what for what, value in (("a name", name), ("a base URL", url), ("an API key", key)) if not value]
    if problems:
        st.session_state[ERROR_KEY] = f"Give {', '.join(problems)}."
        return
    taken = {n.casefold() for n in known_names} - {t.name.casefold() for t in session_targets()}
    if name.casefold() in taken:
        st.session_state[ERROR_KEY] = f"A configured target is already named {name!r}: pick another name."
        return
    try:
        target = Target(name, url, key, "dify")
    except SettingsError as err:
        st.session_state[ERROR_KEY] = str(err)
        return
    try:
        check_target(target, url)
    except TargetCheckFailed as err:
        st.session_state[ERROR_KEY] = f"Not added: {err}"
        return
    add_session_target(target)
    st.session_state[PICKER_KEY] = target.name  # callbacks run before app.py draws the picker
    for key_ in (NAME_KEY, URL_KEY, KEY_KEY):  # the key now lives in the target only
        st.session_state[key_] = ""
    flash(f"Added {target.name} ({target.base_url}, key {target.masked_key}) for this session.", "success")


def _remove(name: str) -> None:
    remove_session_target(name)
    if st.session_state.get(PICKER_KEY) == name:
        st.session_state.pop(PICKER_KEY, None)
