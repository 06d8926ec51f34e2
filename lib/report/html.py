"""A report as one self-contained HTML file: sections of text, tables and plotly charts, no server, no network.

plotly.js is inlined once, in the head (about 4.8 MB); each chart is a div and a call to it
(`to_html(include_plotlyjs=False)`), so a report of ten charts costs the bundle once. Jinja2 (with
autoescape) writes the page, so run names, error messages and config values are text, never markup.
Nothing here knows about benchmarks: an eval run's report is built from the same blocks.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup
from plotly.offline import get_plotlyjs

__all__ = ["Chart", "Facts", "Paragraph", "Report", "Section", "Table", "render", "value_text", "write"]


@dataclass
class Paragraph:
    text: str
    tone: str = ""  # "", "note" (grey), "warning" or "error" (a coloured box)
    items: Sequence[str] = ()  # a bulleted list after the text


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str = ""  # under the table (e.g. the formulas of its figures)
    index: bool = True
    numeric: bool = False  # cells right-aligned (a table of figures)


@dataclass
class Facts:
    """Name/value pairs as a two-column table (a configuration, an environment)."""

    items: Mapping[str, Any]
    caption: str = ""


@dataclass
class Chart:
    figure: go.Figure
    caption: str = ""  # what the chart shows, and the formula of its figure
    height_px: int = 420


Block = Paragraph | Table | Facts | Chart


@dataclass
class Section:
    title: str
    blocks: Sequence[Block] = field(default_factory=list)
    columns: int = 1  # 2: charts side by side on a wide screen


@dataclass
class Report:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    generator: str = "Dify Console"


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_PAGE = _ENV.from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{{ report.generator }}">
<title>{{ report.title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0; background: #fff; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 1.8rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
.subtitle, .generated, .caption, .note { color: #59636e; }
.subtitle { margin: 0 0 4px; } .generated { font-size: .85rem; margin: 0; }
.caption { font-size: .85rem; margin: 4px 0 18px; }
table { border-collapse: collapse; font-size: .9rem; margin: 8px 0 4px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
table.numeric td { text-align: right; white-space: nowrap; }
table.data tbody th, table.data td:first-child { white-space: nowrap; }
.note ul, .warning ul { margin: 4px 0; padding-left: 22px; } .note p { margin: 4px 0; }
.note li { font-size: .85rem; }
th { background: #f6f8fa; font-weight: 600; }
td.value { white-space: pre-wrap; word-break: break-word; max-width: 900px; }
.warning, .error { border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; } .error { background: #ffebe9; border: 1px solid #ff8182; }
.grid { display: grid; grid-template-columns: repeat(var(--columns), minmax(0, 1fr)); gap: 8px 24px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
.chart { min-width: 0; }
@media print { main { max-width: none; } h2 { break-after: avoid; } .chart, table { break-inside: avoid; } }
</style>
<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: 'local'};</script>
<script type="text/javascript">{{ plotlyjs }}</script>
</head>
<body>
<main>
<h1>{{ report.title }}</h1>
{% if report.subtitle %}<p class="subtitle">{{ report.subtitle }}</p>{% endif %}
<p class="generated">Generated {{ generated }} by {{ report.generator }}. A self-contained file: it needs no server and no network.</p>
{% for section in report.sections %}
<section>
<h2>{{ section.title }}</h2>
<div class="grid" style="--columns: {{ section.columns }}">
{% for block in section.blocks %}
<div class="{{ 'chart' if block.kind == 'chart' else 'block' }}"
{%- if block.kind != 'chart' and section.columns > 1 %} style="grid-column: 1 / -1"{% endif %}>
{% if block.kind == 'paragraph' %}
<div class="{{ block.tone }}"><p>{{ block.text }}</p>
{%- if block.bullets %}<ul>{% for item in block.bullets %}<li>{{ item }}</li>{% endfor %}</ul>{% endif %}</div>
{% elif block.kind == 'facts' %}
<table class="facts"><tbody>
{%- for name, value in block.pairs %}<tr><td class="name">{{ name }}</td><td class="value">{{ value }}</td></tr>{% endfor %}</tbody></table>
{% else %}
{{ block.html }}
{% endif %}
{% if block.caption %}<p class="caption">{{ block.caption }}</p>{% endif %}
</div>
{% endfor %}
</div>
</section>
{% endfor %}
</main>
</body>
</html>
""")


def render(report: Report, *, now: dt.datetime | None = None) -> str:
    """The report as one HTML string (UTF-8 text, plotly.js included once)."""
    sections = [{"title": s.title, "columns": s.columns, "blocks": [_block(b) for b in s.blocks]} for s in report.sections]
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    view = {"title": report.title, "subtitle": report.subtitle, "generator": report.generator, "sections": sections}
    return _PAGE.render(report=view, generated=when, plotlyjs=Markup(get_plotlyjs()))


def write(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render(report), encoding="utf-8")
    return path


def _block(block: Block) -> dict[str, Any]:
    if isinstance(block, Paragraph):
        return {"kind": "paragraph", "text": block.text, "tone": block.tone, "bullets": list(block.items), "caption": ""}
    if isinstance(block, Facts):
        return {"kind": "facts", "pairs": [(str(k), value_text(v)) for k, v in block.items.items()], "caption": block.caption}
    if isinstance(block, Table):
        # pandas escapes the cells (escape=True); the markup it writes is trusted.
        html = block.frame.to_html(
            index=block.index, escape=True, na_rep="–", border=0, classes="data numeric" if block.numeric else "data"
        )
        return {"kind": "table", "html": Markup(html), "caption": block.caption}
    if isinstance(block, Chart):
        html = pio.to_html(
            block.figure,
            include_plotlyjs=False,
            full_html=False,
            default_width="100%",
            default_height=f"{block.height_px}px",
            config={"displaylogo": False, "responsive": True},
        )
        return {"kind": "chart", "html": Markup(html), "caption": block.caption}
    raise TypeError(f"a report block is a Paragraph, Table, Facts or Chart, not {type(block).__name__}")


def value_text(v: Any, sep: str = "\n") -> str:
    """A config or environment value as text: lists joined, dicts `key: value` each (`sep` between), None as –."""
    if v is None or v == "":
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(value_text(x, sep) for x in v) if v else "–"
    if isinstance(v, dict):
        return sep.join(f"{k}: {value_text(x, sep)}" for k, x in v.items()) if v else "–"
    return str(v)
