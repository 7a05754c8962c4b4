"""Several real ``alice-py`` processes on one Redis and one database behave as one service:
a conversation moves between them, the lock holds across them, a killed instance frees its
conversation within the lease and its half-answer is never kept, and Redis going away is a
clear 503 that ends by itself when Redis is back."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from alice_py.fake import CHAT_PREFIX, RunningFake
from tests.persistence.helpers import Alice, running_alice, saved_rows
from tests.redis_support import OwnRedis

LEASE = 1.5


def redis_env(url: str, prefix: str) -> dict[str, str]:
    return {
        "ALICE_CONVERSATIONS_STORE": "redis",
        "ALICE_CONVERSATIONS_REDIS_URL": url,
        "ALICE_CONVERSATIONS_KEY_PREFIX": prefix,
        "ALICE_CONVERSATIONS_LOCK_LEASE": str(LEASE),
    }


@asynccontextmanager
async def instances(
    tmp_path: Path, fake: RunningFake, count: int, env: dict[str, str]
) -> AsyncIterator[list[Alice]]:
    """``count`` processes on one SQLite file (no writer lock with Redis) and one Redis."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_alice(tmp_path, fake, **env)) for _ in range(count)]


async def test_created_on_a_continued_on_b_regenerated_on_c(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    async with instances(tmp_path, fake, 3, redis_env(*redis_prefix)) as (a, b, c):
        conv = await a.create_turbo(stream=False)
        first = await b.chat(conv, "What is a cat?")
        assert first == CHAT_PREFIX + "What is a cat?"
        status, again = await c.post("regenerate", conv=conv)
        assert status == 200, again
        assert await a.sentences(conv) == ["What is a cat?", again]
        status, tree = await b.post("tree", conv=conv)
        assert status == 200 and len(json.loads(tree)["messages"]) == 3  # the first answer kept beside
        assert (await a.post("finish", conv=conv))[0] == 200
        assert await c.sentences(conv) is None
        for alice in (a, b, c):
            assert (await alice.readyz())[0] == 200
            await alice.stop()


async def test_two_chats_at_once_through_a_and_b_one_answers_one_is_busy(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    async with instances(tmp_path, fake, 2, redis_env(*redis_prefix)) as (a, b):
        conv = await a.create_turbo(stream=False)
        fake.state.delay = 0.5
        results = await asyncio.gather(a.post("chat", b"one", conv), b.post("chat", b"two", conv))
        fake.state.delay = 0.0
        assert sorted(status for status, _ in results) == [200, 409]
        assert [body for status, body in results if status == 409] == ["AI is thinking"]
        answered = next(body for status, body in results if status == 200)
        assert len(await b.sentences(conv) or []) == 2 and answered in (await a.sentences(conv) or [])


async def test_an_instance_killed_mid_stream_frees_the_conversation_and_keeps_no_half_answer(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    async with instances(tmp_path, fake, 2, redis_env(*redis_prefix)) as (a, b):
        conv = await a.create_turbo(stream=True)
        await a.chat(conv, "one")
        before = await b.sentences(conv)
        fake.state.chunk_delay = 0.3
        headers = {"conversation": conv}
        async with a.session.post(f"{a.url}/chatgpt/chat", data=b"a long one", headers=headers) as resp:
            assert resp.status == 200
            await resp.content.readany()  # the answer is streaming
            a.signal(signal.SIGKILL)
            assert await a.stopped() == -signal.SIGKILL
        fake.state.chunk_delay = 0.0
        assert await b.post("chat", b"two", conv) == (409, "AI is thinking")  # the lease still holds
        await asyncio.sleep(LEASE)
        status, answer = await b.post("chat", b"two", conv)
        assert status == 200, answer
        assert await b.sentences(conv) == [*(before or []), "two", CHAT_PREFIX + "two"]


async def test_redis_down_is_a_503_in_each_dialect_and_readyz_names_it_until_it_is_back(
    tmp_path: Path, fake: RunningFake, own_redis: OwnRedis
) -> None:
    env = {**redis_env(own_redis.url, "p:"), "ALICE_CONVERSATIONS_WRITE_BEHIND": "0.2"}
    async with running_alice(tmp_path, fake, **env) as alice:
        conv = await alice.create_turbo(stream=False)
        assert (await alice.readyz())[0] == 200
        async with asyncio.timeout(5):
            while conv not in await saved_rows(tmp_path):  # noqa: ASYNC110 - a file: nothing to await on
                await asyncio.sleep(0.05)
        # Written behind to the database: a Redis that comes back empty loses nothing older.
        own_redis.stop()
        status, body = await alice.post("chat", b"hello", conv)
        assert (status, body) == (503, "The shared store (Redis) is not answering, please try again later")
        node_body = {"message": "hi", "conversationId": conv}
        async with alice.session.post(f"{alice.url}/conversation", json=node_body) as resp:
            assert resp.status == 503
            assert "(Redis) is not answering" in (await resp.json())["error"]
        assert "redis: not answering" in await alice.until_ready(503, "redis")
        await own_redis.start()  # empty (no persistence): the conversation comes back from the database
        await alice.until_ready(200)
        assert await alice.chat(conv, "hello") == CHAT_PREFIX + "hello"
        await alice.stop()
    assert "Traceback" not in alice.log


async def test_an_instance_stopping_saves_what_changed_not_the_whole_shared_store(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    env = {**redis_env(*redis_prefix), "ALICE_CONVERSATIONS_WRITE_BEHIND": "600"}
    async with instances(tmp_path, fake, 2, env) as (a, b):
        kept = [await a.create_turbo(stream=False) for _ in range(3)]
        for conv in kept:
            await a.chat(conv, "Remember this.")
        await a.stop()  # the first to stop writes the changes, whoever made them
        assert "saved 3 conversation(s) changed since the last round" in a.log
        assert set(kept) <= set(await saved_rows(tmp_path))
        await b.stop()  # the other has nothing left to write: it does not save them all again
        assert "saved 0 conversation(s) changed since the last round" in b.log
    async with instances(tmp_path, fake, 1, redis_env(*redis_prefix)) as (c,):
        assert await c.sentences(kept[0]) == ["Remember this.", CHAT_PREFIX + "Remember this."]
        await c.stop()
