"""Retry-safe turns: a request repeated with the same ``Idempotency-Key`` is answered from memory.

A client that lost the connection during ``chat`` cannot tell whether the turn was
kept; it sends the request again with the same key. The conversation remembers each
keyed turn (``Conversation.turns_by_key``, saved with it), so the repeat gets the same
answer without a second model call. Keys belong to one conversation. A key only
counts for the request it came with: its fingerprint (route, message, body) must match,
or the repeat is refused (422) rather than silently answered with another turn's text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

from alice_py.engine.answer import Answer
from alice_py.engine.tree import Conversation
from alice_py.errors import AliceError, BadRequest
from alice_py.upstream.types import UpstreamRequest

MAX_KEY_LENGTH = 255
_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")
BAD_KEY = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
REPLAY_REQUEST = UpstreamRequest(endpoint="chat", body={})
"""What a replayed answer reports as its request: nothing was sent anywhere."""

Keyed = tuple[str, str]
"""``(key, fingerprint)`` of a keyed request."""


class KeyReused(AliceError):
    """The key was already used on this conversation for a different request."""

    status = 422

    def __init__(self) -> None:
        super().__init__("Idempotency-Key was already used with a different request on this conversation")


def keyed(key: str | None, route: str, *parts: str) -> Keyed | None:
    """``(key, fingerprint)`` for a request that came with ``key``; None without one."""
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise BadRequest(BAD_KEY)
    data = "\0".join((route, *parts)).encode("utf-8", "surrogatepass")
    return key, hashlib.sha256(data).hexdigest()[:32]


async def replay(conv: Conversation, request: Keyed) -> Answer | None:
    """The answer to a repeat of a keyed turn ``conv`` already kept, or None if it has none.

    It streams (as one piece) or not like the conversation, commits nothing and holds no lock.
    """
    key, fingerprint = request
    turn = (conv.turns_by_key or {}).get(key)
    if turn is None:
        return None
    if turn.fingerprint != fingerprint:
        raise KeyReused()
    return await Answer(
        _Recorded(turn.text),
        REPLAY_REQUEST,
        streaming=conv.stream,
        conversation_id=conv.id,
        message_id=turn.answer_id,
        parent_id=turn.parent_id,
    ).start()


class _Recorded:
    """An ``Upstream`` that answers every request with one recorded text, as a chat answer
    (``REPLAY_REQUEST`` is a chat request)."""

    def __init__(self, text: str) -> None:
        self._text = text

    async def call(self, request: UpstreamRequest) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": self._text}}]}

    async def stream(self, request: UpstreamRequest) -> AsyncIterator[list[dict[str, Any]]]:
        if self._text:
            yield [{"choices": [{"index": 0, "delta": {"content": self._text}}]}]
