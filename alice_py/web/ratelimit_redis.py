"""The rate limits shared by every instance on one Redis (``[conversations] store = "redis"``).

The windowing is the ``limits`` library's moving window (``MovingWindowRateLimiter``): per
limit, one Redis list of the last calls' times, checked and pushed by one Lua script, so
the count is exact across instances (no read-then-write race between them). It is the
same sliding log as ``SlidingWindowLimiter``: a call passes when fewer than the limit
happened in the window before it, and ``Retry-After`` is when the oldest one leaves.

``limits`` talks to Redis through the app's own ``redis.asyncio`` pool (its ``redispy``
implementation), so it shares the pool's timeouts and retries, and needs no second client
library (its default, ``coredis``, is not installed). Call times are this host's wall
clock: instances on several machines need synchronised clocks (NTP), as any shared
log of times does.

Redis down: the call raises ``StorageUnavailable`` (a 503 that says so), counting nothing;
the pool reconnects by itself when Redis is back.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from alice_py.errors import RateLimited
from alice_py.redis_client import REDIS_ERRORS, redis_down
from alice_py.web.ratelimit import CLIENT_BUSY, WINDOW

GLOBAL = "all"
"""The identifier of the service-wide limit; clients' identifiers start with ``key:``/``addr:``."""


class RedisLimiter:
    """``SlidingWindowLimiter``'s rules on a shared Redis: at most ``per_minute`` model calls
    in any window over all instances, and ``per_client`` per client; 0 is no limit."""

    def __init__(
        self,
        client: aioredis.Redis,
        key_prefix: str,
        per_minute: int,
        per_client: int = 0,
        window: int = int(WINDOW),
    ) -> None:
        if per_minute < 0 or per_client < 0:
            raise ValueError("limits must be 0 (no limit) or more")
        self.per_minute = per_minute
        self.per_client = per_client
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=f"{key_prefix}limits",
            connection_pool=client.connection_pool,  # type: ignore[arg-type]  # typed as scalars only
        )
        self._strategy = MovingWindowRateLimiter(storage)
        self._global = RateLimitItemPerSecond(max(per_minute, 1), window)
        self._client = RateLimitItemPerSecond(max(per_client, 1), window)

    async def acquire(self, client: str, *, model_call: bool = True) -> None:
        try:
            await self._acquire(client, model_call)
        except REDIS_ERRORS:
            raise redis_down() from None

    async def _acquire(self, client: str, model_call: bool) -> None:
        counted = model_call and self.per_minute > 0
        if not self.per_client:
            if counted and not await self._strategy.hit(self._global, GLOBAL):
                raise RateLimited(await self._retry_after(self._global, GLOBAL))
            return
        # A refusal by one limit must not count against the other. The global limit is only
        # tested first (a read); an instance that takes its last slot between that test and
        # the hit below costs this client one slot of its own, never more than the limit.
        if counted and not await self._strategy.test(self._global, GLOBAL):
            raise RateLimited(await self._retry_after(self._global, GLOBAL))
        if not await self._strategy.hit(self._client, client):
            raise RateLimited(await self._retry_after(self._client, client), CLIENT_BUSY)
        if counted and not await self._strategy.hit(self._global, GLOBAL):
            raise RateLimited(await self._retry_after(self._global, GLOBAL))

    async def _retry_after(self, item: RateLimitItem, identifier: str) -> float:
        stats = await self._strategy.get_window_stats(item, identifier)
        return max(stats.reset_time - time.time(), 0.0)
