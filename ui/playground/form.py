"""The app's input form as Streamlit widgets, one per field of /parameters' `user_input_form`.

Values live in session state under `pgv:form:<scope>:<variable>` (scope: which form, which target),
so they survive reruns, other views and other pages; `raw_values` reads them back for validation.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from lib.playground.app_profile import EXTENSIONS_BY_TYPE
from lib.playground.form import TEXT_CONTROLS, FormField, PendingFile, length_notice
from ui.playground.state import VALUE_PREFIX, set_default

_NO_CHOICE = None


def field_key(scope: str, f: FormField) -> str:
    # File widgets cannot be set through session state, so they stay out of the `pgv:` values.
    return f"pgf:{scope}:{f.variable}" if f.is_file else f"{VALUE_PREFIX}form:{scope}:{f.variable}"


def render_form(fields: tuple[FormField, ...], scope: str, *, disabled: bool = False, max_upload_mb: int | None = None) -> None:
    """Draw the fields (required ones marked *); read the values with `raw_values(fields, scope)`."""
    for f in fields:
        if not f.supported:
            st.caption(f"{f.label}: filled by Dify ({f.control}).")
            continue
        key = field_key(scope, f)
        label = f"{f.label} *" if f.required else f.label
        help_ = _help(f)
        # No max_chars on the text widgets: Streamlit drops a paste longer than it whole and silently. The text
        # lands; length_notice says under the field that it is over the limit, and sending is refused until it fits.
        if f.control == "text-input":
            set_default(key, f.initial_value())
            st.text_input(label, key=key, placeholder=f.placeholder or None, help=help_, disabled=disabled)
        elif f.control in ("paragraph", "json_object"):
            set_default(key, f.initial_value())
            st.text_area(label, key=key, placeholder=f.placeholder or ("{ }" if f.control == "json_object" else None),
                         help=help_, disabled=disabled, height=100)
        elif f.control == "select":
            set_default(key, f.initial_value())
            if st.session_state[key] is not None and st.session_state[key] not in f.options:  # options changed
                st.session_state[key] = _NO_CHOICE
            st.selectbox(label, list(f.options), key=key, placeholder="Choose an option", help=help_, disabled=disabled)
        elif f.control == "number":
            set_default(key, f.initial_value())
            st.number_input(label, key=key, help=help_, disabled=disabled, placeholder="A number", format="%g")
        elif f.control == "checkbox":
            set_default(key, f.initial_value())
            st.checkbox(label, key=key, help=help_, disabled=disabled)
        elif f.is_file:
            st.file_uploader(label, key=key, accept_multiple_files=f.control == "file-list", type=_file_types(f),
                             help=help_, disabled=disabled, max_upload_size=max_upload_mb)
        notice = length_notice(f, st.session_state.get(key))
        if notice:
            st.warning(notice, icon=":material/warning:")


def raw_values(fields: tuple[FormField, ...], scope: str) -> dict[str, Any]:
    """The form's current values by variable; file fields as PendingFile lists (read now, in memory)."""
    values: dict[str, Any] = {}
    for f in fields:
        if not f.supported:
            continue
        value = st.session_state.get(field_key(scope, f))
        if f.is_file:
            picked = value if isinstance(value, list) else [value] if value is not None else []
            values[f.variable] = [pending_file(u) for u in picked]
        else:
            values[f.variable] = value
    return values


def pending_file(uploaded: Any) -> PendingFile:
    """A Streamlit UploadedFile as a PendingFile (bytes in memory until sent)."""
    return PendingFile(name=uploaded.name, data=uploaded.getvalue(), mime_type=uploaded.type or "application/octet-stream")


def _help(f: FormField) -> str | None:
    parts = [f.hint] if f.hint else []
    if f.max_length and f.control in TEXT_CONTROLS:
        parts.append(f"At most {f.max_length} characters.")
    if f.required:
        parts.append("Required.")
    parts.append(f"Variable `{f.variable}`.")
    return " ".join(parts)


def _file_types(f: FormField) -> list[str] | None:
    exts = [e.lower().lstrip(".") for e in f.allowed_file_extensions]
    for ftype in f.allowed_file_types:
        exts += EXTENSIONS_BY_TYPE.get(ftype, ())
    return sorted(set(exts)) or None
