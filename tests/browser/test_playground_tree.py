"""The playground shows conversation trees, in Chromium: Markdown answers rendered through the
sanitizer (a smuggled script never runs), "‹ n/m ›" paging through siblings, edit, fork, the
side list of conversations after a reload, and the page at 390 px and 1280 px wide (screenshots
kept under ``test-artifacts/``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from alice_py.fake import CHAT_PREFIX
from alice_py.fake.state import RecordedRequest
from tests.browser.conftest import Serve

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
"""Screenshots a person looks at after a run (git-ignored; CI keeps the folder)."""

MARKDOWN = """Markdown please

# A heading

Some **bold** and *italic* text, and `inline code`.

- first item
- second item

| name | value |
|------|-------|
| cat  | 4     |

```python
print("hello")
```

A [link](https://example.com/page) to follow."""

WIDE = """Wide things

```
a_very_long_line_of_code_that_does_not_fit = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
```

| one | two | three | four | five | six | seven | eight | nine | ten |
|-----|-----|-------|------|------|-----|-------|-------|------|-----|
| aaaaaaaa | bbbbbbbb | cccccccc | dddddddd | eeeeeeee | ffffffff | gggggggg | hhhhhhhh | iiii | jjjj |

https://example.com/a/very/long/address/without/any/spaces/that/would/push/the/page/wider/than/it/is"""


def chats(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in requests if r.path.endswith("/chat/completions")]


def user_texts(request: RecordedRequest) -> list[str]:
    """The questions of a chat request that reached the model: the path it was given."""
    return [m["content"] for m in request.body["messages"] if m["role"] == "user"]


async def ask(page: Page, question: str) -> None:
    await page.fill("#input", question)
    await page.press("#input", "Enter")
    await expect(page.locator("#send")).to_be_visible()
    await expect(page.locator("article.msg.ai").last).not_to_have_class("msg ai pending")


def message(page: Page, index: int) -> Locator:
    """The ``index``-th message on screen (the path from the root to the current leaf)."""
    return page.locator("#log article.msg").nth(index)


async def test_an_answer_in_markdown_is_rendered(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, MARKDOWN)
    answer = page.locator("article.msg.ai .rich").last
    await expect(answer.locator("h1")).to_have_text("A heading")
    await expect(answer.locator("strong")).to_have_text("bold")
    await expect(answer.locator("em")).to_have_text("italic")
    await expect(answer.locator("ul > li")).to_have_text(["first item", "second item"])
    await expect(answer.locator("table td").first).to_have_text("cat")
    await expect(answer.locator("pre[data-lang=python] code")).to_have_text('print("hello")')
    link = answer.locator("a", has_text="link")
    assert await link.get_attribute("href") == "https://example.com/page"
    assert await link.get_attribute("target") == "_blank"
    assert await link.get_attribute("rel") == "noopener"
    # The question is shown as typed: its Markdown is not interpreted.
    question = page.locator("article.msg.human .rich").last
    await expect(question).to_contain_text("# A heading")
    await expect(question.locator("h1")).to_have_count(0)
    assert getattr(page, "js_errors") == []  # noqa: B009


async def test_a_script_in_an_answer_is_not_run(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    evil = (
        'Look: <script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
        '<a href="javascript:window.__pwned = 3">click me</a> <b onmouseover="window.__pwned = 4">bold</b>'
        "\n\n[also me](javascript:window.__pwned=5)"
    )
    await ask(page, evil)
    answer = page.locator("article.msg.ai .rich").last
    await expect(answer).to_contain_text("click me")
    await expect(answer.locator("b")).to_have_text("bold")  # harmless markup stays
    for selector in ("script", "img", "[onerror]", "[onmouseover]", "a[href^='javascript']"):
        await expect(answer.locator(selector)).to_have_count(0)
    await answer.locator("b").hover()
    await answer.get_by_text("click me").click()
    await answer.get_by_text("also me").click()
    assert await page.evaluate("window.__pwned") is None


async def test_paging_through_regenerated_answers(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "Question A")
    await page.click("#regenerate")
    await expect(message(page, 1).locator(".pos")).to_have_text("2/2")
    await ask(page, "Question B")  # continues below the second answer
    await expect(page.locator("#log article.msg")).to_have_count(4)
    await message(page, 1).locator("button.prev").click()
    # The first answer's branch: it has nothing below it.
    await expect(message(page, 1).locator(".pos")).to_have_text("1/2")
    await expect(page.locator("#log article.msg")).to_have_count(2)
    await expect(message(page, 1).locator("button.prev")).to_be_disabled()
    await message(page, 1).locator("button.next").click()
    await expect(page.locator("#log article.msg")).to_have_count(4)
    await expect(message(page, 2).locator(".rich")).to_have_text("Question B")
    # A turn after paging back continues the branch on screen.
    await message(page, 1).locator("button.prev").click()
    await expect(page.locator("#log article.msg")).to_have_count(2)
    await ask(page, "Question C")
    assert user_texts(chats(served.fake.state.requests)[-1]) == ["Question A", "Question C"]
    assert getattr(page, "js_errors") == []  # noqa: B009


async def test_editing_a_question_makes_a_branch(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "cats")
    await ask(page, "dogs")
    await message(page, 2).locator("button.edit").click()
    box = message(page, 2).locator(".edit-box textarea")
    await expect(box).to_have_value("dogs")
    await box.fill("birds")
    await box.press("Enter")
    await expect(page.locator("#send")).to_be_visible()
    await expect(message(page, 2).locator(".rich")).to_have_text("birds")
    await expect(message(page, 3).locator(".rich")).to_have_text(CHAT_PREFIX + "birds")
    await expect(message(page, 2).locator(".pos")).to_have_text("2/2")
    assert user_texts(chats(served.fake.state.requests)[-1]) == ["cats", "birds"]
    # The old branch is still there.
    await message(page, 2).locator("button.prev").click()
    await expect(message(page, 2).locator(".rich")).to_have_text("dogs")
    await expect(message(page, 3).locator(".rich")).to_have_text(CHAT_PREFIX + "dogs")
    # Editing the first question pages at the root.
    await message(page, 0).locator("button.edit").click()
    await message(page, 0).locator(".edit-box textarea").fill("mice")
    await message(page, 0).locator(".edit-box button[type=submit]").click()
    await expect(message(page, 0).locator(".pos")).to_have_text("2/2")
    await expect(page.locator("#log article.msg")).to_have_count(2)
    assert user_texts(chats(served.fake.state.requests)[-1]) == ["mice"]
    assert getattr(page, "js_errors") == []  # noqa: B009


async def test_fork_from_here_starts_an_independent_conversation(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "one")
    await ask(page, "two")
    original = await page.locator("#conv-label").inner_text()
    await message(page, 1).locator("button.fork").click()
    await expect(page.locator("#conv-label")).not_to_have_text(original)
    await expect(page.locator("#log article.msg")).to_have_count(2)
    await expect(page.locator("#notice-text")).to_contain_text("Forked")
    await ask(page, "three")
    assert user_texts(chats(served.fake.state.requests)[-1]) == ["one", "three"]
    entries = page.locator("#history li")
    await expect(entries).to_have_count(2)
    await expect(entries.first).to_contain_text("fork")
    await entries.nth(1).locator("button.open").click()  # the original, unchanged
    await expect(page.locator("#conv-label")).to_have_text(original)
    await expect(page.locator("#log article.msg .rich")).to_have_text(
        ["one", CHAT_PREFIX + "one", "two", CHAT_PREFIX + "two"]
    )


async def test_the_side_list_survives_a_reload_and_reopens_through_tree(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "about apples")
    await ask(page, "and pears")
    await page.click("#new-chat")
    await page.select_option("#kind", "gpt4")
    await ask(page, "about plums")
    await page.reload()
    entries = page.locator("#history li")
    await expect(entries).to_have_count(2)
    await expect(entries.locator(".q")).to_have_text(["about plums", "about apples"])
    await expect(entries.locator(".meta")).to_contain_text(["gpt4", "turbo"])
    await expect(entries.first).to_have_class("current")
    # A fresh tab (no session storage) still lists them, and opens one from the server's tree.
    fresh = await page.context.new_page()
    await fresh.goto(served.url + "/")
    async with fresh.expect_request(lambda r: r.url.endswith("/chatgpt/tree")):
        await fresh.locator("#history li").nth(1).locator("button.open").click()
    await expect(fresh.locator("#log article.msg .rich")).to_have_text(
        ["about apples", CHAT_PREFIX + "about apples", "and pears", CHAT_PREFIX + "and pears"]
    )
    await expect(fresh.locator("#kind")).to_have_value("turbo")


async def test_an_expired_conversation_leaves_the_side_list(page: Page, serve: Serve) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "soon gone")
    await page.click("#new-chat")
    # The server forgot it (finished elsewhere, or its time to live passed).
    gone = await page.evaluate("JSON.parse(localStorage.getItem('alice-playground-history'))[0].id")
    await page.evaluate("id => fetch('chatgpt/finish', {method: 'POST', headers: {conversation: id}})", gone)
    await page.locator("#history li button.open").first.click()
    await expect(page.locator("#notice-text")).to_contain_text("expired")
    await expect(page.locator("#history li")).to_have_count(0)


async def test_at_390_px_nothing_overflows(browser: Browser, serve: Serve) -> None:
    served = await serve()
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        reduced_motion="reduce",  # the drawer opens at once: the screenshot shows it open
    )
    context.set_default_timeout(5000)
    try:
        page = await context.new_page()
        await page.goto(served.url + "/")
        await ask(page, MARKDOWN)
        await ask(page, WIDE)
        await message(page, 3).scroll_into_view_if_needed()
        assert await page.evaluate("innerWidth") == 390
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        # Every element of the chat stays inside the screen (wide code and tables scroll in their box).
        overflowing = await page.evaluate(
            """() => [...document.querySelectorAll('.app *')]
                 .filter((e) => e.getClientRects().length && !e.closest('pre, .table-scroll'))
                 .filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5)
                 .map((e) => e.tagName + '.' + e.className)"""
        )
        assert overflowing == []
        # The kind selector shows its whole label.
        kind = page.locator("#kind")
        assert await kind.evaluate("e => e.offsetWidth") >= 150
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "playground-390.png"))
        # The side list is a drawer here.
        await expect(page.locator("#sidebar")).to_be_hidden()
        await page.click("#toggle-sidebar")
        await expect(page.locator("#history li")).to_have_count(1)
        await expect(page.locator("#sidebar")).to_be_visible()
        await page.screenshot(path=str(ARTIFACTS / "playground-390-list.png"))
        await page.click("#sidebar-backdrop", position={"x": 370, "y": 400})
        await expect(page.locator("#sidebar")).to_be_hidden()
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        await context.close()


