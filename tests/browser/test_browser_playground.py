"""The Playground in a real browser: tokens arrive one by one, Stop ends an answer midway and keeps
what arrived, and the page never shows an exception. `streamlit run app.py` in headless Chromium
(tests/support/browser.py), against a simulator paced like a real model (200 ms to the first token,
30 tokens/s), so a whole answer takes about three seconds.
"""
from __future__ import annotations

import re
import time

import pytest

from lib.dify import DifyClient
from lib.simulator.text import write_answer
from tests.conftest import KEYS
from tests.support.browser import (
    SIDEBAR,
    assert_no_exception,
    choose,
    expect,
    open_app,
    screenshot,
    start_console,
    start_console_simulator,
    wait_for_rerun,
)

PACE = ("--ttft-ms", "200", "--tokens-per-s", "30", "--jitter", "0")
MESSAGES = "[data-testid='stChatMessage']"
CHAT_INPUT = "[data-testid='stChatInputTextArea']"


@pytest.fixture(scope="module")
def paced_console(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("playground-browser")
    sim = start_console_simulator(tmp, *PACE)
    app = start_console(tmp, sim)
    yield app
    app.stop()
    sim.stop()


def answer_text(page) -> str:
    """The text of the last answer as shown (its Markdown block; not the buttons, notes or caption)."""
    blocks = page.locator(MESSAGES).last.locator("[data-testid='stMarkdownContainer']").all_inner_texts()
    return next((b.strip() for b in blocks if b.lstrip().startswith(("You asked", "คุณถามว่า"))), "")


def ask(page, text: str) -> None:
    box = page.locator(CHAT_INPUT)
    expect(box).to_be_enabled()
    box.fill(text)
    box.press("Enter")


def test_tokens_stream_in_and_stop_keeps_the_partial_answer(page, paced_console, tmp_path):
    open_app(page, paced_console, "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Playground")
    user = page.locator(SIDEBAR).get_by_role("textbox", name="User", exact=True).input_value()

    # 1. An answer grows on screen while it streams, then gets its timing caption.
    ask(page, "สวัสดีครับ ช่วยอธิบายการสตรีมแบบสั้น ๆ 🙏")
    lengths: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = page.get_by_text(re.compile(r"^First token \d")).count() > 0
        lengths.append(len(answer_text(page)))
        if done:
            break
        page.wait_for_timeout(100)  # a sampling interval, not a wait for a result
    growth = sorted(set(n for n in lengths[:-1] if n > 0))
    assert len(growth) >= 3, f"the answer did not grow on screen while streaming: {lengths}"
    full = answer_text(page)
    assert full.startswith("คุณถามว่า") and len(full) >= growth[-1]
    wait_for_rerun(page)
    assert_no_exception(page)
    screenshot(page, tmp_path / "streamed.png")

    # 2. A second answer, stopped midway: it ends early and keeps what had arrived.
    ask(page, "Tell me everything about streaming")
    stop = page.locator(f"{MESSAGES} button:visible", has_text="Stop")
    expect(stop).to_be_visible()
    deadline = time.monotonic() + 60
    while len(answer_text(page)) < 60 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    before = answer_text(page)
    stop.click()
    expect(page.get_by_text("Stopped: the answer above is what arrived before the stop.")).to_be_visible()
    wait_for_rerun(page)
    stopped = answer_text(page)
    assert stopped.startswith(before[:60]), (before, stopped)
    # The whole answer the simulator would have streamed (deterministic for its seed, 0 here).
    whole = write_answer(seed=0, app_name="Simulated Chatbot", query="Tell me everything about streaming",
                         inputs={"tone": "Friendly"}, turn=2)
    assert " ".join(whole.split()).startswith(" ".join(stopped.split()))
    assert len(stopped) < 0.6 * len(whole), f"the stopped answer did not end early: {len(stopped)} of {len(whole)} chars"
    captions = page.get_by_text(re.compile(r"^First token \d"))
    expect(captions).to_have_count(2)
    # The stopped answer's rate is over its streaming time, and its usage is labelled as Dify's for the stopped run.
    stats = captions.last.inner_text()
    assert re.search(r"Stopped at [\d.]+ (ms|s) · [\d.]+ tokens/s while streaming \([\d.]+ (ms|s)\) · "
                     r"Dify's usage for the stopped run: \d+ output tokens, \$[\d.]+$", stats), stats
    rate = float(re.search(r"([\d.]+) tokens/s", stats).group(1))
    assert 20 <= rate <= 40, f"the simulator streams 30 tokens/s, the caption says {rate}"
    assert_no_exception(page)
    screenshot(page, tmp_path / "stopped.png")

    # 3. Dify has each message once (no rerun resent one), the stopped one with exactly what arrived.
    with DifyClient(paced_console.simulator.url, KEYS["chat"]) as client:
        [conversation] = client.conversations(user=user).data
        messages = client.messages(conversation.id, user=user).data
    assert [m.query for m in messages] == ["สวัสดีครับ ช่วยอธิบายการสตรีมแบบสั้น ๆ 🙏", "Tell me everything about streaming"]
    assert " ".join(messages[1].answer.split()) == " ".join(stopped.split())


def test_plain_text_shows_as_typed_and_markdown_stays_markdown(page, paced_console, tmp_path):
    """Messages and answers: `17*23` is not italics, a pasted log keeps its lines, `$` is no LaTeX; a list
    and a code block still render as such."""
    open_app(page, paced_console, "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Playground")

    ask(page, "what is 17*23? and 2*3, for $5 or $10")
    user = page.locator(f"{MESSAGES}").filter(has=page.locator("[data-testid='stChatMessageAvatarUser']")).last
    expect(user).to_contain_text("what is 17*23? and 2*3, for $5 or $10")
    expect(page.get_by_text(re.compile(r"^First token \d"))).to_have_count(1)
    wait_for_rerun(page)
    answer = page.locator(MESSAGES).last
    expect(answer).to_contain_text('You asked: "what is 17*23? and 2*3, for $5 or $10"')
    expect(answer.get_by_text("Citations (2)")).to_be_visible()
    answer.get_by_text("Citations (2)").click()
    expect(answer).to_contain_text("retrieved for “what is 17*23? and 2*3, for $5 or $10”")
    assert page.locator(f"{MESSAGES} em, {MESSAGES} .katex").count() == 0  # no italics, no math

    log = "2026-12-03 13:02:11 INFO start\n  worker 1 ready\n2026-12-03 13:02:12 WARN slow_disk_write # 3"
    ask(page, log)
    expect(page.get_by_text(re.compile(r"^First token \d"))).to_have_count(2)
    wait_for_rerun(page)
    user = page.locator(MESSAGES).filter(has=page.locator("[data-testid='stChatMessageAvatarUser']")).last
    shown = user.locator("[data-testid='stMarkdownContainer']").first.inner_text()
    lines = [line.replace("\xa0", " ").rstrip() for line in shown.split("\n")]
    assert lines == log.split("\n"), lines

    ask(page, "Steps:\n\n- first **step**\n- second\n\n```\nprint(2*3)\n```")
    expect(page.get_by_text(re.compile(r"^First token \d"))).to_have_count(3)
    wait_for_rerun(page)
    user = page.locator(MESSAGES).filter(has=page.locator("[data-testid='stChatMessageAvatarUser']")).last
    assert user.locator("li").all_inner_texts() == ["first step", "second"]
    assert user.locator("strong").inner_text() == "step"
    assert user.locator("pre code").inner_text().strip() == "print(2*3)"
    assert_no_exception(page)
    screenshot(page, tmp_path / "markdown.png")


def test_a_new_workflow_run_shows_nothing_of_the_run_before(page, paced_console, tmp_path):
    open_app(page, paced_console, "/")
    choose(page, "Target", "Simulator · workflow")
    expect(page.get_by_role("button", name="Run")).to_be_visible()
    page.get_by_role("textbox", name="Topic *").fill("bridges")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_text(re.compile(r"^First token \d"))).to_have_count(1)
    wait_for_rerun(page)

    page.get_by_role("textbox", name="Topic *").fill("rivers")
    page.get_by_role("button", name="Run").click()
    stop = page.locator("button:visible", has_text="Stop")
    expect(stop).to_be_visible()
    # While the new run streams, its box holds nothing of the run before it (its caption, its outputs).
    seen = []
    while stop.count():
        box = page.locator("[data-testid='stVerticalBlock']", has=stop, has_text="topic: rivers").last
        if box.count():
            seen.append((box.get_by_text(re.compile(r"^First token \d")).count(), box.get_by_text("Outputs", exact=True).count()))
        page.wait_for_timeout(100)
    assert len(seen) > 5 and all(s == (0, 0) for s in seen), seen
    expect(page.get_by_text(re.compile(r"^First token \d"))).to_have_count(2)
    wait_for_rerun(page)

    screenshot(page, tmp_path / "workflow.png")
    assert_no_exception(page)



