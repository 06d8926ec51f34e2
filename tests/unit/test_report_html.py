"""lib.report.html: sections of paragraphs, tables, facts and plotly charts -> one self-contained HTML string."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from lib.report.html import (
    Chart,
    Facts,
    Paragraph,
    Report,
    Section,
    Table,
    render,
    value_text,
    write,
)
from tests.support.html_check import parse_report

BUNDLE_MARK = "plotly.js v"  # the licence header at the top of the bundle


def _report(charts: int = 3) -> Report:
    figs = [go.Figure(go.Bar(x=["a", "b"], y=[i + 1, i + 2], name=f"bars {i}")) for i in range(charts)]
    return Report(title="Run <one> & two", subtitle="a subtitle", sections=[
        Section("Text", [Paragraph("Careful: <script>alert(1)</script>", tone="warning", items=["first <b>", "second"])]),
        Section("Tables", [Table(pd.DataFrame({"figure": ["<i>p50</i>"], "ms": [12.5]}), caption="ms = milliseconds", index=False),
                           Facts({"headers": {"X-A": "1", "X-B": "2"}, "sweep": [], "shuffle": True, "rate": 2.5})]),
        Section("Charts", [Chart(f, caption=f"chart {i} formula") for i, f in enumerate(figs)], columns=2),
    ])


def test_one_self_contained_page_with_the_bundle_once():
    html = render(_report(charts=3))
    parsed = parse_report(html)
    assert not parsed.problems, parsed.problems
    assert html.count(BUNDLE_MARK) == 1 and get_plotlyjs() in html  # inlined once for three charts
    assert parsed.sources == []  # nothing to fetch: no script src, no stylesheet link
    assert parsed.plot_divs == 3 and sum("Plotly.newPlot" in s for s in parsed.scripts) == 3
    text = " ".join(parsed.text)
    assert "chart 0 formula" in text and "chart 2 formula" in text and "ms = milliseconds" in text


def test_text_is_escaped_never_markup():
    html = render(_report(charts=1))
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<i>p50</i>" not in html and "&lt;i&gt;p50&lt;/i&gt;" in html
    assert "<title>Run &lt;one&gt; &amp; two</title>" in html
    assert "first &lt;b&gt;" in html


def test_each_charts_own_data_is_in_the_file():
    fig = go.Figure(go.Scatter(x=[1.5, 2.5, 3.5], y=[10.25, 20.5, 30.75], name="unique-trace-name"))
    html = render(Report("r", sections=[Section("s", [Chart(fig)])]))
    assert '"name":"unique-trace-name"' in html and "10.25" in html and "30.75" in html


def test_facts_values_read_as_text():
    assert value_text({"X-A": "1", "X-B": "2"}) == "X-A: 1\nX-B: 2"
    assert value_text({"X-A": "1", "X-B": "2"}, "; ") == "X-A: 1; X-B: 2"
    assert [value_text(v) for v in ([], None, "", True, [1, 2], 2.5)] == ["–", "–", "–", "yes", "1, 2", "2.5"]


def test_write_puts_it_in_a_utf8_file(tmp_path):
    path = write(Report("Zeit – ö", sections=[Section("s", [Paragraph("naïve")])]), tmp_path / "r.html")
    assert "Zeit – ö" in path.read_text(encoding="utf-8") and "naïve" in path.read_text(encoding="utf-8")


def test_an_unknown_block_is_a_clear_error():
    try:
        render(Report("r", sections=[Section("s", ["just a string"])]))  # type: ignore[list-item]
    except TypeError as exc:
        assert "a report block is a Paragraph, Table, Facts or Chart, not str" in str(exc)
    else:
        raise AssertionError("a string block was rendered")
