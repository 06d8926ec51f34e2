"""Caller authentication: `Authorization: Bearer <caller key>`, compared in constant time."""
from __future__ import annotations

import hmac

from .config import Caller


class CallerKeys:
    """Finds the caller a request's key belongs to.

    Every configured key is compared (no early exit) with hmac.compare_digest, so the time taken says
    nothing about which key, or how much of one, matched.
    """

    def __init__(self, callers: list[Caller]) -> None:
        self._keys = [(c.name, c.key.get_secret_value().encode()) for c in callers]

    def caller(self, authorization: str | None) -> str | None:
        """The caller's name, or None when the header is missing, malformed or the key unknown."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = token.strip().encode()
        found = None
        for name, key in self._keys:
            if hmac.compare_digest(presented, key) and found is None:
                found = name
        return found
