"""The Playground's session state: one `PlaygroundSession` per (target, user), the end-user id,
cached app profiles, and one-shot messages from callbacks.

Keys all start with `pg`. Widget keys starting with `pgv:` hold values the user typed. Streamlit
drops a widget's state when a run does not draw it (another view, another page), so
`keep_typed_values()` copies them aside at the top of every run and `set_default` gives a widget that
comes back its last value: nothing typed is lost. (Re-assigning the keys instead would also push the
old value over text typed in a form and not yet submitted.)
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from lib.dify import DifyClient
from lib.playground.app_profile import AppProfile
from lib.playground.batch import BatchJob, BatchPlan
from lib.playground.compare import CompareRun
from lib.playground.conversations import ConversationList, new_user_id
from lib.playground.form import PendingFile
from lib.playground.live import LiveRun
from lib.playground.transcript import Transcript
from lib.settings import Target
from lib.workload import Table

VALUE_PREFIX = "pgv:"
USER_KEY = "pgv:user"
FALLBACK_USER = "console-user"  # sent when the User box is left empty (Dify needs a `user`)
_SESSIONS = "pg:sessions"
_PROFILES = "pg:profiles"
_FLASH = "pg:flash"
_TYPED = "pg:typed"


@dataclass
class PendingSend:
    """A message (or run) the user asked for, not yet sent. Set by a widget callback, taken once by the
    script before it sends: a rerun finds it gone and never sends it again."""

    query: str
    values: dict[str, Any]  # raw form values by variable
    files: list[PendingFile] = field(default_factory=list)


@dataclass
class PlaygroundSession:
    """Everything the Playground holds for one target and one user in this browser session."""

    transcript: Transcript = field(default_factory=Transcript)  # chat turns, or generator/workflow runs
    pending: PendingSend | None = None
    form_error: str | None = None  # why the last Generate / Run was not sent
    live: LiveRun | None = None
    conversations: ConversationList = field(default_factory=ConversationList)
    conversations_error: str | None = None
    compare: CompareRun | None = None
    compare_pending: bool = False
    batch_table: Table | None = None
    batch_file: str | None = None
    batch_plan: BatchPlan | None = None
    batch: BatchJob | None = None

    def adopt_conversation(self) -> None:
        """The first answer of a new conversation brings its id: keep it, and refresh the sidebar list."""
        transcript = self.transcript
        if transcript.conversation_id is None:
            started = next((t for t in transcript.turns if t.conversation_id and t.finished), None)
            if started is not None:
                transcript.conversation_id = started.conversation_id
                self.conversations.loaded = False

    @property
    def busy(self) -> bool:
        """A message is waiting to be sent or still streaming."""
        return self.pending is not None or (self.live is not None and not self.live.done.is_set())


def keep_typed_values() -> None:
    """Copy every `pgv:` widget value aside (only read: what the user typed is not touched)."""
    typed = st.session_state.setdefault(_TYPED, {})
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(VALUE_PREFIX):
            typed[key] = st.session_state[key]


def set_default(key: str, value: Any) -> None:
    """Give a widget its value through session state, before drawing it: the last value typed if its
    state was dropped meanwhile, else `value` (never also via `value=`: Streamlit warns)."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(_TYPED, {}).get(key, value)


def target_id(target: Target) -> str:
    """A short stable id for widget keys and state: the target's name, URL and masked key (not the key)."""
    raw = f"{target.name}|{target.base_url}|{target.masked_key}"
    return hashlib.sha1(raw.encode()).hexdigest()[:10]


def current_user() -> str:
    """The end-user id the Playground sends as `user` (shown and editable in the sidebar)."""
    set_default(USER_KEY, new_user_id())
    return str(st.session_state[USER_KEY]).strip() or FALLBACK_USER


def session_for(target: Target, user: str) -> PlaygroundSession:
    sessions: dict[tuple[str, str], PlaygroundSession] = st.session_state.setdefault(_SESSIONS, {})
    return sessions.setdefault((target_id(target), user), PlaygroundSession())


def profile_cache() -> dict[str, tuple[AppProfile | None, str | None]]:
    """(profile, error) per target and mode choice, kept until the user reloads."""
    return st.session_state.setdefault(_PROFILES, {})


def flash(message: str, kind: str = "error") -> None:
    """Show `message` at the top of the next run (callbacks cannot draw where the user looks)."""
    st.session_state.setdefault(_FLASH, []).append((kind, message))


def show_flashes() -> None:
    for kind, message in st.session_state.pop(_FLASH, []):
        {"error": st.error, "success": st.success, "info": st.info}.get(kind, st.info)(message)


@dataclass
class PageContext:
    """What every Playground view works with: the target, its shared client and app, the user, the state."""

    target: Target
    client: DifyClient
    profile: AppProfile
    user: str
    session: PlaygroundSession

    @property
    def tid(self) -> str:
        return target_id(self.target)

    def scope(self, view: str) -> str:
        """A widget-key scope for one form of one target: `chat:1a2b3c4d5e`."""
        return f"{view}:{self.tid}"

    @property
    def transcript(self) -> Transcript:
        return self.session.transcript
