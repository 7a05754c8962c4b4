"""The text of an answer, read from what an ``Upstream``'s two doors give: ``answer_text`` from
``call``'s JSON, ``piece_batches`` from ``stream``'s chunks (what the engine keeps of a turn)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from alice_py.upstream.client import chunk_text, response_text
from alice_py.upstream.types import Upstream, UpstreamRequest


async def answer_text(upstream: Upstream, request: UpstreamRequest) -> str:
    """One non-streaming request; the text of its first choice."""
    return response_text(request.endpoint, await upstream.call(request))


async def piece_batches(upstream: Upstream, request: UpstreamRequest) -> AsyncGenerator[list[str], None]:
    """One streaming request; the non-empty text deltas of its first choice, in the batches they
    arrived in (never an empty batch). Closing this closes the upstream stream at once."""
    endpoint = request.endpoint
    batches = upstream.stream(request)
    try:
        async for batch in batches:
            texts = [text for chunk in batch if (text := chunk_text(endpoint, chunk))]
            if texts:
                yield texts
    finally:
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()
