"""The Dify Service API routes the gateway passes through, each with its low-cardinality label.

An allow-list, not a catch-all: the gateway exposes what apps built on one Dify app need, and a
path that is not here gets Dify's own 404 envelope without reaching upstream. Labels replace ids
with placeholders so metrics and logs never carry a conversation, message, task or user id.
"""
from __future__ import annotations

import re

_ID = r"[^/]+"

# (methods, path under /v1, label). Order matters only for readability: patterns do not overlap.
ROUTES: list[tuple[frozenset[str], str, str]] = [
    (frozenset({"POST"}), r"/chat-messages", "/chat-messages"),
    (frozenset({"POST"}), rf"/chat-messages/{_ID}/stop", "/chat-messages/{task_id}/stop"),
    (frozenset({"POST"}), r"/completion-messages", "/completion-messages"),
    (frozenset({"POST"}), rf"/completion-messages/{_ID}/stop", "/completion-messages/{task_id}/stop"),
    (frozenset({"POST"}), r"/workflows/run", "/workflows/run"),
    (frozenset({"POST"}), rf"/workflows/{_ID}/run", "/workflows/{workflow_id}/run"),
    (frozenset({"GET"}), rf"/workflows/run/{_ID}", "/workflows/run/{run_id}"),
    (frozenset({"POST"}), rf"/workflows/tasks/{_ID}/stop", "/workflows/tasks/{task_id}/stop"),
    (frozenset({"GET"}), r"/workflows/logs", "/workflows/logs"),
    (frozenset({"GET"}), rf"/workflow/{_ID}/events", "/workflow/{run_id}/events"),
    (frozenset({"GET"}), r"/parameters", "/parameters"),
    (frozenset({"GET"}), r"/info", "/info"),
    (frozenset({"GET"}), r"/meta", "/meta"),
    (frozenset({"GET"}), r"/site", "/site"),
    (frozenset({"POST"}), r"/files/upload", "/files/upload"),
    (frozenset({"GET"}), rf"/files/{_ID}/preview", "/files/{file_id}/preview"),
    (frozenset({"POST"}), r"/audio-to-text", "/audio-to-text"),
    (frozenset({"POST"}), r"/text-to-audio", "/text-to-audio"),
    (frozenset({"POST"}), rf"/messages/{_ID}/feedbacks", "/messages/{message_id}/feedbacks"),
    (frozenset({"GET"}), r"/app/feedbacks", "/app/feedbacks"),
    (frozenset({"GET"}), rf"/messages/{_ID}/suggested", "/messages/{message_id}/suggested"),
    (frozenset({"GET"}), r"/messages", "/messages"),
    (frozenset({"GET"}), r"/conversations", "/conversations"),
    (frozenset({"DELETE"}), rf"/conversations/{_ID}", "/conversations/{conversation_id}"),
    (frozenset({"POST"}), rf"/conversations/{_ID}/name", "/conversations/{conversation_id}/name"),
    (frozenset({"GET"}), rf"/conversations/{_ID}/variables", "/conversations/{conversation_id}/variables"),
    (frozenset({"PUT"}), rf"/conversations/{_ID}/variables/{_ID}", "/conversations/{conversation_id}/variables/{variable_id}"),
    (frozenset({"GET"}), rf"/end-users/{_ID}", "/end-users/{end_user_id}"),
]
_COMPILED = [(methods, re.compile(pattern + r"/?"), label) for methods, pattern, label in ROUTES]
METHODS = sorted({m for methods, _, _ in ROUTES for m in methods})

# Generation routes: answers may stream and take minutes; they are what TTFT is measured on.
GENERATION = frozenset({"/chat-messages", "/completion-messages", "/workflows/run", "/workflows/{workflow_id}/run"})


def match(method: str, path: str) -> tuple[str | None, bool]:
    """(label, method_allowed) for a path under /v1: (None, False) when unknown, (label, False) for a
    known path with another method (405)."""
    known = None
    for methods, regex, label in _COMPILED:
        if regex.fullmatch(path):
            if method in methods:
                return label, True
            known = label
    return known, False
