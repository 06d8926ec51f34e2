"""In-memory state: end users, conversations, messages, files, feedback, running tasks, workflow runs.

Everything is scoped as Dify scopes it: conversations and messages to (app, user). Collections are
capped so a long load test cannot grow the simulator without bound.
"""
from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .apps import SimApp

MAX_CONVERSATIONS = 20_000
MAX_MESSAGES = 50_000
MAX_FILES = 500
MAX_RUNS = 20_000


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> int:
    return int(time.time())


class Capped(OrderedDict):
    """An OrderedDict that forgets its oldest entries past `limit`."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass
class Conversation:
    id: str
    app_key: str
    user: str
    inputs: dict
    name: str = "New conversation"
    status: str = "normal"
    introduction: str = ""
    created_at: int = field(default_factory=now)
    updated_at: int = field(default_factory=now)
    message_ids: list[str] = field(default_factory=list)
    variables: dict[str, dict] = field(default_factory=dict)

    def public(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "inputs": self.inputs,
            "status": self.status,
            "introduction": self.introduction,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Task:
    """A running generation; `stopped` is set by the stop endpoint and read by the stream."""

    id: str
    app_key: str
    user: str
    stopped: bool = False


@dataclass
class Store:
    end_users: dict[tuple[str, str], dict] = field(default_factory=dict)
    conversations: Capped = field(default_factory=lambda: Capped(MAX_CONVERSATIONS))
    messages: Capped = field(default_factory=lambda: Capped(MAX_MESSAGES))
    files: Capped = field(default_factory=lambda: Capped(MAX_FILES))
    feedbacks: Capped = field(default_factory=lambda: Capped(MAX_MESSAGES))
    runs: Capped = field(default_factory=lambda: Capped(MAX_RUNS))
    tasks: dict[str, Task] = field(default_factory=dict)
    annotations: dict[str, Capped] = field(default_factory=dict)
    annotation_jobs: dict[str, dict] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)  # app key -> requests in flight

    def end_user(self, app: SimApp, user: str) -> dict:
        key = (app.key, user)
        if key not in self.end_users:
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.end_users[key] = {
                "id": new_id(),
                "tenant_id": "00000000-0000-4000-8000-000000000001",
                "app_id": app.id,
                "type": "service-api",
                "external_user_id": user,
                "name": None,
                "is_anonymous": False,
                "session_id": user,
                "created_at": ts,
                "updated_at": ts,
            }
        return self.end_users[key]

    def conversation(self, app: SimApp, user: str | None, conversation_id: str) -> Conversation | None:
        conv = self.conversations.get(conversation_id)
        if conv is None or conv.app_key != app.key or (user is not None and conv.user != user):
            return None
        return conv

    def user_conversations(self, app: SimApp, user: str | None) -> list[Conversation]:
        return [c for c in self.conversations.values() if c.app_key == app.key and (user is None or c.user == user)]

    def message(self, app: SimApp, user: str | None, message_id: str) -> dict | None:
        msg = self.messages.get(message_id)
        if msg is None or msg["_app"] != app.key or (user is not None and msg["_user"] != user):
            return None
        return msg

    def file(self, file_id: Any) -> dict | None:
        return self.files.get(str(file_id)) if file_id else None

    def annotations_of(self, app: SimApp) -> Capped:
        return self.annotations.setdefault(app.key, Capped(MAX_MESSAGES))


def public_message(msg: dict) -> dict:
    """A stored message without the simulator's private (underscore) fields."""
    return {k: v for k, v in msg.items() if not k.startswith("_")}
