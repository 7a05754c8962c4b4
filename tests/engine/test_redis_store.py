"""The Redis store on the real Redis: TTL (ttl/2 rule), max_live, write-behind records shared by
instances, the lock as a lease with a fencing token, and Redis down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from alice_py.engine.answer import Answer
from alice_py.engine.presets import Kind
from alice_py.engine.service import ConversationService
from alice_py.engine.turn import LeaseLost
from alice_py.errors import ConversationBusy, StorageUnavailable
from alice_py.redis_client import open_redis
from alice_py.store.base import LiveEntry, StoreChanges
from alice_py.store.redis import RedisStore
from tests.engine.conftest import MODELS, TTL, FakeUpstream
from tests.engine.test_store import conversation
from tests.redis_support import OwnRedis
from tests.support import Clock


@pytest.fixture
async def client(redis_prefix: tuple[str, str]) -> AsyncIterator[aioredis.Redis]:
    redis = open_redis(redis_prefix[0])
    yield redis
    await redis.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())  # Redis's own expiry is relative to it: a real wall-clock start


def make(
    client: aioredis.Redis, prefix: str, clock: Clock, max_live: int = 1000, lease: float = 5.0
) -> RedisStore:
    return RedisStore(client, prefix=prefix, ttl=TTL, max_live=max_live, lease=lease, timer=clock)


@pytest.fixture
def store(client: aioredis.Redis, redis_prefix: tuple[str, str], clock: Clock) -> RedisStore:
    return make(client, redis_prefix[1], clock)


@pytest.mark.parametrize(("sentences", "lifetime"), [(2, TTL / 2), (3, TTL)])
async def test_conversations_expire_after_ttl_or_half_of_it(
    store: RedisStore, clock: Clock, sentences: int, lifetime: float
) -> None:
    await store.put(conversation("c", sentences))
    clock.advance(lifetime - 0.01)
    assert (await store.get("c")).sentence_count() == sentences  # type: ignore[union-attr]
    await store.touch("c")  # a use: the countdown starts again
    clock.advance(lifetime - 0.01)
    assert await store.exists("c")
    clock.advance(0.02)
    assert await store.get("c") is None
    assert await store.count() == 0
    assert (await store.drain_changes()).deleted == frozenset({"c"})


async def test_add_never_overwrites_and_replace_never_revives(store: RedisStore) -> None:
    assert await store.add(conversation("c", 2))
    assert not await store.add(conversation("c"))
    assert (await store.get("c")).sentence_count() == 2  # type: ignore[union-attr]
    assert await store.delete("c")
    assert not await store.delete("c")
    assert not await store.replace(conversation("c"))
    assert await store.get("c") is None


async def test_past_max_live_the_one_nearest_expiry_is_handed_over_for_saving(
    client: aioredis.Redis, redis_prefix: tuple[str, str], clock: Clock
) -> None:
    store = make(client, redis_prefix[1], clock, max_live=2)
    for conv_id in ("a", "b"):
        await store.put(conversation(conv_id))
        clock.advance(1)
    b_expiry = (await store.entry("b")).expires_at  # type: ignore[union-attr]
    await store.drain_changes()
    await store.touch("a")  # "b" is now the least recently used
    await store.put(conversation("c"))
    assert [await store.exists(i) for i in ("a", "b", "c")] == [True, False, True]
    changes = await store.drain_changes()
    assert (changes.changed, changes.deleted) == ({"a", "c"}, frozenset())
    assert [(entry.conv.id, entry.expires_at) for entry in changes.evicted] == [("b", b_expiry)]


async def test_every_change_goes_to_exactly_one_instance(
    client: aioredis.Redis, redis_prefix: tuple[str, str], clock: Clock
) -> None:
    first, second = make(client, redis_prefix[1], clock), make(client, redis_prefix[1], clock)
    await first.put(conversation("kept", 4))
    await second.put(conversation("finished", 4))
    await first.delete("finished")
    assert await second.drain_changes() == StoreChanges(frozenset({"kept"}), frozenset({"finished"}))
    assert await first.drain_changes() == StoreChanges(frozenset(), frozenset())
    assert [conv.id for conv in await first.all()] == ["kept"]


async def test_a_restored_conversation_keeps_its_saved_expiry_and_is_not_a_change(
    store: RedisStore, clock: Clock
) -> None:
    assert await store.restore(LiveEntry(conversation("earlier", 4), clock() + TTL / 2))
    assert not await store.restore(LiveEntry(conversation("gone", 4), clock()))
    assert await store.drain_changes() == StoreChanges(frozenset(), frozenset())
    assert (await store.entry("earlier")).expires_at == clock() + TTL / 2  # type: ignore[union-attr]


async def test_the_lock_is_a_lease_with_a_fencing_token(
    client: aioredis.Redis, redis_prefix: tuple[str, str], clock: Clock
) -> None:
    store = make(client, redis_prefix[1], clock, lease=0.3)
    assert await store.acquire("c") == (None, None, False)  # not live: nothing to lock
    await store.put(conversation("c", 2))
    token, conv, _ = await store.acquire("c")
    assert token is not None and conv is not None and conv.sentence_count() == 2
    assert await store.acquire("c") == (None, None, True)
    assert await store.renew("c", token)
    assert await store.replace(conversation("c", 4), token=token)
    await asyncio.sleep(0.4)  # the holder died: its lease lapses by itself
    newer, _, _ = await store.acquire("c")
    assert newer is not None and newer > token
    assert not await store.replace(conversation("c", 6), token=token)  # the late commit is refused
    assert not await store.renew("c", token)
    await store.unlock("c", token)  # a stale unlock leaves the new holder's lock alone
    assert await store.is_locked("c")
    assert (await store.get("c")).sentence_count() == 4  # type: ignore[union-attr]
    await store.unlock("c", newer)
    assert not await store.is_locked("c")


async def test_redis_down_is_storage_unavailable_and_it_recovers(own_redis: OwnRedis, clock: Clock) -> None:
    client = open_redis(own_redis.url)
    store = make(client, "p:", clock)
    try:
        await store.put(conversation("c", 2))
        own_redis.stop()
        with pytest.raises(StorageUnavailable, match=r"The shared store \(Redis\) is not answering"):
            await store.get("c")
        await own_redis.start()  # an empty Redis (no persistence): scripts are loaded again
        assert await store.get("c") is None
        await store.put(conversation("c", 2))
        assert (await store.acquire("c")).token is not None
    finally:
        await client.aclose()


async def _held_answer(
    store: RedisStore, upstream: FakeUpstream, clock: Clock, renew_every: float | None
) -> tuple[ConversationService, str, asyncio.Event, Answer]:
    service = ConversationService(store, upstream, MODELS, clock=clock, renew_every=renew_every)
    conv = await service.create(Kind.TURBO, stream=True)
    gate = upstream.hold("part one, ", "part two")
    answer = await service.ask(conv.id, "long question")
    assert await answer.__anext__() == "part one, "
    return service, conv.id, gate, answer


async def test_an_answer_longer_than_the_lease_keeps_its_lock_by_renewing_it(
    client: aioredis.Redis, redis_prefix: tuple[str, str], clock: Clock, upstream: FakeUpstream
) -> None:
    store = make(client, redis_prefix[1], clock, lease=0.3)
    service, conv_id, gate, answer = await _held_answer(store, upstream, clock, renew_every=0.1)
    await asyncio.sleep(0.6)
    with pytest.raises(ConversationBusy):
        await service.ask(conv_id, "meanwhile")
    gate.set()
    assert await answer.collect() == "part one, part two"
    assert (await service.get(conv_id)).sentences() == ["long question", "part one, part two"]
    assert not await store.is_locked(conv_id)


async def test_a_commit_after_the_lease_lapsed_is_refused_and_keeps_nothing(
    client: aioredis.Redis, redis_prefix: tuple[str, str], clock: Clock, upstream: FakeUpstream
) -> None:
    store = make(client, redis_prefix[1], clock, lease=0.3)
    # No renewal: an instance paused (or cut off from Redis) past its lease.
    service, conv_id, gate, answer = await _held_answer(store, upstream, clock, renew_every=None)
    await asyncio.sleep(0.4)
    other = await service.ask(conv_id, "asked elsewhere")  # the lock lapsed: another request has it
    gate.set()
    with pytest.raises(LeaseLost, match="the conversation's lock lapsed"):
        await answer.collect()
    assert await other.collect() == "answer 2"
    assert (await service.get(conv_id)).sentences() == ["asked elsewhere", "answer 2"]


async def test_turns_started_at_once_each_get_their_own_conversation_and_lock(store: RedisStore) -> None:
    # Their scripts leave in one write (store.redis_batch): each reply still reaches its caller.
    for index in range(30):
        await store.put(conversation(f"c{index}", index % 5))
    got = await asyncio.gather(*(store.acquire(f"c{index}") for index in range(30)), store.acquire("c3"),
                               store.acquire("unknown"))  # fmt: skip
    for index, (_, conv, _) in enumerate(got[:30]):
        assert conv is not None and conv.id == f"c{index}" and conv.sentence_count() == index % 5
    assert len({token for token, _, _ in got[:30]}) == 30
    assert got[30] == (None, None, True)  # c3 taken by the first of the two: busy
    assert got[31] == (None, None, False)
    commits = [store.replace(conversation(f"c{i}", 6), token=got[i].token, release=True) for i in range(30)]
    assert all(await asyncio.gather(*commits))
    assert not any(await asyncio.gather(*(store.is_locked(f"c{index}") for index in range(30))))


async def test_a_caller_cancelled_while_its_script_runs_leaves_the_next_replies_in_order(
    store: RedisStore,
) -> None:
    for name in ("a", "b"):
        await store.put(conversation(name, 3))
    for _ in range(20):
        cancelled = asyncio.ensure_future(store.get("a"))
        started = asyncio.ensure_future(store.acquire("a"))
        await asyncio.sleep(0)
        started.cancel()
        cancelled.cancel()
        token, conv, _ = await store.acquire("b")
        assert conv is not None and conv.id == "b"
        assert token is not None
        await store.unlock("b", token)
        await store.unlock("a")


async def test_scripts_flushed_from_redis_are_loaded_again(own_redis: OwnRedis, clock: Clock) -> None:
    client = open_redis(own_redis.url)
    store = make(client, "p:", clock)
    try:
        await store.put(conversation("c", 3))
        await client.script_flush()
        token, conv, _ = await store.acquire("c")
        assert conv is not None and token is not None
        await client.script_flush()
        assert await store.replace(conversation("c", 5), token=token, release=True)
        assert not await store.is_locked("c")
        assert (await store.get("c")).sentence_count() == 5  # type: ignore[union-attr]
    finally:
        await client.aclose()
