"""The Redis connection every shared-state part uses (live store, replay record, rate limits).

One ``redis.asyncio.Redis`` (a connection pool) per serving process, opened from
``[conversations] redis_url``. redis-py parses replies with hiredis when it is
installed (it is a dependency): several times less CPU per reply than the pure-Python
parser, which matters on the chat path.

Timeouts are short on purpose: Redis answers in well under a millisecond on a healthy
network, so a call that takes seconds means Redis is down, and the route that needed
it should say so (503) rather than hang with the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from alice_py import appkeys

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a Redis call raises when Redis is down, slow or restarting."""

CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 5.0


def open_redis(url: str) -> aioredis.Redis:
    """A connection pool for ``url`` (``redis://host:port/db``; ``rediss://`` for TLS).

    Nothing is connected yet: the first command connects. After Redis restarted, the pooled
    connections are dead; a command that meets one is retried (twice, on a new connection)
    instead of failing. Only connection errors are retried: a command that timed out may
    have run, and running an ``INCR`` twice would count twice.
    """
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        retry_on_error=[RedisConnectionError],
    )


def describe_url(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=f"{user}{host}{port}").geturl()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """With ``[conversations] store = "redis"``: the process's one pool, as ``appkeys.REDIS``.

    Not connected here: a Redis that is down at start-up is reported by ``/readyz`` and by
    the routes that need it (503), and the service recovers when it comes back.
    """
    cfg = app[appkeys.CONFIG]
    if cfg.conversations.store != "redis":
        yield
        return
    client = open_redis(cfg.conversations.redis_url)
    app[appkeys.REDIS] = client
    try:
        yield
    finally:
        await client.aclose()
