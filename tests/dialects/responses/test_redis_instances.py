"""Two instances on one Redis and one database: conversations, the busy lock and the events of
a background response are shared; a stream dropped on one resumes on the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.responses import ResponseStreamEvent

from alice_py.app import create_app
from alice_py.fake import CHAT_PREFIX, FakeState, RunningFake
from tests.dialects.conftest import CLIENT_KEY, make_config
from tests.dialects.responses.conftest import sdk
from tests.dialects.responses.test_background import until_status
from tests.redis_support import OwnRedis


@asynccontextmanager
async def two_instances(
    fake: RunningFake, tmp_path: Path, redis_prefix: tuple[str, str]
) -> AsyncIterator[tuple[openai.AsyncOpenAI, openai.AsyncOpenAI]]:
    url, prefix = redis_prefix
    cfg = make_config(
        fake,
        tmp_path,
        auth={"mode": "simple"},
        openai={"client_keys": (CLIENT_KEY,)},
        conversations={"store": "redis", "redis_url": url, "key_prefix": prefix, "lock_lease": 1.5},
    )
    async with (
        TestServer(create_app(cfg)) as first,
        TestServer(create_app(cfg)) as second,
        sdk(first) as a,
        sdk(second) as b,
    ):
        yield a, b


async def test_a_stream_dropped_on_one_instance_resumes_on_the_other(
    fake: RunningFake, fake_state: FakeState, tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    fake_state.chunk_delay = 0.03
    async with two_instances(fake, tmp_path, redis_prefix) as (a, b):
        seen: list[ResponseStreamEvent] = []
        stream = await a.responses.create(
            model="gpt-4o-mini", input="move over", background=True, stream=True
        )
        async for event in stream:
            seen.append(event)
            if event.type == "response.output_text.delta":
                break
        await stream.close()
        response_id = seen[0].response.id  # type: ignore[union-attr]
        resumed = await b.responses.retrieve(
            response_id, stream=True, starting_after=seen[-1].sequence_number
        )
        rest = [event async for event in resumed]
        numbers = [event.sequence_number for event in [*seen, *rest]]
        assert numbers == list(range(len(numbers)))
        assert rest[-1].type == "response.completed"
        assert (await b.responses.retrieve(response_id)).output_text == CHAT_PREFIX + "move over"


async def test_conversations_and_their_lock_are_shared(
    fake: RunningFake, fake_state: FakeState, tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    async with two_instances(fake, tmp_path, redis_prefix) as (a, b):
        conversation = await a.conversations.create(
            items=[{"type": "message", "role": "user", "content": "hi"}]
        )
        fake_state.delay = 2.5
        queued = await a.responses.create(
            model="gpt-4o-mini", input="slow", background=True, conversation=conversation.id
        )
        with pytest.raises(openai.ConflictError):
            await b.responses.create(model="gpt-4o-mini", input="meanwhile", conversation=conversation.id)
        await asyncio.sleep(1.8)  # past the 1.5 s lease: the run renews it
        with pytest.raises(openai.ConflictError):
            await b.responses.create(model="gpt-4o-mini", input="still busy", conversation=conversation.id)
        fake_state.delay = 0
        await until_status(b, queued.id, "completed")
        await b.responses.create(model="gpt-4o-mini", input="after", conversation=conversation.id)
        items = await a.conversations.items.list(conversation.id, order="asc")
    assert len(items.data) == 5


async def test_a_cancel_on_one_instance_stops_the_run_on_the_other(
    fake: RunningFake, fake_state: FakeState, tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    fake_state.delay = 2
    async with two_instances(fake, tmp_path, redis_prefix) as (a, b):
        conversation = await a.conversations.create()
        queued = await a.responses.create(
            model="gpt-4o-mini", input="stop me", background=True, conversation=conversation.id
        )
        await until_status(a, queued.id, "in_progress")
        cancelled = await b.responses.cancel(queued.id)
        assert cancelled.status == "cancelled"
        assert (await a.responses.retrieve(queued.id)).status == "cancelled"
        fake_state.delay = 0
        await b.responses.create(model="gpt-4o-mini", input="free", conversation=conversation.id)
        assert len((await a.conversations.items.list(conversation.id)).data) == 2


async def test_redis_down_is_a_503_and_it_works_again_when_back(
    fake: RunningFake, tmp_path: Path, own_redis: OwnRedis
) -> None:
    cfg = make_config(
        fake,
        tmp_path,
        auth={"mode": "simple"},
        openai={"client_keys": (CLIENT_KEY,)},
        conversations={"store": "redis", "redis_url": own_redis.url},
    )
    async with TestServer(create_app(cfg)) as server, sdk(server) as client:
        done = await client.responses.create(model="gpt-4o-mini", input="before", background=True)
        await until_status(client, done.id, "completed")
        own_redis.stop()
        with pytest.raises(openai.InternalServerError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="down", background=True)
        assert caught.value.status_code == 503
        with pytest.raises(openai.InternalServerError):
            await client.responses.retrieve(done.id, stream=True)
        await own_redis.start()
        again = await client.responses.create(model="gpt-4o-mini", input="back", background=True)
        assert (await until_status(client, again.id, "completed")).output_text == CHAT_PREFIX + "back"
