"""Files sent the Dify way: POST /files/upload each one, then reference it by its id.

A message's attachments go in `files`; a workflow's file fields (`file`, `file-list`) take the same
reference objects as input values.
"""
from __future__ import annotations

from typing import Any

from lib.dify import DifyClient

from .app_profile import UploadRules, file_type_of
from .form import PendingFile


class UploadRejected(ValueError):
    """The files break the app's upload rules; nothing was sent. The message lists every problem."""


def check_attachments(rules: UploadRules, files: list[PendingFile]) -> None:
    """Raise UploadRejected if message attachments (not form-field files) break the app's rules."""
    problems = rules.check([(f.name, f.size) for f in files if f.variable is None])
    if problems:
        raise UploadRejected(" ".join(problems))


def upload_all(client: DifyClient, files: list[PendingFile], *, user: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Upload every file; returns (`files` for the request, `inputs` for file fields).

    Raises the client's DifyError (too large, unsupported type...) on the first failure.
    """
    attachments: list[dict[str, Any]] = []
    by_field: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        uploaded = client.upload_file((f.name, f.data, f.mime_type), user=user)
        ref = uploaded.as_input(file_type_of(f.name, f.mime_type))
        if f.variable is None:
            attachments.append(ref)
        else:
            by_field.setdefault(f.variable, []).append(ref)
    return attachments, by_field


def field_inputs(by_field: dict[str, list[dict[str, Any]]], single: set[str]) -> dict[str, Any]:
    """File-field inputs: one reference for a `file` field (names in `single`), a list for `file-list`."""
    return {var: (refs[0] if var in single else refs) for var, refs in by_field.items()}
