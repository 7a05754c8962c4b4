"""A person's view of the pages in Debian's Chromium: the playground chats with streaming in
every auth mode, multi-line answers keep their breaks, the share page shows a transcript without
running what a message smuggled in, and the admin page lets in only the right password."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Page, expect

from alice_py.fake import CHAT_PREFIX
from tests.browser.conftest import SECRET, UPSTREAM_KEY, Serve, Served

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    # aiohttp-session keeps its state under string request keys, which aiohttp now frowns upon.
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

ADMIN_PASSWORD = "admin-pass-1234"


async def open_playground(page: Page, url: str, mode: str) -> None:
    await page.goto(url + "/")
    if mode != "none":
        await page.click("#toggle-settings")
        await page.select_option("#auth-mode", mode)
        await page.fill("#secret", SECRET)


async def ask(page: Page, question: str) -> str:
    await page.fill("#input", question)
    await page.click("#send")
    answer = page.locator("article.msg.ai").last
    await expect(answer).not_to_have_class("msg ai pending")
    await expect(page.locator("#send")).to_be_enabled()
    return await answer.locator(".rich").inner_text()


@pytest.mark.parametrize("mode", ["none", "simple", "normal"])
async def test_playground_chats_with_streaming_in_each_auth_mode(page: Page, serve: Serve, mode: str) -> None:
    served = await serve(auth={"mode": mode, "token": SECRET})
    await open_playground(page, served.url, mode)
    assert await ask(page, "Hello there") == CHAT_PREFIX + "Hello there"
    assert await ask(page, "And again") == CHAT_PREFIX + "And again"
    chats = [r for r in served.fake.state.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 2 and chats[0].key == UPSTREAM_KEY
    assert chats[-1].body["stream"] is True  # the default kind streams
    # The second request carried the first turn: the page talks to one conversation.
    assert [m["content"] for m in chats[-1].body["messages"] if m["role"] == "user"] == [
        "Hello there",
        "And again",
    ]
    assert getattr(page, "js_errors") == []  # noqa: B009


async def test_a_wrong_secret_shows_the_servers_message(page: Page, serve: Serve) -> None:
    served = await serve(auth={"mode": "simple", "token": SECRET})
    await page.goto(served.url + "/")
    await page.click("#toggle-settings")
    await page.select_option("#auth-mode", "simple")
    await page.fill("#secret", "wrong")
    await page.fill("#input", "hi")
    await page.click("#send")
    await expect(page.locator("#notice-text")).to_contain_text("Auth failed")
    assert served.fake.state.requests == []


async def test_a_multi_line_answer_keeps_its_line_breaks(page: Page, serve: Serve) -> None:
    served = await serve()
    await open_playground(page, served.url, "none")
    await page.fill("#input", "first line\nsecond line\n\nafter a blank line")
    await page.click("#send")
    answer = page.locator("article.msg.ai").last
    await expect(answer).to_contain_text("after a blank line")
    await expect(page.locator("#send")).to_be_enabled()
    text = await answer.locator(".rich").inner_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines == [CHAT_PREFIX + "first line", "second line", "after a blank line"]


async def test_share_page_shows_the_transcript_and_runs_no_injected_script(page: Page, serve: Serve) -> None:
    served = await serve()
    await open_playground(page, served.url, "none")
    evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    await ask(page, evil)
    await page.click("#share")
    link = page.locator("#notice-link")
    await expect(link).to_be_visible()
    share_url = await link.get_attribute("href")
    assert share_url and "/chatgpt/share/" in share_url
    await page.goto(share_url)
    await expect(page.locator("body")).to_contain_text(evil)  # shown literally, as text
    assert await page.evaluate("window.__pwned") is None


async def test_admin_page_refuses_a_wrong_password_and_shows_key_states(page: Page, serve: Serve) -> None:
    served = await serve(admin={"password": ADMIN_PASSWORD})
    await page.goto(served.url + "/admin")
    await page.fill("#password", "not-the-password")
    await page.click("button[type=submit]")
    await expect(page.locator("body")).to_contain_text("rong password")
    await expect(page.locator("#keys")).to_have_count(0)
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    keys = page.locator("#keys")
    await expect(keys).to_contain_text("active")
    await expect(keys).to_contain_text("…1234")
    assert UPSTREAM_KEY not in await page.content()


async def test_admin_page_is_off_without_a_password(page: Page, serve: Serve) -> None:
    served = await serve()
    response = await page.goto(served.url + "/admin")
    assert response is not None and response.status == 404


async def refuse_the_key(served: Served) -> None:
    """One chat call that the upstream refuses for its key: the only key is disabled."""
    served.fake.state.fail_next("invalid_key")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    url = served.url + "/v1/chat/completions"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as answer:
        assert answer.status == 502  # the model API refused the service's key


async def test_admin_page_tests_a_disabled_key_and_keeps_the_pool_current(page: Page, serve: Serve) -> None:
    served = await serve(admin={"password": ADMIN_PASSWORD})
    await refuse_the_key(served)
    await page.clock.install()  # the page refreshes every 5 s: the test moves its clock instead
    await page.goto(served.url + "/admin")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    row = page.locator("#keys tr", has_text="…1234")
    await expect(row.locator(".state")).to_have_text("disabled")
    await expect(row.locator(".reason")).to_have_text("invalid key")
    await expect(row.locator(".error")).to_contain_text("(upstream request req_")
    await row.get_by_role("button", name="Test now").click()
    await expect(page.locator("#notice")).to_have_text("sk-…1234 (default) works: it is in service.")
    await expect(row.locator(".state")).to_have_text("active")
    await refuse_the_key(served)  # disabled again, behind the page's back
    await page.clock.fast_forward(6000)
    await expect(page.locator("#refreshed")).to_contain_text("Updated")
    await expect(row.locator(".state")).to_have_text("disabled")  # rebuilt from status.json
    await expect(page.locator("#keys h3")).to_contain_text("default 1 key · 1 disabled")
    await row.get_by_role("button", name="Test now").click()  # the rebuilt form works too
    await expect(page.locator("#notice")).to_have_text("sk-…1234 (default) works: it is in service.")
    assert UPSTREAM_KEY not in await page.content()
    assert getattr(page, "js_errors") == []  # noqa: B009
