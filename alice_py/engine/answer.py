"""An answer on its way: an async iterator of text pieces that commits the turn at its end.

``ConversationService.ask`` returns one already started: its whole life runs inside
``async with turn`` (``engine.turn``: the conversation's lock, the request planned under
it), entered by ``start()``, so a busy conversation or a refused question is raised there.
Consume it to the end (``async for``, or ``collect()``) and the turn is committed, then
the lock released. On an upstream error, a cancellation, an early ``aclose()`` / exit
from ``async with``, or an answer dropped half-read, nothing is committed and the lock
is released all the same: the turn's ``__aexit__`` runs when the generator ends, and
asyncio's async-generator finalizer closes a started one even if the caller forgets to.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from alice_py.upstream.client import chunk_text, response_text
from alice_py.upstream.errors import UpstreamError
from alice_py.upstream.text import piece_batches
from alice_py.upstream.types import Upstream, UpstreamRequest

if TYPE_CHECKING:
    from alice_py.engine.context import TurnContext


class Held(Protocol):
    """What an answer needs of its turn (``engine.turn.Turn``), known once it is entered."""

    def __aenter__(self) -> Any: ...
    def __aexit__(self, *exc: Any) -> Any: ...

    @property
    def request(self) -> UpstreamRequest: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def parent_id(self) -> str: ...
    @property
    def context(self) -> TurnContext | None:
        """How the history was fitted to the window (``engine.context``); None: sent whole."""
        ...

    async def commit_answer(self, text: str) -> None: ...


def trim_answer(text: str) -> str:
    """Leading and trailing newlines removed (spaces kept), as the original did."""
    return text.strip("\n")


class _Result:
    __slots__ = ("context", "keep_response", "request", "response", "text")

    def __init__(self, keep_response: bool, request: UpstreamRequest | None) -> None:
        self.text: str | None = None
        self.keep_response = keep_response
        self.response: dict[str, Any] | None = None
        self.request = request
        """What is sent: the context's retry may replace the first request."""
        self.context: TurnContext | None = None


def _with_usage(request: UpstreamRequest) -> UpstreamRequest:
    """The stream asks for its usage (OpenAI's last chunk with ``usage`` and no choices)."""
    return UpstreamRequest(request.endpoint, {**request.body, "stream_options": {"include_usage": True}})


async def _counted_batches(
    upstream: Upstream, request: UpstreamRequest, context: TurnContext
) -> AsyncGenerator[list[str], None]:
    """``piece_batches`` for a conversation's turn: the chunks' text, and their ``usage`` kept."""
    endpoint = request.endpoint
    batches = upstream.stream(_with_usage(request))
    try:
        async for batch in batches:
            texts: list[str] = []
            for chunk in batch:
                if text := chunk_text(endpoint, chunk):
                    texts.append(text)
                reported = chunk.get("usage")
                if isinstance(reported, dict):
                    context.reported_usage = reported
            if texts:
                yield texts
    finally:
        await _close(batches)


def _sent(result: _Result) -> UpstreamRequest:
    assert result.request is not None
    return result.request


def _batches(upstream: Upstream, result: _Result) -> AsyncIterator[list[str]]:
    if result.context is None:
        return piece_batches(upstream, _sent(result))
    return _counted_batches(upstream, _sent(result), result.context)


async def _response_text(upstream: Upstream, result: _Result) -> str:
    """The whole answer's text; a conversation's turn keeps the response's ``usage`` too."""
    if result.context is None:  # a one-off answer: no history to refit, so no retry for length
        sent = _sent(result)
        return response_text(sent.endpoint, await upstream.call(sent))
    response = await _call(upstream, result, upstream.call)
    reported = response.get("usage")
    if isinstance(reported, dict):
        result.context.reported_usage = reported
    return response_text(_sent(result).endpoint, response)


def _retry(result: _Result, error: UpstreamError) -> UpstreamRequest | None:
    """The request to send once more after ``error`` (a refusal for length), if any."""
    if result.context is None:
        return None
    retried = result.context.retry(error)
    if retried is not None:
        result.request = retried
    return retried


