"""An incremental Server-Sent Events decoder that follows the WHATWG spec.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

Bytes arrive in arbitrary chunks: a chunk may end inside a line, inside a
``\\r\\n`` pair or inside a UTF-8 character. The decoder works on bytes and only
decodes complete lines; that is safe because ``\\r`` and ``\\n`` never occur inside
a multi-byte UTF-8 sequence. Lines are found with ``bytes.split`` (C speed), never
byte by byte, since this runs once per streamed token.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import aiohttp

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event. ``event`` defaults to ``message`` as in a browser's ``EventSource``;
    ``id`` is the last event id seen so far in the stream (it carries over, as the spec says)."""

    data: str
    event: str = "message"
    id: str = ""


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


class SSEDecoder:
    """``feed(bytes) -> list[Event]``: events completed by that chunk, in order.

    ``retry`` holds the last valid ``retry:`` value (milliseconds), if any. An event
    still incomplete when the stream ends is dropped, as the spec requires.
    """

    __slots__ = ("_data", "_event", "_first", "_last_id", "_parts", "_skip_lf", "retry")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._skip_lf = False
        self._first = True
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                # The previous chunk ended with "\r": this "\n" completes that one line end.
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\n" not in chunk and b"\r" not in chunk:
            self._parts.append(chunk)
            return []
        if self._parts:
            self._parts.append(chunk)
            chunk = b"".join(self._parts)
            self._parts.clear()
        if b"\r" in chunk:
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if rest:
            self._parts.append(rest)
        events: list[Event] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: bytes) -> Event | None:
        if self._first:
            self._first = False
            line = line.removeprefix(_BOM)
        if line.startswith(b"data:"):
            # The hot path: OpenAI streams are almost only "data:" lines.
            value = line[5:]
            self._data.append(_text(value[1:] if value[:1] == b" " else value))
            return None
        if not line:
            return self._dispatch()
        if line[:1] == b":":
            return None
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        self._field(name, value)
        return None

    def _field(self, name: bytes, value: bytes) -> None:
        if name == b"data":
            self._data.append(_text(value))
        elif name == b"event":
            self._event = _text(value)
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = _text(value)
        elif name == b"retry" and value.isdigit():
            self.retry = int(value)

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._event = ""
            return None
        event = Event("\n".join(self._data), self._event or "message", self._last_id)
        self._data = []
        self._event = ""
        return event


async def decode_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[list[Event]]:
    """The events of a stream body given as byte chunks: those each chunk completed, together
    (a consumer can hand on everything that arrived at once in one go)."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        events = decoder.feed(chunk)
        if events:
            yield events


async def iter_events(response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    """The events of an aiohttp response body, as soon as each one is complete."""
    decoder = SSEDecoder()
    async for chunk in response.content.iter_any():
        for event in decoder.feed(chunk):
            yield event
