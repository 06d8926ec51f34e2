"""A transcript as Markdown (to read and share) and JSON (to keep and diff). Never the API key:
`ExportMeta` has no field for it, and turns never hold it. Times are written with their UTC offset
(ISO 8601), so a file read in another time zone says when it was made."""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from .transcript import Transcript, Turn, format_seconds


@dataclass(frozen=True)
class ExportMeta:
    target: str
    base_url: str
    app_name: str
    mode: str
    user: str

    def file_stem(self, transcript: Transcript) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.app_name.lower()).strip("-") or "dify-app"
        suffix = (transcript.conversation_id or time.strftime("%Y%m%d-%H%M%S"))[:8]
        return f"{slug}-{suffix}"


def to_json(transcript: Transcript, meta: ExportMeta) -> str:
    doc = {
        "exported_at": now_iso(),
        **asdict(meta),
        "conversation_id": transcript.conversation_id,
        "conversation_name": transcript.name or None,
        "turns": [t.as_dict() for t in transcript.turns],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)


def to_markdown(transcript: Transcript, meta: ExportMeta) -> str:
    title = transcript.name or f"Conversation with {meta.app_name}"
    lines = [
        f"# {title}",
        "",
        f"- App: **{meta.app_name}** ({meta.mode})",
        f"- Target: {meta.target} ({meta.base_url})",
        f"- User: `{meta.user}`",
    ]
    if transcript.conversation_id:
        lines.append(f"- Conversation: `{transcript.conversation_id}`")
    lines.append(f"- Exported: {now_iso()}")
    for n, turn in enumerate(transcript.turns, start=1):
        lines += ["", "---", ""] + _turn_markdown(n, turn, meta.app_name)
    return "\n".join(lines).rstrip() + "\n"


def now_iso() -> str:
    """The console's local time now with its UTC offset, e.g. `2026-01-05T14:03:12+07:00`."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _turn_markdown(n: int, turn: Turn, app_name: str) -> list[str]:
    out = []
    if turn.query:
        out += [f"### {n}. You", "", turn.query, ""]
    if turn.inputs:
        inputs = ", ".join(f"{k} = {v!r}" if not isinstance(v, str) else f"{k} = {v}" for k, v in turn.inputs.items())
        out += [f"*Inputs:* {inputs}", ""]
    if turn.files:
        out += [f"*Files:* {', '.join(turn.files)}", ""]
    out += [f"### {n}. {turn.label or app_name}", "", turn.answer or "*(no text)*", ""]
    if turn.outputs and set(turn.outputs) != {"text"}:
        out += ["```json", json.dumps(turn.outputs, ensure_ascii=False, indent=2), "```", ""]
    if turn.status == "stopped":
        out += ["*Stopped before the end; the answer above is what arrived.*", ""]
    if turn.error:
        out += [f"> **Error:** {turn.error}", ""]
    for step in turn.thoughts:
        if step.tool:
            out += [f"- Tool `{step.tool}` with `{step.tool_input}` → {_one_line(step.observation)}"]
    for node in turn.nodes:
        out += [f"- Node {node.title} ({node.node_type}): {node.status}, {format_seconds(node.elapsed_s)}"]
    for c in turn.citations:
        out += [f"- Source {c.position}: {c.document_name} ({c.dataset_name}) — {_one_line(c.content)}"]
    if turn.thoughts or turn.nodes or turn.citations:
        out.append("")
    if turn.stats:
        out += [f"*{turn.stats.caption()}*", ""]
    if turn.feedback:
        out += [f"*Feedback: {turn.feedback}*", ""]
    return out


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
