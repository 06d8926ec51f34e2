"""A guard against load-testing production by accident.

A run against a target that is not on this machine (loopback or localhost) needs an explicit yes
when it goes past a set load: above BENCH_GUARD_RATE requests/s in an open loop (default 2), or
above BENCH_GUARD_CONCURRENCY users in a closed loop (default 4), counting every sweep level. The
page asks for a confirmation tick; the CLI wants --confirm-production.
"""
from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from .config import RunConfig

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def guard_rate() -> float:
    return float(os.environ.get("BENCH_GUARD_RATE") or 2.0)


def guard_concurrency() -> int:
    return int(os.environ.get("BENCH_GUARD_CONCURRENCY") or 4)


def is_local(base_url: str) -> bool:
    """Whether the URL's host is this machine (a loopback address or localhost)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def confirmation_needed(config: RunConfig) -> str | None:
    """Why this run needs a confirmation, or None when it does not."""
    if is_local(config.base_url):
        return None
    levels = config.sweep or [config.level]
    peak = max(levels)
    host = urlsplit(config.base_url).hostname
    if config.load == "open" and peak > guard_rate():
        return (f"this run sends up to {peak:g} requests/s to {host}, which is not this machine "
                f"(the guard allows {guard_rate():g} req/s without confirmation)")
    if config.load == "closed" and peak > guard_concurrency():
        return (f"this run keeps up to {peak:g} requests at once in flight against {host}, which is not this machine "
                f"(the guard allows {guard_concurrency()} without confirmation)")
    return None
