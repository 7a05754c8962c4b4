"""How ``OpenAIClient`` sends a request: straight to the API (``DirectTransport``, the lean
keep-alive client of ``upstream.http``), or through an HTTP proxy (``ProxyTransport``, the
app's aiohttp ``ClientSession``). Both hand back an ``UpstreamResponse`` and raise
``TimeoutError`` (``connecting`` set when the connect timed out) or a connection error that
``OpenAIClient`` maps to the upstream errors.

Timeouts, the same on both: ``connect_timeout`` bounds the TCP/TLS connect; ``timeout`` is
the deadline of a whole answer, or for a stream the longest silence allowed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
from yarl import URL

from alice_py.upstream.http import ACCEPT_ENCODING, HttpConnectionError, HttpTimeout
from alice_py.upstream.pool import HttpPool

USER_AGENT = "alice-py/0.1"
JSON = "application/json"
EVENT_STREAM = "text/event-stream"

CONNECTION_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError, HttpConnectionError)
"""What a transport raises when the connection fails (besides ``TimeoutError``)."""


def is_connect_timeout(exc: TimeoutError) -> bool:
    return isinstance(exc, aiohttp.ConnectionTimeoutError) or (
        isinstance(exc, HttpTimeout) and exc.connecting
    )


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


class DirectTransport:
    """Keep-alive connections straight to the API's origin; request heads built once per URL."""

    def __init__(self, origin: URL, *, connect_timeout: float, timeout: float) -> None:
        self._pool = HttpPool(origin, connect_timeout=connect_timeout)
        self._timeout = timeout
        self._heads: dict[tuple[str, URL, bool], str] = {}

    def _head(self, method: str, url: URL, streaming: bool) -> str:
        head = self._heads.get((method, url, streaming))
        if head is None:
            headers = {
                "Content-Type": JSON,
                "Accept": EVENT_STREAM if streaming else JSON,
                "Accept-Encoding": ACCEPT_ENCODING,
                "User-Agent": USER_AGENT,
            }
            head = self._heads[(method, url, streaming)] = self._pool.head(method, url.raw_path_qs, headers)
        return head

    async def send(
        self, method: str, url: URL, key: str, body: bytes | None, *, streaming: bool
    ) -> UpstreamResponse:
        head = self._head(method, url, streaming)
        return await self._pool.request(
            head, f"Authorization: Bearer {key}", body or b"", limit=self._timeout, streaming=streaming
        )

    def close(self) -> None:
        self._pool.close()


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

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


class ProxyTransport:
    """Through an HTTP proxy, with the app's aiohttp session (which knows how to talk to one)."""

    def __init__(
        self, session: aiohttp.ClientSession, proxy: str, *, connect_timeout: float, timeout: float
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
