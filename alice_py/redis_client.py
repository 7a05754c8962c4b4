"""The Redis connection every shared-state part uses (live store, replay record, rate limits).

One ``redis.asyncio.Redis`` (a connection pool) per serving process, opened from
``[conversations] redis_url``. redis-py parses replies with hiredis when it is
installed (it is a dependency): several times less CPU per reply than the pure-Python
parser, which matters on the chat path.

Timeouts are short on purpose: Redis answers in well under a millisecond on a healthy
network, so a call that takes seconds means Redis is down, and the route that needed
it should say so (503) rather than hang with the client.

Only the Redis store's process imports this module (``app.redis_ctx`` imports it late):
redis-py brings ``cryptography`` with it, which a memory-store process has no use for.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from alice_py.errors import StorageUnavailable

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a Redis call raises when Redis is down, slow or restarting."""
REDIS_DOWN = "The shared store (Redis) is not answering, please try again later"
"""What a client is told (503) when a part that needs Redis cannot reach it."""


def redis_down() -> BaseException:
    """What to raise for a failed Redis call: ``StorageUnavailable`` (a 503), or
    ``asyncio.CancelledError`` when the calling task is being cancelled. redis-py (8.1) can turn
    a cancel that lands inside a call into a connection error; taken for "Redis is down", that
    cancel would be lost, and a loop that retries while Redis is down (the write-behind, a lease
    renewal) would go on after shutdown asked it to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        return asyncio.CancelledError()
    return StorageUnavailable(REDIS_DOWN)

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


async def ping_redis(client: aioredis.Redis) -> str | None:
    """Why Redis is not usable now (for ``/readyz``), or None when it answers."""
    try:
        await client.ping()
    except REDIS_ERRORS as exc:
        return f"not answering ({type(exc).__name__})"
    return None


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
