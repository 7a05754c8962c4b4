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


async def test_store_names_the_share_in_headers_too(client: Client) -> None:
    conv_id = await conversation_with_a_turn(client)
    response = await client.post(
        "/chatgpt/store", headers={"conversation": conv_id, "Origin": "https://x.example"}
    )
    assert await response.text() == "保存成功"
    assert response.headers["Share-Id"] == conv_id
    assert response.headers["Share-URL"] == f"/chatgpt/share/{conv_id}"
    exposed = {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"share-id", "share-url"} <= exposed  # browser frontends may read them


async def test_by_default_the_share_link_reaches_the_live_conversation(client: Client) -> None:
    # The original's behaviour, kept on purpose (docs/security.md): the share id is the conversation id.
    conv_id = await conversation_with_a_turn(client)
    share_id = (await client.post("/chatgpt/store", headers={"conversation": conv_id})).headers["Share-Id"]
    assert share_id == conv_id
    response = await client.post("/chatgpt/chat", data=b"more", headers={"conversation": share_id})
    assert response.status == 200
    assert (await client.post("/chatgpt/finish", headers={"conversation": share_id})).status == 200


async def store_json(client: Client, conv_id: str) -> dict[str, str]:
    response = await client.post(
        "/chatgpt/store", headers={"conversation": conv_id, "Accept": "application/json"}
    )
    assert response.status == 200
    stored: dict[str, str] = orjson.loads(await response.read())
    assert response.headers["Share-Id"] == stored["id"]
    assert response.headers["Share-URL"] == stored["url"]
    return stored


async def test_separate_ids_give_the_share_its_own_id(make_client: MakeClient) -> None:
    client = await make_client(shares={"separate_ids": True})
    conv_id = await conversation_with_a_turn(client)
    stored = await store_json(client, conv_id)
    share_id = stored["id"]
    assert share_id != conv_id and stored["url"] == f"/chatgpt/share/{share_id}"

    plain = await client.post("/chatgpt/store", headers={"conversation": conv_id})
    assert (await plain.text(), plain.headers["Share-Id"]) == ("保存成功", share_id)  # same share again

    shown = await client.get(stored["url"])
    assert orjson.loads(await shown.read())["Id"] == share_id
    page = await client.get(stored["url"], headers={"Accept": "text/html"})
    html = await page.text()
    assert share_id in html and conv_id not in html
    assert (await client.get(f"/chatgpt/share/{conv_id}")).status == 404


async def test_separate_ids_keep_the_link_away_from_the_live_conversation(make_client: MakeClient) -> None:
    client = await make_client(shares={"separate_ids": True})
    conv_id = await conversation_with_a_turn(client)
    share_id = (await store_json(client, conv_id))["id"]
    for route, body in (
        ("chat", b"hijack"),
        ("regenerate", b""),
        ("rollback", b""),
        ("finish", b""),
        ("context", b""),
    ):
        response = await client.post(f"/chatgpt/{route}", data=body, headers={"conversation": share_id})
        assert response.status == 404, route
    # The conversation itself is untouched, and its owner still stores it under the same share.
    assert await (await client.post("/chatgpt/context", headers={"conversation": conv_id})).text() != ""
    await client.post("/chatgpt/chat", data=b"more", headers={"conversation": conv_id})
    assert (await store_json(client, conv_id))["id"] == share_id
    shown = orjson.loads(await (await client.get(f"/chatgpt/share/{share_id}")).read())
    assert shown["SentenceList"] == ["hi", CHAT_PREFIX + "hi", "more", CHAT_PREFIX + "more"]
