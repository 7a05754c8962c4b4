"""The playground's other buttons in Chromium: answers appear piece by piece, regenerate, rollback,
context, a reload that brings the conversation back, the non-streaming kinds, Stop (the partial
answer stays on screen, marked)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX
from tests.browser.conftest import Serve

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def ask(page: Page, question: str) -> str:
    await page.fill("#input", question)
    await page.press("#input", "Enter")
    answer = page.locator("article.msg.ai").last
    await expect(page.locator("#send")).to_be_visible()
    await expect(answer).not_to_have_class("msg ai pending")
    return await answer.locator(".rich").inner_text()


async def test_a_streamed_answer_shows_while_it_arrives(page: Page, serve: Serve) -> None:
    served = await serve()
    served.fake.state.chunk_delay = 0.04
    await page.goto(served.url + "/")
    await page.fill("#input", "one two three four five six")
    await page.press("#input", "Enter")
    answer = page.locator("article.msg.ai").last
    await expect(answer.locator(".rich")).to_contain_text("Demo answer")
    # Seen before the end: still pending, not yet whole, and Stop is offered.
    assert "pending" in (await answer.get_attribute("class") or "")
    assert "six" not in await answer.inner_text()
    await expect(page.locator("#stop")).to_be_visible()
    await expect(answer).not_to_have_class("msg ai pending")
    assert await answer.locator(".rich").inner_text() == CHAT_PREFIX + "one two three four five six"


async def test_regenerate_rollback_and_context(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "first")
    await ask(page, "second")
    await page.click("#regenerate")
    await expect(page.locator("#regenerate")).to_be_enabled()
    assert sum(1 for r in served.fake.state.requests if r.path.endswith("/chat/completions")) == 3
    assert await page.locator("article.msg.ai .rich").last.inner_text() == CHAT_PREFIX + "second"
    await page.click("#rollback")
    await expect(page.locator("article.msg")).to_have_count(2)
    await page.click("#context")
    dialog = page.locator("#context-dialog")
    await expect(dialog).to_be_visible()
    text = await page.locator("#context-text").inner_text()
    assert "user: first" in text and "second" not in text
    await page.click("#context-dialog button")
    await expect(dialog).to_be_hidden()
    assert getattr(page, "js_errors") == []  # noqa: B009


async def test_a_reload_brings_the_conversation_back(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "remember me")
    label = await page.locator("#conv-label").inner_text()
    await page.reload()
    await expect(page.locator("article.msg")).to_have_count(2)
    await expect(page.locator("article.msg.human .rich")).to_have_text("remember me")
    assert await page.locator("#conv-label").inner_text() == label
    await page.click("#new-chat")
    await expect(page.locator("article.msg")).to_have_count(0)
    await expect(page.locator("#conv-label")).to_have_text("")


@pytest.mark.parametrize(
    ("kind", "answer"),
    [("gpt3", COMPLETION_PREFIX + "hello"), ("gpt4", CHAT_PREFIX + "hello")],
)
async def test_the_non_streaming_kinds_answer_too(page: Page, serve: Serve, kind: str, answer: str) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await page.select_option("#kind", kind)
    assert await ask(page, "hello") == answer
    await expect(page.locator("#conv-label")).to_contain_text(kind)
    await expect(page.locator("#kind")).to_be_disabled()  # a conversation keeps its kind


async def test_stop_keeps_the_partial_answer_and_the_conversation_as_it_was(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "kept")
    served.fake.state.chunk_delay = 0.2
    await page.fill("#input", "interrupted question here")
    await page.press("#input", "Enter")
    answer = page.locator("article.msg.ai").last
    await expect(answer).to_contain_text("Demo")
    await page.click("#stop")
    # What arrived stays on screen, marked, and the page says the server dropped the turn.
    await expect(answer).to_have_class("msg ai stopped")
    assert (await answer.locator(".rich").inner_text()).startswith("Demo")
    assert "here" not in await answer.locator(".rich").inner_text()
    await expect(answer.locator(".stopped-note")).to_contain_text(
        "The server kept the conversation as it was before this question"
    )
    await expect(page.locator("article.msg")).to_have_count(4)
    await expect(page.locator("#input")).to_have_value("interrupted question here")  # to send again
    await page.click("#context")
    assert "interrupted" not in await page.locator("#context-text").inner_text()
    await page.click("#context-dialog button")
    # The next turn shows the conversation as the server has it: the stopped turn is gone.
    served.fake.state.chunk_delay = 0
    await page.fill("#input", "next")
    await page.press("#input", "Enter")
    await expect(page.locator("article.msg .rich")).to_have_text(
        ["kept", CHAT_PREFIX + "kept", "next", CHAT_PREFIX + "next"]
    )
    await expect(page.locator("article.msg.stopped")).to_have_count(0)
