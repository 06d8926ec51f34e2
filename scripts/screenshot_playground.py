"""Take the README's Playground screenshot (docs/playground.png) from the running app.

    .venv/bin/python scripts/screenshot_playground.py [--out docs/playground.png]

Starts a paced simulator and `streamlit run app.py` with the browser-test harness
(tests/support/browser.py: Debian chromium via PyPI playwright, headless), asks the chat app a
question in Thai, waits for the streamed answer and its timing caption, and saves the page.
Needs chromium and fonts-thai-tlwg / fonts-noto-color-emoji (see scripts/install_system_deps.sh).
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.browser import (  # noqa: E402
    assert_no_exception,
    chromium,
    expect,
    open_app,
    start_console,
    start_console_simulator,
    wait_for_rerun,
)

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

QUESTION = "สวัสดีครับ ช่วยอธิบายการสตรีมคำตอบแบบสั้น ๆ หน่อย 🙏"
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "playground.png")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="playground-shot-"))
    sim = start_console_simulator(tmp, "--ttft-ms", "250", "--tokens-per-s", "60", "--jitter", "0.1", "--seed", "3")
    app = start_console(tmp, sim)
    try:
        with chromium() as browser:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            context.set_default_timeout(60_000)
            page = context.new_page()
            open_app(page, app, "/")
            box = page.locator("[data-testid='stChatInputTextArea']")
            box.fill(QUESTION)
            box.press("Enter")
            expect(page.get_by_text(re.compile(r"^First token \d"))).to_be_visible()
            wait_for_rerun(page)
            expect(page.get_by_text("Suggested follow-ups", exact=True)).to_be_visible()
            assert_no_exception(page)
            page.get_by_role("heading", level=1).scroll_into_view_if_needed()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            context.close()
    finally:
        app.stop()
        sim.stop()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
