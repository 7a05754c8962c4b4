"""The shared store: live conversations in Redis, for any number of instances (``store = "redis"``).

Every instance sharing the Redis (and the database) sees the same conversations, locks
and expiries; the keys and what Redis must be configured with are in ``docs/redis-store.md``.

- Time to live as with the memory store (``ttl``, ``ttl/2`` while at most 2 sentences):
  one wall-clock expiry per conversation, checked against this instance's clock on
  every read and set as the key's Redis expiry too.
- ``max_live``: an index of live ids by expiry (sorted set ``P live``); past ``max_live``
  the conversation nearest its expiry (the least recently used, among those of the same
  length) is moved out and handed to the saver, which writes it to the database.
- Write-behind: puts, uses, deletions and evictions are recorded in Redis, not in one
  process, and ``drain_changes`` takes them all at once (a Lua script), so each change is
  saved by exactly one instance and a dead instance leaves nothing unsaved behind it.
- The lock is a lease (``lease`` seconds) with a fencing token: ``acquire`` returns the
  token; ``renew`` extends it while an answer runs; a ``replace`` carrying a token that is no
  longer the lock's is refused, so the late commit of an instance that lost its lease
  (paused, partitioned, killed) never lands. A crashed instance's lock lapses by itself.

A Redis that does not answer raises ``StorageUnavailable`` (503, "try again later").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis

from alice_py.engine.tree import Conversation
from alice_py.errors import StorageUnavailable
from alice_py.redis_client import REDIS_ERRORS, redis_down
from alice_py.store import redis_scripts
from alice_py.store.base import Acquired, LiveEntry, StoreChanges
from alice_py.store.redis_batch import Batcher

log = logging.getLogger(__name__)

T = TypeVar("T")
Arg = bytes | str | int | float
SWEEP_LIMIT = 1000
"""Expired conversations ended per drain (the rest wait for the next round)."""


class RedisStore:
    """``ConversationStore`` on Redis. ``timer`` (the wall clock) is injectable for tests."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        ttl: float,
        max_live: int,
        lease: float,
        timer: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0 or max_live <= 0 or lease <= 0:
            raise ValueError("ttl, max_live and lease must be more than 0")
        self.ttl = ttl
        self.max_live = max_live
        self.lease = lease
        self._redis = client
        self._prefix = prefix
        self._timer = timer
        self._records = [prefix + name for name in ("live", "changed", "deleted", "evicted")]
        self._batch = Batcher(client)
        self._store = client.register_script(redis_scripts.STORE)
        self._touch = client.register_script(redis_scripts.TOUCH)
        self._acquire = client.register_script(redis_scripts.ACQUIRE)
        self._delete = client.register_script(redis_scripts.DELETE)
        self._drain = client.register_script(redis_scripts.DRAIN)
        self._renew = client.register_script(redis_scripts.RENEW)
        self._lock = client.register_script(redis_scripts.LOCK)
        self._unlock = client.register_script(redis_scripts.UNLOCK)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except REDIS_ERRORS as exc:
            failure = redis_down()
            if isinstance(failure, StorageUnavailable):
                log.warning("Redis call failed: %s", exc)
            raise failure from None

    def _key(self, conv_id: str) -> str:
        return f"{self._prefix}c:{conv_id}"

    def _lock_key(self, conv_id: str) -> str:
        return f"{self._prefix}lock:{conv_id}"

    def _lifetime(self, conv: Conversation) -> float:
        return self.ttl if conv.sentence_count() > 2 else self.ttl / 2

    async def _write(self, conv: Conversation, mode: str, token: int | None = None,
                     expires_at: float | None = None, release: bool = False) -> int:  # fmt: skip
        now = self._timer()
        lifetime = self._lifetime(conv)
        expires = now + lifetime if expires_at is None else expires_at
        held = "" if token is None else str(token)
        args: list[Arg] = [self._prefix, conv.id, conv.to_json(), repr(expires), repr(lifetime), repr(now),
                           mode, self.max_live, held, "1" if release else ""]  # fmt: skip
        result: Any = await self._call(self._batch.script(self._store, self._records, args))
        return int(result)

    async def entry(self, conv_id: str) -> LiveEntry | None:
        data, expires = await self._call(self._redis.hmget(self._key(conv_id), ["d", "e"]))
        if data is None or expires is None or float(expires) <= self._timer():
            return None
        return LiveEntry(Conversation.from_json(data), float(expires))

    async def get(self, conv_id: str) -> Conversation | None:
        entry = await self.entry(conv_id)
        return None if entry is None else entry.conv

    async def add(self, conv: Conversation) -> bool:
        return await self._write(conv, "add") == 1

    async def put(self, conv: Conversation) -> None:
        await self._write(conv, "put")

    async def replace(self, conv: Conversation, *, token: int | None = None, release: bool = False) -> bool:
        return await self._write(conv, "replace", token, release=release) == 1

    async def restore(self, entry: LiveEntry) -> bool:
        return await self._write(entry.conv, "restore", expires_at=entry.expires_at) == 1

    async def delete(self, conv_id: str) -> bool:
        args = [self._prefix, conv_id, repr(self._timer())]
        return bool(await self._call(self._batch.script(self._delete, self._records, args)))

    async def touch(self, conv_id: str) -> None:
        args = [self._prefix, conv_id, repr(self._timer())]
        await self._call(self._batch.script(self._touch, self._records, args))

    async def exists(self, conv_id: str) -> bool:
        expires = await self._call(self._redis.hget(self._key(conv_id), "e"))
        return expires is not None and float(expires) > self._timer()

    async def acquire(self, conv_id: str) -> Acquired:
        args: list[Arg] = [self._prefix, conv_id, repr(self._timer()), int(self.lease * 1000)]
        found: Any = await self._call(self._batch.script(self._acquire, self._records, args))
        if found[0] != 2:
            return Acquired(None, None, found[0] == 1)
        return Acquired(int(found[1]), Conversation.from_json(found[2]), True)

    async def try_lock(self, conv_id: str) -> int | None:
        lease = [int(self.lease * 1000)]
        keys = [self._lock_key(conv_id), self._prefix + "fence"]  # the counter ACQUIRE draws from
        token = await self._call(self._batch.script(self._lock, keys, lease))
        return None if token is None else int(token)

    async def renew(self, conv_id: str, token: int) -> bool:
        args: list[Arg] = [str(token), int(self.lease * 1000)]
        return bool(await self._call(self._batch.script(self._renew, [self._lock_key(conv_id)], args)))

    async def unlock(self, conv_id: str, token: int | None = None) -> None:
        if token is None:
            await self._call(self._redis.delete(self._lock_key(conv_id)))
        else:
            await self._call(self._batch.script(self._unlock, [self._lock_key(conv_id)], [str(token)]))

    async def is_locked(self, conv_id: str) -> bool:
        return bool(await self._call(self._redis.exists(self._lock_key(conv_id))))

    async def all(self) -> list[Conversation]:
        now = self._timer()
        ids: Any = await self._call(self._redis.zrangebyscore(self._records[0], f"({now!r}", "+inf"))
        convs: list[Conversation] = []
        for start in range(0, len(ids), 500):
            pipe = self._redis.pipeline(transaction=False)
            for conv_id in ids[start : start + 500]:
                pipe.hget(self._key(conv_id.decode()), "d")
            convs.extend(Conversation.from_json(data) for data in await self._call(pipe.execute()) if data)
        return convs

    async def drain_changes(self) -> StoreChanges:
        args: list[Arg] = [self._prefix, repr(self._timer()), SWEEP_LIMIT]
        changed, deleted, flat = await self._call(self._drain(keys=self._records, args=args))
        evicted: list[LiveEntry] = []
        for index in range(0, len(flat), 2):
            expires, _, data = flat[index + 1].partition(b"\n")
            try:
                evicted.append(LiveEntry(Conversation.from_json(data), float(expires)))
            except ValueError as exc:
                log.warning("evicted conversation %s is unreadable: %s", flat[index].decode(), exc)
        for entry in evicted:
            log.info("conversation %s moved out of Redis: more than %d live conversations",
                     entry.conv.id, self.max_live)  # fmt: skip
        return StoreChanges(
            frozenset(i.decode() for i in changed), frozenset(i.decode() for i in deleted), tuple(evicted)
        )

    async def count(self) -> int:
        return int(await self._call(self._redis.zcount(self._records[0], f"({self._timer()!r}", "+inf")))

    async def close(self) -> None:
        """The commands under way are let finish; the Redis keeps the conversations, and the
        client is the app's."""
        await self._batch.close()
