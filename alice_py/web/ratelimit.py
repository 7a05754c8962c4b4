"""The global limit of model calls per minute, shared by every dialect.

A sliding log: the times of the calls of the last 60 seconds. A call is let
through when fewer than ``per_minute`` happened in the 60 seconds before it, so
there is no burst at a window boundary (the original's fixed window reset by a
timer allowed twice the limit across a reset). ``Retry-After`` is when the
oldest call leaves the window. Memory: one float per allowed call of the last
minute. ``RateLimiter`` is a protocol so a Redis sorted set can share the window
across instances.

Handlers that call the model are wrapped with ``rate_limited``; the limiter
lives in ``app[keys.RATE_LIMITER]``.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from aiohttp import web

from alice_py import keys
from alice_py.errors import RateLimited

WINDOW = 60.0

R = TypeVar("R", bound=web.StreamResponse)


class RateLimiter(Protocol):
    async def acquire(self) -> None:
        """Count one model call, or raise ``RateLimited(retry_after)`` without counting it."""
        ...


class SlidingWindowLimiter:
    """At most ``per_minute`` calls in any 60 seconds; ``per_minute == 0`` is no limit."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, window: float = WINDOW
    ) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must be 0 (no limit) or more")
        self.per_minute = per_minute
        self.window = window
        self._clock = clock
        self._calls: deque[float] = deque()

    async def acquire(self) -> None:
        if self.per_minute == 0:
            return
        now = self._clock()
        while self._calls and self._calls[0] <= now - self.window:
            self._calls.popleft()
        if len(self._calls) >= self.per_minute:
            raise RateLimited(self._calls[0] + self.window - now)
        self._calls.append(now)


def rate_limited(handler: Callable[[web.Request], Awaitable[R]]) -> Callable[[web.Request], Awaitable[R]]:
    """Count the request against the global limit before ``handler`` runs."""

    @functools.wraps(handler)
    async def limited(request: web.Request) -> R:
        await request.app[keys.RATE_LIMITER].acquire()
        return await handler(request)

    return limited
