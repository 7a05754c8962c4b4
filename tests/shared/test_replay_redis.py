"""Normal auth's replay record on Redis (``web.replay_redis``): shared by instances, kept
across restarts, and following ``[auth] replay``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from alice_py.config import AuthConfig, Config, ConversationsConfig
from alice_py.errors import StorageUnavailable
from alice_py.redis_client import open_redis
from alice_py.web.replay_redis import RedisReplayGuard, redis_replay_guard
from tests.redis_support import OwnRedis
from tests.support import Clock

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_prefix: tuple[str, str]) -> AsyncIterator[aioredis.Redis]:
    connection = open_redis(redis_prefix[0])
    yield connection
    await connection.aclose()


def config(replay: str, ttl: float = 1800.0) -> Config:
    return Config(auth=AuthConfig(mode="normal", replay=replay), conversations=ConversationsConfig(ttl=ttl))


async def test_a_uuid_used_on_one_instance_is_refused_on_another(
    client: aioredis.Redis, redis_prefix: tuple[str, str]
) -> None:
    url, prefix = redis_prefix
    other = open_redis(url)
    a = redis_replay_guard(config("strict"), client, prefix)
    b = redis_replay_guard(config("strict"), other, prefix)
    assert await a.first_use("u1")
    assert not await b.first_use("u1")
    assert await b.first_use("u2")
    assert not await a.first_use("u2")
    await other.aclose()


async def test_strict_refuses_for_the_ttl_then_forgets(
    client: aioredis.Redis, redis_prefix: tuple[str, str]
) -> None:
    clock = Clock()
    guard = redis_replay_guard(config("strict", ttl=600), client, redis_prefix[1], clock=clock)
    assert await guard.first_use("u")
    clock.advance(599)
    assert not await guard.first_use("u")
    clock.advance(1)
    assert await guard.first_use("u")
    # The set expires in Redis too when no uuid came for a TTL: an idle service leaves nothing.
    ttl_ms = await client.pttl(guard.key)
    assert 0 < ttl_ms <= 600_000


async def test_strict_when_full_forgets_the_oldest_and_says_so(
    client: aioredis.Redis, redis_prefix: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    guard = redis_replay_guard(config("strict"), client, redis_prefix[1], capacity=3, clock=clock)
    with caplog.at_level(logging.WARNING):
        for n in range(5):
            clock.advance(1)
            assert await guard.first_use(f"u{n}")  # never refused for being full
    assert await client.zcard(guard.key) == 3
    assert [r.getMessage() for r in caplog.records if "replay set is full" in r.getMessage()] == [
        "normal auth: the replay set is full (3 uuids seen within 1800s): forgetting the oldest "
        "ones early, so a replay of one of those would be accepted"
    ]  # once a minute at most
    assert await guard.first_use("u0")  # forgotten early
    assert not await guard.first_use("u4")


async def test_original_refuses_only_the_last_50(
    client: aioredis.Redis, redis_prefix: tuple[str, str]
) -> None:
    clock = Clock()
    guard = redis_replay_guard(config("original"), client, redis_prefix[1], clock=clock)
    for n in range(51):
        clock.advance(0.001)
        assert await guard.first_use(f"{n}")
    assert await guard.first_use("0")  # pushed out by the 50 after it
    assert not await guard.first_use("50")
    clock.advance(86_400)  # no expiry: it is the count that forgets, as in the Go service
    assert not await guard.first_use("50")
    assert await client.pttl(guard.key) == -1


async def test_the_policies_keep_separate_records(
    client: aioredis.Redis, redis_prefix: tuple[str, str]
) -> None:
    strict = redis_replay_guard(config("strict"), client, redis_prefix[1])
    original = redis_replay_guard(config("original"), client, redis_prefix[1])
    assert await strict.first_use("u")
    assert await original.first_use("u")
    assert strict.key != original.key


async def test_redis_down_refuses_with_storage_unavailable_and_heals(own_redis: OwnRedis) -> None:
    connection = open_redis(own_redis.url)
    guard = RedisReplayGuard(connection, "p:replay", 600)
    assert await guard.first_use("u1")
    own_redis.stop()
    with pytest.raises(StorageUnavailable):
        await guard.first_use("u2")
    await own_redis.start()  # (an empty Redis: this test's server keeps nothing on disk)
    assert await guard.first_use("u2")  # the script is loaded again by itself
    assert not await guard.first_use("u2")
    await connection.aclose()
