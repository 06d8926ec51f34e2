"""The current user's conversations and a conversation's history, with Dify's cursor pagination.

Conversations page forward with `last_id` (the last item shown); a conversation's messages page
backward with `first_id` (the oldest message shown), each page ordered oldest to newest.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from lib.dify import Conversation, DifyClient

from .transcript import Transcript, turn_from_message

PAGE_SIZE = 20


def new_user_id() -> str:
    """A per-session end-user id. Dify scopes conversations, files and feedback to (app, user)."""
    return f"console-{secrets.token_hex(3)}"


@dataclass
class ConversationList:
    """The conversations loaded so far, newest activity first; `has_more`: another page exists."""

    items: list[Conversation] = field(default_factory=list)
    has_more: bool = False
    loaded: bool = False

    def find(self, conversation_id: str) -> Conversation | None:
        return next((c for c in self.items if c.id == conversation_id), None)


def load_conversations(client: DifyClient, user: str, listing: ConversationList | None = None,
                       *, limit: int = PAGE_SIZE) -> ConversationList:
    """The first page (no `listing`), or `listing` with its next page appended."""
    last_id = listing.items[-1].id if listing and listing.items else None
    page = client.conversations(user=user, last_id=last_id, limit=limit, sort_by="-updated_at")
    items = (listing.items if listing and last_id else []) + list(page.data)
    return ConversationList(items=items, has_more=page.has_more, loaded=True)


def load_history(client: DifyClient, conversation_id: str, user: str, *, limit: int = PAGE_SIZE,
                 name: str = "") -> Transcript:
    """A conversation's newest messages as a transcript; `earlier_cursor` set when older ones exist."""
    page = client.messages(conversation_id, user=user, limit=limit)
    turns = [turn_from_message(m) for m in page.data]
    cursor = page.data[0].id if page.has_more and page.data else None
    return Transcript(turns=turns, conversation_id=conversation_id, name=name, earlier_cursor=cursor)


def load_earlier(client: DifyClient, transcript: Transcript, user: str, *, limit: int = PAGE_SIZE) -> None:
    """Prepend the page of messages before the oldest one loaded (no-op when there is none)."""
    if transcript.conversation_id is None or transcript.earlier_cursor is None:
        return
    page = client.messages(transcript.conversation_id, user=user, first_id=transcript.earlier_cursor, limit=limit)
    transcript.turns[:0] = [turn_from_message(m) for m in page.data]
    transcript.earlier_cursor = page.data[0].id if page.has_more and page.data else None


def rename(client: DifyClient, listing: ConversationList, conversation_id: str, name: str, user: str) -> Conversation:
    renamed = client.rename_conversation(conversation_id, name.strip(), user=user)
    listing.items = [renamed if c.id == conversation_id else c for c in listing.items]
    return renamed


def delete(client: DifyClient, listing: ConversationList, conversation_id: str, user: str) -> None:
    client.delete_conversation(conversation_id, user=user)
    listing.items = [c for c in listing.items if c.id != conversation_id]
