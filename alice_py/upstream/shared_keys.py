"""The key pools' state shared between instances (``[conversations] store = "redis"``): a key
disabled or cooling on one instance is disabled or cooling on all.

Behind a small protocol with two sides: ``LocalKeyState`` (one process, the memory store:
nothing to share) and ``RedisKeyState``. With Redis, each change a pool makes (a cooldown, a
disable, a key back in service) is written to one hash per upstream,
``<key_prefix>keys:<upstream>``, field ``sha256(key)[:32]`` (the key itself never goes to
Redis), value ``{"until": <wall-clock seconds>, "reason": ..., "at": <when it changed>}``.
Every ``POLL`` seconds each instance reads the hashes and takes the changes made elsewhere
after its own last change of that key (so a change of its own is never undone by an older
one read back). Cooldowns go through Redis as wall-clock times; a pool keeps its own clock.

Redis being down costs nothing but the sharing: the writes and reads are dropped with one
warning, and the pools go on with their own state.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.tasks import running
from alice_py.upstream.keypool import KeyPool
from alice_py.upstream.router import UpstreamRouter

if TYPE_CHECKING:  # redis is imported only by a service that uses it (tests/perf/test_idle_imports.py)
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

POLL = 1.0
"""Seconds between reads of the other instances' changes."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class KeyStateSync(Protocol):
    def attach(self, router: UpstreamRouter) -> None: ...

    async def sync(self) -> None: ...

    async def close(self) -> None: ...


class LocalKeyState:
    """One process: the pools' own state is all there is."""

    def attach(self, router: UpstreamRouter) -> None:
        return None

    async def sync(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisKeyState:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        from alice_py.redis_client import REDIS_ERRORS

        self._errors = REDIS_ERRORS
        self._client = client
        self._prefix = prefix
        self._pools: dict[str, KeyPool] = {}
        self._ids: dict[str, dict[str, str]] = {}
        """By upstream: key id → key."""
        self._changed_at: dict[tuple[str, str], float] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._warned = False

    def _hash(self, upstream: str) -> str:
        return f"{self._prefix}keys:{upstream}"

    def attach(self, router: UpstreamRouter) -> None:
        for target in router.targets:
            pool = target.pool
            self._pools[pool.name] = pool
            pool.on_change = lambda key, pool=pool: self._changed(pool, key)

    def _changed(self, pool: KeyPool, key: str) -> None:
        state = pool.shared_state(key)
        if state is None:
            return
        until, reason = state
        now = time.time()
        self._changed_at[(pool.name, key)] = now
        wall_until = now + (until - pool.now()) if until > pool.now() else 0.0
        value = orjson.dumps({"until": wall_until, "reason": reason, "at": now})
        task = asyncio.get_running_loop().create_task(self._write(pool.name, key_id(key), value))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, upstream: str, field: str, value: bytes) -> None:
        try:
            await self._client.hset(self._hash(upstream), field, value)
        except self._errors as exc:
            self._down(exc)

    def _down(self, exc: BaseException) -> None:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError() from None  # redis-py made a cancel an error: keep it
        if not self._warned:
            self._warned = True
            log.warning("the key pool's state is not shared while Redis is unreachable: %s", exc)

    async def sync(self) -> None:
        """Take the changes other instances made."""
        for name, pool in self._pools.items():
            try:
                raw = await self._client.hgetall(self._hash(name))
            except self._errors as exc:
                self._down(exc)
                return
            self._warned = False
            ids = self._ids.get(name)
            if ids is None or len(ids) != len(pool):
                raw_keys = pool.keys()
                ids = self._ids[name] = {key_id(key): key for key in raw_keys}
            for field, value in raw.items():
                key = ids.get(field.decode() if isinstance(field, bytes) else field)
                if key is not None:
                    self._apply(pool, key, orjson.loads(value))

    def _apply(self, pool: KeyPool, key: str, value: dict[str, Any]) -> None:
        at = float(value.get("at", 0.0))
        if at <= self._changed_at.get((pool.name, key), 0.0):
            return  # ours, or older than our own last change
        self._changed_at[(pool.name, key)] = at
        wall_until = float(value.get("until", 0.0))
        remaining = wall_until - time.time()
        until = pool.now() + remaining if remaining > 0 else 0.0
        reason = value.get("reason")
        pool.apply_shared_state(key, until, reason if isinstance(reason, str) else None)

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


async def _poll(state: KeyStateSync) -> None:
    while True:
        await asyncio.sleep(POLL)
        try:
            await state.sync()
        except Exception:  # sharing must never stop
            log.exception("reading the shared key state failed")


async def shared_keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the router and the Redis client: the pools' changes shared through Redis."""
    client = app.get(appkeys.REDIS)
    if client is None:
        yield
        return
    state = RedisKeyState(client, app[appkeys.CONFIG].conversations.key_prefix)
    state.attach(app[appkeys.ROUTER])
    await state.sync()
    try:
        async with running(_poll(state), "shared key state"):
            yield
    finally:
        await state.close()
