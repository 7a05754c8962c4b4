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

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from types import TracebackType

from alice_py.upstream.types import Upstream, UpstreamRequest

Commit = Callable[[str], Awaitable[None]]
Release = Callable[[], Awaitable[None]]


def trim_answer(text: str) -> str:
    """Leading and trailing newlines removed (spaces kept), as the original did."""
    return text.strip("\n")


class _Result:
    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text: str | None = None


async def _run(
    upstream: Upstream,
    request: UpstreamRequest,
    streaming: bool,
    commit: Commit | None,
    release: Release | None,
    result: _Result,
) -> AsyncGenerator[str, None]:
    try:
        yield ""  # the step Answer.start runs, never seen by consumers
        if streaming:
            parts: list[str] = []
            pieces = upstream.pieces(request)
            try:
                async for piece in pieces:
                    parts.append(piece)
                    yield piece
            finally:
                # Stopped early (client gone): end the upstream request now, not when collected.
                await _close(pieces)
            text = trim_answer("".join(parts))
        else:
            text = trim_answer(await upstream.text(request))
            if text:
                yield text
        if commit is not None:
            await commit(text)
        result.text = text
    finally:
        if release is not None:
            await release()


async def _close(iterator: AsyncIterator[str]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class Answer:
    __slots__ = (
        "_gen",
        "_request",
        "_result",
        "conversation_id",
        "message_id",
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
        message_id: str,
        parent_id: str | None,
        commit: Commit | None = None,
        release: Release | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        """``None`` for one-off answers (quickAnswer, summary, stateless dialects)."""
        self.message_id = message_id
        """The id the answer's message has (or will have once committed)."""
        self.parent_id = parent_id
        """The id of the question's message: node-chatgpt-api's ``parentMessageId`` of the reply."""
        self.streaming = streaming
        """Pieces come as the model writes them (otherwise: one piece, the whole trimmed answer)."""
        self._request = request
        self._result = _Result()
        # The generator gets no reference to ``self``: without a cycle, an answer dropped
        # half-read is finalized (and its lock released) at once, not at the next gc run.
        self._gen = _run(upstream, request, streaming, commit, release, self._result)

    @property
    def request(self) -> UpstreamRequest:
        """What is (or was) sent upstream."""
        return self._request

    @property
    def text(self) -> str | None:
        """The whole answer, newline-trimmed, once it is complete (``None`` before)."""
        return self._result.text

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
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop here: nothing is committed unless the answer had already completed."""
        await self._gen.aclose()

    async def collect(self) -> str:
        """Read the answer to its end (committing the turn) and return it, newline-trimmed."""
        async for _ in self:
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
