"""The one DifyClient per target that every page shares, with Prometheus metrics on.

    from ui.clients import get_client
    client = get_client(current_target())

Cached with st.cache_resource for the life of the server process: the sync client is thread-safe,
and one client per target means one connection pool, one rate limit and one circuit breaker shared
by every session. Never cache an AsyncDifyClient (design.md: "Event loop is closed").
"""
from __future__ import annotations

import streamlit as st

from lib.dify import DifyClient
from lib.metrics.client import client_hooks
from lib.metrics.exporter import start_metrics_server
from lib.settings import Target


def get_client(target: Target) -> DifyClient:
    """The shared client of `target` (recording into lib.metrics' dify_client_* metrics)."""
    ensure_metrics_server()
    return _client(target.name, target.base_url, _Secret(target.api_key))


def ensure_metrics_server() -> int | None:
    """Start this process's /metrics endpoint (CONSOLE_METRICS_PORT, default 9464) if not yet started."""
    return _metrics_server()


@st.cache_resource(show_spinner=False)
def _metrics_server() -> int | None:
    return start_metrics_server()


class _Secret(str):
    """The key as a cache-key argument: hashed by value like any str, but never shown in a repr."""

    def __repr__(self) -> str:
        return "'***'"


@st.cache_resource(show_spinner=False, max_entries=32)
def _client(name: str, base_url: str, api_key: _Secret) -> DifyClient:
    # Keyed by name, URL and key: editing any of them in secrets yields a fresh client.
    return DifyClient(base_url, str(api_key), hooks=client_hooks(name))
