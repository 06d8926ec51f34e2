"""The API key: held once, shown only as `app-…last4`, scrubbed from any text that came from elsewhere.

`mask` is the one rule for showing a key (or any bearer token): reprs, errors, logs, hooks and the
console's settings (lib/settings.mask_key) all go through it.
"""
from __future__ import annotations

import re
from typing import Any


def mask(key: str | None) -> str:
    """`app-…last4`: the only form of a key ever shown. The prefix (up to its first `-`, 10 characters at
    most) and the last 4 characters; none of a short key, whose last 4 would be most of it."""
    key = (key or "").strip()
    prefix, sep, rest = key.partition("-")
    if not sep or len(prefix) > 10:  # no recognisable `app-`-style prefix
        prefix, rest = "", key
    else:
        prefix += "-"
    return f"{prefix}…{rest[-4:] if len(rest) >= 8 else ''}"


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


class AuthHeader(dict[str, str]):
    """The Authorization header of `key`, with a repr that masks it (it sits inside the client's core)."""

    def __init__(self, key: ApiKey) -> None:
        super().__init__(Authorization=f"Bearer {key.reveal()}")
        self._shown = masked_bearer(key)

    def __repr__(self) -> str:
        return repr({"Authorization": self._shown})


def masked_bearer(key: ApiKey, *, ascii: bool = False) -> str:
    """The Authorization value as it may be shown; `ascii` for a header (left in a request kept after
    the call), whose value must be ASCII: the ellipsis is written "..."."""
    shown = f"Bearer {key.masked}"
    return shown.replace("…", "...") if ascii else shown


_BEARER = re.compile(r"(?i)(bearer\s+)([^\s\"',;]+)")


def redact(text: str, key: ApiKey) -> str:
    """Text that came from elsewhere (server answers, transport errors) with the key, and any other
    bearer token, masked."""
    return _BEARER.sub(_mask_bearer, text.replace(key.reveal(), key.masked))


# A Dify API key's shape (`app-`, `dataset-` + 24 letters and digits as Dify issues them; 16 and more here).
_DIFY_KEY = re.compile(r"\b((?:app|dataset)-[A-Za-z0-9]{16,})\b")


def redact_tokens(text: str) -> str:
    """Text from a server (a node's error, a failed run's message) with every bearer token and every
    Dify-key-shaped token masked, for places that show it without holding the key."""
    return _DIFY_KEY.sub(lambda m: mask(m.group(1)), _BEARER.sub(_mask_bearer, text))


def _mask_bearer(m: re.Match[str]) -> str:
    token = m.group(2)
    return m.group(0) if "…" in token else m.group(1) + mask(token)  # "…": masked already
