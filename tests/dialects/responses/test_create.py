"""``client.responses.create / retrieve / delete / input_items`` with the official SDK."""

from __future__ import annotations

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.responses import Response, ResponseItem
from pydantic import TypeAdapter

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.responses.conftest import OTHER_KEY, sdk


async def test_create_then_continue_with_previous_response_id(
    server: TestServer, fake_state: FakeState
) -> None:
    async with sdk(server) as client:
        first = await client.responses.create(model="gpt-4o-mini", input="Hello", instructions="Be brief")
        assert first.output_text == CHAT_PREFIX + "Hello"
        assert first.status == "completed" and first.id.startswith("resp_")
        assert first.usage is not None and first.usage.output_tokens > 0
        assert first.instructions == "Be brief"
        assert fake_state.last.body["messages"] == [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hello"},
        ]
        second = await client.responses.create(
            model="gpt-4o-mini", input="And then?", previous_response_id=first.id
        )
    assert second.output_text == CHAT_PREFIX + "And then?"
    assert second.previous_response_id == first.id
    # instructions are not carried over, as at OpenAI; the history is.
    assert fake_state.last.body["messages"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": CHAT_PREFIX + "Hello"},
        {"role": "user", "content": "And then?"},
    ]
    Response.model_validate(second.model_dump())


async def test_continuing_an_older_response_branches_and_both_stay(
    server: TestServer, fake_state: FakeState
) -> None:
    async with sdk(server) as client:
        root = await client.responses.create(model="gpt-4o-mini", input="root")
        left = await client.responses.create(model="gpt-4o-mini", input="left", previous_response_id=root.id)
        right = await client.responses.create(
            model="gpt-4o-mini", input="right", previous_response_id=root.id
        )
        assert [m["content"] for m in fake_state.last.body["messages"]] == [
            "root",
            CHAT_PREFIX + "root",
            "right",
        ]
        assert (await client.responses.retrieve(left.id)).output_text == CHAT_PREFIX + "left"
        assert (await client.responses.retrieve(right.id)).output_text == CHAT_PREFIX + "right"
        await client.responses.create(model="gpt-4o-mini", input="more", previous_response_id=left.id)
    assert [m["content"] for m in fake_state.last.body["messages"]][2:4] == ["left", CHAT_PREFIX + "left"]


async def test_retrieve_delete_and_input_items(server: TestServer) -> None:
    async with sdk(server) as client:
        response = await client.responses.create(
            model="gpt-4o-mini",
            input=[
                {"role": "developer", "content": "dev"},
                {
                    "role": "user",
                    "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
                },
                {"type": "message", "role": "user", "content": "c"},
            ],
            metadata={"topic": "test"},
            temperature=0.5,
            top_p=0.9,
            max_output_tokens=50,
        )
        got = await client.responses.retrieve(response.id)
        assert got.model_dump() == response.model_dump()
        assert (got.metadata, got.temperature, got.top_p, got.max_output_tokens) == (
            {"topic": "test"},
            0.5,
            0.9,
            50,
        )
        page = await client.responses.input_items.list(response.id)
        assert [item.content[0].text for item in page.data] == ["c", "ab", "dev"]  # type: ignore[union-attr]
        TypeAdapter(list[ResponseItem]).validate_python([item.model_dump() for item in page.data])
        first = await client.responses.input_items.list(response.id, order="asc", limit=1)
        assert first.has_more and first.data[0].role == "developer"  # type: ignore[union-attr]
        rest = await client.responses.input_items.list(response.id, order="asc", after=first.data[0].id)
        assert [item.role for item in rest.data] == ["user", "user"]  # type: ignore[union-attr]
        with pytest.raises(openai.BadRequestError):
            await client.responses.input_items.list(response.id, limit=101)
        await client.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.delete(response.id)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="x", previous_response_id=response.id)
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"


async def test_store_false_is_neither_retrievable_nor_continued(server: TestServer) -> None:
    async with sdk(server) as client:
        response = await client.responses.create(model="gpt-4o-mini", input="secret", store=False)
        assert response.output_text == CHAT_PREFIX + "secret" and response.store is False
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="x", previous_response_id=response.id)
    assert caught.value.code == "previous_response_not_found"


async def test_another_client_key_sees_nothing(server: TestServer) -> None:
    async with sdk(server) as mine, sdk(server, OTHER_KEY) as theirs:
        response = await mine.responses.create(model="gpt-4o-mini", input="mine")
        with pytest.raises(openai.NotFoundError):
            await theirs.responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            await theirs.responses.input_items.list(response.id)
        with pytest.raises(openai.NotFoundError):
            await theirs.responses.delete(response.id)
        with pytest.raises(openai.BadRequestError):
            await theirs.responses.create(model="gpt-4o-mini", input="x", previous_response_id=response.id)
        assert (await mine.responses.retrieve(response.id)).id == response.id
    async with sdk(server, "sk-wrong") as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.responses.retrieve(response.id)


async def test_unsupported_fields_are_refused_naming_them(server: TestServer) -> None:
    async with sdk(server) as client:
        cases = [
            ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
            (
                {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
                "input[0].content[0].type",
            ),
            ({"truncation": "middle"}, "truncation"),
            ({"background": True, "store": False}, "background"),
            ({"conversation": "conv_x", "previous_response_id": "resp_x"}, "conversation"),
            ({"reasoning": {"effort": "low"}}, "reasoning"),
            ({"temperature": 3}, "temperature"),
            ({"metadata": {"k": "v" * 513}}, "metadata"),
        ]
        for extra, param in cases:
            body = {"model": "gpt-4o-mini", "input": "hi", **extra}
            with pytest.raises(openai.BadRequestError) as caught:
                await client.post("/responses", body=body, cast_to=Response)
            assert caught.value.param == param, extra
