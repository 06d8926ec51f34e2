"""What the Playground shows for an app, read from Dify's `/info` and `/parameters`.

A chat, agent or chatflow app gets a chat; a text generator a form and a Generate button; a workflow
a form, a Run button and its outputs. The profile also carries the opening statement, suggested
questions, whether follow-ups and citations are on, and the file-upload rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lib.dify import AppInfo, AppParameters, DifyClient, Timeouts

from .form import FormField, parse_fields

Kind = Literal["chat", "completion", "workflow"]

# Dify's App.mode -> the Playground's kind of page. `agent` is the ~1.16 "New Agent" (streams only).
MODE_KINDS: dict[str, Kind] = {
    "chat": "chat",
    "agent-chat": "chat",
    "advanced-chat": "chat",
    "agent": "chat",
    "completion": "completion",
    "workflow": "workflow",
}
MODE_LABELS = {
    "chat": "Chatbot",
    "agent-chat": "Agent",
    "advanced-chat": "Chatflow",
    "agent": "Agent (new)",
    "completion": "Text generator",
    "workflow": "Workflow",
}
# Profile loading is interactive: fail within seconds on a dead host rather than the client's defaults.
PROFILE_TIMEOUTS = Timeouts(connect=5.0, first_event=20.0, idle=20.0, total=30.0)

# Dify's extension lists per file type (api/constants/__init__.py), for the upload widgets.
EXTENSIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "image": ("jpg", "jpeg", "png", "webp", "gif", "svg"),
    "document": ("txt", "markdown", "md", "mdx", "pdf", "html", "htm", "xlsx", "xls", "vtt", "properties",
                 "doc", "docx", "csv", "eml", "msg", "pptx", "ppt", "xml", "epub"),
    "audio": ("mp3", "m4a", "wav", "amr", "mpga"),
    "video": ("mp4", "mov", "mpeg", "webm"),
}
SIZE_LIMIT_KEYS = {"image": "image_file_size_limit", "audio": "audio_file_size_limit",
                   "video": "video_file_size_limit", "document": "file_size_limit", "custom": "file_size_limit"}
DEFAULT_SIZE_LIMITS_MB = {"image": 10, "audio": 50, "video": 100, "document": 15, "custom": 15}


class UnsupportedModeError(ValueError):
    """The app's mode is one the Playground does not know (a newer Dify): pick one by hand."""


def kind_of(mode: str | None) -> Kind:
    try:
        return MODE_KINDS[mode or ""]
    except KeyError:
        known = ", ".join(MODE_KINDS)
        raise UnsupportedModeError(
            f"The app's mode {mode!r} is not one the Playground knows ({known}). "
            "Pick the mode that matches the app under App details."
        ) from None


