"""The event log of background responses in Redis Streams, shared by every instance, and
their cancels (Redis pub/sub): any instance resumes or cancels a response another one makes.

One stream per response, ``<prefix>events:<response id>``. The event numbered ``n`` (its
``sequence_number``) is the entry with id ``0-(n+1)``, so "the events after ``N``" is
``XREAD … 0-(N+1)``: any instance replays and follows a response another one makes. The end
is one more entry with an ``end`` field. The stream expires a day after its start (a run
whose instance died never finishes it) and ``keep`` seconds after its end.

Imported only with ``[conversations] store = "redis"`` (redis-py is that store's library).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import redis.asyncio as aioredis

from alice_py.errors import StorageUnavailable
from alice_py.redis_client import REDIS_DOWN, REDIS_ERRORS
from alice_py.responses.events import KEEP_FINISHED

log = logging.getLogger(__name__)

KEEP_UNFINISHED = 86400
"""Seconds a stream lives when no end comes (its instance died)."""
BLOCK_MS = 2000
"""How long one ``XREAD`` waits for new events: below the client's command timeout."""
BATCH = 1000
Entries = list[tuple[bytes, dict[bytes, bytes]]]


@contextlib.contextmanager
def _redis_down() -> Iterator[None]:
    """Redis failing is the service's ``StorageUnavailable`` (503, or ``response.failed``)."""
    try:
        yield
    except REDIS_ERRORS as exc:
        log.warning("Redis call failed: %s", exc)
        raise StorageUnavailable(REDIS_DOWN) from None


class RedisEventLog:
    def __init__(self, client: aioredis.Redis, prefix: str = "alice:", keep: float = KEEP_FINISHED) -> None:
        self._client = client
        self._prefix = prefix
        self._keep = int(keep)
        self._next: dict[str, int] = {}
        """The next sequence number of each log this instance writes (one writer per log)."""

    def _key(self, response_id: str) -> str:
        return f"{self._prefix}events:{response_id}"

    async def append(self, response_id: str, events: list[bytes]) -> None:
        key = self._key(response_id)
        first = self._next.get(response_id)
        start = 0 if first is None else first
        with _redis_down():
            async with self._client.pipeline(transaction=True) as pipe:
                for offset, event in enumerate(events):
                    pipe.xadd(key, {"data": event}, id=f"0-{start + offset + 1}")
                if first is None:
                    pipe.expire(key, KEEP_UNFINISHED)
                await pipe.execute()
        self._next[response_id] = start + len(events)

    async def finish(self, response_id: str) -> None:
        key = self._key(response_id)
        end = self._next.pop(response_id, 0)
        with _redis_down():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.xadd(key, {"end": b"1"}, id=f"0-{end + 1}")
                pipe.expire(key, self._keep)
                await pipe.execute()

    async def exists(self, response_id: str) -> bool:
        with _redis_down():
            return bool(await self._client.exists(self._key(response_id)))

    async def follow(self, response_id: str, after: int) -> AsyncGenerator[list[bytes], None]:
        key = self._key(response_id)
        last = f"0-{max(after + 1, 0)}"
        while True:
            with _redis_down():
                found: Any = await self._client.xread({key: last}, count=BATCH, block=BLOCK_MS)
                if not found and not await self._client.exists(key):
                    return  # expired: its instance died long ago
            if not found:
                continue
            batch: list[bytes] = []
            entries: Entries = found[0][1]  # RESP2: [[key, [(id, fields), …]]]
            for entry_id, fields in entries:
                if b"end" in fields:
                    if batch:
                        yield batch
                    return
                batch.append(fields[b"data"])
                last = entry_id.decode()
            yield batch


CANCEL_POLL = 1.0
"""Seconds one wait for a cancel message lasts (below the client's command timeout)."""


class RedisCancels:
    """Cancels across instances: a cancel that reaches an instance not making the response is
    published on ``<prefix>cancels``; the instance making it cancels its run."""

    def __init__(self, client: aioredis.Redis, prefix: str = "alice:") -> None:
        self._client = client
        self._channel = f"{prefix}cancels"

    async def publish(self, response_id: str) -> None:
        with _redis_down():
            await self._client.publish(self._channel, response_id)

    async def listen(self, cancel: Callable[[str], object]) -> None:
        """Until cancelled: ``cancel(response_id)`` for each message; Redis going away is
        waited out (a cancel sent meanwhile is lost: the client may send it again)."""
        down = False
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if down:
                        log.info("cancels from other instances are heard again")
                        down = False
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=CANCEL_POLL
                        )
                        if message is not None and isinstance(message.get("data"), bytes):
                            cancel(message["data"].decode())
            except REDIS_ERRORS:
                if not down:
                    log.warning("cancels from other instances are not heard while Redis is down")
                    down = True
                await asyncio.sleep(CANCEL_POLL)
