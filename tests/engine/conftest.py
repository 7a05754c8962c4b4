"""Engine fixtures: a recording fake upstream, an injected clock, a memory store, the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import pytest

from alice_py.config import ModelsConfig
from alice_py.engine.service import ConversationService
from alice_py.store.memory import MemoryStore
from alice_py.upstream.types import UpstreamRequest
from tests.support import Clock

MODELS = ModelsConfig(gpt3="test-instruct", turbo="test-turbo", gpt4="test-gpt4")
TTL = 100.0


@dataclass
class Reply:
    """One scripted upstream answer."""

    pieces: list[str]
    error: Exception | None = None
    fail_after: int = 0
    """With ``error``: how many pieces are sent before it is raised."""
    gate: asyncio.Event | None = None
    """If set, the answer waits for it: streams after their first piece, plain answers before returning."""


@dataclass
class FakeUpstream:
    """Implements the ``Upstream`` protocol; records what reached it and scripts what comes back."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[tuple[str, UpstreamRequest]] = field(default_factory=list)
    open_streams: int = 0
    counter: int = 0

    def say(self, *pieces: str) -> None:
        self.replies.append(Reply(list(pieces)))

    def fail(self, error: Exception, *, after: list[str] | None = None) -> None:
        self.replies.append(Reply(after or [], error=error, fail_after=len(after or [])))

    def hold(self, *pieces: str) -> asyncio.Event:
        gate = asyncio.Event()
        self.replies.append(Reply(list(pieces), gate=gate))
        return gate

    def _next(self) -> Reply:
        self.counter += 1
        return self.replies.pop(0) if self.replies else Reply([f"answer {self.counter}"])

    @property
    def bodies(self) -> list[Any]:
        return [request.body for _, request in self.requests]

    async def call(self, request: UpstreamRequest) -> dict[str, Any]:
        self.requests.append(("call", request))
        reply = self._next()
        if reply.gate is not None:
            await reply.gate.wait()
        if reply.error is not None:
            raise reply.error
        text = "".join(reply.pieces)
        if request.endpoint == "chat":
            return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        return {"choices": [{"index": 0, "text": text}]}

    async def stream(self, request: UpstreamRequest) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Each piece a chunk and a batch of its own, as if every one came in its own network read."""
        self.requests.append(("stream", request))
        reply = self._next()
        self.open_streams += 1
        try:
            for index, piece in enumerate(reply.pieces):
                if reply.error is not None and index == reply.fail_after:
                    raise reply.error
                yield [_chunk(request, piece)]
                if reply.gate is not None and index == 0:
                    await reply.gate.wait()
            if reply.error is not None:
                raise reply.error
        finally:
            self.open_streams -= 1


def _chunk(request: UpstreamRequest, piece: str) -> dict[str, Any]:
    if request.endpoint == "chat":
        return {"choices": [{"index": 0, "delta": {"content": piece}}]}
    return {"choices": [{"index": 0, "text": piece}]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(TTL, 1000, timer=clock)


@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def service(store: MemoryStore, upstream: FakeUpstream, clock: Clock) -> ConversationService:
    return ConversationService(store, upstream, MODELS, clock=clock)
