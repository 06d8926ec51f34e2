"""Exported conversations say when they were made with the UTC offset (ISO 8601), not a bare local time."""
from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from lib.playground.export import ExportMeta, to_json, to_markdown
from lib.playground.transcript import Transcript, Turn

META = ExportMeta(target="Simulator · chat", base_url="http://127.0.0.1:5001/v1", app_name="Simulated Chatbot",
                  mode="chat", user="alice")


@pytest.fixture
def local_zone(monkeypatch):
    """Put the process in a POSIX TZ rule (no time zone database needed); the old zone comes back afterwards."""
    def use(rule: str) -> None:
        monkeypatch.setenv("TZ", rule)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("rule,offset", [("ICT-7", "+07:00"), ("UTC0", "+00:00"), ("NST+3:30", "-03:30")])
def test_markdown_and_json_write_the_export_time_with_its_utc_offset(local_zone, rule, offset):
    local_zone(rule)
    transcript = Transcript(turns=[Turn(query="Hi", kind="chat", answer="Hello")], conversation_id="c0ffee00-1234")
    before = datetime.now(UTC)
    md, doc = to_markdown(transcript, META), json.loads(to_json(transcript, META))
    [stamp] = re.findall(r"^- Exported: (\S+)$", md, re.M)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" + re.escape(offset), stamp), stamp
    for written in (stamp, doc["exported_at"]):
        when = datetime.fromisoformat(written)  # aware: it names its offset
        assert when.isoformat().endswith(offset)
        assert before - timedelta(seconds=1) <= when <= datetime.now(UTC) + timedelta(seconds=1)
