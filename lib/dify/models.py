"""Typed results of the Service API endpoints (contract §2-§8).

Pydantic models with `extra="allow"`: a field a newer Dify adds is kept (`model_extra`), never an
error. These run once per call, off the per-event hot path, so validation cost does not matter.
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .timing import Timing
from .usage import Usage

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True, populate_by_name=True)


class _Timed(Model):
    timing: Timing | None = Field(default=None, exclude=True, repr=False)


class _WithUsage(_Timed):
    metadata: dict[str, Any] = Field(default_factory=dict, repr=False)
    usage: Usage | None = None

    @field_validator("usage", mode="before")
    @classmethod
    def _usage(cls, v: Any) -> Any:
        return Usage.from_dict(v) if isinstance(v, dict) else v

    @property
    def retriever_resources(self) -> list[dict[str, Any]]:
        return self.metadata.get("retriever_resources") or []


class CompletionResult(_WithUsage):
    """A completion app's answer (blocking, or collected from a stream)."""

    answer: str = ""
    message_id: str | None = None
    task_id: str | None = None
    mode: str | None = None
    created_at: int | None = None


class ChatResult(CompletionResult):
    """A chat, agent or chatflow answer (blocking, or collected from a stream)."""

    conversation_id: str | None = None


class WorkflowResult(_Timed):
    """A workflow run's outcome. A failed run is a result too: check `status` and `error`."""

    task_id: str | None = None
    workflow_run_id: str | None = None
    workflow_id: str | None = None
    status: str | None = None  # succeeded | failed | stopped | partial-succeeded | paused
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    text: str = ""  # streams: the text_chunk pieces joined


class WorkflowRun(Model):
    id: str
    workflow_id: str | None = None
    status: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    total_steps: int | None = None
    total_tokens: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    elapsed_time: float | None = None

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _json_text(cls, v: Any) -> Any:
        # Dify 1.12 sends both as JSON text ("{\"topic\": ...}"); other versions as objects.
        if isinstance(v, (str, bytes)):
            if not v.strip():
                return None
            try:
                v = orjson.loads(v)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"not JSON: {exc}") from None
        return v


class Page(Model, Generic[T]):
    limit: int | None = None
    has_more: bool = False
    data: list[T] = Field(default_factory=list)


class NumberedPage(Page[T], Generic[T]):
    page: int | None = None
    total: int | None = None


class Conversation(Model):
    id: str
    name: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    status: str | None = None
    introduction: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class Message(Model):
    id: str
    conversation_id: str | None = None
    parent_message_id: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    query: str = ""
    answer: str = ""
    status: str | None = None
    error: str | None = None
    message_files: list[dict[str, Any]] = Field(default_factory=list)
    feedback: dict[str, Any] | None = None
    retriever_resources: list[dict[str, Any]] = Field(default_factory=list)
    agent_thoughts: list[dict[str, Any]] = Field(default_factory=list)
    created_at: int | None = None


class ConversationVariable(Model):
    id: str
    name: str | None = None
    value_type: str | None = None
    value: Any = None
    description: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class Feedback(Model):
    id: str
    message_id: str | None = None
    conversation_id: str | None = None
    rating: str | None = None
    content: str | None = None


class Success(Model):
    """`{"result": "success"}`, or an empty 204 (delete in newer Dify)."""

    result: str = "success"


class AppInfo(Model):
    name: str = ""
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    mode: str | None = None  # chat | agent-chat | advanced-chat | completion | workflow | agent
    author_name: str | None = None


class AppParameters(Model):
    opening_statement: str | None = None
    suggested_questions: list[str] = Field(default_factory=list)
    suggested_questions_after_answer: dict[str, Any] = Field(default_factory=dict)
    speech_to_text: dict[str, Any] = Field(default_factory=dict)
    text_to_speech: dict[str, Any] = Field(default_factory=dict)
    retriever_resource: dict[str, Any] = Field(default_factory=dict)
    annotation_reply: dict[str, Any] = Field(default_factory=dict)
    more_like_this: dict[str, Any] = Field(default_factory=dict)
    sensitive_word_avoidance: dict[str, Any] = Field(default_factory=dict)
    user_input_form: list[dict[str, dict[str, Any]]] = Field(default_factory=list)
    file_upload: dict[str, Any] = Field(default_factory=dict)
    system_parameters: dict[str, Any] = Field(default_factory=dict)

    def input_fields(self) -> list[dict[str, Any]]:
        """The input form flattened: each field's spec with its control under "control"."""
        out = []
        for item in self.user_input_form:
            for control, spec in item.items():
                out.append({"control": control, **spec})
        return out


class AppMeta(Model):
    tool_icons: dict[str, Any] = Field(default_factory=dict)


class AppSite(Model):
    title: str | None = None
    description: str | None = None
    icon: str | None = None
    default_language: str | None = None


class UploadedFile(Model):
    id: str
    name: str | None = None
    size: int | None = None
    extension: str | None = None
    mime_type: str | None = None
    created_by: str | None = None
    created_at: int | None = None

    def as_input(self, type: str | None = None) -> dict[str, Any]:
        """The `files` item (or file input value) that sends this upload with a message."""
        if type is None:
            major = (self.mime_type or "").split("/")[0]
            type = {"image": "image", "audio": "audio", "video": "video"}.get(major, "document")
        return {"type": type, "transfer_method": "local_file", "upload_file_id": self.id}


class AudioText(Model):
    text: str = ""


class EndUser(Model):
    id: str
    type: str | None = None
    external_user_id: str | None = None
    name: str | None = None
    is_anonymous: bool | None = None
    session_id: str | None = None


class Annotation(Model):
    id: str
    question: str | None = None
    answer: str | None = None
    hit_count: int | None = None
    created_at: int | None = None


class AnnotationJob(Model):
    job_id: str
    job_status: str | None = None  # waiting | processing | completed | error
    error_msg: str | None = None


class HumanInputForm(Model):
    form_content: Any = None
    inputs: list[Any] = Field(default_factory=list)
    user_actions: list[Any] = Field(default_factory=list)
    expiration_time: Any = None
