"""The chat page in headless Chromium: a proposal submitted with the keyboard alone.

Needs Debian's ``chromium`` (``.ci/run`` installs it). Without it the test is skipped with the
reason, unless ``GONGNON_TEST_REQUIRE_BROWSER=1`` (then it fails). Set
``GONGNON_TEST_SCREENSHOTS=<dir>`` to keep screenshots of the page for a look.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bots.server import CORE, create_app
from core.commands import ChangeStatus
from core.domain.model import ProposalStatus
from tests.conftest import make_settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TRACKING = re.compile(r"P-\d{4}-\d{6}")


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)"
    if os.environ.get("GONGNON_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GONGNON_TEST_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
async def server(tmp_path: Path, database_url: str) -> AsyncIterator[TestServer]:
    """The whole gongnon server, delivery worker included, on a free port."""
    _require_chromium()
    settings = make_settings(tmp_path, database_url=database_url, run_workers=True)
    instance = TestServer(create_app(settings), host="127.0.0.1")
    await instance.start_server()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def base_url(server: TestServer) -> str:
    return str(server.make_url("/")).rstrip("/")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()


async def focused(page: Any) -> str:
    """A short description of the focused element: ``#id`` or ``[data-choice=…]``."""
    return await page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el || el === document.body) return "body";
            if (el.dataset && el.dataset.choice) return `[data-choice=${el.dataset.choice}]`;
            return el.id ? `#${el.id}` : el.tagName.toLowerCase();
        }"""
    )


async def tab_to(page: Any, target: str, *, limit: int = 40, key: str = "Tab") -> None:
    """Press Tab (or Shift+Tab) until ``target`` has the keyboard focus."""
    for _ in range(limit):
        if await focused(page) == target:
            return
        await page.keyboard.press(key)
    raise AssertionError(f"{target} never got the focus by Tab (last: {await focused(page)})")


async def wait_choice(page: Any, choice_id: str) -> None:
    await page.wait_for_selector(f'#choices [data-choice="{choice_id}"]', state="visible")


async def focus_ring(page: Any) -> str:
    return await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")


async def shoot(page: Any, name: str) -> None:
    folder = os.environ.get("GONGNON_TEST_SCREENSHOTS")
    if folder:
        await page.screenshot(path=str(Path(folder) / f"{name}.png"))


async def test_submit_a_proposal_with_the_keyboard_alone(
    browser: Any, server: TestServer, base_url: str
) -> None:
    context = await browser.new_context(viewport={"width": 1024, "height": 900}, locale="ko-KR")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    await page.goto(base_url + "/")
    assert await page.get_attribute("html", "lang") == "ko"
    assert await page.get_attribute("#log", "aria-live") == "polite"
    await wait_choice(page, "menu:submit")
    await shoot(page, "1-greeting")

    # Main menu → "submit a proposal", by Tab and Enter.
    await tab_to(page, "[data-choice=menu:submit]")
    assert await focus_ring(page) != "none"  # the focus is visible
    await page.keyboard.press("Enter")

    # The title and the body: typed; the page moves the focus back to the text box.
    await page.wait_for_function("() => document.activeElement.id === 'message'")
    await page.keyboard.type("버스 정류장에 그늘막을 설치해 주세요")
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "() => document.querySelectorAll('#log .msg.bot').length >= 3"
        " && !document.querySelector('#status').textContent"
    )
    await tab_to(page, "#message")
    await page.keyboard.type("여름마다 버스를 기다리는 어르신들이 햇볕 아래 오래 서 계십니다.")
    await page.keyboard.press("Shift+Enter")  # a new line, not a send
    await page.keyboard.type("그늘막을 설치해 주시면 좋겠습니다.")
    await page.keyboard.press("Enter")

    # Category: Tab to the button, Enter. Additions (region, photo, location): "없음" typed.
    await wait_choice(page, "cat:transport")
    await tab_to(page, "[data-choice=cat:transport]")
    await page.keyboard.press("Enter")
    await wait_choice(page, "ext:done")
    await shoot(page, "2-extras")
    await tab_to(page, "#message")
    await page.keyboard.type("없음")
    await page.keyboard.press("Enter")

    await wait_choice(page, "rev:confirm")
    await shoot(page, "3-review")
    await tab_to(page, "[data-choice=rev:confirm]")
    await page.keyboard.press("Enter")

    await page.wait_for_function(
        "() => /P-\\d{4}-\\d{6}/.test(document.querySelector('#log').textContent)"
    )
    log = await page.text_content("#log")
    found = TRACKING.search(log or "")
    assert log is not None and found
    assert "버스 정류장에 그늘막을 설치해 주세요" in log
    await shoot(page, "4-tracking-number")

    # An official moves it along: the open page shows the notice (SSE), and says it aloud
    # through the polite log.
    await server.app[CORE].execute(
        ChangeStatus(
            tracking=found.group(0),
            status=ProposalStatus.UNDER_REVIEW,
            reason="담당 부서에서 현장을 확인하고 있습니다.",
            actor="slack:U0OFFICIAL",
            source="slack",
        )
    )
    notice = await page.wait_for_selector("#log .msg.notice")
    text = await notice.text_content()
    assert text is not None and found.group(0) in text and "검토 중" in text
    await shoot(page, "5-status-notice")
    # Its own button, reached backwards from the message box, opens the proposal.
    await tab_to(page, "#message")
    await tab_to(page, f"[data-choice=p:{found.group(0)}:show]", key="Shift+Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "() => document.querySelectorAll('#log .msg.bot:not(.notice)').length > 0"
        " && document.querySelector('#log').lastElementChild.textContent.includes('검토 중')"
    )
    assert problems == []
    await context.close()


async def test_page_reflows_on_a_phone_and_switches_to_english(
    browser: Any, base_url: str
) -> None:
    # 320 CSS px wide is what a 1280 px window shows at 400 % zoom (WCAG reflow).
    context = await browser.new_context(
        viewport={"width": 320, "height": 640}, reduced_motion="reduce", locale="ko-KR"
    )
    page = await context.new_page()
    await page.goto(base_url + "/")
    await wait_choice(page, "menu:submit")
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await shoot(page, "6-phone")

    await tab_to(page, "#lang-button")
    await page.keyboard.press("Enter")
    await page.wait_for_function("() => document.documentElement.lang === 'en'")
    await page.wait_for_function(
        "() => document.querySelector('#send-button').textContent.trim() === 'Send'"
    )
    await wait_choice(page, "menu:submit")
    label = await page.text_content('#choices [data-choice="menu:submit"]')
    assert label is not None and re.search("[A-Za-z]", label)
    await shoot(page, "7-english")

    # The session (in localStorage) survives a reload: the page resumes it quietly.
    token = await page.evaluate("() => localStorage.getItem('gongnon.session')")
    await page.reload()
    await wait_choice(page, "menu:submit")
    assert await page.evaluate("() => localStorage.getItem('gongnon.session')") == token
    assert await page.get_attribute("html", "lang") == "en"
    await context.close()
