"""The Redis Streams event log: what one instance writes, another replays and follows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from alice_py.responses.redis_events import RedisEventLog


@pytest.fixture
async def two_instances(redis_prefix: tuple[str, str]) -> AsyncIterator[tuple[RedisEventLog, RedisEventLog]]:
    url, prefix = redis_prefix
    first, second = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)
    try:
        yield RedisEventLog(first, prefix, keep=60), RedisEventLog(second, prefix, keep=60)
    finally:
        await first.aclose()
        await second.aclose()


async def collect(log: RedisEventLog, response_id: str, after: int) -> list[bytes]:
    return [event async for batch in log.follow(response_id, after) for event in batch]


async def test_another_instance_replays_and_follows(
    two_instances: tuple[RedisEventLog, RedisEventLog],
) -> None:
    writer, reader = two_instances
    assert not await reader.exists("resp_1")
    await writer.append("resp_1", [b"e0", b"e1"])
    assert await reader.exists("resp_1")
    following = asyncio.create_task(collect(reader, "resp_1", -1))
    tail = asyncio.create_task(collect(reader, "resp_1", 1))
    await asyncio.sleep(0.05)
    await writer.append("resp_1", [b"e2"])
    await writer.append("resp_1", [b"e3"])
    await writer.finish("resp_1")
    async with asyncio.timeout(5):
        assert await following == [b"e0", b"e1", b"e2", b"e3"]
        assert await tail == [b"e2", b"e3"]
    assert await collect(reader, "resp_1", 2) == [b"e3"]
    assert await collect(reader, "resp_1", 3) == []


async def test_a_finished_log_expires(
    two_instances: tuple[RedisEventLog, RedisEventLog], redis_prefix: tuple[str, str]
) -> None:
    writer, _ = two_instances
    url, prefix = redis_prefix
    await writer.append("resp_2", [b"e0"])
    client = aioredis.Redis.from_url(url)
    try:
        assert 60 < await client.ttl(f"{prefix}events:resp_2") <= 86400  # unfinished: a day
        await writer.finish("resp_2")
        assert 0 < await client.ttl(f"{prefix}events:resp_2") <= 60
    finally:
        await client.aclose()