def file_type_of(name: str, mime_type: str | None = None) -> str:
    """Dify's file `type` for a file name: image, document, audio, video, or custom."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    for ftype, exts in EXTENSIONS_BY_TYPE.items():
        if ext in exts:
            return ftype
    major = (mime_type or "").split("/")[0]
    return major if major in ("image", "audio", "video") else "custom"


@dataclass(frozen=True)
class UploadRules:
    """Which files a message (or run) may carry: Dify's `file_upload` and `system_parameters`."""

    enabled: bool = False
    types: tuple[str, ...] = ()  # image, document, audio, video, custom
    extensions: tuple[str, ...] = ()  # for `custom`, lower case without the dot
    number_limit: int = 3
    local_upload: bool = True  # `local_file` among the allowed transfer methods
    size_limits_mb: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SIZE_LIMITS_MB))

    @classmethod
    def from_parameters(cls, file_upload: dict[str, Any], system: dict[str, Any]) -> UploadRules:
        file_upload = file_upload or {}
        image = file_upload.get("image") or {}
        types: list[str] = []
        methods: list[str] = []
        if file_upload.get("enabled"):
            types = [str(t) for t in file_upload.get("allowed_file_types") or []]
            methods = list(file_upload.get("allowed_file_upload_methods") or file_upload.get("allowed_upload_methods") or [])
        if image.get("enabled"):  # the legacy image-only switch
            if "image" not in types:
                types.append("image")
            methods = methods or list(image.get("transfer_methods") or [])
        limits: dict[str, float] = dict(DEFAULT_SIZE_LIMITS_MB)
        for ftype, key in SIZE_LIMIT_KEYS.items():
            value = (system or {}).get(key)
            if isinstance(value, (int, float)) and value > 0:
                limits[ftype] = float(value)
        number = file_upload.get("number_limits") or image.get("number_limits") or 3
        extensions = tuple(str(e).lower().lstrip(".") for e in file_upload.get("allowed_file_extensions") or [])
        return cls(
            enabled=bool(types),
            types=tuple(types),
            extensions=extensions,
            number_limit=int(number),
            local_upload=not methods or "local_file" in methods,
            size_limits_mb=limits,
        )

    @property
    def can_upload(self) -> bool:
        return self.enabled and self.local_upload

    def widget_limit_mb(self) -> int:
        """The size a file widget may take (its "Limit N MB per file"): the largest of the allowed types'
        limits, in whole MB; `check` holds each file to its own type's limit."""
        types = [t for t in self.types if t != "custom"] or ["document"]
        if "custom" in self.types:
            types = list(self.size_limits_mb)
        limits = [self.size_limits_mb.get(t, self.size_limits_mb.get("document", 15)) for t in types]
        return max(1, int(max(limits) + 0.999))

    def widget_extensions(self) -> list[str] | None:
        """Extensions for a file widget's `type=` (None: any file, e.g. `custom` without a list)."""
        exts: list[str] = []
        for ftype in self.types:
            if ftype == "custom":
                if not self.extensions:
                    return None
                exts += self.extensions
            else:
                exts += EXTENSIONS_BY_TYPE.get(ftype, ())
        return sorted(set(exts)) or None

    def check(self, files: list[tuple[str, int]]) -> list[str]:
        """Problems with `(name, size in bytes)` files under these rules, one sentence each."""
        if not files:
            return []
        if not self.enabled:
            return ["This app does not take files: its file upload is switched off in Dify."]
        if not self.local_upload:
            return ["This app only takes files by URL (remote_url), not uploads."]
        problems = []
        if len(files) > self.number_limit:
            problems.append(f"This app takes at most {self.number_limit} files per message; {len(files)} were attached.")
        for name, size in files:
            ftype = file_type_of(name)
            by_type = ftype != "custom" and ftype in self.types
            by_extension = "custom" in self.types and (not self.extensions or _ext(name) in self.extensions)
            allowed = by_type or by_extension
            if not allowed:
                problems.append(f"{name}: this app takes {', '.join(self.types)} files, not {ftype}.")
                continue
            limit = self.size_limits_mb.get(ftype, self.size_limits_mb.get("document", 15))
            if size > limit * 1024 * 1024:
                problems.append(f"{name} is {size / 1024 / 1024:.1f} MB; this app takes {ftype} files up to {limit:g} MB.")
        return problems


def _ext(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@dataclass(frozen=True)
class AppProfile:
    name: str
    description: str
    mode: str
    kind: Kind
    fields: tuple[FormField, ...] = ()
    opening_statement: str = ""
    suggested_questions: tuple[str, ...] = ()
    suggested_after_answer: bool = False
    citations: bool = False
    upload: UploadRules = field(default_factory=UploadRules)
    mode_reported: bool = True  # False: /info gave no mode (old Dify); the kind is a guess

    @property
    def mode_label(self) -> str:
        return MODE_LABELS.get(self.mode, self.mode)

    @property
    def is_chat(self) -> bool:
        return self.kind == "chat"

    @property
    def required_fields(self) -> tuple[FormField, ...]:
        return tuple(f for f in self.fields if f.required)

    def field(self, variable: str) -> FormField | None:
        return next((f for f in self.fields if f.variable == variable), None)

    @classmethod
    def from_api(cls, info: AppInfo, params: AppParameters, *, mode: str | None = None) -> AppProfile:
        """The profile from Dify's answers; `mode` overrides the reported mode (old Dify, or by hand)."""
        reported = info.mode or None
        chosen = mode or reported or "chat"
        after = params.suggested_questions_after_answer or {}
        citations = params.retriever_resource or {}
        return cls(
            name=info.name or "Dify app",
            description=info.description or "",
            mode=chosen,
            kind=kind_of(chosen),
            fields=parse_fields(params.user_input_form),
            opening_statement=(params.opening_statement or "").strip(),
            suggested_questions=tuple(q for q in params.suggested_questions if isinstance(q, str) and q.strip()),
            suggested_after_answer=bool(after.get("enabled")),
            citations=bool(citations.get("enabled")),
            upload=UploadRules.from_parameters(params.file_upload, params.system_parameters),
            mode_reported=reported is not None,
        )


def load_profile(client: DifyClient, *, mode: str | None = None) -> AppProfile:
    """GET /info then /parameters. Raises the client's DifyError (wrong key, unreachable, not Dify...)
    or UnsupportedModeError; /parameters is not asked when /info already failed."""
    info = client.info(timeouts=PROFILE_TIMEOUTS)
    params = client.parameters(timeouts=PROFILE_TIMEOUTS)
    return AppProfile.from_api(info, params, mode=mode)
