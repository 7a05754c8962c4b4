"""The admin page's key pool over HTTP, per upstream and per key: state, reason, cooldown until,
last error with the upstream's request id, requests, failures, success rate, tokens, and each
key's CSRF-checked "test now" button."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from alice_py.app import create_app
from alice_py.config import UpstreamEntry
from alice_py.fake import RunningFake, start_fake_upstream
from alice_py.upstream.shared_keys import key_id
from tests.pages.conftest import ADMIN_PASSWORD, Client
from tests.support import app_config

K1, K2, L1 = "sk-one-1111111111111111", "sk-two-2222222222222222", "sk-local-4444444444444444"
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.fixture
async def second() -> AsyncIterator[RunningFake]:
    running = await start_fake_upstream()
    yield running
    await running.close()


async def make(aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path) -> Client:
    cfg = app_config(fake.url, tmp_path, upstream_key=K1, admin={"password": ADMIN_PASSWORD})
    upstreams = (
        UpstreamEntry(name="main", base_url=fake.url, keys=(K1, K2)),
        UpstreamEntry(name="local", base_url=second.url, keys=(L1,), priority=1),
    )
    client: Client = await aiohttp_client(create_app(dataclasses.replace(cfg, upstreams=upstreams)))
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found[1]


async def log_in(client: Client) -> str:
    csrf = csrf_of(await (await client.get("/admin")).text())
    response = await client.post("/admin/login", data={"csrf": csrf, "password": ADMIN_PASSWORD})
    assert response.status == 200  # the dashboard, after the redirect
    return await response.text()


def cells(page: str, key: str) -> list[str]:
    """The text of each cell of the row of ``key`` (raw, as only the test knows it)."""
    row = re.search(rf'<tr data-key="{key_id(key)}">(.*?)</tr>', page, re.S)
    assert row, f"no row for {key[:6]}…"
    found = re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)
    return [unescape(re.sub(r"<[^>]+>", "", cell)) for cell in found]


def section(page: str, upstream: str) -> str:
    found = re.search(rf'<section class="upstream" data-upstream="{upstream}">(.*?)</section>', page, re.S)
    assert found, f"no section for {upstream}"
    return found[1]


async def test_each_key_of_each_upstream_shows_its_health(
    aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path
) -> None:
    client = await make(aiohttp_client, fake, second, tmp_path)
    fake.state.retry_after = 30
    fake.state.fail_next("rate_limit")  # K1 cools for 30 s; K2 answers
    assert (await client.post("/v1/chat/completions", json=HELLO)).status == 200
    fake.state.fail_next("invalid_key")  # K2 is refused and disabled; "local" answers
    answered = await client.post("/v1/chat/completions", json=HELLO)
    assert answered.status == 200 and answered.headers["X-Upstream"] == "local"
    page = await log_in(client)

    main, local = section(page, "main"), section(page, "local")
    assert "2 keys · 1 cooling · 1 disabled" in main and "1 key · 1 active" in local
    assert "sk-…1111" in main and "sk-…2222" in main and "sk-…4444" in local
    key, state, reason, until, error, requests, failures, rate, tokens, button = cells(page, K1)
    assert (key, state, reason) == ("sk-…1111", "cooling", "—")
    assert re.fullmatch(r"\d\d:\d\d:\d\d UTC \(in (30|29) s\)", until)
    assert error.startswith("Rate limit reached")
    assert re.search(r"\(upstream request req_[0-9a-f]{16}\)$", error)
    assert (requests, failures, rate, tokens, button) == ("1", "1", "0 % of 1", "0", "Test now")
    key, state, reason, until, error, requests, failures, rate, tokens, _ = cells(page, K2)
    assert (key, state, reason, until) == ("sk-…2222", "disabled", "invalid key", "—")
    assert error.startswith("Incorrect API key provided") and K2 not in page
    assert (requests, failures, rate) == ("2", "1", "50 % of 2")
    assert int(tokens) > 0
    _, state, _, _, error, requests, failures, rate, tokens, _ = cells(page, L1)
    assert (state, error, requests, failures, rate) == ("active", "—", "1", "0", "100 % of 1")
    assert int(tokens) > 0
    assert K1 not in page and L1 not in page


async def test_test_now_brings_a_key_back_and_says_how_it_went(
    aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path
) -> None:
    client = await make(aiohttp_client, fake, second, tmp_path)
    fake.state.fail_next("invalid_key")
    assert (await client.post("/v1/chat/completions", json=HELLO)).status == 200  # K1 disabled
    page = await log_in(client)
    assert cells(page, K1)[1] == "disabled"
    form = {"csrf": csrf_of(page), "upstream": "main", "key": key_id(K1)}

    forged = await client.post("/admin/test-key", data={**form, "csrf": "forged"})
    assert forged.status == 403 and "The form expired" in await forged.text()
    models_calls = len([r for r in fake.state.requests if r.path.endswith("/models")])
    assert models_calls == 0  # a forged form tests nothing

    tested = await client.post("/admin/test-key", data=form, allow_redirects=False)
    assert (tested.status, tested.headers["Location"]) == (303, "../admin")
    page = await (await client.get("/admin")).text()
    assert '<p class="notice" role="status" id="notice">sk-…1111 (main) works: it is in service.</p>' in page
    assert cells(page, K1)[1] == "active"
    assert 'id="notice"' not in await (await client.get("/admin")).text()  # said once

    await second.close()  # the local server is down: its key fails the test
    failed = await client.post("/admin/test-key", data={**form, "upstream": "local", "key": key_id(L1)})
    page = await failed.text()  # the dashboard, after the redirect
    notice = re.search(r'id="notice">(.*?)</p>', page)
    assert notice and unescape(notice[1]).startswith("sk-…4444 (local) failed the test: ")
    gone = await client.post("/admin/test-key", data={**form, "key": key_id("sk-not-in-the-pool")})
    assert "That key is no longer in the pool." in await gone.text()


async def test_test_now_needs_a_login(
    aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path
) -> None:
    client = await make(aiohttp_client, fake, second, tmp_path)
    csrf = csrf_of(await (await client.get("/admin")).text())  # the login form's session
    refused = await client.post("/admin/test-key", data={"csrf": csrf, "upstream": "main", "key": key_id(K1)})
    assert refused.status == 401 and "Log in to test keys." in await refused.text()
    assert not [r for r in fake.state.requests if r.path.endswith("/models")]
