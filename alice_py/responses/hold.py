"""One response's hold on an OpenAI conversation: one response at a time per conversation.

The lock is the live store's per-conversation lock (the engine's), so it holds across every
instance on a shared store; there it is a lease, renewed while the hold lasts (a background
run can outlast many leases), and it lapses by itself when its instance dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from alice_py.errors import StorageUnavailable
from alice_py.store.base import ConversationStore

log = logging.getLogger(__name__)


class Hold:
    def __init__(
        self, store: ConversationStore, conversation_id: str, token: int, renew_every: float | None
    ) -> None:
        self._store = store
        self._id = conversation_id
        self._token = token
        self._released = False
        self._renewal = (
            None
            if renew_every is None
            else asyncio.create_task(self._renew(renew_every), name=f"lease of {conversation_id}")
        )

    @classmethod
    async def take(
        cls, store: ConversationStore, conversation_id: str, renew_every: float | None
    ) -> Hold | None:
        """The hold, or ``None`` while another response holds the conversation."""
        token = await store.try_lock(conversation_id)
        return None if token is None else cls(store, conversation_id, token, renew_every)

    async def _renew(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                held = await self._store.renew(self._id, self._token)
            except StorageUnavailable:
                continue  # the lease may still hold when the store is back
            if not held:
                log.warning("lost the lock of conversation %s while a response was being made", self._id)
                return

    async def release(self) -> None:
        """Idempotent: the turn lets go once written, its request again when it ends."""
        if self._released:
            return
        self._released = True
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        try:
            await self._store.unlock(self._id, self._token)
        except StorageUnavailable:
            log.warning("could not release the lock of conversation %s: it lapses by itself", self._id)
