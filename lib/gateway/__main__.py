"""`python -m lib.gateway [--host H] [--port P]`: the gateway on uvicorn (settings from the environment)."""
from __future__ import annotations

import argparse
import logging
import sys

from .app import create_app
from .config import ConfigError, GatewaySettings
from .logs import setup_json_logging
from .server import serve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lib.gateway", description=__doc__.split(":", 1)[1].strip())
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--log-level", default="info")
    args = p.parse_args(argv)
    setup_json_logging(args.log_level)
    try:
        settings = GatewaySettings().check()
        app = create_app(settings)
    except (ConfigError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return 2
    logging.getLogger("lib.gateway").info(
        "gateway starting", extra={"listen": f"http://{args.host}:{args.port}", "upstream": settings.dify_api_base,
                                   "callers": [c.name for c in settings.callers],
                                   "tracing": bool(settings.otel_exporter_otlp_endpoint)})
    serve(app, settings, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
