"""The integration gateway: websites, mobile apps and enterprise systems reach a Dify app through it.

    python -m lib.gateway [--host H] [--port P]

A Dify-compatible proxy (any Dify client works against it unchanged) with its own caller keys, the
Dify key held server-side, per-caller rate limits, callers' Dify users kept apart (isolation.py),
limits that hold before auth and before reading (server.py), UUID-only ids in forwarded paths,
CORS, JSON logs with request ids, /health, /ready, /metrics and optional OpenTelemetry traces.
Settings: lib/gateway/config.py.
"""
from .app import create_app
from .config import DEMO_CALLER_KEY, ConfigError, GatewaySettings

__all__ = ["DEMO_CALLER_KEY", "ConfigError", "GatewaySettings", "create_app"]
