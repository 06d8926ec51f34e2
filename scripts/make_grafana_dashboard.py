#!/usr/bin/env python3
"""Write deploy/grafana-dashboard.json from lib/panels.py (the Metrics page's panels)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.grafana import dashboard_json  # noqa: E402

if __name__ == "__main__":
    out = ROOT / "deploy" / "grafana-dashboard.json"
    out.write_text(dashboard_json())
    print(f"wrote {out.relative_to(ROOT)}")
