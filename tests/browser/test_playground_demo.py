"""The playground after ``alice-py serve --demo``, in Chromium: the first message is answered with
untouched settings, and the page is told the server's auth mode but never its secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, Response, expect

from alice_py.fake import CHAT_PREFIX
from tests.browser.conftest import Serve
from tests.support import running_server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

DISTINCT_SECRET = "pg-secret-7f3a9c21"
"""Unlike "alice", which is in every page's name: a hit can only be the secret itself."""


@contextmanager
def demo_service(tmp_path: Path, *flags: str) -> Iterator[str]:
    """The real ``alice-py serve --demo`` process (on a free 127.0.0.1 port), with ``flags``."""
    args = ["--demo", "--db", f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}", *flags]
    with running_server(args, tmp_path) as (url, _):
        yield url


async def ask(page: Page, question: str) -> str:
    await page.fill("#input", question)
    await page.press("#input", "Enter")
    answer = page.locator("article.msg.ai").last
    await expect(answer).not_to_have_class("msg ai pending")
    await expect(page.locator("#send")).to_be_visible()
    return await answer.locator(".rich").inner_text()


async def test_the_demo_answers_the_first_message_with_untouched_settings(page: Page, tmp_path: Path) -> None:
    with demo_service(tmp_path) as url:
        await page.goto(url + "/")
        assert await ask(page, "Hello demo") == CHAT_PREFIX + "Hello demo"
        assert await ask(page, "and again") == CHAT_PREFIX + "and again"
        await expect(page.locator("#notice")).to_be_hidden()
        await expect(page.locator("#settings")).to_be_hidden()  # never needed
        assert getattr(page, "js_errors") == []  # noqa: B009


async def test_the_server_mode_wins_over_one_saved_by_an_earlier_visit(page: Page, tmp_path: Path) -> None:
    with demo_service(tmp_path, "-t", DISTINCT_SECRET) as url:
        # An earlier visit (say, to a --demo that ran with auth off) left "none" saved.
        await page.goto(url + "/")
        await page.evaluate("m => localStorage.setItem('alice-playground', m)", json.dumps({"mode": "none"}))
        await page.reload()
        await page.click("#toggle-settings")
        await expect(page.locator("#auth-mode")).to_have_value("simple")
        await page.fill("#secret", DISTINCT_SECRET)
        assert await ask(page, "hi") == CHAT_PREFIX + "hi"


async def test_a_demo_with_a_secret_set_asks_for_it_in_settings(page: Page, tmp_path: Path) -> None:
    with demo_service(tmp_path, "--token", DISTINCT_SECRET) as url:
        await page.goto(url + "/")
        await page.fill("#input", "hi")
        await page.press("#input", "Enter")
        await expect(page.locator("#notice-text")).to_contain_text("Auth failed")
        await expect(page.locator("#settings")).to_be_visible()
        await expect(page.locator("#secret")).to_be_focused()
        await page.fill("#secret", DISTINCT_SECRET)
        assert await ask(page, "hi") == CHAT_PREFIX + "hi"


async def served_texts(page: Page, url: str) -> list[str]:
    """Everything the browser received loading the page: each response's headers and body."""
    received: list[Response] = []
    page.on("response", lambda response: received.append(response))
    await page.goto(url + "/")
    await page.wait_for_load_state("networkidle")
    texts = []
    for response in received:
        headers = json.dumps(await response.all_headers())
        body = (await response.body()).decode("utf-8", "replace") if response.status != 304 else ""
        texts.append(f"{response.url}\n{headers}\n{body}")
    return texts


@pytest.mark.parametrize("mode", ["simple", "normal"])
async def test_the_page_is_never_served_the_secret(page: Page, serve: Serve, mode: str) -> None:
    served = await serve(auth={"mode": mode, "token": DISTINCT_SECRET})
    texts = await served_texts(page, served.url)
    urls = [text.split("\n", 1)[0] for text in texts]
    assert served.url + "/" in urls and any(u.endswith("/static/playground.js") for u in urls)
    assert f'data-auth-mode="{mode}"' in texts[0]  # the mode, yes
    assert not [text.split("\n", 1)[0] for text in texts if DISTINCT_SECRET in text]


async def test_the_demo_page_is_never_served_a_secret_set_for_it(page: Page, tmp_path: Path) -> None:
    with demo_service(tmp_path, "-t", DISTINCT_SECRET) as url:
        texts = await served_texts(page, url)
    assert len(texts) >= 3  # the page, its script and its style sheet
    assert not [text.split("\n", 1)[0] for text in texts if DISTINCT_SECRET in text]
