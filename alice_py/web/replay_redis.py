"""Normal auth's replay record shared by every instance on one Redis.

Same policy as ``MemoryReplayGuard`` (``[auth] replay``, see ``web.replay``), kept in one
sorted set: member = uuid, score = when it was first used. One Lua script per request
forgets the expired uuids, refuses a uuid already there, makes room by forgetting the
oldest when the set is full, and adds the new one, atomically, so a uuid used on one
instance is refused on all of them, and the record outlives a restart of the service.

- ``strict``: uuids kept for the conversation TTL, at most ``REPLAY_CAPACITY`` of them;
  the set itself expires when no uuid came for a whole TTL.
- ``original``: the last 50 uuids, no expiry.

Times are this host's wall clock (injectable for tests), so instances on several machines
need synchronised clocks (NTP). Redis down: ``StorageUnavailable`` (a 503 that says so);
the request is neither accepted nor recorded.
"""

from __future__ import annotations

import logging
import math
import time

import redis.asyncio as aioredis

from alice_py.config import Config
from alice_py.redis_client import REDIS_ERRORS, redis_down
from alice_py.web.replay import ORIGINAL_WINDOW, REPLAY_CAPACITY, Clock, Throttled

log = logging.getLogger(__name__)

# KEYS[1]: the set. ARGV: uuid, now, retention in seconds (0: none), capacity.
# Returns -1 for a replay, else how many uuids were forgotten early to make room.
FIRST_USE = """
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local capacity = tonumber(ARGV[4])
if retention > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - retention)
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    return -1
end
local forgotten = 0
local size = redis.call('ZCARD', KEYS[1])
if size >= capacity then
    forgotten = size - capacity + 1
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, forgotten - 1)
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
if retention > 0 then
    redis.call('PEXPIRE', KEYS[1], math.ceil(retention * 1000))
end
return forgotten
"""


class RedisReplayGuard:
    """Seen uuids for ``retention`` seconds (``math.inf``: until pushed out), at most
    ``capacity`` of them, in Redis under ``key``; when full, the oldest make room."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        retention: float,
        capacity: int = REPLAY_CAPACITY,
        clock: Clock = time.time,
        warn_when_full: bool = True,
    ) -> None:
        if retention <= 0 or capacity <= 0:
            raise ValueError("retention and capacity must be positive")
        self.key = key
        self.retention = retention
        self.capacity = capacity
        self._clock = clock
        self._script = client.register_script(FIRST_USE)
        self._warn = Throttled(log, clock=clock) if warn_when_full else None

    async def first_use(self, nonce: str) -> bool:
        retention = 0 if math.isinf(self.retention) else self.retention
        try:
            forgotten = int(
                await self._script(keys=[self.key], args=[nonce, self._clock(), retention, self.capacity])
            )
        except REDIS_ERRORS:
            raise redis_down() from None
        if forgotten < 0:
            return False
        if forgotten and self._warn is not None:
            self._warn.warning(
                "normal auth: the replay set is full (%d uuids seen within %gs): forgetting the "
                "oldest ones early, so a replay of one of those would be accepted",
                self.capacity,
                self.retention,
            )
        return True


def redis_replay_guard(
    cfg: Config,
    client: aioredis.Redis,
    key_prefix: str,
    capacity: int = REPLAY_CAPACITY,
    clock: Clock = time.time,
) -> RedisReplayGuard:
    """The shared guard for ``[auth] replay``. One key per policy: switching policy starts
    an empty record rather than reading the other policy's (a 500,000-uuid strict set is
    not the last 50)."""
    if cfg.auth.replay == "original":
        return RedisReplayGuard(
            client, f"{key_prefix}replay:original", math.inf, ORIGINAL_WINDOW, clock, warn_when_full=False
        )
    return RedisReplayGuard(client, f"{key_prefix}replay:strict", cfg.conversations.ttl, capacity, clock)
