"""Streaming an answer to the client: Server-Sent Events, and the rules any stream follows.

``stream_answer`` is format-neutral (a ``StreamFormat`` says how a piece, the end
and an error look), so the node (SSE with JSON strings) and ``/chat`` (NDJSON)
dialects reuse its rules:

- nothing is sent before the first piece: a failure before it propagates and
  becomes an ordinary HTTP error (status + message), or what the dialect's error
  formatter makes of it (node's stream answers every error in-stream);
- a failure after it is written in-stream (``fmt.error``) and ends the stream;
- when the client goes away the answer is closed at once, which cancels the
  upstream request and leaves the conversation as it was (nothing committed,
  lock released). aiohttp tells a handler in one of two ways: the handler task is
  cancelled (``handler_cancellation=True``, needed to notice while the model is
  still thinking) or the next write fails; both end in ``answer.aclose()``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from aiohttp import web

from alice_py import appkeys
from alice_py.errors import AliceError
from alice_py.failure_log import FailureLog
from alice_py.request_ids import HEADER, current_id
from alice_py.web.errors import InternalError, client_message

log = logging.getLogger(__name__)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

SSE_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        # nginx buffers proxied responses unless told not to; an answer must flow piece by piece.
        "X-Accel-Buffering": "no",
    }
)


class AnswerStream(web.StreamResponse):
    """A stream response whose headers go out with its first bytes, in the same write.

    aiohttp sends a ``StreamResponse``'s headers on their own at ``prepare()`` (a plain
    ``Response`` keeps them for its body: ``_send_headers_immediately = False``). Every stream
    here is prepared just before its first piece is written, so waiting costs nothing and saves
    one ``send`` per answer. (A private switch of aiohttp's: were it gone, the headers would
    simply go out at ``prepare()`` again.)
    """

    _send_headers_immediately = False

    def __init__(self, *, headers: Mapping[str, str]) -> None:
        super().__init__(headers=headers)
        request_id = current_id()
        if request_id is not None:
            self.headers[HEADER] = request_id  # the middleware cannot: these go out before it returns


class Pieces(Protocol):
    """An answer being produced (``engine.Answer``)."""

    async def next_batch(self) -> list[str] | None:
        """The pieces that arrived together, or None at the end."""
        ...

    async def aclose(self) -> None: ...


def sse_event(data: str, event: str | None = None) -> bytes:
    """One event. Each line of ``data`` becomes its own ``data:`` line, so an ``EventSource``
    joins them back with ``\\n``. (SSE cannot carry a carriage return: ``\\r\\n`` and ``\\r``
    arrive as ``\\n``.)"""
    head = f"event: {event}\n" if event else ""
    if "\n" in data or "\r" in data:
        lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    else:
        lines = f"data: {data}\n"  # most pieces: a token or a few words
    return (head + lines + "\n").encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class StreamFormat:
    piece: Callable[[str], bytes]
    done: Callable[[], bytes]
    error: Callable[[str, int], bytes]
    """The end of a stream an error stopped: its message for the client, and the status the
    answer would have had before the first piece (node-chatgpt-api's ``code``)."""
    headers: Mapping[str, str] = field(default_factory=lambda: SSE_HEADERS)


ALICE_SSE = StreamFormat(
    piece=sse_event,
    done=lambda: b"data: [DONE]\n\n",
    error=lambda message, _status: sse_event(message, "error"),
)
"""Alice's stream: one event per piece, ``data: [DONE]``, ``event: error`` on failure."""


def _encode(fmt: StreamFormat, batch: list[str]) -> bytes:
    if len(batch) == 1:
        return fmt.piece(batch[0])
    return b"".join([fmt.piece(piece) for piece in batch])


async def _write_rest(
    response: web.StreamResponse, answer: Pieces, fmt: StreamFormat, failures: FailureLog
) -> bytes:
    """Every remaining batch of pieces, each in one write; the end of the stream to send last:
    ``fmt.done()``, or the error that stopped the answer (in the failure log: an upstream
    error by the router, any other here)."""
    try:
        while (batch := await answer.next_batch()) is not None:
            await response.write(_encode(fmt, batch))
    except AliceError as exc:
        failures.service_error(exc)
        return fmt.error(client_message(exc), exc.status)
    except ConnectionResetError:
        raise
    except Exception:
        log.exception("answer failed after its first piece (request id %s)", current_id())
        internal = InternalError()
        return fmt.error(client_message(internal), internal.status)
    return fmt.done()


async def stream_answer(
    request: web.Request, answer: Pieces, fmt: StreamFormat = ALICE_SSE
) -> web.StreamResponse:
    """Send ``answer`` as a stream in format ``fmt``; the answer is closed however this ends.

    Pieces that arrived together go out in one write (a model's burst, or a whole short
    answer from a fast upstream), and the end of the stream with the last chunk: a
    20-piece answer that arrives at once costs 2 writes, not 22 (docs/performance.md).
    """
    failures = request.app[appkeys.FAILURE_LOG]
    try:
        first = await answer.next_batch()
        response = AnswerStream(headers=fmt.headers)
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(_encode(fmt, first))
                end = await _write_rest(response, answer, fmt, failures)
            else:
                end = fmt.done()
            await response.write_eof(end)
        except ConnectionResetError:
            failures.client_gone()
        return response
    finally:
        await answer.aclose()
