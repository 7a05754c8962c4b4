"""A small HTTP/1.1 client for the model API: keep-alive connections to one origin.

Why not aiohttp's ``ClientSession`` for these calls: on a fast upstream the service
spent about 170 µs of CPU per call inside it (request and response objects, header
multidicts, cookie jar, timers, tracing hooks), more than half of a whole relay;
this client spends about 20 µs (docs/performance.md). It does only what an
OpenAI-compatible API needs:

- one origin (``http`` or ``https``, certificates verified), requests with a body;
- responses with ``Content-Length``, chunked or close-delimited bodies, parsed by
  llhttp (``httptools``); ``1xx`` answers skipped; ``gzip`` bodies decoded;
- keep-alive: a finished response puts its connection back in the pool, where it
  may wait ``pool.IDLE_LIMIT`` seconds; a request whose reused connection is closed
  before any byte of the answer is sent once more on a new one (the server's
  keep-alive time ran out as the request went out: it did not take it);
- timeouts: ``connect`` for the TCP/TLS connect; for a whole answer a deadline;
  for a stream, the longest silence allowed (``HttpTimeout``);
- a stream that is not read fast enough stops reading from the socket (flow control).

The pool of connections to one origin is ``upstream.pool.HttpPool``. Proxies are not
supported here: with ``[upstream] proxy`` the client uses aiohttp.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any, Protocol, cast

import httptools

READ_HIGH_WATER = 1 << 20
"""A stream buffering more than this (bytes not yet read by the consumer) pauses the socket."""
ACCEPT_ENCODING = "gzip"


class HttpTimeout(TimeoutError):
    """No connection, or no (more) answer, in time. ``connecting``: it was the connect that timed out."""

    def __init__(self, message: str, *, connecting: bool) -> None:
        super().__init__(message)
        self.connecting = connecting


class HttpConnectionError(ConnectionError):
    """The connection could not be made, broke, or carried something that is not HTTP."""


def _expire(waiter: asyncio.Future[None], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(HttpTimeout(message, connecting=False))


class HttpResponse:
    """An answer being received. ``headers`` has lower-case names (repeated ones joined by ``, ``).

    Read the body with ``read()`` or ``iter_chunks()``, then ``release()`` (the connection
    goes back to the pool if the body was read to its end) or ``close()``.
    """

    __slots__ = (
        "_chunks",
        "_close_delimited",
        "_conn",
        "_deadline",
        "_decoder",
        "_exc",
        "_paused",
        "_silence",
        "_size",
        "_streaming",
        "_waiter",
        "complete",
        "headers",
        "headers_done",
        "keep_alive",
        "received_any",
        "status",
    )

    def __init__(self, conn: Connection, deadline: float | None, silence: float, streaming: bool) -> None:
        self._conn = conn
        self._deadline = deadline
        self._silence = silence
        self._streaming = streaming
        self._chunks: list[bytes] = []
        self._size = 0
        self._paused = False
        self._decoder: Any = None
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._close_delimited = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.received_any = False

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters (``application/json``)."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    # --- fed by the connection -----------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _headers_complete(self, status: int) -> None:
        self.status = status
        self.headers_done = True
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding not in ("identity", ""):
            self._fail(HttpConnectionError(f"the answer uses an unsupported content encoding {encoding!r}"))
        chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._close_delimited = not chunked and "content-length" not in self.headers
        self._wake()

    def _body(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                self._fail(HttpConnectionError(f"the answer's gzip body is corrupt: {exc}"))
                return
        if data:
            self._chunks.append(data)
            self._size += len(data)
            if self._streaming and self._size > READ_HIGH_WATER and not self._paused:
                self._paused = True
                self._conn.pause_reading()
            self._wake()

    def _message_complete(self, keep_alive: bool) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._chunks.append(rest)
        self.complete = True
        self.keep_alive = keep_alive and self._exc is None
        self._wake()

    def _connection_lost(self, exc: BaseException | None) -> None:
        if self.complete:
            return
        if self.headers_done and self._close_delimited and exc is None:
            self._message_complete(False)
            return
        detail = f": {exc}" if exc is not None else ""
        self._fail(HttpConnectionError(f"the model API closed the connection before the end{detail}"))

    def _fail(self, exc: BaseException) -> None:
        if self._exc is None:
            self._exc = exc
        self._wake()

    # --- read by the caller --------------------------------------------------------------------

    async def _wait(self) -> None:
        if self._exc is not None:
            raise self._exc
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if self._deadline is None:
            delay, message = self._silence, f"nothing received for {self._silence:g} s"
        else:
            delay, message = self._deadline - loop.time(), "no complete answer in time"
        timer = loop.call_later(delay, _expire, waiter, message)
        try:
            await waiter
        finally:
            self._waiter = None
            timer.cancel()

    async def wait_headers(self) -> None:
        while not self.headers_done:
            await self._wait()

    async def read(self) -> bytes:
        """The whole body."""
        while not self.complete:
            await self._wait()
        if self._exc is not None:
            raise self._exc
        body = b"".join(self._chunks)
        self._chunks.clear()
        return body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: everything received so far in one piece each time."""
        while True:
            if self._chunks:
                data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
                self._chunks.clear()
                self._size = 0
                if self._paused:
                    self._paused = False
                    self._conn.resume_reading()
                yield data
            elif self._exc is not None:
                raise self._exc
            elif self.complete:
                return
            else:
                await self._wait()

    def release(self) -> None:
        """Done with it: the connection is reused if the whole answer was read, else closed."""
        if self.complete and self.keep_alive:
            self._conn.finished(self)
        else:
            self._conn.close()

    def close(self) -> None:
        self._conn.close()


class Owner(Protocol):
    """Where a connection goes back when its answer was read to the end (the pool)."""

    def put_back(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One keep-alive connection; feeds the answer in progress from llhttp's callbacks."""

    def __init__(self, pool: Owner) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._response: HttpResponse | None = None
        self._status_ok = True
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        response = self._response
        if response is None:
            self.close()  # bytes nobody asked for: the connection can no longer be trusted
            return
        response.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response._fail(HttpConnectionError(f"the model API sent something that is not HTTP: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._response is not None:
            self._response._connection_lost(exc)

    # llhttp callbacks, for the answer in progress

    def on_message_begin(self) -> None:
        if self._response is not None:
            self._response.headers.clear()

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._response is not None
        headers = self._response.headers
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        self._status_ok = status >= 200  # 1xx: an interim answer, the real one follows
        if self._status_ok and self._response is not None:
            self._response._headers_complete(status)

    def on_body(self, body: bytes) -> None:
        if self._status_ok and self._response is not None:
            self._response._body(body)

    def on_message_complete(self) -> None:
        if self._status_ok and self._response is not None:
            self._response._message_complete(self._parser.should_keep_alive())

    # used by the pool and the response

    def send(self, response: HttpResponse, data: bytes) -> None:
        assert self._transport is not None
        self._response = response
        self._transport.write(data)

    def finished(self, response: HttpResponse) -> None:
        if self._response is response:
            self._response = None
            self._pool.put_back(self)

    def pause_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
