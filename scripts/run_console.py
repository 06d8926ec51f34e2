#!/usr/bin/env python3
"""`make run`: the simulator, the gateway, Prometheus and the console, supervised (lib/supervisor/)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.supervisor.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
