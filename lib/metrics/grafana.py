"""deploy/grafana-dashboard.json, built from lib/metrics/panels.py: the Metrics page's panels for teams on Grafana.

Regenerate after changing a panel: `.venv/bin/python -m lib.metrics.grafana` (`--output PATH` writes elsewhere;
tests/test_deploy.py fails while the file and the panels disagree).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .panels import PANELS, Panel, render

DASHBOARD_PATH = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"

GRAFANA_SELECTOR = 'job=~"$job",instance=~"$instance"'
GRAFANA_WINDOW = "$__rate_interval"
_UNITS = {"req/s": "reqps", "ratio": "percentunit", "s": "s", "tokens/s": "short", "count": "short", "per s": "short",
          "state": "short"}
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def legend_format(legend: str) -> str:
    """`p95 {job}` -> `p95 {{job}}` (Grafana's label syntax)."""
    return re.sub(r"\{(\w+)\}", r"{{\1}}", legend)


def grafana_panel(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    defaults: dict = {"unit": _UNITS.get(panel.unit, "short"), "custom": {"lineWidth": 2, "fillOpacity": 0}}
    if panel.unit == "state":
        defaults["mappings"] = [{"type": "value", "options": {"0": {"text": "closed", "color": "green"},
                                                               "1": {"text": "half-open", "color": "orange"},
                                                               "2": {"text": "open", "color": "red"}}}]
        defaults["min"], defaults["max"] = 0, 2
        defaults["custom"]["lineInterpolation"] = "stepAfter"
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.help,
        "datasource": _DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": _DATASOURCE, "expr": render(q.expr, GRAFANA_SELECTOR, GRAFANA_WINDOW),
             "legendFormat": legend_format(q.legend), "range": True}
            for i, q in enumerate(panel.queries)
        ],
    }


def _variable(name: str, label: str, query: str) -> dict:
    return {
        "name": name, "label": label, "type": "query", "datasource": _DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"}, "definition": query,
        "multi": True, "includeAll": True, "allValue": ".+", "refresh": 2, "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def dashboard() -> dict:
    panels = [grafana_panel(p, i + 1, 12 * (i % 2), 8 * (i // 2)) for i, p in enumerate(PANELS)]
    return {
        "uid": "dify-console-metrics",
        "title": "Dify Console: client, gateway, simulator",
        "description": "The Dify Console's Metrics page, generated from lib/metrics/panels.py.",
        "tags": ["dify", "llm", "gateway"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": {}},
            _variable("job", "Job", "label_values(up, job)"),
            _variable("instance", "Target", 'label_values(up{job=~"$job"}, instance)'),
        ]},
        "panels": panels,
    }


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.metrics.grafana", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DASHBOARD_PATH, help="where to write it (default: %(default)s)")
    out = parser.parse_args(argv).output
    out.write_text(dashboard_json())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
