"""The playground's context gauge in Chromium: filled from the answer's X-Context-* headers, and
the turns the last request left out dimmed."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Serve

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def ask(page: Page, question: str) -> None:
    await page.fill("#input", question)
    await page.press("#input", "Enter")
    await expect(page.locator("#send")).to_be_visible()
    await expect(page.locator("article.msg.ai").last).not_to_have_class("msg ai pending")


async def test_the_gauge_and_the_turns_left_out(page: Page, serve: Serve) -> None:
    served = await serve(context={"windows": {"gpt-4o-mini": 300}, "reserve": 50})
    await page.goto(served.url + "/")
    gauge = page.locator("#context-gauge")
    await ask(page, "hello")
    await expect(gauge).to_be_visible()
    assert await gauge.get_attribute("max") == "300"
    await expect(page.locator("article.msg.left-out")).to_have_count(0)
    for index in range(4):
        await ask(page, f"Question {index}: " + " ".join(f"word{index}x{n}" for n in range(12)))
    title = await gauge.get_attribute("title") or ""
    assert "oldest turn(s) left out" in title
    dropped = int(title.split("; ")[1].split(" ")[0])
    await expect(page.locator("article.msg.left-out")).to_have_count(2 * dropped)
    first = page.locator("article.msg").first
    assert "left-out" in (await first.get_attribute("class") or "")
    last = page.locator("article.msg").last
    assert "left-out" not in (await last.get_attribute("class") or "")
    assert getattr(page, "js_errors") == []  # noqa: B009
