"""The targets the console can talk to: Dify apps (a base URL and an app key each).

One list, used by the app, the CLI and notebooks alike. Sources, first wins for each setting:
the environment, then a `.env` file in the repo root, then top-level keys of the secrets mapping
(the app passes `st.secrets` as a dict). Never imports streamlit.
"""
from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIMULATOR_URL = "http://127.0.0.1:5001/v1"
DIFY_CLOUD_URL = "https://api.dify.ai/v1"

# The simulator's demo apps: (label in the target name, Dify app mode, key).
SIMULATOR_APPS: tuple[tuple[str, str, str], ...] = (
    ("chat", "chat", "app-sim-chat"),
    ("advanced-chat", "advanced-chat", "app-sim-advanced-chat"),
    ("agent", "agent-chat", "app-sim-agent"),
    ("completion", "completion", "app-sim-completion"),
    ("workflow", "workflow", "app-sim-workflow"),
    ("judge", "chat", "app-sim-judge"),  # grades `judge` checks by a fixed rule (lib/simulator/grader.py)
)

GATEWAY_TARGET_NAME = "Via gateway"

Kind = Literal["simulator", "dify"]


class SettingsError(ValueError):
    """The configuration is incomplete or wrong; the message says what to fix."""


class TargetNotFoundError(SettingsError, LookupError):
    """No target has the requested name."""


def mask_key(key: str | None) -> str:
    """`app-…abcd`: the key's prefix and last 4 characters, enough to tell keys apart (lib.dify's one rule)."""
    from lib.dify.keys import mask  # here, not at the top: reading settings need not load the HTTP client

    return mask(key)


def normalize_base_url(url: str) -> str:
    """`https://api.dify.ai/`, `https://api.dify.ai/v1/` -> `https://api.dify.ai/v1`."""
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"A base URL must start with http:// or https://, got {url!r}.")
    return url if url.endswith("/v1") else f"{url}/v1"


@dataclass(frozen=True)
class Target:
    """A Dify (or simulated) app. repr/str mask the key, so a target is safe to print or log."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    kind: Kind = "dify"

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalize_base_url(self.base_url))
        object.__setattr__(self, "api_key", (self.api_key or "").strip())
        if not self.name.strip():
            raise SettingsError("A target needs a name.")
        if not self.api_key:
            raise SettingsError(f"Target {self.name!r} has no API key.")
        if self.kind not in ("simulator", "dify"):
            raise SettingsError(f"Target {self.name!r}: kind must be 'simulator' or 'dify', got {self.kind!r}.")

    @property
    def masked_key(self) -> str:
        return mask_key(self.api_key)

    def __repr__(self) -> str:
        return (
            f"Target(name={self.name!r}, base_url={self.base_url!r}, "
            f"api_key={self.masked_key!r}, kind={self.kind!r})"
        )

    def __str__(self) -> str:
        return f"{self.name} ({self.base_url}, {self.masked_key})"


def load_targets(
    secrets: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = ROOT / ".env",
) -> list[Target]:
    """All targets, the default first.

    Order: the Dify target from DIFY_API_BASE/DIFY_API_KEY (named DIFY_TARGET_NAME, default "Dify"),
    then each `[targets.NAME]` table of `secrets` (keys `base_url`, `api_key`), then the simulator's
    five apps at SIMULATOR_URL, then "Via gateway" when GATEWAY_URL and GATEWAY_CALLER_KEY are set (`make run`
    sets both for the gateway it starts). `environ` and `env_file` exist for tests; pass `env_file=None` to
    skip `.env`.
    """
    secrets = dict(secrets or {})
    sources = [
        os.environ if environ is None else environ,
        _read_env_file(env_file),
        {k: v for k, v in secrets.items() if isinstance(v, str)},
    ]

    def setting(name: str) -> str | None:
        for source in sources:
            value = (source.get(name) or "").strip()
            if value:  # an empty variable counts as unset, so it does not hide a later source
                return value
        return None

    targets: list[Target] = []
    base, key = setting("DIFY_API_BASE"), setting("DIFY_API_KEY")
    if base and not key:
        raise SettingsError("DIFY_API_BASE is set but DIFY_API_KEY is not: set both, or neither.")
    if key:  # like Dify's own SDKs, a key alone means Dify Cloud
        targets.append(Target(setting("DIFY_TARGET_NAME") or "Dify", base or DIFY_CLOUD_URL, key, "dify"))
    targets += _targets_from_tables(secrets.get("targets"))
    sim_url = setting("SIMULATOR_URL") or DEFAULT_SIMULATOR_URL
    targets += [Target(f"Simulator · {label}", sim_url, key, "simulator") for label, _, key in SIMULATOR_APPS]
    gateway_url, caller_key = setting("GATEWAY_URL"), setting("GATEWAY_CALLER_KEY")
    if gateway_url and caller_key:  # the gateway answers as the app it fronts, with a caller key in place of the app's
        targets.append(Target(GATEWAY_TARGET_NAME, gateway_url, caller_key, "dify"))
    _check_unique(targets)
    return targets


def default_target(targets: list[Target]) -> Target:
    if not targets:
        raise SettingsError("No targets are configured.")
    return targets[0]


def find_target(targets: list[Target], name: str) -> Target:
    """The target called `name`, ignoring case and surrounding spaces."""
    wanted = (name or "").strip().casefold()
    for target in targets:
        if target.name.casefold() == wanted:
            return target
    names = ", ".join(repr(t.name) for t in targets) or "(none)"
    raise TargetNotFoundError(f"No target named {name!r}. Known targets: {names}.")


def read_secrets_file(path: str | Path = ROOT / ".streamlit" / "secrets.toml") -> dict[str, Any] | None:
    """The repo's Streamlit secrets as a dict, for code outside Streamlit (CLI, notebooks); None if absent."""
    path = Path(path)
    if not path.is_file():
        return None
    with path.open("rb") as f:
        return tomllib.load(f)


def _read_env_file(path: str | Path | None) -> dict[str, str]:
    if path is None or not Path(path).is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _targets_from_tables(tables: Any) -> list[Target]:
    if tables is None:
        return []
    if not isinstance(tables, Mapping):
        raise SettingsError("`targets` in secrets must be tables: [targets.NAME] with base_url and api_key.")
    targets = []
    for name, table in tables.items():
        missing = [k for k in ("base_url", "api_key") if not (isinstance(table, Mapping) and table.get(k))]
        if missing:
            raise SettingsError(f"[targets.{name}] in secrets needs {' and '.join(missing)}.")
        targets.append(Target(str(name), table["base_url"], table["api_key"], "dify"))
    return targets


def _check_unique(targets: list[Target]) -> None:
    seen: set[str] = set()
    for target in targets:
        folded = target.name.casefold()
        if folded in seen:
            raise SettingsError(f"Two targets are named {target.name!r} (names ignore case): rename one.")
        seen.add(folded)
