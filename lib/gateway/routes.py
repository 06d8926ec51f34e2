"""The Dify Service API routes the gateway passes through, each with its low-cardinality label.

An allow-list, not a catch-all: the gateway exposes what apps built on one Dify app need, and a
path that is not here gets Dify's own 404 envelope without reaching upstream. Labels replace ids
with placeholders so metrics and logs never carry a conversation, message, task or user id.

Each label is also the template of the path sent upstream: an id slot accepts a UUID only (every
id Dify hands out, task ids included, is one; Dify answers a non-UUID in a typed slot with 404 too),
and the upstream path is rebuilt from the template and the matched ids. So `..`, `%2e%2e`, an
encoded or double-encoded slash in a slot never reaches upstream, which gets exactly the route matched.
"""
from __future__ import annotations

import re

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# (methods, label = the path template under /v1). Templates do not overlap.
ROUTES: list[tuple[frozenset[str], str]] = [
    (frozenset({"POST"}), "/chat-messages"),
    (frozenset({"POST"}), "/chat-messages/{task_id}/stop"),
    (frozenset({"POST"}), "/completion-messages"),
    (frozenset({"POST"}), "/completion-messages/{task_id}/stop"),
    (frozenset({"POST"}), "/workflows/run"),
    (frozenset({"POST"}), "/workflows/{workflow_id}/run"),
    (frozenset({"GET"}), "/workflows/run/{run_id}"),
    (frozenset({"POST"}), "/workflows/tasks/{task_id}/stop"),
    (frozenset({"GET"}), "/workflows/logs"),
    (frozenset({"GET"}), "/workflow/{run_id}/events"),
    (frozenset({"GET"}), "/parameters"),
    (frozenset({"GET"}), "/info"),
    (frozenset({"GET"}), "/meta"),
    (frozenset({"GET"}), "/site"),
    (frozenset({"POST"}), "/files/upload"),
    (frozenset({"GET"}), "/files/{file_id}/preview"),
    (frozenset({"POST"}), "/audio-to-text"),
    (frozenset({"POST"}), "/text-to-audio"),
    (frozenset({"POST"}), "/messages/{message_id}/feedbacks"),
    (frozenset({"GET"}), "/app/feedbacks"),
    (frozenset({"GET"}), "/messages/{message_id}/suggested"),
    (frozenset({"GET"}), "/messages"),
    (frozenset({"GET"}), "/conversations"),
    (frozenset({"DELETE"}), "/conversations/{conversation_id}"),
    (frozenset({"POST"}), "/conversations/{conversation_id}/name"),
    (frozenset({"GET"}), "/conversations/{conversation_id}/variables"),
    (frozenset({"PUT"}), "/conversations/{conversation_id}/variables/{variable_id}"),
    (frozenset({"GET"}), "/end-users/{end_user_id}"),
]


def _pattern(template: str) -> re.Pattern[str]:
    # `run` in /workflows/run is a literal; /workflows/{workflow_id}/run needs a UUID: they cannot both match
    return re.compile(re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{_UUID})", template) + "/?")


_COMPILED = [(methods, _pattern(label), label) for methods, label in ROUTES]
METHODS = sorted({m for methods, _ in ROUTES for m in methods})

# Generation routes: answers may stream and take minutes; they are what TTFT is measured on.
GENERATION = frozenset({"/chat-messages", "/completion-messages", "/workflows/run", "/workflows/{workflow_id}/run"})


def match(method: str, path: str) -> tuple[str | None, str | None, bool]:
    """(label, upstream path, method_allowed) for a decoded path under /v1: (None, None, False) when
    unknown, (label, None, False) for a known path with another method (405). The upstream path is
    the label with the matched ids put back, lower-cased as Dify prints them."""
    known = None
    for methods, regex, label in _COMPILED:
        found = regex.fullmatch(path)
        if found:
            if method in methods:
                return label, label.format(**{k: v.lower() for k, v in found.groupdict().items()}), True
            known = label
    return known, None, False