def test_a_paste_over_a_fields_limit_lands_and_the_page_says_it_is_over(page, paced_console, tmp_path):
    """Streamlit's max_chars would drop a 100k-character paste whole and silently; the field keeps it, says it is
    over the app's max_length, and nothing is sent until it fits. (fill() is one input event carrying the whole
    text, as a paste is.)"""
    paste = "Lorem ipsum dolor sit amet. " * 3572 + "tail"  # 100,020 characters
    open_app(page, paced_console, "/")
    choose(page, "Target", "Simulator · workflow")
    topic = page.get_by_role("textbox", name="Topic *")
    expect(topic).to_be_visible()
    topic.fill(paste)
    page.get_by_role("button", name="Run").click()  # in a form: the value reaches the app on submit
    expect(page.get_by_text("Not sent: Topic takes at most 200 characters; it has 100,020.")).to_be_visible()
    expect(page.get_by_text("Topic has 100,020 characters, over this app's limit of 200: nothing is sent until it fits. "
                            "Shorten it by 99,820 characters.")).to_be_visible()
    wait_for_rerun(page)
    assert topic.input_value() == paste  # nothing lost
    assert page.get_by_text(re.compile(r"^First token \d")).count() == 0  # nothing sent
    screenshot(page, tmp_path / "over-limit.png")

    topic.fill(paste[:200])  # exactly the limit: sent
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_text(re.compile(r"^First token \d"))).to_have_count(1)
    wait_for_rerun(page)
    expect(page.get_by_text(re.compile(r"over this app's limit"))).to_have_count(0)

    # Outside a form (the chat app's inputs), the notice comes as soon as the field loses focus.
    choose(page, "Target", "Simulator · chat")
    page.get_by_text(re.compile(r"^App inputs")).click()
    name = page.get_by_role("textbox", name="Your name", exact=True)
    name.fill(paste)
    name.press("Tab")
    expect(page.get_by_text("Your name has 100,020 characters, over this app's limit of 48: nothing is sent until it "
                            "fits. Shorten it by 99,972 characters.")).to_be_visible()
    assert name.input_value() == paste
    assert_no_exception(page)
