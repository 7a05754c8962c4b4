"""The embedded store: conversations in this process's memory (cachetools ``TLRUCache``).

Each conversation's time to use is ``ttl`` from its last use, or ``ttl/2`` while it
has at most 2 sentences (Alice's rule for abandoned conversations). Past
``max_live`` conversations the least recently used one is evicted and logged (id
only: conversations are user data).

Conversations are kept as given and handed out as they are (no copying): the
engine never changes one in place, it puts a changed copy back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from cachetools import TLRUCache

from alice_py.engine.tree import Conversation
from alice_py.store.base import StoreChanges

log = logging.getLogger(__name__)


class _Cache(TLRUCache[str, Conversation]):
    """Reports what expiry and eviction removed, so write-behind can drop it too."""

    def __init__(
        self,
        maxsize: int,
        ttu: Callable[[str, Conversation, float], float],
        timer: Callable[[], float],
        on_removed: Callable[[str], None],
    ) -> None:
        super().__init__(maxsize, ttu, timer)
        self._on_removed = on_removed

    def expire(self, time: Any = None) -> list[tuple[str, Conversation]]:
        expired: list[tuple[str, Conversation]] = list(super().expire(time))
        for key, _ in expired:
            self._on_removed(key)
        return expired

    def popitem(self) -> tuple[str, Conversation]:
        key, value = super().popitem()
        log.warning("conversation %s evicted: more than %d live conversations", key, self.maxsize)
        self._on_removed(key)
        return key, value


class MemoryStore:
    """``ConversationStore`` in memory. ``timer`` is injectable so tests never sleep."""

    def __init__(self, ttl: float, max_live: int, *, timer: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0 or max_live <= 0:
            raise ValueError("ttl and max_live must be more than 0")
        self._ttl = ttl
        self._cache = _Cache(max_live, self._time_to_use, timer, self._removed)
        self._locks: set[str] = set()
        self._changed: set[str] = set()
        self._deleted: set[str] = set()

    def _time_to_use(self, _key: str, conv: Conversation, now: float) -> float:
        return now + (self._ttl if conv.sentence_count() > 2 else self._ttl / 2)

    def _removed(self, conv_id: str) -> None:
        self._changed.discard(conv_id)
        self._deleted.add(conv_id)

    def _store(self, conv: Conversation) -> None:
        self._cache[conv.id] = conv
        self._deleted.discard(conv.id)
        self._changed.add(conv.id)

    async def get(self, conv_id: str) -> Conversation | None:
        return self._cache.get(conv_id)

    async def add(self, conv: Conversation) -> bool:
        if conv.id in self._cache:
            return False
        self._store(conv)
        return True

    async def put(self, conv: Conversation) -> None:
        self._store(conv)

    async def replace(self, conv: Conversation) -> bool:
        if conv.id not in self._cache:
            return False
        self._store(conv)
        return True

    async def delete(self, conv_id: str) -> bool:
        if self._cache.pop(conv_id, None) is None:
            return False
        self._removed(conv_id)
        return True

    async def touch(self, conv_id: str) -> None:
        conv = self._cache.get(conv_id)
        if conv is not None:
            # Setting it again makes the cache compute a new time to use from now.
            self._cache[conv_id] = conv

    async def exists(self, conv_id: str) -> bool:
        return conv_id in self._cache

    async def try_lock(self, conv_id: str) -> bool:
        if conv_id in self._locks:
            return False
        self._locks.add(conv_id)
        return True

    async def unlock(self, conv_id: str) -> None:
        self._locks.discard(conv_id)

    async def is_locked(self, conv_id: str) -> bool:
        return conv_id in self._locks

    async def all(self) -> list[Conversation]:
        self._cache.expire()
        return list(self._cache.values())

    async def drain_changes(self) -> StoreChanges:
        self._cache.expire()
        changes = StoreChanges(frozenset(self._changed), frozenset(self._deleted))
        self._changed.clear()
        self._deleted.clear()
        return changes

    async def count(self) -> int:
        return len(self._cache)

    async def close(self) -> None:
        self._cache.clear()
        self._locks.clear()
