"""``client.conversations.*`` and ``conversation=`` on a response, with the official SDK."""

from __future__ import annotations

import asyncio

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai import BaseModel
from openai.types.conversations import Conversation, ConversationDeletedResource, ConversationItem
from openai.types.responses import Response
from pydantic import TypeAdapter

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.responses.conftest import OTHER_KEY, sdk

ITEM = TypeAdapter(ConversationItem)


class ConversationList(BaseModel):
    """The extension's list (OpenAI has none): the SDK's conversations in a cursor list."""

    object: str
    data: list[Conversation]
    first_id: str | None
    last_id: str | None
    has_more: bool


def strict_item(item: ConversationItem) -> ConversationItem:
    """The item as the SDK's strict validation takes it (what a typed client relies on)."""
    return ITEM.validate_python(item.model_dump(exclude_unset=True), strict=True)


def texts(items: list[ConversationItem]) -> list[str]:
    return [
        part.text
        for item in items
        if item.type == "message"
        for part in item.content
        if hasattr(part, "text")
    ]


async def test_create_retrieve_update_delete(server: TestServer) -> None:
    async with sdk(server) as client:
        conversation = await client.conversations.create(
            metadata={"topic": "demo"},
            items=[{"type": "message", "role": "user", "content": "hello"}],
        )
        assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "demo"}
        assert Conversation.model_validate(conversation.model_dump(), strict=True)
        got = await client.conversations.retrieve(conversation.id)
        assert got.model_dump() == conversation.model_dump()
        updated = await client.conversations.update(conversation.id, metadata={"topic": "other"})
        assert updated.metadata == {"topic": "other"}
        assert (await client.conversations.retrieve(conversation.id)).metadata == {"topic": "other"}
        deleted = await client.conversations.delete(conversation.id)
        assert isinstance(deleted, ConversationDeletedResource)
        assert deleted.deleted and deleted.id == conversation.id
        with pytest.raises(openai.NotFoundError):
            await client.conversations.retrieve(conversation.id)
        with pytest.raises(openai.NotFoundError):
            await client.conversations.items.list(conversation.id)


async def test_create_takes_at_most_20_items(server: TestServer) -> None:
    items = [{"type": "message", "role": "user", "content": str(n)} for n in range(21)]
    async with sdk(server) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.conversations.create(items=items)  # type: ignore[arg-type]
        assert caught.value.param == "items"
        conversation = await client.conversations.create(items=items[:20])  # type: ignore[arg-type]
        page = await client.conversations.items.list(conversation.id, order="asc", limit=100)
    assert texts(page.data) == [str(n) for n in range(20)]


async def test_items_add_list_pages_retrieve_delete(server: TestServer) -> None:
    async with sdk(server) as client:
        conversation = await client.conversations.create()
        added = await client.conversations.items.create(
            conversation.id,
            items=[{"type": "message", "role": "user", "content": str(n)} for n in range(5)],
        )
        assert [ITEM.validate_python(item.model_dump()).id for item in added.data] == [
            i.id for i in added.data
        ]
        assert texts(added.data) == ["0", "1", "2", "3", "4"] and added.has_more is False
        first = await client.conversations.items.list(conversation.id, limit=2)  # desc by default
        assert texts(first.data) == ["4", "3"] and first.has_more
        second = await client.conversations.items.list(conversation.id, limit=2, after=first.data[-1].id)
        assert texts(second.data) == ["2", "1"]
        every = [
            item async for item in client.conversations.items.list(conversation.id, order="asc", limit=2)
        ]
        assert texts(every) == ["0", "1", "2", "3", "4"]  # the SDK's auto-pagination follows the cursor
        one = await client.conversations.items.retrieve(added.data[2].id, conversation_id=conversation.id)
        assert texts([one]) == ["2"]
        after_delete = await client.conversations.items.delete(
            added.data[2].id, conversation_id=conversation.id
        )
        assert isinstance(after_delete, Conversation) and after_delete.id == conversation.id
        with pytest.raises(openai.NotFoundError):
            await client.conversations.items.retrieve(added.data[2].id, conversation_id=conversation.id)
        left = await client.conversations.items.list(conversation.id, order="asc")
        assert texts(left.data) == ["0", "1", "3", "4"]
        with pytest.raises(openai.BadRequestError) as caught:
            await client.conversations.items.list(conversation.id, limit=101)
        assert caught.value.param == "limit"


async def test_a_response_in_a_conversation_uses_and_extends_its_items(
    server: TestServer, fake_state: FakeState
) -> None:
    async with sdk(server) as client:
        conversation = await client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "my name is Ann"}]
        )
        first = await client.responses.create(
            model="gpt-4o-mini", input="what is my name?", conversation=conversation.id
        )
        assert first.conversation is not None and first.conversation.id == conversation.id
        assert [m["content"] for m in fake_state.last.body["messages"]] == [
            "my name is Ann",
            "what is my name?",
        ]
        # ``{"id": …}`` works too, and streaming appends the same way.
        async with client.responses.stream(
            model="gpt-4o-mini", input="and again", conversation={"id": conversation.id}
        ) as stream:
            async for _ in stream:
                pass
            streamed = await stream.get_final_response()
        Response.model_validate(streamed.model_dump())
        assert [m["content"] for m in fake_state.last.body["messages"]] == [
            "my name is Ann",
            "what is my name?",
            CHAT_PREFIX + "what is my name?",
            "and again",
        ]
        items = await client.conversations.items.list(conversation.id, order="asc")
    assert texts(items.data) == [
        "my name is Ann",
        "what is my name?",
        CHAT_PREFIX + "what is my name?",
        "and again",
        CHAT_PREFIX + "and again",
    ]
    assert items.data[2].id == first.output[0].id
    for item in items.data:
        strict_item(item)


