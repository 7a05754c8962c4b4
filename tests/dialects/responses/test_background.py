"""Background responses with the official SDK: queued at once, made anyway, retrieved, cancelled,
their stream resumed after a dropped connection; a shutdown or a dead instance never leaves
one ``in_progress``."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from alice_py.app import create_app
from alice_py.fake import CHAT_PREFIX, FakeState, RunningFake
from tests.dialects.conftest import CLIENT_KEY, make_config
from tests.dialects.responses.conftest import OTHER_KEY, sdk
from tests.persistence.helpers import running_alice
from tests.support import wait_until

EVENT = TypeAdapter(ResponseStreamEvent)


async def until_status(client: openai.AsyncOpenAI, response_id: str, *statuses: str) -> Response:
    async with asyncio.timeout(10):
        while (got := await client.responses.retrieve(response_id)).status not in statuses:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return got


def strict(event: ResponseStreamEvent) -> ResponseStreamEvent:
    return EVENT.validate_python(event.model_dump(), strict=True)


async def test_background_returns_at_once_and_the_answer_is_made_anyway(
    server: TestServer, fake_state: FakeState
) -> None:
    fake_state.chunk_delay = 0.02
    async with sdk(server) as client:
        queued = await client.responses.create(model="gpt-4o-mini", input="later", background=True)
        assert queued.status in ("queued", "in_progress") and queued.background is True
        assert queued.output == []
        Response.model_validate(queued.model_dump(), strict=True)
        done = await until_status(client, queued.id, "completed")
    assert done.output_text == CHAT_PREFIX + "later" and done.usage is not None
    assert done.background is True
    Response.model_validate(done.model_dump(), strict=True)


async def test_a_dropped_stream_resumes_from_starting_after(
    server: TestServer, fake_state: FakeState
) -> None:
    fake_state.chunk_delay = 0.03
    async with sdk(server) as client:
        seen: list[ResponseStreamEvent] = []
        stream = await client.responses.create(
            model="gpt-4o-mini", input="resume me", background=True, stream=True
        )
        async for event in stream:
            seen.append(strict(event))
            if event.type == "response.output_text.delta":
                break
        await stream.close()  # the client's connection is gone; the response goes on
        assert seen[0].type == "response.created" and seen[0].response.status == "queued"
        last = seen[-1].sequence_number
        resumed = await client.responses.retrieve(seen[0].response.id, stream=True, starting_after=last)
        rest = [strict(event) async for event in resumed]
    numbers = [event.sequence_number for event in [*seen, *rest]]
    assert numbers == list(range(len(numbers)))
    assert rest[-1].type == "response.completed"
    deltas = [event.delta for event in [*seen, *rest] if event.type == "response.output_text.delta"]
    assert "".join(deltas) == CHAT_PREFIX + "resume me"
    assert rest[-1].response.output_text == CHAT_PREFIX + "resume me"


async def test_resuming_a_finished_response_replays_its_events(server: TestServer) -> None:
    async with sdk(server) as client:
        queued = await client.responses.create(model="gpt-4o-mini", input="all of it", background=True)
        await until_status(client, queued.id, "completed")
        replay = [event async for event in await client.responses.retrieve(queued.id, stream=True)]
        assert replay[0].type == "response.created" and replay[-1].type == "response.completed"
        tail = [
            event async for event in await client.responses.retrieve(queued.id, stream=True, starting_after=2)
        ]
        assert [event.sequence_number for event in tail] == list(range(3, len(replay)))
        answered = await client.responses.create(model="gpt-4o-mini", input="not background")
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.retrieve(answered.id, stream=True)
        assert caught.value.param == "stream"


async def test_cancel_stops_it(server: TestServer, fake_state: FakeState) -> None:
    fake_state.delay = 2  # longer than the test; not longer, or the fake's shutdown waits for it
    async with sdk(server) as client:
        conversation = await client.conversations.create()
        queued = await client.responses.create(
            model="gpt-4o-mini", input="never", background=True, conversation=conversation.id
        )
        with pytest.raises(openai.ConflictError):  # the background run holds the conversation
            await client.responses.create(
                model="gpt-4o-mini", input="meanwhile", conversation=conversation.id
            )
        cancelled = await client.responses.cancel(queued.id)
        assert cancelled.status == "cancelled" and cancelled.id == queued.id
        Response.model_validate(cancelled.model_dump(), strict=True)
        assert (await client.responses.retrieve(queued.id)).status == "cancelled"
        assert (await client.responses.cancel(queued.id)).status == "cancelled"  # idempotent
        assert (await client.conversations.items.list(conversation.id)).data == []
        fake_state.delay = 0
        await client.responses.create(model="gpt-4o-mini", input="free again", conversation=conversation.id)
        answered = await client.responses.create(model="gpt-4o-mini", input="not background")
        with pytest.raises(openai.BadRequestError):
            await client.responses.cancel(answered.id)


async def test_a_background_response_in_a_conversation_extends_it(server: TestServer) -> None:
    async with sdk(server) as client:
        conversation = await client.conversations.create()
        queued = await client.responses.create(
            model="gpt-4o-mini", input="in the background", background=True, conversation=conversation.id
        )
        await until_status(client, queued.id, "completed")
        items = await client.conversations.items.list(conversation.id, order="asc")
    assert [item.type for item in items.data] == ["message", "message"]


async def test_another_key_cannot_see_cancel_or_resume_it(server: TestServer, fake_state: FakeState) -> None:
    fake_state.chunk_delay = 0.02
    async with sdk(server) as mine, sdk(server, OTHER_KEY) as theirs:
        queued = await mine.responses.create(model="gpt-4o-mini", input="mine", background=True)
        for call in (
            theirs.responses.retrieve(queued.id),
            theirs.responses.cancel(queued.id),
            theirs.responses.retrieve(queued.id, stream=True),
        ):
            with pytest.raises(openai.NotFoundError):
                await call
        assert (await until_status(mine, queued.id, "completed")).output_text == CHAT_PREFIX + "mine"


async def test_background_failure_is_recorded(server: TestServer, fake_state: FakeState) -> None:
    fake_state.fail_next("server_error")
    async with sdk(server) as client:
        queued = await client.responses.create(model="gpt-4o-mini", input="fails", background=True)
        failed = await until_status(client, queued.id, "failed")
        events = [event async for event in await client.responses.retrieve(queued.id, stream=True)]
    assert failed.error is not None and failed.error.code == "server_error"
    assert events[-1].type == "response.failed"


async def test_a_shutdown_waits_for_it_then_fails_what_is_left(
    fake: RunningFake, fake_state: FakeState, tmp_path: Path
) -> None:
    cfg = make_config(
        fake,
        tmp_path,
        auth={"mode": "simple"},
        openai={"client_keys": (CLIENT_KEY,)},
        server={"drain_timeout": 1.0},
    )
    async with TestServer(create_app(cfg)) as first, sdk(first) as client:
        fake_state.delay = 0.3
        quick = await client.responses.create(model="gpt-4o-mini", input="in time", background=True)
        await wait_until(lambda: len(fake_state.requests) == 1)  # the fake took its 0.3 s
        fake_state.delay = 2.5  # beyond the drain timeout
        slow = await client.responses.create(model="gpt-4o-mini", input="too slow", background=True)
    async with TestServer(create_app(cfg)) as second, sdk(second) as client:
        assert (await client.responses.retrieve(quick.id)).output_text == CHAT_PREFIX + "in time"
        stopped = await client.responses.retrieve(slow.id)
    assert stopped.status == "failed" and stopped.error is not None
    assert "stopped" in stopped.error.message


async def test_the_response_of_a_dead_instance_is_marked_failed(
    tmp_path: Path, fake: RunningFake, fake_state: FakeState
) -> None:
    fake_state.delay = 3
    async with running_alice(tmp_path, fake) as alice:
        async with openai.AsyncOpenAI(base_url=alice.url + "/v1", api_key="any", max_retries=0) as client:
            queued = await client.responses.create(model="gpt-4o-mini", input="orphan", background=True)
            await until_status(client, queued.id, "in_progress")
        alice.signal(signal.SIGKILL)
        assert await alice.stopped() == -signal.SIGKILL
    async with running_alice(tmp_path, fake) as alice:
        async with openai.AsyncOpenAI(base_url=alice.url + "/v1", api_key="any", max_retries=0) as client:
            dead = await client.responses.retrieve(queued.id)
        await alice.stop()
    assert dead.status == "failed" and dead.error is not None and dead.error.code == "server_error"


async def test_deleting_it_stops_it(server: TestServer, fake_state: FakeState) -> None:
    fake_state.delay = 2
    async with sdk(server) as client:
        conversation = await client.conversations.create()
        queued = await client.responses.create(
            model="gpt-4o-mini", input="doomed", background=True, conversation=conversation.id
        )
        await client.responses.delete(queued.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(queued.id)
        fake_state.delay = 0  # the run let go of the conversation: the next response is no 409
        await client.responses.create(model="gpt-4o-mini", input="next", conversation=conversation.id)
        assert len((await client.conversations.items.list(conversation.id)).data) == 2
