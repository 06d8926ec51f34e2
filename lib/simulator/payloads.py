"""Dify 1.12's request payload models: its controllers validate with pydantic, and a client sees pydantic's text.

The 1.12 profile validates the captured cases (a chat turn, a history query, a feedback) with the same
models so a bad request gets the message a real Dify 1.12 gives (captures 15, 19, 25-27), word for word
but for the pydantic release in the URL. Pydantic writes that text; hand-copying it would drift.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from .errors import invalid_param


class ChatRequestPayload(BaseModel):
    inputs: dict[str, Any]
    query: str
    files: list[Any] | None = None
    response_mode: Literal["blocking", "streaming"] | None = None
    conversation_id: str | None = None
    auto_generate_name: bool = True
    workflow_id: str | None = None


class MessageListQuery(BaseModel):
    conversation_id: str
    first_id: str | None = None
    limit: int = Field(20, ge=1, le=100)


class MessageFeedbackPayload(BaseModel):
    rating: Literal["like", "dislike"] | None = None
    content: str | None = None


def check(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Raise Dify's 400 `invalid_param` with pydantic's own message when `data` does not fit `model`."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise invalid_param(str(exc)) from None


MALFORMED_JSON = "The browser (or proxy) sent a request that this server could not understand."  # werkzeug's BadRequest
