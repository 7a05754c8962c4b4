"""The rate limits on Redis (``web.ratelimit_redis``): the memory limiter's rules, with the
count shared by every limiter on the same Redis and key prefix (one per instance)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from alice_py.errors import RateLimited, StorageUnavailable
from alice_py.redis_client import open_redis
from alice_py.web.ratelimit import CLIENT_BUSY
from alice_py.web.ratelimit_redis import RedisLimiter
from tests.redis_support import OwnRedis
from tests.support import Clock

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_prefix: tuple[str, str]) -> AsyncIterator[aioredis.Redis]:
    connection = open_redis(redis_prefix[0])
    yield connection
    await connection.aclose()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The wall clock the call times are read from (``limits`` reads ``time.time``)."""
    fake = Clock(1_000_000.0)
    monkeypatch.setattr("time.time", fake)
    return fake


async def test_the_limit_is_exact_over_two_instances(
    client: aioredis.Redis, redis_prefix: tuple[str, str]
) -> None:
    prefix = redis_prefix[1]
    other = open_redis(redis_prefix[0])  # another instance's own pool
    a, b = RedisLimiter(client, prefix, 5), RedisLimiter(other, prefix, 5)
    for limiter in (a, b, a, b, a):
        await limiter.acquire("x")
    for limiter in (a, b):
        with pytest.raises(RateLimited) as caught:
            await limiter.acquire("x")
        assert caught.value.message == "Server busy"
        assert 59 <= caught.value.retry_after <= 60
    await other.aclose()


async def test_sliding_window_frees_one_slot_at_a_time(
    client: aioredis.Redis, redis_prefix: tuple[str, str], clock: Clock
) -> None:
    limiter = RedisLimiter(client, redis_prefix[1], 3)
    start = clock.now
    for at in (0, 30, 59):
        clock.now = start + at
        await limiter.acquire("a")
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("a")
    assert caught.value.retry_after == pytest.approx(1)
    clock.now = start + 61  # the call at 0 left the window
    await limiter.acquire("a")
    clock.now = start + 62
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("a")
    assert caught.value.retry_after == pytest.approx(28)  # until the call at 30 leaves


async def test_per_client_limit_spares_other_clients(
    client: aioredis.Redis, redis_prefix: tuple[str, str], clock: Clock
) -> None:
    limiter = RedisLimiter(client, redis_prefix[1], 0, 2)
    await limiter.acquire("a")
    await limiter.acquire("a", model_call=False)  # a new conversation counts for its client
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("a")
    assert caught.value.message == CLIENT_BUSY
    await limiter.acquire("b")
    clock.advance(60.5)  # (limits counts a call for 60 s inclusive: exactly 60 s later it still counts)
    await limiter.acquire("a")


async def test_a_refusal_by_one_limit_counts_against_neither(
    client: aioredis.Redis, redis_prefix: tuple[str, str]
) -> None:
    limiter = RedisLimiter(client, redis_prefix[1], 2, 1)
    await limiter.acquire("a")
    with pytest.raises(RateLimited):
        await limiter.acquire("a")  # refused per client: the global slot it would take stays free
    await limiter.acquire("b")
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("c")
    assert caught.value.message == "Server busy"
    # Refused globally, c's own slot was not spent either: alone it would still pass.
    alone = RedisLimiter(client, redis_prefix[1], 0, 1)
    await alone.acquire("c")


async def test_new_conversations_do_not_count_globally(
    client: aioredis.Redis, redis_prefix: tuple[str, str]
) -> None:
    limiter = RedisLimiter(client, redis_prefix[1], 1, 10)
    for _ in range(5):
        await limiter.acquire("a", model_call=False)
    await limiter.acquire("a")


async def test_zero_is_no_limit_and_touches_no_redis(own_redis: OwnRedis) -> None:
    connection = open_redis(own_redis.url)
    limiter = RedisLimiter(connection, "p:", 0)
    own_redis.stop()
    for _ in range(100):
        await limiter.acquire("a")
    await connection.aclose()


async def test_redis_down_is_storage_unavailable_and_heals(own_redis: OwnRedis) -> None:
    connection = open_redis(own_redis.url)
    limiter = RedisLimiter(connection, "p:", 2, 2)
    await limiter.acquire("a")
    own_redis.stop()
    with pytest.raises(StorageUnavailable) as caught:
        await limiter.acquire("a")
    assert "Redis" in caught.value.message
    await own_redis.start()  # an empty Redis: the window starts again
    for _ in range(2):
        await limiter.acquire("a")
    with pytest.raises(RateLimited):
        await limiter.acquire("a")
    await connection.aclose()
