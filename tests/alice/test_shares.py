"""store and share: snapshots in the database that outlive the conversation and the process."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.fake import CHAT_PREFIX
from tests.alice.conftest import SECRET, MakeClient

Client = TestClient[web.Request, web.Application]


async def conversation_with_a_turn(client: Client, prompt: str = "Be nice.", question: str = "hi") -> str:
    conv_id = await (await client.post("/chatgpt/createTurbo", data=orjson.dumps({"prompt": prompt}))).text()
    response = await client.post("/chatgpt/chat", data=question.encode(), headers={"conversation": conv_id})
    assert response.status == 200
    return conv_id


async def get_share(client: Client, conv_id: str) -> object:
    response = await client.get(f"/chatgpt/share/{conv_id}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    return orjson.loads(await response.read())


async def test_store_then_share(client: Client) -> None:
    conv_id = await conversation_with_a_turn(client)
    response = await client.post("/chatgpt/store", headers={"conversation": conv_id})
    assert (response.status, await response.text()) == (200, "保存成功")
    assert await get_share(client, conv_id) == {
        "Id": conv_id,
        "Prompt": "Be nice.",
        "SentenceList": ["hi", CHAT_PREFIX + "hi"],
    }


async def test_store_answers_json_when_asked(client: Client) -> None:
    conv_id = await conversation_with_a_turn(client)
    response = await client.post(
        "/chatgpt/store", headers={"conversation": conv_id, "Accept": "application/json"}
    )
    assert response.headers["Content-Type"] == "application/json"
    stored = orjson.loads(await response.read())
    assert stored == {"id": conv_id, "url": f"/chatgpt/share/{conv_id}"}
    assert (await client.get(stored["url"])).status == 200


async def test_storing_again_replaces_the_snapshot(client: Client) -> None:
    conv_id = await conversation_with_a_turn(client)
    await client.post("/chatgpt/store", headers={"conversation": conv_id})
    await client.post("/chatgpt/chat", data=b"more", headers={"conversation": conv_id})
    await client.post("/chatgpt/store", headers={"conversation": conv_id})
    share = await get_share(client, conv_id)
    assert isinstance(share, dict)
    assert share["SentenceList"] == ["hi", CHAT_PREFIX + "hi", "more", CHAT_PREFIX + "more"]


async def test_unknown_share(client: Client) -> None:
    response = await client.get("/chatgpt/share/Unknown1")
    assert (response.status, await response.text()) == (
        404,
        "Failed to find shared conversation with provided id",
    )


async def test_a_browser_gets_an_escaped_page(client: Client) -> None:
    conv_id = await conversation_with_a_turn(client, "<b>bold</b>", "<script>alert(1)</script>")
    await client.post("/chatgpt/store", headers={"conversation": conv_id})
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = await client.get(f"/chatgpt/share/{conv_id}", headers={"Accept": accept})
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = await response.text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>" not in page


async def test_shares_survive_a_restart_and_need_no_auth(make_client: MakeClient) -> None:
    first = await make_client(auth={"mode": "simple"})
    token = {"token": SECRET}
    conv_id = await (await first.post("/chatgpt/createTurbo", headers=token)).text()
    await first.post("/chatgpt/chat", data="你好".encode(), headers={**token, "conversation": conv_id})
    assert (await first.post("/chatgpt/store", headers={**token, "conversation": conv_id})).status == 200
    await first.close()

    second = await make_client(auth={"mode": "simple"})  # a new process on the same SQLite file
    assert await get_share(second, conv_id) == {
        "Id": conv_id,
        "Prompt": "",
        "SentenceList": ["你好", CHAT_PREFIX + "你好"],
    }


async def test_a_nul_character_cannot_be_shared_and_says_so(client: Client) -> None:
    # PostgreSQL cannot store NUL in text; every database refuses it the same way, with a 400.
    conv_id = await conversation_with_a_turn(client, question="a\x00b")
    response = await client.post("/chatgpt/store", headers={"conversation": conv_id})
    assert response.status == 400
    assert "NUL character" in await response.text()
    assert (await client.get(f"/chatgpt/share/{conv_id}")).status == 404
