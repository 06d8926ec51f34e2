"""The chosen target's app: load its profile (/info + /parameters) once, show what it is, and show a
failure as the client's sentence with a Retry, never a traceback."""
from __future__ import annotations

import streamlit as st

from lib.dify import DifyClient, DifyError
from lib.playground.app_profile import MODE_KINDS, MODE_LABELS, AppProfile, UnsupportedModeError, load_profile
from lib.playground.targets import explain
from lib.settings import Target
from ui.playground.state import VALUE_PREFIX, profile_cache, set_default, target_id

AUTO = "auto"


def mode_key(target: Target) -> str:
    return f"{VALUE_PREFIX}mode:{target_id(target)}"


def app_profile(target: Target, client: DifyClient) -> AppProfile | None:
    """The app's profile, loaded on first use and kept for the session; None (after an st.error) on failure."""
    override = st.session_state.get(mode_key(target), AUTO)
    mode = None if override == AUTO else override
    cache = profile_cache()
    key = f"{target_id(target)}|{override}"
    if key not in cache:
        try:
            cache[key] = (load_profile(client, mode=mode), None)
        except DifyError as err:
            cache[key] = (None, explain(err))
        except UnsupportedModeError as err:
            cache[key] = (None, str(err))
    profile, error = cache[key]
    if error is not None:
        st.error(error)
        st.button("Retry", key=f"pg:retry-profile:{target_id(target)}", on_click=_forget, args=(target,),
                  help="Ask Dify for the app's /info and /parameters again.")
    return profile


def _forget(target: Target) -> None:
    prefix = f"{target_id(target)}|"
    for key in [k for k in profile_cache() if k.startswith(prefix)]:
        del profile_cache()[key]


def app_summary(profile: AppProfile | None) -> None:
    """One line on the app under the target: its name, mode and description."""
    if profile is None:
        return
    line = f"**{profile.name}** · {profile.mode_label}"
    if profile.description:
        line += f" · {profile.description}"
    st.caption(line)
    if not profile.mode_reported:
        st.warning("Dify did not report this app's mode (an older Dify): the Playground assumes a chat app. "
                   "Pick the right mode under App details if it is not one.")


def app_details(target: Target, profile: AppProfile | None) -> None:
    """A popover with the app's details, a reload, and a mode override (for a Dify too old to report
    its mode, or a mode this console does not know)."""
    with st.popover("App details", icon=":material/tune:"):
        st.markdown(f"Base URL `{target.base_url}` · key `{target.masked_key}` · {target.kind}")
        if profile is not None:
            fields = ", ".join(f"`{f.variable}`{'*' if f.required else ''} ({f.control})" for f in profile.fields) or "none"
            st.markdown(f"Mode `{profile.mode}` · inputs: {fields}")
            upload = ", ".join(profile.upload.types) if profile.upload.can_upload else "off"
            st.markdown(
                f"File upload: {upload} · suggested follow-ups: {'on' if profile.suggested_after_answer else 'off'}"
                f" · citations: {'on' if profile.citations else 'off'}"
            )
        options = [AUTO, *MODE_KINDS]
        set_default(mode_key(target), AUTO)
        st.selectbox(
            "App mode", options, key=mode_key(target),
            format_func=lambda m: "From Dify (/info)" if m == AUTO else f"{MODE_LABELS.get(m, m)} ({m})",
            help="Which Service API routes to use. Leave it to Dify unless /info reports no mode or an unknown one.",
        )
        st.button("Reload app", key=f"pg:reload-profile:{target_id(target)}", on_click=_forget, args=(target,),
                  help="Read /info and /parameters again, e.g. after changing the app in Dify.")
