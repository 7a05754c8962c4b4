"""Kept-alive connections the fake resets, as llama-cpp-python's server does after a failed
stream: the answer ends cleanly, the connection stays open, and then the socket is reset
(RST). A client that pooled the connection and sends its next request on it gets
``Connection reset by peer`` before any byte of an answer."""

from __future__ import annotations

import asyncio
import socket
import struct

from aiohttp import web

_LINGER_OFF = struct.pack("ii", 1, 0)
"""``SO_LINGER`` on with a zero timeout: closing the socket sends RST instead of FIN."""


def reset(transport: asyncio.Transport) -> None:
    """Reset the connection now (RST), unless it is already closing."""
    if transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_OFF)
    transport.abort()


class ConnectionResets:
    """The connections marked for a reset, each with its timer (None: no timer). One per fake
    app: ``mark`` one after its answer, ``take`` tells the next request on it."""

    __slots__ = ("_marked",)

    def __init__(self) -> None:
        self._marked: dict[asyncio.Transport, asyncio.TimerHandle | None] = {}

    def mark(self, request: web.Request, delay: float | None) -> None:
        """Reset ``request``'s connection when the next request arrives on it (``take``), or
        after ``delay`` seconds. Call it once the answer has been written in full."""
        transport = request.transport
        if transport is None:
            return
        # Forget connections that closed meanwhile: the dict stays as small as the open ones.
        for closed in [marked for marked in self._marked if marked.is_closing()]:
            self._forget(closed)
        timer = None
        if delay is not None:
            timer = asyncio.get_running_loop().call_later(delay, self._expire, transport)
        self._marked[transport] = timer

    def take(self, request: web.Request) -> asyncio.Transport | None:
        """``request``'s connection if it was marked (no longer): the caller resets it."""
        transport = request.transport
        if transport is None or transport not in self._marked:
            return None
        self._forget(transport)
        return transport

    def _forget(self, transport: asyncio.Transport) -> None:
        timer = self._marked.pop(transport, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, transport: asyncio.Transport) -> None:
        self._marked.pop(transport, None)
        reset(transport)

    def close(self) -> None:
        """Cancel the timed resets (the fake is stopping)."""
        for transport in list(self._marked):
            self._forget(transport)
