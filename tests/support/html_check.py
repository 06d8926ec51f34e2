"""Read an HTML report back with the standard library's html.parser: its tags must balance, and what it
loads (script src, link href) and holds (text, plotly divs) is collected for the test to check."""
from __future__ import annotations

from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.sources: list[str] = []  # every src= and href= (a self-contained file has none to fetch)
        self.scripts: list[str] = []  # the text of each inline script
        self.plot_divs = 0
        self.text: list[str] = []  # the visible text, script and style left out
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name):
                self.sources.append(attrs[name])
        if "plotly-graph-div" in (attrs.get("class") or "").split():
            self.plot_divs += 1
        if tag in ("script", "style"):
            self._in = tag
            if tag == "script":
                self.scripts.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}> at line {self.getpos()[0]}")
            if tag in self.stack:  # recover as a browser would
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in is None:
            self.text.append(data)


def parse_report(html: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    parser.close()
    if parser.stack:
        parser.problems.append(f"never closed: {parser.stack}")
    return parser
