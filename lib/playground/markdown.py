"""Chat text -> Markdown that shows what was written: `17*23` stays `17*23`, a pasted log keeps its lines.

st.markdown reads everything as Markdown (and `$...$` as LaTeX): single asterisks pair up into italics,
single newlines join lines, `$5 and $10` turns into math. `safe_markdown` keeps the Markdown a text means
(fenced code, lists, headings, tables, quotes, links, **bold**, `code`) and shows the rest as typed: plain
text is fully escaped; Markdown text keeps its structure but gets hard line breaks and escaped `$`.

Hand-written: Markdown libraries render to HTML and none writes "this text, as Markdown that displays
it literally"; the rules below are small and tested against st.markdown in a browser.
"""
from __future__ import annotations

import re

# Lines or spans that show the text was written as Markdown (an LLM's list, table or code block).
_MARKDOWN_SIGNS = re.compile(
    r"^ {0,3}(```|~~~)"  # a code fence
    r"|^ {0,3}#{1,6} \S"  # a heading
    r"|^ {0,3}([-*+]|\d{1,3}[.)]) +\S"  # a list item
    r"|^ {0,3}> ?\S"  # a quote
    r"|^ {0,3}\|?\s*:?-{3,}:?\s*\|"  # a table's separator row
    r"|\[[^\]\n]+\]\(\S+\)"  # a link
    r"|\*\*\S[^*\n]*\*\*|__\S[^_\n]*__"  # bold
    r"|`[^`\n]+`",  # inline code
    re.M,
)
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$=:])")  # backslash-escapable in CommonMark (+ $ for LaTeX)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def looks_like_markdown(text: str) -> bool:
    return bool(_MARKDOWN_SIGNS.search(text))


def safe_markdown(text: str) -> str:
    """`text` for st.markdown: shown literally unless it is meant as Markdown; line breaks kept either way."""
    return _keep_markdown(text) if looks_like_markdown(text) else escape_markdown(text)


def escape_markdown(text: str) -> str:
    """Every character shown as typed: Markdown escaped, each line break a line break, indentation kept."""
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        indent = "&nbsp;" * (len(line) - len(body))  # a leading space would be dropped, or start a code block
        lines.append(indent + _SPECIAL.sub(r"\\\1", body))
    return _hard_breaks(lines)


def _keep_markdown(text: str) -> str:
    """Markdown as written, except: single newlines break the line (outside code blocks) and `$` is literal."""
    lines, in_fence = [], False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            lines.append(line)
            continue
        lines.append(line if in_fence or not line.strip() else _escape_dollars(line) + _BREAK_MARK)
    out = "\n".join(lines)
    # Hard breaks only where a line goes on: not before a blank line, a fence or the end (nothing to break).
    return re.sub(re.escape(_BREAK_MARK) + r"(?=\n\s*\n|\n {0,3}(```|~~~)|$)", "", out).replace(_BREAK_MARK, "  ")


_BREAK_MARK = "\x00BR\x00"


def _escape_dollars(line: str) -> str:
    """`$` -> `\\$` outside inline code (st.markdown reads `$...$` as LaTeX; in code a backslash would show)."""
    out, last = [], 0
    for m in _CODE_SPAN.finditer(line):
        out.append(line[last:m.start()].replace("$", "\\$"))
        out.append(m.group(0))
        last = m.end()
    out.append(line[last:].replace("$", "\\$"))
    return "".join(out)


def _hard_breaks(lines: list[str]) -> str:
    """Join lines so each newline shows as one: two trailing spaces, except before a blank line or the end."""
    out = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        out.append(line + ("  " if line.strip() and nxt is not None and nxt.strip() else ""))
    return "\n".join(out)
