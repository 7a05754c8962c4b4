"""How ``OpenAIClient`` sends a request: through the app's one pooled aiohttp
``ClientSession`` (keep-alive connections, DNS cache, TLS, the optional HTTP proxy).
``SessionTransport`` hands back an ``UpstreamResponse`` and raises ``TimeoutError`` or
``aiohttp.ClientError``, which ``OpenAIClient`` maps to the upstream errors.

Timeouts: ``connect_timeout`` bounds the TCP/TLS connect; ``timeout`` is the deadline of a
whole answer, or for a stream the longest silence allowed.

(A hand-written HTTP/1.1 client on httptools was measured to save about 170 µs of CPU per
call; it was not kept: aiohttp is the project's HTTP client, and TLS, proxies and the edge
cases of HTTP are worth more than that here. docs/performance.md has the figures.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
from yarl import URL

USER_AGENT = "alice-py/0.1"
JSON = "application/json"
EVENT_STREAM = "text/event-stream"

CONNECTION_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError,)
"""What a transport raises when the connection fails (besides ``TimeoutError``)."""


def is_connect_timeout(exc: TimeoutError) -> bool:
    return isinstance(exc, aiohttp.ConnectionTimeoutError)


class UpstreamResponse(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content_type(self) -> str: ...

    async def read(self) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    def release(self) -> None:
        """Done, the body read to its end: the connection may be reused."""

    def close(self) -> None:
        """Done before the end: the connection is closed."""


class Transport(Protocol):
    async def send(
        self, method: str, url: URL, key: str, body: bytes | None, *, streaming: bool
    ) -> UpstreamResponse:
        """The answer once its status and headers are in."""
        ...

    def close(self) -> None: ...


class _AiohttpResponse:
    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def content_type(self) -> str:
        return self._response.content_type

    async def read(self) -> bytes:
        return await self._response.read()

    def iter_chunks(self) -> AsyncIterator[bytes]:
        # aiohttp's own iterator, not a generator around it: one layer less per streamed chunk.
        return self._response.content.iter_any()

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


class SessionTransport:
    """The app's aiohttp session, straight to the API or through an HTTP proxy."""

    def __init__(
        self, session: aiohttp.ClientSession, proxy: str | None, *, connect_timeout: float, timeout: float
    ) -> None:
        self._session = session
        self._proxy = proxy
        self._call_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=timeout
        )
        json_headers = {"Content-Type": JSON, "Accept": JSON, "User-Agent": USER_AGENT}
        self._headers = {False: json_headers, True: {**json_headers, "Accept": EVENT_STREAM}}

    async def send(
        self, method: str, url: URL, key: str, body: bytes | None, *, streaming: bool
    ) -> UpstreamResponse:
        headers = {**self._headers[streaming], "Authorization": f"Bearer {key}"}
        timeout = self._stream_timeout if streaming else self._call_timeout
        response = await self._session.request(
            method, url, data=body, headers=headers, proxy=self._proxy, timeout=timeout
        )
        return _AiohttpResponse(response)

    def close(self) -> None:
        """The session belongs to the app, which closes it."""
