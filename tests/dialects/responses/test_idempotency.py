"""``Idempotency-Key`` on ``POST /v1/responses``, through the official SDK's ``extra_headers``."""

from __future__ import annotations

import asyncio

import openai
import pytest
from aiohttp.test_utils import TestServer

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.responses.conftest import OTHER_KEY, sdk


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def chats(fake_state: FakeState) -> int:
    return sum(1 for r in fake_state.requests if r.path.endswith("/chat/completions"))


async def test_a_repeat_is_the_same_response_without_a_second_model_call(
    server: TestServer, fake_state: FakeState
) -> None:
    async with sdk(server) as client:
        first = await client.responses.create(model="gpt-4o-mini", input="once", extra_headers=key("k-1"))
        again = await client.responses.create(model="gpt-4o-mini", input="once", extra_headers=key("k-1"))
        assert again.model_dump() == first.model_dump()
        assert chats(fake_state) == 1
        # streamed, the repeat is created then completed with the whole response
        async with client.responses.stream(
            model="gpt-4o-mini", input="once", extra_headers=key("k-1")
        ) as stream:
            types = [event.type async for event in stream]
            final = await stream.get_final_response()
        assert types == ["response.created", "response.completed"]
        assert final.id == first.id and final.output_text == CHAT_PREFIX + "once"
        assert chats(fake_state) == 1
        # without a key, or with a new one, it is a new response
        fresh = await client.responses.create(model="gpt-4o-mini", input="once", extra_headers=key("k-2"))
        assert fresh.id != first.id and chats(fake_state) == 2


async def test_a_streamed_first_request_is_replayed_too(server: TestServer, fake_state: FakeState) -> None:
    async with sdk(server) as client:
        async with client.responses.stream(model="gpt-4o-mini", input="s", extra_headers=key("ks")) as stream:
            first = await stream.get_final_response()
        again = await client.responses.create(
            model="gpt-4o-mini", input="s", stream=True, extra_headers=key("ks")
        )
        events = [event async for event in again]
    assert events[-1].type == "response.completed" and events[-1].response.id == first.id
    assert chats(fake_state) == 1


async def test_the_same_key_with_another_body_is_422(server: TestServer, fake_state: FakeState) -> None:
    async with sdk(server) as client:
        await client.responses.create(model="gpt-4o-mini", input="one", extra_headers=key("k"))
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="two", extra_headers=key("k"))
    assert caught.value.code == "idempotency_key_reused"
    assert chats(fake_state) == 1


async def test_a_repeat_while_the_first_runs_is_409(server: TestServer, fake_state: FakeState) -> None:
    fake_state.delay = 1.0
    async with sdk(server) as client:
        first = asyncio.create_task(
            client.responses.create(model="gpt-4o-mini", input="slow", extra_headers=key("k"))
        )
        await asyncio.sleep(0.3)
        with pytest.raises(openai.ConflictError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="slow", extra_headers=key("k"))
        assert caught.value.code == "idempotency_key_in_use"
        made = await first
        fake_state.delay = 0
        again = await client.responses.create(model="gpt-4o-mini", input="slow", extra_headers=key("k"))
    assert again.id == made.id and chats(fake_state) == 1


async def test_keys_belong_to_their_client_key_and_store_false_is_replayed(
    server: TestServer, fake_state: FakeState
) -> None:
    async with sdk(server) as mine, sdk(server, OTHER_KEY) as theirs:
        a = await mine.responses.create(model="gpt-4o-mini", input="x", store=False, extra_headers=key("k"))
        b = await theirs.responses.create(model="gpt-4o-mini", input="x", store=False, extra_headers=key("k"))
        assert a.id != b.id and chats(fake_state) == 2
        again = await mine.responses.create(
            model="gpt-4o-mini", input="x", store=False, extra_headers=key("k")
        )
        assert again.id == a.id and chats(fake_state) == 2
        with pytest.raises(openai.NotFoundError):  # store: false is still not retrievable
            await mine.responses.retrieve(a.id)


async def test_a_failed_request_leaves_its_key_free(server: TestServer, fake_state: FakeState) -> None:
    fake_state.context_window = 1  # the upstream refuses it
    async with sdk(server) as client:
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(model="gpt-4o-mini", input="x y z", extra_headers=key("k"))
        fake_state.context_window = None
        made = await client.responses.create(model="gpt-4o-mini", input="x y z", extra_headers=key("k"))
        assert made.output_text == CHAT_PREFIX + "x y z" and chats(fake_state) == 2
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="x", extra_headers=key("k" * 256))
    assert caught.value.param == "Idempotency-Key"


async def test_a_background_repeat_answers_the_response_as_it_is_now(
    server: TestServer, fake_state: FakeState
) -> None:
    async with sdk(server) as client:
        job = await client.responses.create(
            model="gpt-4o-mini", input="bg", background=True, extra_headers=key("kb")
        )
        for _ in range(100):
            if (await client.responses.retrieve(job.id)).status == "completed":
                break
            await asyncio.sleep(0.05)
        again = await client.responses.create(
            model="gpt-4o-mini", input="bg", background=True, extra_headers=key("kb")
        )
    assert again.id == job.id and again.status == "completed"
    assert again.output_text == CHAT_PREFIX + "bg" and chats(fake_state) == 1
