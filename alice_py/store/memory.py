"""The embedded store: conversations in this process's memory.

Each conversation's time to use is ``ttl`` from its last use, or ``ttl/2`` while it
has at most 2 sentences (Alice's rule for abandoned conversations). Past
``max_live`` conversations the least recently used one (read or used) is evicted
and logged (id only: conversations are user data).

Conversations are kept as given and handed out as they are (no copying): the
engine never changes one in place, it puts a changed copy back.

How: a dict of conversations, their expiry times, and three ``OrderedDict``s used as
queues: one per lifetime (``ttl/2`` and ``ttl``), each in expiry order, since every use
moves a conversation to the end of its queue with the same lifetime as the others
there; and one in order of last access, for eviction. Every operation is O(1). (This
replaced cachetools' ``TLRUCache``, whose heap of expiry times, timer context and
per-item objects were about a tenth of the CPU of a create-and-chat load:
docs/performance.md.)
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from alice_py.engine.tree import Conversation
from alice_py.store.base import StoreChanges

log = logging.getLogger(__name__)


def has_more_than_two_sentences(conv: Conversation) -> bool:
    """The path to the leaf is longer than 2 messages (at most 3 steps, whatever its length)."""
    node, count = conv.leaf, 0
    while node is not None and count < 3:
        count += 1
        node = conv.messages[node].parent_id
    return count > 2


class MemoryStore:
    """``ConversationStore`` in memory. ``timer`` is injectable so tests never sleep."""

    def __init__(self, ttl: float, max_live: int, *, timer: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0 or max_live <= 0:
            raise ValueError("ttl and max_live must be more than 0")
        self._ttl = ttl
        self._max_live = max_live
        self._timer = timer
        self._live: dict[str, Conversation] = {}
        self._expires: dict[str, float] = {}
        self._short: OrderedDict[str, None] = OrderedDict()
        """Conversations living ``ttl/2`` from their last use, the first to expire first."""
        self._long: OrderedDict[str, None] = OrderedDict()
        """Conversations living ``ttl`` from their last use, the first to expire first."""
        self._recent: OrderedDict[str, None] = OrderedDict()
        """Every live id, the least recently read or used first (for eviction)."""
        self._locks: set[str] = set()
        self._changed: set[str] = set()
        self._deleted: set[str] = set()

    # --- bookkeeping ---------------------------------------------------------------------------

    def _forget(self, conv_id: str) -> None:
        del self._live[conv_id]
        del self._expires[conv_id]
        self._short.pop(conv_id, None)
        self._long.pop(conv_id, None)
        self._recent.pop(conv_id, None)

    def _removed(self, conv_id: str) -> None:
        self._changed.discard(conv_id)
        self._deleted.add(conv_id)

    def _expire(self, now: float) -> None:
        for queue in (self._short, self._long):
            while queue:
                conv_id = next(iter(queue))
                if self._expires[conv_id] > now:
                    break
                self._forget(conv_id)
                self._removed(conv_id)

    def _alive(self, conv_id: str, now: float) -> Conversation | None:
        """The conversation if it has not expired; an expired one is dropped on the way."""
        conv = self._live.get(conv_id)
        if conv is not None and self._expires[conv_id] <= now:
            self._forget(conv_id)
            self._removed(conv_id)
            return None
        return conv

    def _set(self, conv: Conversation) -> None:
        """Keep ``conv`` with its time to use starting now (a use)."""
        now = self._timer()
        self._expire(now)
        conv_id = conv.id
        if conv_id not in self._live:
            while len(self._live) >= self._max_live:
                self._evict()
        else:
            self._short.pop(conv_id, None)
            self._long.pop(conv_id, None)
        if has_more_than_two_sentences(conv):
            expires, queue = now + self._ttl, self._long
        else:
            expires, queue = now + self._ttl / 2, self._short
        if queue and self._expires[next(reversed(queue))] > expires:
            self._insert_in_order(queue, conv_id, expires)  # a conversation restored as long idle
        else:
            queue[conv_id] = None
        self._live[conv_id] = conv
        self._expires[conv_id] = expires
        self._recent[conv_id] = None
        self._recent.move_to_end(conv_id)

    def _insert_in_order(self, queue: OrderedDict[str, None], conv_id: str, expires: float) -> None:
        self._expires[conv_id] = expires
        ordered = sorted([*queue, conv_id], key=self._expires.__getitem__)
        queue.clear()
        queue.update(dict.fromkeys(ordered))

    def _evict(self) -> None:
        conv_id = next(iter(self._recent))
        log.warning("conversation %s evicted: more than %d live conversations", conv_id, self._max_live)
        self._forget(conv_id)
        self._removed(conv_id)

    def _store(self, conv: Conversation) -> None:
        self._set(conv)
        self._deleted.discard(conv.id)
        self._changed.add(conv.id)

    # --- ConversationStore ---------------------------------------------------------------------

    async def get(self, conv_id: str) -> Conversation | None:
        conv = self._alive(conv_id, self._timer())
        if conv is not None:
            self._recent.move_to_end(conv_id)
        return conv

    async def add(self, conv: Conversation) -> bool:
        if self._alive(conv.id, self._timer()) is not None:
            return False
        self._store(conv)
        return True

    async def put(self, conv: Conversation) -> None:
        self._store(conv)

    async def replace(self, conv: Conversation) -> bool:
        if self._alive(conv.id, self._timer()) is None:
            return False
        self._store(conv)
        return True

    async def delete(self, conv_id: str) -> bool:
        if self._alive(conv_id, self._timer()) is None:
            return False
        self._forget(conv_id)
        self._removed(conv_id)
        return True

    async def touch(self, conv_id: str) -> None:
        conv = self._alive(conv_id, self._timer())
        if conv is not None:
            self._set(conv)

    async def exists(self, conv_id: str) -> bool:
        return self._alive(conv_id, self._timer()) is not None

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
        self._expire(self._timer())
        return [self._live[conv_id] for conv_id in self._recent]

    async def drain_changes(self) -> StoreChanges:
        self._expire(self._timer())
        changes = StoreChanges(frozenset(self._changed), frozenset(self._deleted))
        self._changed.clear()
        self._deleted.clear()
        return changes

    async def count(self) -> int:
        self._expire(self._timer())
        return len(self._live)

    async def close(self) -> None:
        for table in (self._live, self._expires, self._short, self._long, self._recent):
            table.clear()
        self._locks.clear()
