"""Browser fixtures: Debian's Chromium driven by Playwright (never a downloaded browser), and the
real app served on a real 127.0.0.1 port against the fake upstream.

One browser per test module: the module's tests and fixtures share one event loop
(``loop_scope="module"``), so the browser, the servers and the tests all run on it.
Each test gets a fresh browser context (no cookies or storage carried over).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from alice_py.app import create_app
from alice_py.config import Config
from alice_py.fake import RunningFake, start_fake_upstream
from tests.support import app_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UPSTREAM_KEY = "sk-test-0000000000001234"
SECRET = "s3cret"


class Served:
    """The app on a real port, its fake upstream, and the app itself (to look at its state)."""

    def __init__(self, url: str, fake: RunningFake, app: web.Application) -> None:
        self.url = url
        self.fake = fake
        self.app = app


Serve = Callable[..., Awaitable[Served]]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("Chromium is not installed: apt-get install chromium", pytrace=False)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1000, "height": 800})
    ctx.set_default_timeout(5000)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext) -> Page:
    new_page = await context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda exc: errors.append(str(exc)))
    new_page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    setattr(new_page, "js_errors", errors)  # noqa: B010 - tests read it to check pages raise nothing
    return new_page


def make_config(fake: RunningFake, tmp_path: Path, **sections: dict[str, Any]) -> Config:
    return app_config(fake.url, tmp_path, upstream_key=UPSTREAM_KEY, secret=SECRET, **sections)


@pytest_asyncio.fixture(loop_scope="module")
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve(auth={"mode": "simple"})``: the real app on 127.0.0.1 (a secure context for
    ``crypto.subtle``) with the fake upstream behind it; everything stops at the end of the test."""
    async with AsyncExitStack() as stack:

        async def start(**sections: dict[str, Any]) -> Served:
            fake = await start_fake_upstream()
            stack.push_async_callback(fake.close)
            app = create_app(make_config(fake, tmp_path, **sections))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            return Served(f"http://{host}:{port}", fake, app)

        yield start
