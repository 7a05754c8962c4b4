"""Where the replay record and the rate limits live: this process, or the shared Redis.

``middlewares.install`` puts the one-process ones in place when the app is built (tests may
replace them); with ``[conversations] store = "redis"`` this ``cleanup_ctx``, which runs
after ``redis_client.redis_ctx`` opened the process's pool, swaps in the Redis-backed ones,
so that every instance on that Redis counts and refuses as one service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from alice_py import appkeys


async def shared_state_ctx(app: web.Application) -> AsyncIterator[None]:
    client = app.get(appkeys.REDIS)
    if client is not None:
        # Imported only here: ``limits`` and what it imports (about 0.1 s and a few MB,
        # cryptography's bindings among them) stay out of a memory-store process.
        from alice_py.web.ratelimit_redis import RedisLimiter
        from alice_py.web.replay_redis import redis_replay_guard

        cfg = app[appkeys.CONFIG]
        prefix = cfg.conversations.key_prefix
        app[appkeys.REPLAY_GUARD] = redis_replay_guard(cfg, client, prefix)
        app[appkeys.RATE_LIMITER] = RedisLimiter(client, prefix, cfg.limits.per_minute, cfg.limits.per_client)
    yield
