"""What the engine and the dialects hand to the upstream layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Endpoint = Literal["chat", "completion"]
"""``chat`` is ``POST {base_url}/chat/completions``; ``completion`` is ``POST {base_url}/completions``."""


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    endpoint: Endpoint
    body: Mapping[str, Any]
    """The OpenAI request body, ``model`` included. ``stream`` is set by the call made
    (``call`` or ``stream``), not taken from here."""
    affinity: str | None = None
    """What the request belongs to (a conversation id): the router keeps sending such
    requests with the same key while it is usable (the upstream's prompt cache)."""


class Upstream(Protocol):
    """What the engine needs from the upstream layer (the router implements it): two doors.
    The text of an answer is read from them by ``upstream.text``."""

    async def call(self, request: UpstreamRequest) -> dict[str, Any]:
        """One non-streaming request; the upstream's JSON response."""
        ...

    def stream(self, request: UpstreamRequest) -> AsyncIterator[list[dict[str, Any]]]:
        """One streaming request; its SSE ``data:`` JSON objects until ``[DONE]``, in batches of
        those that arrived together (never an empty batch)."""
        ...
