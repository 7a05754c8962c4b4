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
from typing import Any

from alice_py.upstream.client import response_text
from alice_py.upstream.types import Upstream, UpstreamRequest

Commit = Callable[[str], Awaitable[None]]
Release = Callable[[], Awaitable[None]]


def trim_answer(text: str) -> str:
    """Leading and trailing newlines removed (spaces kept), as the original did."""
    return text.strip("\n")


class _Result:
    __slots__ = ("keep_response", "response", "text")

    def __init__(self, keep_response: bool) -> None:
        self.text: str | None = None
        self.keep_response = keep_response
        self.response: dict[str, Any] | None = None


async def _run(
    upstream: Upstream,
    request: UpstreamRequest,
    streaming: bool,
    commit: Commit | None,
    release: Release | None,
    result: _Result,
) -> AsyncGenerator[list[str], None]:
    try:
        yield []  # the step Answer.start runs, never seen by consumers
        if streaming:
            parts: list[str] = []
            batches = upstream.piece_batches(request)
            try:
                async for batch in batches:
                    parts.extend(batch)
                    yield batch
            finally:
                # Stopped early (client gone): end the upstream request now, not when collected.
                await _close(batches)
            text = trim_answer("".join(parts))
        elif result.keep_response:
            result.response = await upstream.call(request)
            text = trim_answer(response_text(request.endpoint, result.response))
            if text:
                yield [text]
        else:
            text = trim_answer(await upstream.text(request))
            if text:
                yield [text]
        if commit is not None:
            await commit(text)
        result.text = text
    finally:
        if release is not None:
            await release()


async def _close(iterator: AsyncIterator[list[str]]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class Answer:
    __slots__ = (
        "_gen",
        "_message_id",
        "_pending",
        "_request",
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
    ) -> None:
        self.conversation_id = conversation_id
        """``None`` for one-off answers (quickAnswer, summary, stateless dialects)."""
        self._message_id = message_id
        self.parent_id = parent_id
        """The id of the question's message: node-chatgpt-api's ``parentMessageId`` of the reply."""
        self.streaming = streaming
        """Pieces come as the model writes them (otherwise: one piece, the whole trimmed answer)."""
        self._request = request
        self._result = _Result(keep_response and not streaming)
        self._pending: deque[str] = deque()
        """Pieces of the latest batch not yet handed out one by one (``__anext__``)."""
        # The generator gets no reference to ``self``: without a cycle, an answer dropped
        # half-read is finalized (and its lock released) at once, not at the next gc run.
        self._gen = _run(upstream, request, streaming, commit, release, self._result)

    @property
    def message_id(self) -> str:
        """The id the answer's message has (or will have once committed). Given as a function,
        it is drawn the first time it is asked for: most one-off answers never show one."""
        if not isinstance(self._message_id, str):
            self._message_id = self._message_id()
        return self._message_id

    @property
    def request(self) -> UpstreamRequest:
        """What is (or was) sent upstream."""
        return self._request

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
