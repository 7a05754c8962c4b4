"""node-chatgpt-api's ``POST /conversation`` with an ``Idempotency-Key`` (docs/tree.md)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.fake import CHAT_PREFIX, FakeState

Client = TestClient[web.Request, web.Application]


async def ask(client: Client, key: str | None, **body: Any) -> tuple[int, Any]:
    headers = {"Idempotency-Key": key} if key else {}
    response = await client.post("/conversation", json=body, headers=headers)
    return response.status, await response.json()


async def test_a_repeat_on_a_conversation_gets_the_same_turn(client: Client, fake_state: FakeState) -> None:
    status, first = await ask(client, None, message="hello")
    assert status == 200
    conv = first["conversationId"]
    status, turn = await ask(client, "k", message="again", conversationId=conv)
    assert (status, turn["response"]) == (200, CHAT_PREFIX + "again")
    calls = len(fake_state.requests)
    # Same ids too; ``details`` is {} since no model call answered the repeat.
    assert await ask(client, "k", message="again", conversationId=conv) == (200, {**turn, "details": {}})
    assert len(fake_state.requests) == calls
    status, refused = await ask(client, "k", message="changed", conversationId=conv)
    assert status == 422
    assert refused == {
        "error": "Idempotency-Key was already used with a different request on this conversation"
    }
