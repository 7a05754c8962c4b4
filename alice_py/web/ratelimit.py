"""How many model calls the service makes: one global limit, and one per client.

- ``[limits] per_minute``: model calls per minute over the whole service.
- ``[limits] per_client``: model calls and new conversations per minute for one client, so one
  client cannot take the whole allowance. A client is the key it authenticated with (hashed:
  the limiter never holds a secret), else its address (``client_identity``).

Only what is about to reach the model counts: a dialect hands the engine an ``Admit`` hook
(``admission(request)``) that the engine awaits after auth, parsing and every check, right
before the upstream call; a request refused for auth or bad input never counts. ``/v1``, which
calls the upstream itself, awaits it after validating the body.

A sliding log per window: the times of the last 60 seconds' calls. A call is let through
when fewer than the limit happened in the 60 seconds before it (no burst at a window
boundary, unlike the original's fixed window); ``Retry-After`` is when the oldest call leaves
the window. Memory: one float per allowed call of the last minute, and one small log per
client seen in it (idle clients are swept once a window). ``RateLimiter`` is a protocol so a
shared store (Redis, e.g. through the ``limits`` library) can back it across instances.
(``limits``' own memory storage is not used for the one-process case: it reads ``time.time``
with no clock to inject, and expires entries in a background task through a thread.)
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from alice_py import appkeys
from alice_py.errors import RateLimited
from alice_py.request_ids import current
from alice_py.web.auth import CLIENT_KEY

WINDOW = 60.0
CLIENT_BUSY = "Too many requests from this client: try again later"

Admit = Callable[[], Awaitable[None]]
"""Awaited right before a model call (or a new conversation); raises ``RateLimited`` to refuse it."""


class RateLimiter(Protocol):
    async def acquire(self, client: str, *, model_call: bool = True) -> None:
        """Count one model call (globally and for ``client``) or, with ``model_call=False``, one
        new conversation (for ``client`` only); or raise ``RateLimited(retry_after)`` counting
        nothing."""
        ...


def _expire(calls: deque[float], before: float) -> None:
    while calls and calls[0] <= before:
        calls.popleft()


class SlidingWindowLimiter:
    """At most ``per_minute`` model calls in any 60 seconds, and ``per_client`` per client;
    0 is no limit."""

    def __init__(
        self,
        per_minute: int,
        per_client: int = 0,
        clock: Callable[[], float] = time.monotonic,
        window: float = WINDOW,
    ) -> None:
        if per_minute < 0 or per_client < 0:
            raise ValueError("limits must be 0 (no limit) or more")
        self.per_minute = per_minute
        self.per_client = per_client
        self.window = window
        self._clock = clock
        self._calls: deque[float] = deque()
        self._clients: dict[str, deque[float]] = {}
        self._swept = clock()

    async def acquire(self, client: str, *, model_call: bool = True) -> None:
        now = self._clock()
        counted = model_call and self.per_minute > 0
        if counted:
            _expire(self._calls, now - self.window)
            if len(self._calls) >= self.per_minute:
                raise RateLimited(self._calls[0] + self.window - now)
        if self.per_client:
            mine = self._client_calls(client, now)
            if len(mine) >= self.per_client:
                raise RateLimited(mine[0] + self.window - now, CLIENT_BUSY)
            mine.append(now)
        if counted:
            self._calls.append(now)

    def _client_calls(self, client: str, now: float) -> deque[float]:
        if now - self._swept >= self.window:
            # Clients idle for a whole window are forgotten: memory follows the clients of
            # the last minute, not every address ever seen.
            self._swept = now
            idle = [name for name, calls in self._clients.items() if calls[-1] <= now - self.window]
            for name in idle:
                del self._clients[name]
        calls = self._clients.get(client)
        if calls is None:
            calls = self._clients[client] = deque()
        _expire(calls, now - self.window)
        return calls


def client_identity(request: web.Request) -> str:
    """The key the request authenticated with (a digest of it), else the client's address.

    A key counts only when the guard verified it (``web.auth.CLIENT_KEY``): with auth
    ``none`` any key passes, so a client could send a fresh one per call; there, in Alice's
    normal mode (a new signature per call) and on routes without a key, the address counts
    (``X-Forwarded-For`` from a trusted proxy, so one proxy is not one client).
    """
    key = request.get(CLIENT_KEY)
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    # Behind a proxy listed in [server] trusted_proxies, the address it forwards for.
    return "addr:" + request.app[appkeys.TRUSTED_PROXIES].client_address(request)


def admission(request: web.Request, *, model_call: bool = True) -> Admit:
    """The hook that counts this request's model call (or new conversation) when awaited."""
    limiter = request.app[appkeys.RATE_LIMITER]
    info = current()
    # The identity (a digest per call) is worked out where a per-client limit needs it, and for
    # a model call's usage totals (alice_py.usage: whose tokens these are) when they ask.
    if request.app[appkeys.CONFIG].limits.per_client:
        identity = client_identity(request)
        if info is not None and model_call:
            info.client = identity
        return functools.partial(limiter.acquire, identity, model_call=model_call)
    if info is not None and model_call:
        info.identify = functools.partial(client_identity, request)
    return functools.partial(limiter.acquire, "", model_call=model_call)
