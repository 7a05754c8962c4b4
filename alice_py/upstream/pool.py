"""A pool of keep-alive HTTP/1.1 connections to one origin (``upstream.http`` has the rest)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping

from yarl import URL

from alice_py.upstream.http import Connection, HttpConnectionError, HttpResponse, HttpTimeout

IDLE_LIMIT = 15.0
"""Seconds an idle connection is kept (aiohttp's default keep-alive time too)."""
MAX_IDLE = 512
"""Idle connections kept at most; more are closed when their answer ends."""
DNS_TTL = 300.0
"""Seconds the host's addresses are reused before looking them up again."""


class HttpPool:
    """Requests to one origin (``scheme://host:port``) over a pool of keep-alive connections."""

    def __init__(self, origin: URL, *, connect_timeout: float) -> None:
        if origin.scheme not in ("http", "https") or not origin.raw_host:
            raise ValueError(f"not an http(s) URL: {origin}")
        self.host = origin.raw_host  # IDNA-encoded: what DNS, TLS and the Host header want
        self.port = origin.port or (443 if origin.scheme == "https" else 80)
        self._tls = origin.scheme == "https"
        self._ssl: ssl.SSLContext | None = None
        self._connect_timeout = connect_timeout
        self._resolved: list[str] | None = None
        self._resolved_until = 0.0
        self._idle: list[Connection] = []
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

    def _take_idle(self, now: float) -> Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_LIMIT:
                return conn
            conn.close()
        return None

    async def _connect(self, deadline: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        limit, connecting = self._connect_timeout, True
        if deadline is not None and deadline - loop.time() < limit:
            limit, connecting = max(deadline - loop.time(), 0.0), False
        try:
            async with asyncio.timeout(limit):
                return await self._connect_to_any(await self._addresses())
        except TimeoutError:
            raise HttpTimeout(f"no connection within {limit:g} s", connecting=connecting) from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise HttpConnectionError(f"cannot connect to {self.host}:{self.port}: {reason}") from None

    async def _addresses(self) -> list[str]:
        """The host's addresses, looked up at most every ``DNS_TTL`` seconds: a burst of new
        streams must not wait for one lookup each (aiohttp's session had such a cache too)."""
        loop = asyncio.get_running_loop()
        if self._resolved is None or loop.time() >= self._resolved_until:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            self._resolved = list(dict.fromkeys(str(info[4][0]) for info in infos))
            self._resolved_until = loop.time() + DNS_TTL
        return self._resolved

    async def _connect_to_any(self, addresses: list[str]) -> Connection:
        """The first address that accepts (IPv6 and IPv4 alike, in the resolver's order)."""
        failure: OSError | None = None
        for address in addresses:
            try:
                _, conn = await asyncio.get_running_loop().create_connection(
                    lambda: Connection(self),
                    address,
                    self.port,
                    ssl=self._ssl_context() if self._tls else None,
                    server_hostname=self.host if self._tls else None,
                )
            except OSError as exc:
                failure = exc
                continue
            return conn
        raise failure or OSError(f"{self.host} has no address")

    def _ssl_context(self) -> ssl.SSLContext:
        # Made on first use: loading the CA certificates costs memory an http-only service does not need.
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    def put_back(self, conn: Connection) -> None:
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
