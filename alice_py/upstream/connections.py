"""Dead kept-alive connections: keeping them out of aiohttp's pool, and getting past one.

A model server may drop a connection it kept alive: llama-cpp-python's ends a failed
stream's body cleanly, keeps the connection open, and resets it a few milliseconds later.
aiohttp pools it, and the next request sent on it (any conversation's) fails with
``Connection reset by peer`` before any byte of an answer came. Two defences:

- ``PoolGuard``: a stream that did not reach ``[DONE]`` does not give its connection back to
  the pool;
- ``is_stale_connection`` and ``FreshConnections``: a request that failed so is sent once
  more, with the same key, on a new connection of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import aiohttp

T = TypeVar("T")

_DEAD_CONNECTION_ERRORS = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,  # ECONNRESET, EPIPE when reading or writing
    aiohttp.ClientConnectionResetError,  # writing to a transport already closing
)


def is_stale_connection(exc: BaseException) -> bool:
    """Whether a request that raised ``exc`` before its answer's status came failed on its
    connection (reset, server disconnected, broken pipe), which a new connection may not.
    A failed connect (``ClientConnectorError``: refused, DNS, TLS) is not such a failure:
    nothing listens, and a new connection fails the same way."""
    return isinstance(exc, _DEAD_CONNECTION_ERRORS) and not isinstance(exc, aiohttp.ClientConnectorError)


class FreshConnections:
    """A session whose every request opens its own connection and closes it after the answer
    (``force_close``): for the one retry of a request whose pooled connection was dead, so it
    cannot meet another dead one from the pool. Opened on first use (rarely: only after such a
    failure); ``close`` it with the client."""

    __slots__ = ("_session", "_trust_env")

    def __init__(self, *, trust_env: bool = False) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._trust_env = trust_env

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(force_close=True, limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=self._trust_env)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class PoolGuard(Generic[T]):
    """Keeps a stream response's connection out of aiohttp's pool unless its body reached
    the end of the stream (``[DONE]``).

    aiohttp gives a connection back to its pool by itself the moment a body ends (the last,
    empty chunk of a chunked body), before this client has read the events that came with
    it, so ``response.close()`` after reading them is too late. The guard is a callback on
    the connection, which aiohttp runs just before that: it reads the rest of the body
    (``read``, which must not raise), keeps what that gave in ``rest`` for the stream to use
    after its last read, and marks the connection to be closed instead of pooled unless the
    stream is then ``done()``.

    A body that had ended before the response was returned (all of it came with the
    headers) has already gone back to the pool: that case is left to the retry on a fresh
    connection (``FreshConnections``).
    """

    __slots__ = ("_active", "_done", "_read", "_response", "rest")

    def __init__(
        self, response: aiohttp.ClientResponse, read: Callable[[bytes], T], done: Callable[[], bool]
    ) -> None:
        self._response = response
        self._read = read
        self._done = done
        self._active = False
        self.rest: T | None = None
        """What ``read`` made of the rest of the body, if the guard read it."""
        connection = response.connection
        if connection is not None:
            self._active = True
            connection.add_callback(self._on_release)

    def stop(self) -> None:
        """The stream is over (it read ``[DONE]``, or it closes the response itself)."""
        self._active = False

    def _on_release(self) -> None:
        if not self._active:
            return
        self._active = False
        connection = self._response.connection
        protocol = connection.protocol if connection is not None else None
        content = self._response.content
        if content.is_eof() and content.exception() is None:
            self.rest = self._read(content.read_nowait())
        if self._done():
            return
        if protocol is not None:
            protocol.force_close()
