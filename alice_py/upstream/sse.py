"""An incremental Server-Sent Events decoder that follows the WHATWG spec.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

Bytes arrive in arbitrary chunks: a chunk may end inside a line, inside a
``\\r\\n`` pair or inside a UTF-8 character. The decoder works on bytes and only
decodes complete lines; that is safe because ``\\r`` and ``\\n`` never occur inside
a multi-byte UTF-8 sequence. Lines are found with ``bytes.split`` (C speed), never
byte by byte, since this runs once per streamed token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NamedTuple

import aiohttp

_BOM = b"\xef\xbb\xbf"


class Event(NamedTuple):
    """One dispatched event. ``event`` defaults to ``message`` as in a browser's ``EventSource``;
    ``id`` is the last event id seen so far in the stream (it carries over, as the spec says).

    (A named tuple: one is made per streamed token, and it is the cheapest immutable record.)"""

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
        if self._first and lines:
            self._first = False
            lines[0] = lines[0].removeprefix(_BOM)
        # The hot path, inlined (this runs for every token of every answer): OpenAI streams are
        # "data: <json>" lines, each event ended by an empty line. Other lines go to ``_line``.
        for line in lines:
            if line[:6] == b"data: ":
                self._data.append(line[6:].decode("utf-8", "replace"))
            elif not line:
                if self._data:
                    data = self._data
                    text = data[0] if len(data) == 1 else "\n".join(data)
                    events.append(Event(text, self._event or "message", self._last_id))
                    self._data = []
                self._event = ""
            else:
                self._line(line)
        return events

    def _line(self, line: bytes) -> None:
        """A non-empty line other than ``data: …`` (those ``feed`` handles itself)."""
        if line[:1] == b":":
            return  # a comment (keep-alives are sent so)
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        self._field(name, value)

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


async def iter_events(response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    """The events of an aiohttp response body, as soon as each one is complete."""
    decoder = SSEDecoder()
    async for chunk in response.content.iter_any():
        for event in decoder.feed(chunk):
            yield event
