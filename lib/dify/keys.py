"""The API key: held once, shown only as `app-…last4`, scrubbed from any text that came from elsewhere."""
from __future__ import annotations

import re
from typing import Any


def mask(key: str) -> str:
    """`app-…last4`: the only form of a key the client ever shows."""
    prefix = key.split("-", 1)[0] + "-" if "-" in key[:12] else ""
    return f"{prefix}…{key[-4:]}" if len(key) > 8 else "…"


class ApiKey:
    """Holds the key; every printable form of it is masked. `reveal()` is for the Authorization header."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = (value or "").strip()
        if not value:
            raise ValueError("api_key is empty: pass the app's API key (Dify: app, API Access, 'app-...')")
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return self.masked

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an ApiKey is not picklable (it would leak the key)")


class AuthHeader(dict):
    """The Authorization header, with a repr that hides it (it sits inside the client's core)."""

    def __repr__(self) -> str:
        return "{'Authorization': 'Bearer ***'}"


_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


def redact(text: str, key: ApiKey) -> str:
    """Remove the key (and any bearer token) from text that came from elsewhere."""
    return _BEARER.sub(r"\1***", text.replace(key.reveal(), key.masked))