async def _open_stream(
    upstream: Upstream, result: _Result
) -> tuple[AsyncIterator[list[str]], list[str] | None]:
    """Start the stream and read its first batch, retrying once after a refusal for length."""
    batches = _batches(upstream, result)
    try:
        return batches, await anext(batches, None)
    except UpstreamError as exc:
        await _close(batches)
        if _retry(result, exc) is None:
            raise
    batches = _batches(upstream, result)
    try:
        return batches, await anext(batches, None)
    except BaseException:
        await _close(batches)
        raise


async def _call(
    upstream: Upstream, result: _Result, send: Callable[[UpstreamRequest], Awaitable[Any]]
) -> Any:
    try:
        return await send(_sent(result))
    except UpstreamError as exc:
        if _retry(result, exc) is None:
            raise
    return await send(_sent(result))


async def _nothing() -> AsyncGenerator[list[str], None]:
    return
    yield  # an async generator that ends at once


_ENDED = _nothing()
"""The generator of a one-off answer once it is complete or closed: nothing more comes.
(Shared: an ended async generator keeps no state; ``aclose`` on it does nothing.)"""

_NO_TURN = contextlib.nullcontext()
"""What a one-off answer holds (nothing): one shared instance, nullcontext keeps no state."""


async def _run(
    upstream: Upstream,
    streaming: bool,
    turn: Held | None,
    result: _Result,
) -> AsyncGenerator[list[str], None]:
    hold: Any = _NO_TURN if turn is None else turn
    async with hold:
        if turn is not None:
            result.request, result.context, streaming = turn.request, turn.context, turn.streaming
        result.keep_response = result.keep_response and not streaming
        yield []  # the step Answer.start runs, never seen by consumers
        if streaming:
            parts: list[str] = []
            batches, first = await _open_stream(upstream, result)
            try:
                if first is not None:
                    parts.extend(first)
                    yield first
                    async for batch in batches:
                        parts.extend(batch)
                        yield batch
            finally:
                # Stopped early (client gone): end the upstream request now, not when collected.
                await _close(batches)
            text = trim_answer("".join(parts))
        elif result.keep_response:
            result.response = await _call(upstream, result, upstream.call)
            if result.context is not None and isinstance(result.response.get("usage"), dict):
                result.context.reported_usage = result.response["usage"]
            text = trim_answer(response_text(_sent(result).endpoint, result.response))
            if text:
                yield [text]
        else:
            text = trim_answer(await _response_text(upstream, result))
            if text:
                yield [text]
        if turn is not None:
            await turn.commit_answer(text)
        result.text = text