async def test_a_failed_response_adds_nothing_to_its_conversation(
    server: TestServer, fake_state: FakeState
) -> None:
    async with sdk(server) as client:
        conversation = await client.conversations.create()
        fake_state.fail_next("server_error")
        with pytest.raises(openai.InternalServerError):
            await client.responses.create(model="gpt-4o-mini", input="lost", conversation=conversation.id)
        assert (await client.conversations.items.list(conversation.id)).data == []
        await client.responses.create(model="gpt-4o-mini", input="kept", conversation=conversation.id)
        assert len((await client.conversations.items.list(conversation.id)).data) == 2


async def test_two_responses_at_once_on_one_conversation_the_second_is_409(
    server: TestServer, fake_state: FakeState
) -> None:
    fake_state.delay = 0.5
    async with sdk(server) as client:
        conversation = await client.conversations.create()
        first = asyncio.create_task(
            client.responses.create(model="gpt-4o-mini", input="slow", conversation=conversation.id)
        )
        await asyncio.sleep(0.2)
        with pytest.raises(openai.ConflictError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="second", conversation=conversation.id)
        assert caught.value.code == "conversation_busy"
        assert (await first).output_text == CHAT_PREFIX + "slow"
        fake_state.delay = 0
        await client.responses.create(model="gpt-4o-mini", input="third", conversation=conversation.id)
        assert len((await client.conversations.items.list(conversation.id)).data) == 4


async def test_unknown_conversation_in_a_body_is_400(server: TestServer) -> None:
    async with sdk(server) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="hi", conversation="conv_nope")
    assert caught.value.param == "conversation"


async def test_another_client_key_sees_none_of_them(server: TestServer) -> None:
    async with sdk(server) as mine, sdk(server, OTHER_KEY) as theirs:
        conversation = await mine.conversations.create(
            items=[{"type": "message", "role": "user", "content": "x"}]
        )
        item = (await mine.conversations.items.list(conversation.id)).data[0]
        calls = [
            theirs.conversations.retrieve(conversation.id),
            theirs.conversations.update(conversation.id, metadata={"a": "b"}),
            theirs.conversations.delete(conversation.id),
            theirs.conversations.items.list(conversation.id),
            theirs.conversations.items.create(conversation.id, items=[{"role": "user", "content": "y"}]),
            theirs.conversations.items.retrieve(item.id, conversation_id=conversation.id),
            theirs.conversations.items.delete(item.id, conversation_id=conversation.id),
        ]
        for call in calls:
            with pytest.raises(openai.NotFoundError):
                await call
        with pytest.raises(openai.BadRequestError):
            await theirs.responses.create(model="gpt-4o-mini", input="hi", conversation=conversation.id)
        listed = await theirs.get("/conversations", cast_to=ConversationList)
        assert listed.data == []
        assert len((await mine.conversations.items.list(conversation.id)).data) == 1
        assert (await mine.conversations.retrieve(conversation.id)).metadata == {}


async def test_listing_the_callers_conversations_newest_first(server: TestServer) -> None:
    async with sdk(server) as client, sdk(server, OTHER_KEY) as other:
        await other.conversations.create()
        made = [await client.conversations.create(metadata={"n": str(n)}) for n in range(3)]
        listed = await client.get("/conversations", cast_to=ConversationList)
        assert {c.id for c in listed.data} == {c.id for c in made} and not listed.has_more
        expected = sorted(made, key=lambda c: (-c.created_at, made.index(c)))
        assert [c.id for c in listed.data] == [c.id for c in expected]
        page = await client.get("/conversations", cast_to=ConversationList, options={"params": {"limit": 2}})
        assert [c.id for c in page.data] == [c.id for c in expected[:2]] and page.has_more
        rest = await client.get(
            "/conversations",
            cast_to=ConversationList,
            options={"params": {"limit": 2, "after": page.last_id}},
        )
        assert [c.id for c in rest.data] == [expected[2].id] and not rest.has_more


async def test_a_function_call_round_trip_in_a_conversation(
    server: TestServer, fake_state: FakeState
) -> None:
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    async with sdk(server) as client:
        conversation = await client.conversations.create()
        asked = await client.responses.create(
            model="gpt-4o-mini",
            input="Paris?",
            tools=[weather],  # type: ignore[list-item]
            conversation=conversation.id,
        )
        [call] = asked.output
        assert call.type == "function_call"
        answer = await client.responses.create(
            model="gpt-4o-mini",
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            tools=[weather],  # type: ignore[list-item]
            conversation=conversation.id,
        )
        items = await client.conversations.items.list(conversation.id, order="asc")
    assert answer.output_text == CHAT_PREFIX + "sunny"
    sent = fake_state.last.body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    assert [item.type for item in items.data] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    for item in items.data:
        strict_item(item)
