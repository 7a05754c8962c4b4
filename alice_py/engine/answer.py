"""An answer on its way: an async iterator of text pieces that commits the turn at its end.

``ConversationService.ask`` returns one with the conversation's lock already
held. Consume it to the end (``async for``, or ``collect()``) and the turn is
committed, then the lock released. On an upstream error, a cancellation, an
early ``aclose()`` / exit from ``async with``, or an answer dropped half-read,
nothing is committed and the lock is released all the same: the work runs in
one async generator whose ``finally`` releases, and which is started before
``ask`` returns, so asyncio's async-generator finalizer closes it even if the
caller forgets to.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from alice_py.upstream.client import chunk_text, response_text
from alice_py.upstream.errors import UpstreamError
from alice_py.upstream.types import Upstream, UpstreamRequest

if TYPE_CHECKING:
    from alice_py.engine.context import TurnContext

Commit = Callable[[str], Awaitable[None]]
Release = Callable[[], Awaitable[None]]


def trim_answer(text: str) -> str:
    """Leading and trailing newlines removed (spaces kept), as the original did."""
    return text.strip("\n")


class _Result:
    __slots__ = ("context", "keep_response", "request", "response", "text")

    def __init__(self, keep_response: bool, request: UpstreamRequest, context: TurnContext | None) -> None:
        self.text: str | None = None
        self.keep_response = keep_response
        self.response: dict[str, Any] | None = None
        self.request = request
        """What is sent: the context's retry may replace the first request."""
        self.context = context


def _with_usage(request: UpstreamRequest) -> UpstreamRequest:
    """The stream asks for its usage (OpenAI's last chunk with ``usage`` and no choices)."""
    return UpstreamRequest(request.endpoint, {**request.body, "stream_options": {"include_usage": True}})


async def _counted_batches(
    upstream: Upstream, request: UpstreamRequest, context: TurnContext
) -> AsyncGenerator[list[str], None]:
    """``piece_batches`` for a conversation's turn: the chunks' text, and their ``usage`` kept."""
    endpoint = request.endpoint
    batches = upstream.stream_batches(_with_usage(request))
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


def _batches(upstream: Upstream, result: _Result) -> AsyncIterator[list[str]]:
    if result.context is None:
        return upstream.piece_batches(result.request)
    return _counted_batches(upstream, result.request, result.context)


async def _response_text(upstream: Upstream, result: _Result) -> str:
    """The whole answer's text; a conversation's turn keeps the response's ``usage`` too."""
    if result.context is None:
        text: str = await _call(upstream, result, upstream.text)
        return text
    response = await _call(upstream, result, upstream.call)
    reported = response.get("usage")
    if isinstance(reported, dict):
        result.context.reported_usage = reported
    return response_text(result.request.endpoint, response)


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
        return await send(result.request)
    except UpstreamError as exc:
        if _retry(result, exc) is None:
            raise
    return await send(result.request)


async def _run(
    upstream: Upstream,
    streaming: bool,
    commit: Commit | None,
    release: Release | None,
    result: _Result,
) -> AsyncGenerator[list[str], None]:
    try:
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
            text = trim_answer(response_text(result.request.endpoint, result.response))
            if text:
                yield [text]
        else:
            text = trim_answer(await _response_text(upstream, result))
            if text:
                yield [text]
        if commit is not None:
            await commit(text)
        result.text = text
    finally:
        if release is not None:
            await release()


async def _close(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class Answer:
    __slots__ = (
        "_gen",
        "_message_id",
        "_pending",
        "_result",
        "conversation_id",
        "parent_id",
        "streaming",
    )

    def __init__(
        self,
        upstream: Upstream,
        request: UpstreamRequest,
        *,
        streaming: bool,
        conversation_id: str | None,
        message_id: str | Callable[[], str],
        parent_id: str | None,
        commit: Commit | None = None,
        release: Release | None = None,
        keep_response: bool = False,
        context: TurnContext | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        """``None`` for one-off answers (quickAnswer, summary, stateless dialects)."""
        self._message_id = message_id
        self.parent_id = parent_id
        """The id of the question's message: node-chatgpt-api's ``parentMessageId`` of the reply."""
        self.streaming = streaming
        """Pieces come as the model writes them (otherwise: one piece, the whole trimmed answer)."""
        self._result = _Result(keep_response and not streaming, request, context)
        self._pending: deque[str] = deque()
        """Pieces of the latest batch not yet handed out one by one (``__anext__``)."""
        # The generator gets no reference to ``self``: without a cycle, an answer dropped
        # half-read is finalized (and its lock released) at once, not at the next gc run.
        self._gen = _run(upstream, streaming, commit, release, self._result)

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
        return self._result.request

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
        """Make the answer safe to drop: past this, its ``release`` runs however it ends.

        (It runs the generator up to its first ``yield``, inside the ``try``; asyncio's
        async-generator finalizer closes a started generator that is garbage-collected.)
        Nothing is sent upstream before the first piece is asked for. Call it once,
        before handing the answer out.
        """
        await self._gen.__anext__()
        return self

    def __aiter__(self) -> Answer:
        return self

    async def __anext__(self) -> str:
        while not self._pending:
            self._pending.extend(await self._gen.__anext__())
        return self._pending.popleft()

    async def next_batch(self) -> list[str] | None:
        """The pieces that arrived together (at least one), or None once the answer has ended;
        a stream writer sends each batch in one write."""
        if self._pending:
            batch = list(self._pending)
            self._pending.clear()
            return batch
        try:
            return await self._gen.__anext__()
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        """Stop here: nothing is committed unless the answer had already completed."""
        await self._gen.aclose()

    async def collect(self) -> str:
        """Read the answer to its end (committing the turn) and return it, newline-trimmed."""
        self._pending.clear()
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
