"""A live store with the database behind it: a miss is looked up in what was saved.

The engine talks to this wrapper, whatever the live store: a conversation that the
live store lacks (pushed out by ``max_live``, or left in the database at start) is
loaded through the saver, put back in the live store with its saved expiry, and the
operation goes on as if it had never left. Hits cost one delegation.
"""

from __future__ import annotations

from alice_py.engine.tree import Conversation
from alice_py.store.base import Acquired, ConversationStore, LiveEntry, StoreChanges
from alice_py.store.saver import ConversationSaver


class DurableStore:
    """``ConversationStore`` over ``live``, loading misses through ``saver``."""

    def __init__(self, live: ConversationStore, saver: ConversationSaver) -> None:
        self.live = live
        self.saver = saver

    async def _load(self, conv_id: str) -> bool:
        """Put the saved copy back; whether the id is live now."""
        entry = await self.saver.load_one(conv_id)
        if entry is None:
            return False
        await self.live.restore(entry)  # False when it became live meanwhile: fine too
        return await self.live.exists(conv_id)

    async def get(self, conv_id: str) -> Conversation | None:
        conv = await self.live.get(conv_id)
        if conv is None and await self._load(conv_id):
            conv = await self.live.get(conv_id)
        return conv

    async def entry(self, conv_id: str) -> LiveEntry | None:
        return await self.live.entry(conv_id)

    async def add(self, conv: Conversation) -> bool:
        # A new id the database also has can only be a client-chosen one, and those
        # dialects look the id up (``get``) first, which loads it.
        return await self.live.add(conv)

    async def put(self, conv: Conversation) -> None:
        await self.live.put(conv)

    async def replace(self, conv: Conversation, *, token: int | None = None, release: bool = False) -> bool:
        if await self.live.replace(conv, token=token, release=release):
            return True
        return await self._load(conv.id) and await self.live.replace(conv, token=token, release=release)

    async def restore(self, entry: LiveEntry) -> bool:
        return await self.live.restore(entry)

    async def delete(self, conv_id: str) -> bool:
        deleted = await self.live.delete(conv_id) or (
            await self._load(conv_id) and await self.live.delete(conv_id)
        )
        if deleted:
            await self.saver.forget(conv_id)
        return deleted

    async def touch(self, conv_id: str) -> None:
        await self.live.touch(conv_id)  # the engine reads (``get``, which loads) before it touches

    async def exists(self, conv_id: str) -> bool:
        return await self.live.exists(conv_id) or await self._load(conv_id)

    async def acquire(self, conv_id: str) -> Acquired:
        got = await self.live.acquire(conv_id)
        if not got.live and await self._load(conv_id):
            got = await self.live.acquire(conv_id)
        return got

    async def try_lock(self, conv_id: str) -> int | None:
        return await self.live.try_lock(conv_id)

    async def renew(self, conv_id: str, token: int) -> bool:
        return await self.live.renew(conv_id, token)

    async def unlock(self, conv_id: str, token: int | None = None) -> None:
        await self.live.unlock(conv_id, token)

    async def is_locked(self, conv_id: str) -> bool:
        return await self.live.is_locked(conv_id)

    async def all(self) -> list[Conversation]:
        return await self.live.all()

    async def drain_changes(self) -> StoreChanges:
        return await self.live.drain_changes()

    async def count(self) -> int:
        return await self.live.count()

    async def close(self) -> None:
        await self.live.close()
