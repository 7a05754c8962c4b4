"""The embedded store: conversations in this process's memory (cachetools ``TLRUCache``).

Each conversation expires at one wall-clock instant (``LiveEntry.expires_at``): ``ttl``
after its last use, or ``ttl/2`` while it has at most 2 sentences (Alice's rule for
abandoned conversations). The database keeps the same instant beside the saved copy,
so a restart or a load after eviction resumes the same countdown. Past ``max_live``
conversations the least recently used one is evicted and logged (id only:
conversations are user data); the saver writes it as it leaves (``drain_changes``).

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
from alice_py.store.base import Acquired, LiveEntry, StoreChanges

log = logging.getLogger(__name__)


def _expires_at(_key: str, entry: LiveEntry, _now: float) -> float:
    return entry.expires_at


class _Cache(TLRUCache[str, LiveEntry]):
    """Reports what expiry and eviction removed, so write-behind can follow."""

    def __init__(
        self,
        maxsize: int,
        timer: Callable[[], float],
        on_expired: Callable[[str], None],
        on_evicted: Callable[[LiveEntry], None],
    ) -> None:
        super().__init__(maxsize, _expires_at, timer)
        self._on_expired = on_expired
        self._on_evicted = on_evicted

    def expire(self, time: Any = None) -> list[tuple[str, LiveEntry]]:
        expired: list[tuple[str, LiveEntry]] = list(super().expire(time))
        for key, _ in expired:
            self._on_expired(key)
        return expired

    def popitem(self) -> tuple[str, LiveEntry]:
        key, value = super().popitem()
        log.info("conversation %s moved out of memory: more than %d live conversations", key, self.maxsize)
        self._on_evicted(value)
        return key, value


class MemoryStore:
    """``ConversationStore`` in memory. ``timer`` (the wall clock) is injectable so tests never sleep."""

    def __init__(self, ttl: float, max_live: int, *, timer: Callable[[], float] = time.time) -> None:
        if ttl <= 0 or max_live <= 0:
            raise ValueError("ttl and max_live must be more than 0")
        self.ttl = ttl
        self.max_live = max_live
        self._timer = timer
        self._cache = _Cache(max_live, timer, self._ended, self._evicted_one)
        self._locks: dict[str, int] = {}
        self._tokens = 0
        self._changed: set[str] = set()
        self._deleted: set[str] = set()
        self._evicted: dict[str, LiveEntry] = {}

    def _lifetime(self, conv: Conversation) -> float:
        return self.ttl if conv.sentence_count() > 2 else self.ttl / 2

    def _ended(self, conv_id: str) -> None:
        self._changed.discard(conv_id)
        self._evicted.pop(conv_id, None)
        self._deleted.add(conv_id)

    def _evicted_one(self, entry: LiveEntry) -> None:
        conv_id = entry.conv.id
        self._changed.discard(conv_id)
        self._evicted[conv_id] = entry

    def _set(self, entry: LiveEntry, *, changed: bool = True) -> None:
        conv_id = entry.conv.id
        self._cache[conv_id] = entry
        self._deleted.discard(conv_id)
        self._evicted.pop(conv_id, None)
        if changed:
            self._changed.add(conv_id)

    def _store(self, conv: Conversation) -> None:
        self._set(LiveEntry(conv, self._timer() + self._lifetime(conv)))

    async def get(self, conv_id: str) -> Conversation | None:
        entry = self._cache.get(conv_id)
        return None if entry is None else entry.conv

    async def entry(self, conv_id: str) -> LiveEntry | None:
        return self._cache.get(conv_id)

    async def add(self, conv: Conversation) -> bool:
        if conv.id in self._cache:
            return False
        self._store(conv)
        return True

    async def put(self, conv: Conversation) -> None:
        self._store(conv)

    async def replace(self, conv: Conversation, *, token: int | None = None, release: bool = False) -> bool:
        if conv.id not in self._cache or (token is not None and self._locks.get(conv.id) != token):
            return False
        self._store(conv)
        if release and token is not None:
            del self._locks[conv.id]
        return True

    async def restore(self, entry: LiveEntry) -> bool:
        if entry.conv.id in self._cache or entry.expires_at <= self._timer():
            return False
        self._set(entry, changed=False)
        return True

    async def delete(self, conv_id: str) -> bool:
        if self._cache.pop(conv_id, None) is None:
            return False
        self._ended(conv_id)
        return True

    async def touch(self, conv_id: str) -> None:
        entry = self._cache.get(conv_id)
        if entry is not None:
            self._store(entry.conv)  # a use: the countdown starts again, and the saved copy follows

    async def exists(self, conv_id: str) -> bool:
        return conv_id in self._cache

    async def acquire(self, conv_id: str) -> Acquired:
        entry = self._cache.get(conv_id)
        if entry is None:
            return Acquired(None, None, False)
        if conv_id in self._locks:
            return Acquired(None, None, True)
        self._tokens += 1
        token = self._locks[conv_id] = self._tokens
        self._store(entry.conv)  # a use, as ``touch``
        return Acquired(token, entry.conv, True)

    async def try_lock(self, conv_id: str) -> int | None:
        if conv_id in self._locks:
            return None
        self._tokens += 1
        token = self._locks[conv_id] = self._tokens
        return token

    async def renew(self, conv_id: str, token: int) -> bool:
        return self._locks.get(conv_id) == token  # held by this process: it never lapses

    async def unlock(self, conv_id: str, token: int | None = None) -> None:
        if token is None or self._locks.get(conv_id) == token:
            self._locks.pop(conv_id, None)

    async def is_locked(self, conv_id: str) -> bool:
        return conv_id in self._locks

    async def all(self) -> list[Conversation]:
        self._cache.expire()
        return [entry.conv for entry in self._cache.values()]

    async def drain_changes(self) -> StoreChanges:
        self._cache.expire()
        changes = StoreChanges(
            frozenset(self._changed), frozenset(self._deleted), tuple(self._evicted.values())
        )
        self._changed.clear()
        self._deleted.clear()
        self._evicted.clear()
        return changes

    async def count(self) -> int:
        return len(self._cache)

    async def close(self) -> None:
        self._cache.clear()
        self._locks.clear()
