"""Streaming an answer to the client: Server-Sent Events, and the rules any stream follows.

``write_stream`` is the one stream writer of every dialect (``/v1``'s chunks, the
Responses events, and through ``stream_answer`` — where a ``StreamFormat`` says how a
piece, the end and an error look — Alice's SSE, node's SSE with JSON strings and
``/chat``'s NDJSON). Its rules:

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
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from aiohttp import web

from alice_py import appkeys
from alice_py.errors import AliceError
from alice_py.failure_log import FailureLog
from alice_py.request_ids import HEADER, UPSTREAM_HEADER, current, current_id
from alice_py.web.context_headers import context_headers
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
        info = current()
        if info is not None:  # the middleware cannot: these go out before it returns
            self.headers[HEADER] = info.id
            if info.upstream is not None:
                self.headers[UPSTREAM_HEADER] = info.upstream
            info.answered = time.monotonic()


NextChunk = Callable[[], Awaitable["bytes | None"]]
"""The next encoded chunk of a stream (what arrived together), or None at its end."""


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


@dataclass(frozen=True, slots=True)
class Ending:
    """How a stream ends, in a dialect's format."""

    done: Callable[[], bytes]
    failed: Callable[[AliceError], bytes]
    """The end of a stream an error stopped after its first chunk."""


async def _write_rest(
    response: web.StreamResponse, next_chunk: NextChunk, ending: Ending, failures: FailureLog
) -> bytes:
    """Every remaining chunk, each in one write; the end of the stream to send last:
    ``ending.done()``, or the error that stopped it (in the failure log: an upstream error by
    the router, any other here)."""
    try:
        while (chunk := await next_chunk()) is not None:
            await response.write(chunk)
    except AliceError as exc:
        failures.service_error(exc)
        return ending.failed(exc)
    except ConnectionResetError:
        raise
    except Exception:
        log.exception("stream failed after its first chunk (request id %s)", current_id())
        return ending.failed(InternalError())
    return ending.done()


async def write_stream(
    request: web.Request,
    next_chunk: NextChunk,
    close: Callable[[], Awaitable[None]],
    ending: Ending,
    headers: Mapping[str, str] = SSE_HEADERS,
    *,
    more_headers: Callable[[], Mapping[str, str]] | None = None,
) -> web.StreamResponse:
    """The one stream writer of every dialect: the encoded chunks ``next_chunk`` returns until
    None, then ``ending``; ``close`` is awaited however this ends (it cancels the upstream).

    Nothing is sent before the first chunk: a failure before it propagates and becomes an
    ordinary HTTP error (the router may fail over until then). A failure after it is written
    in-stream (``ending.failed``) and ends the stream. A client gone is logged, not raised.
    ``more_headers`` is asked once the first chunk has come (the ``X-Context-*`` headers).
    """
    failures = request.app[appkeys.FAILURE_LOG]
    try:
        first = await next_chunk()
        response = AnswerStream(headers=headers if more_headers is None else {**headers, **more_headers()})
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(first)
                end = await _write_rest(response, next_chunk, ending, failures)
            else:
                end = ending.done()
            await response.write_eof(end)
        except ConnectionResetError:
            failures.client_gone()
        return response
    finally:
        await close()


async def stream_answer(
    request: web.Request, answer: Pieces, fmt: StreamFormat = ALICE_SSE
) -> web.StreamResponse:
    """Send ``answer`` as a stream in format ``fmt``; the answer is closed however this ends.

    Pieces that arrived together go out in one write (a model's burst, or a whole short
    answer from a fast upstream), and the end of the stream with the last chunk: a
    20-piece answer that arrives at once costs 2 writes, not 22 (docs/performance.md).
    """

    async def next_chunk() -> bytes | None:
        batch = await answer.next_batch()
        return None if batch is None else _encode(fmt, batch)

    ending = Ending(fmt.done, lambda exc: fmt.error(client_message(exc), exc.status))
    # Read after the first batch: a retry for length (engine.context) has been decided by then.
    return await write_stream(
        request, next_chunk, answer.aclose, ending, fmt.headers, more_headers=lambda: context_headers(answer)
    )