async def test_at_1280_px_the_side_list_sits_beside_the_chat(browser: Browser, serve: Serve) -> None:
    served = await serve()
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5000)
    try:
        page = await context.new_page()
        await page.goto(served.url + "/")
        await ask(page, "An earlier conversation")
        await page.click("#new-chat")
        await ask(page, MARKDOWN)
        await page.click("#regenerate")
        await expect(message(page, 1).locator(".pos")).to_have_text("2/2")
        sidebar = await page.locator("#sidebar").bounding_box()
        chat = await page.locator("#log").bounding_box()
        assert sidebar and chat and sidebar["x"] + sidebar["width"] <= chat["x"]
        await expect(page.locator("#history li")).to_have_count(2)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 1280
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "playground-1280.png"))
    finally:
        await context.close()


async def test_stop_during_regenerate_keeps_the_partial_text_and_the_earlier_answer(
    page: Page, serve: Serve
) -> None:
    served = await serve()
    await page.goto(served.url + "/")
    await ask(page, "tell me more about the weather today")
    served.fake.state.chunk_delay = 0.2
    await page.click("#regenerate")
    answer = message(page, 1)
    await expect(answer.locator(".rich")).to_contain_text("Demo")
    await page.click("#stop")
    await expect(answer).to_have_class("msg ai stopped")
    assert "today" not in await answer.locator(".rich").inner_text()
    await expect(answer.locator(".stopped-note")).to_contain_text("the earlier answer is still there")
    # The server has no second answer: after a reload the earlier one is back, with no pager.
    await page.reload()
    await expect(message(page, 1).locator(".rich")).to_have_text(
        CHAT_PREFIX + "tell me more about the weather today"
    )
    await expect(message(page, 1).locator(".pos")).to_have_count(0)
