"""A Dify-compatible Service API server with a latency model and fault injection.

Run it with `python -m lib.simulator`; build the ASGI app in-process with `create_app(SimConfig(...))`.
"""
from .apps import APPS
from .config import FAULTS, Latency, NodeTiming, SimConfig
from .server import create_app

DEMO_KEYS = {app.key: app.mode for app in APPS.values()}

__all__ = ["APPS", "DEMO_KEYS", "FAULTS", "Latency", "NodeTiming", "SimConfig", "create_app"]
