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
  may wait ``IDLE_LIMIT`` seconds; a request whose reused connection is closed
  before any byte of the answer is sent once more on a new one (the server's
  keep-alive time ran out as the request went out: it did not take it);
- timeouts: ``connect`` for the TCP/TLS connect; for a whole answer a deadline;
  for a stream, the longest silence allowed (``HttpTimeout``);
- a stream that is not read fast enough stops reading from the socket (flow control).

Proxies are not supported here: with ``[upstream] proxy`` the client uses aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import httptools
from yarl import URL

IDLE_LIMIT = 15.0
"""Seconds an idle connection is kept (aiohttp's default keep-alive time too)."""
MAX_IDLE = 512
"""Idle connections kept at most; more are closed when their answer ends."""
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

    def __init__(self, conn: _Connection, deadline: float | None, silence: float, streaming: bool) -> None:
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


class _Connection(asyncio.Protocol):
    """One keep-alive connection; feeds the answer in progress from llhttp's callbacks."""

    def __init__(self, pool: HttpPool) -> None:
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


class HttpPool:
    """Requests to one origin (``scheme://host:port``) over a pool of keep-alive connections."""

    def __init__(self, origin: URL, *, connect_timeout: float) -> None:
        if origin.scheme not in ("http", "https") or not origin.host:
            raise ValueError(f"not an http(s) URL: {origin}")
        self.host = origin.host
        self.port = origin.port or (443 if origin.scheme == "https" else 80)
        self._tls = origin.scheme == "https"
        self._ssl: ssl.SSLContext | None = None
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._closed = False
        default_port = self.port == (443 if self._tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"

    def head(self, method: str, target: str, headers: Mapping[str, str]) -> str:
        """The start of a request up to (not including) its per-request headers; ``target``
        is the path and query. Header values must not hold line breaks."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        text = "\r\n".join(lines) + "\r\n"
        if any(ch in value for value in headers.values() for ch in "\r\n\0"):
            raise ValueError("a header value holds a line break")
        return text

    async def request(
        self, head: str, key_header: str, body: bytes, *, limit: float, streaming: bool
    ) -> HttpResponse:
        """Send ``head`` + ``key_header`` (one more header line, e.g. the Authorization) + the body;
        return once the answer's status and headers are in. Without ``streaming`` the whole answer
        must arrive within ``limit`` seconds; with it, ``limit`` is the longest silence allowed."""
        if any(ch in key_header for ch in "\r\n\0"):
            raise ValueError("a header value holds a line break")
        data = f"{head}{key_header}\r\nContent-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
        loop = asyncio.get_running_loop()
        deadline = None if streaming else loop.time() + limit
        while True:
            conn = self._take_idle(loop.time())
            reused = conn is not None
            if conn is None:
                conn = await self._connect(deadline)
            response = HttpResponse(conn, deadline, limit, streaming)
            conn.send(response, data)
            try:
                await response.wait_headers()
            except HttpConnectionError:
                conn.close()
                if reused and not response.received_any:
                    continue  # the server had closed this idle connection: it never saw the request
                raise
            except BaseException:
                conn.close()
                raise
            return response

    def _take_idle(self, now: float) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_LIMIT:
                return conn
            conn.close()
        return None

    async def _connect(self, deadline: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        limit, connecting = self._connect_timeout, True
        if deadline is not None and deadline - loop.time() < limit:
            limit, connecting = max(deadline - loop.time(), 0.0), False
        try:
            async with asyncio.timeout(limit):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl_context() if self._tls else None,
                    server_hostname=self.host if self._tls else None,
                )
        except TimeoutError:
            raise HttpTimeout(f"no connection within {limit:g} s", connecting=connecting) from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise HttpConnectionError(f"cannot connect to {self.host}:{self.port}: {reason}") from None
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        # Made on first use: loading the CA certificates costs memory an http-only service does not need.
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    def put_back(self, conn: _Connection) -> None:
        if self._closed or conn.closed or len(self._idle) >= MAX_IDLE:
            conn.close()
            return
        conn.idle_since = asyncio.get_running_loop().time()
        self._idle.append(conn)

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    def close(self) -> None:
        """Close the idle connections; those in use close when their answer is released."""
        self._closed = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()