async def _close(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class Answer:
    __slots__ = (
        "_gen",
        "_message_id",
        "_parent_id",
        "_pending",
        "_result",
        "_streaming",
        "_turn",
        "_upstream",
        "conversation_id",
    )

    def __init__(
        self,
        upstream: Upstream,
        request: UpstreamRequest | None,
        *,
        streaming: bool,
        conversation_id: str | None,
        message_id: str | Callable[[], str],
        parent_id: str | None,
        turn: Held | None = None,
        keep_response: bool = False,
    ) -> None:
        """With ``turn``, ``request``, ``streaming`` and ``parent_id`` are the turn's (planned
        under its lock, once started): pass ``None``, ``False`` and ``None``."""
        self.conversation_id = conversation_id
        """``None`` for one-off answers (quickAnswer, summary, stateless dialects)."""
        self._message_id = message_id
        self._parent_id = parent_id
        self._streaming = streaming
        self._turn = turn
        self._result = _Result(keep_response, request)
        self._pending: deque[str] = deque()
        """Pieces of the latest batch not yet handed out one by one (``__anext__``)."""
        self._upstream = upstream
        # The generator gets no reference to ``self``: without a cycle, an answer dropped
        # half-read is finalized (and its lock released) at once, not at the next gc run.
        # A one-off whole answer (no turn to hold, nothing streamed, no response kept) needs
        # none: ``collect`` makes its one call, and the generator is made only if the answer
        # is iterated instead (docs/performance.md: it is most of what a one-off answer costs).
        self._gen: AsyncGenerator[list[str], None] | None = None
        if turn is not None or streaming or keep_response:
            self._gen = _run(upstream, streaming, turn, self._result)

    @property
    def parent_id(self) -> str | None:
        """The id of the question's message: node-chatgpt-api's ``parentMessageId`` of the reply."""
        return self._parent_id if self._turn is None else self._turn.parent_id

    @property
    def streaming(self) -> bool:
        """Pieces come as the model writes them (otherwise: one piece, the whole trimmed answer)."""
        return self._streaming if self._turn is None else self._turn.streaming

    @property
    def message_id(self) -> str:
        """The id the answer's message has (or will have once committed). Given as a function,
        it is drawn the first time it is asked for: most one-off answers never show one."""
        if not isinstance(self._message_id, str):
            self._message_id = self._message_id()
        return self._message_id

    @property
    def request(self) -> UpstreamRequest:
        """What is (or was) sent upstream (after a retry for length, the retried request)."""
        if self._result.request is None and self._turn is not None:
            return self._turn.request  # not started yet
        return _sent(self._result)

    @property
    def context(self) -> TurnContext | None:
        """How the conversation's history was fitted to the window (None for one-off answers)."""
        return self._result.context

    @property
    def text(self) -> str | None:
        """The whole answer, newline-trimmed, once it is complete (``None`` before)."""
        return self._result.text

    @property
    def response(self) -> dict[str, Any] | None:
        """The upstream's whole JSON response, once a non-streamed answer asked with
        ``keep_response`` is complete (node-chatgpt-api's ``details``); ``None`` otherwise."""
        return self._result.response

    async def start(self) -> Answer:
        """Enter the turn (its lock, its plan) and make the answer safe to drop: past this, the
        turn's ``__aexit__`` runs however the answer ends. What entering raises is raised here.

        (It runs the generator up to its first ``yield``, inside the ``async with``; asyncio's
        async-generator finalizer closes a started generator that is garbage-collected.)
        Nothing is sent upstream before the first piece is asked for. Call it once,
        before handing the answer out.
        """
        if self._gen is not None:
            await self._gen.__anext__()
        return self

    async def _begin(self) -> AsyncGenerator[list[str], None]:
        """The generator of a one-off whole answer iterated rather than collected."""
        gen = self._gen = _run(self._upstream, False, None, self._result)
        await gen.__anext__()  # its first, empty step (nothing to enter)
        return gen

    def __aiter__(self) -> Answer:
        return self

    async def __anext__(self) -> str:
        while not self._pending:
            gen = self._gen or await self._begin()
            self._pending.extend(await gen.__anext__())
        return self._pending.popleft()

    async def next_batch(self) -> list[str] | None:
        """The pieces that arrived together (at least one), or None once the answer has ended;
        a stream writer sends each batch in one write."""
        if self._pending:
            batch = list(self._pending)
            self._pending.clear()
            return batch
        try:
            gen = self._gen or await self._begin()
            return await gen.__anext__()
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        """Stop here: nothing is committed unless the answer had already completed."""
        if self._gen is None:
            self._gen = _ENDED  # a one-off answer closed before its call: it never makes it
        else:
            await self._gen.aclose()

    async def collect(self) -> str:
        """Read the answer to its end (committing the turn) and return it, newline-trimmed."""
        self._pending.clear()
        if self._gen is None:  # a one-off whole answer: its one call, no generator
            self._gen = _ENDED  # made once, whatever it ends in
            text = self._result.text = trim_answer(await _response_text(self._upstream, self._result))
            return text
        async for _ in self._gen:
            pass
        if self._result.text is None:
            raise RuntimeError("this answer was closed before it completed")
        return self._result.text

    async def __aenter__(self) -> Answer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
