"""Security headers as a browser receives them: the share page may not be framed, sniffed or
leak its address; plain-text errors, which echo the client's input, are never sniffed."""

from __future__ import annotations

import pytest

from tests.pages.conftest import ADMIN_PASSWORD, MakeClient
from tests.pages.test_share_page import HTML, shared

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def test_the_share_page_has_its_headers(make_client: MakeClient) -> None:
    client = await make_client()
    share_id = await shared(client, "", ["hi"])
    response = await client.get(f"/chatgpt/share/{share_id}", headers=HTML)
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/", "/admin"])
async def test_the_playground_and_admin_pages_have_theirs(make_client: MakeClient, path: str) -> None:
    client = await make_client(admin={"password": ADMIN_PASSWORD})
    response = await client.get(path)
    assert response.status == 200
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


async def test_plain_text_errors_that_echo_input_are_not_sniffed(make_client: MakeClient) -> None:
    client = await make_client()
    evil = "<script>alert(1)</script>"
    response = await client.post("/chatgpt/chat", data="hi", headers={"conversation": evil})
    assert response.status == 404
    assert evil in await response.text()  # Alice's message names the id it did not find
    assert response.content_type == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_plain_text_answers_holding_the_client_s_text_are_not_sniffed(make_client: MakeClient) -> None:
    client = await make_client()
    conversation = await (await client.post("/chatgpt/createTurbo")).text()
    evil = "<script>alert(1)</script>"
    asked = await client.post("/chatgpt/chat", data=evil, headers={"conversation": conversation})
    assert asked.status == 200
    response = await client.post("/chatgpt/context", headers={"conversation": conversation})
    assert evil in await response.text()
    assert response.content_type == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
