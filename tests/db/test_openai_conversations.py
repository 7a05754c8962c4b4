"""The Conversations API's repository and the background runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db import response_runs
from alice_py.db.openai_conversations import OpenAIConversationRepository, StoredConversation
from alice_py.db.responses import ResponseRepository, StoredResponse


def item(text: str) -> dict[str, object]:
    return {"type": "message", "id": f"msg_{text}", "role": "user", "status": "completed", "content": []}


async def test_items_keep_their_order_and_their_owner(engine: AsyncEngine) -> None:
    repo = OpenAIConversationRepository(engine)
    await repo.create("ann", StoredConversation("conv_a", 100, {"k": "v"}), [item("1"), item("2")])
    assert await repo.add_items("ann", "conv_a", [item("3"), item("4")])
    assert not await repo.add_items("bob", "conv_a", [item("5")])
    got = await repo.items("ann", "conv_a")
    assert got is not None and [i["id"] for i in got] == ["msg_1", "msg_2", "msg_3", "msg_4"]
    assert await repo.items("bob", "conv_a") is None
    assert await repo.delete_item("ann", "conv_a", "msg_2") == StoredConversation("conv_a", 100, {"k": "v"})
    assert await repo.delete_item("ann", "conv_a", "msg_2") is None
    assert not await repo.delete("bob", "conv_a")
    assert await repo.delete("ann", "conv_a")
    assert await repo.items("ann", "conv_a") is None


async def test_pages_newest_first_ties_in_creation_order(engine: AsyncEngine) -> None:
    repo = OpenAIConversationRepository(engine)
    for name, created in [("c1", 100), ("c2", 200), ("c3", 200), ("c4", 300)]:
        await repo.create("ann", StoredConversation(name, created, {}), [])
    await repo.create("bob", StoredConversation("b1", 400, {}), [])
    first = await repo.page("ann", None, 2)
    assert first is not None and [c.id for c in first.data] == ["c4", "c2"] and first.has_more
    rest = await repo.page("ann", "c2", 10)
    assert rest is not None and [c.id for c in rest.data] == ["c3", "c1"] and not rest.has_more
    assert await repo.page("ann", "b1", 10) is None  # another owner's id is no cursor


async def test_abandoned_runs_are_failed(engine: AsyncEngine) -> None:
    responses = ResponseRepository(engine, 30)
    body = {"id": "resp_x", "status": "in_progress", "background": True}
    async with engine.begin() as connection:
        await responses.save("ann", StoredResponse(body=body, input_items=[], history=[]), connection)
        await response_runs.register(connection, "resp_x", "instance-1", 1000.0)
    assert await response_runs.fail_abandoned(engine, 999.0, {"code": "server_error", "message": "m"}) == []
    assert await response_runs.fail_abandoned(engine, math.inf, {"code": "server_error", "message": "m"}) == [
        "resp_x"
    ]
    stored = await responses.get("ann", "resp_x")
    assert stored is not None and stored.body["status"] == "failed" and stored.body["error"]["message"] == "m"
