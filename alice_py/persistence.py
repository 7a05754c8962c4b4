"""Live conversations kept across restarts: loaded at start, written behind, saved at shutdown.

- At start, the saved conversations that have not expired are put back in the store
  with the time to live they had left: one idle for 10 minutes when the service
  stopped has ``ttl - 10 min`` left, counted in wall-clock time across the restart.
- While running, every ``[conversations] write_behind`` seconds the conversations
  changed (or used) since the previous round are saved and the finished, expired
  or evicted ones deleted, so a crash loses at most that window. A failing write
  is logged and retried the next round with nothing forgotten.
- At shutdown (after the answers in progress finished or were cancelled, see
  ``server``), every live conversation is saved.

Times: the store counts in its own monotonic seconds, the database in seconds since
the epoch. They only meet through *idle time* (seconds since the last use), which
means the same on both clocks. The database row's ``last_active`` is the last use
(wall clock); the engine's own ``Conversation.last_active`` (last change) travels
inside ``data``.

Only the in-memory store needs this: Redis keeps conversations itself, and several
instances writing their view of a shared store back would overwrite each other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from alice_py import keys
from alice_py.db.conversations import ConversationRepository, SavedConversation
from alice_py.db.engine import describe_error
from alice_py.engine.tree import Conversation
from alice_py.store.base import StoreChanges
from alice_py.store.memory import MemoryStore

log = logging.getLogger(__name__)

Clock = Callable[[], float]
DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


def lifetime(conv: Conversation, ttl: float) -> float:
    """How long ``conv`` lives unused (the engine's rule: ttl, or ttl/2 with at most 2 sentences)."""
    return conv.expires_at(ttl) - conv.last_active


class _PinnableClock:
    """The store's timer, which can be set back to an earlier instant for one synchronous step."""

    def __init__(self, base: Clock) -> None:
        self._base = base
        self._pinned: float | None = None

    def __call__(self) -> float:
        return self._base() if self._pinned is None else self._pinned

    @contextmanager
    def pinned(self, instant: float) -> Iterator[None]:
        self._pinned = instant
        try:
            yield
        finally:
            self._pinned = None


class PersistentMemoryStore(MemoryStore):
    """The memory store plus the two things saving needs that ``ConversationStore`` lacks:
    how long each conversation has been idle (``idle_for``) and putting one back as
    idle as it was (``restore``). Uses (``touch``) also count as changes, so that the
    saved expiry follows a conversation that is read but not changed.

    Until the store protocol offers these, this adapter tracks the last use itself and
    restores by pinning the store's timer (its only public lever on the time to live).
    """

    def __init__(self, ttl: float, max_live: int, *, timer: Clock = time.monotonic) -> None:
        self._clock = _PinnableClock(timer)
        super().__init__(ttl, max_live, timer=self._clock)
        self.ttl = ttl
        self.max_live = max_live
        self._used: dict[str, float] = {}
        self._touched: set[str] = set()

    def _use(self, conv_id: str) -> None:
        self._used[conv_id] = self._clock()

    async def add(self, conv: Conversation) -> bool:
        added = await super().add(conv)
        if added:
            self._use(conv.id)
        return added

    async def put(self, conv: Conversation) -> None:
        await super().put(conv)
        self._use(conv.id)

    async def replace(self, conv: Conversation) -> bool:
        replaced = await super().replace(conv)
        if replaced:
            self._use(conv.id)
        return replaced

    async def touch(self, conv_id: str) -> None:
        await super().touch(conv_id)
        if await self.exists(conv_id):
            self._use(conv_id)
            self._touched.add(conv_id)

    async def delete(self, conv_id: str) -> bool:
        self._used.pop(conv_id, None)
        return await super().delete(conv_id)

    async def restore(self, conv: Conversation, idle: float) -> None:
        """Put ``conv`` as if last used ``idle`` seconds ago (it expires that much sooner)."""
        last_use = self._clock() - max(idle, 0.0)
        with self._clock.pinned(last_use):
            await super().put(conv)
        self._used[conv.id] = last_use

    def idle_for(self, conv_id: str) -> float:
        """Seconds since the conversation's last use (0 if unknown)."""
        used = self._used.get(conv_id)
        return 0.0 if used is None else max(self._clock() - used, 0.0)

    async def drain_changes(self) -> StoreChanges:
        changes = await super().drain_changes()
        for conv_id in changes.deleted:
            self._used.pop(conv_id, None)
        touched = self._touched - changes.deleted
        self._touched.clear()
        return StoreChanges(changes.changed | touched, changes.deleted)

    async def close(self) -> None:
        await super().close()
        self._used.clear()
        self._touched.clear()


class ConversationSaver:
    """Moves conversations between the store and the database (see the module's doc)."""

    def __init__(
        self, store: PersistentMemoryStore, repo: ConversationRepository, *, clock: Clock = time.time
    ) -> None:
        self._store = store
        self._repo = repo
        self._clock = clock
        # What the database still has to learn: kept until a write succeeds.
        self._changed: set[str] = set()
        self._deleted: set[str] = set()

    @property
    def pending(self) -> tuple[frozenset[str], frozenset[str]]:
        """``(changed, deleted)`` ids not yet written to the database."""
        return frozenset(self._changed), frozenset(self._deleted)

    def _snapshot(self, conv: Conversation, now: float) -> SavedConversation:
        last_use = now - self._store.idle_for(conv.id)
        return SavedConversation(
            id=conv.id,
            kind=conv.kind.value,
            data=conv.to_json(),
            last_active=last_use,
            expires_at=last_use + lifetime(conv, self._store.ttl),
        )

    async def load(self) -> int:
        """Put the saved, unexpired conversations back in the store; returns how many."""
        now = self._clock()
        try:
            await self._repo.purge_expired(now)
            saved = await self._repo.load_live(now)
        except DB_ERRORS as exc:
            reason = describe_error(exc)
            log.error("could not load the saved conversations, starting without them: %s", reason)
            return 0
        # Most recent first; beyond max_live the least recent stay in the database until they expire.
        kept = saved[: self._store.max_live]
        restored = 0
        for item in reversed(kept):  # oldest first, so the store's LRU order matches
            restored += await self._restore(item, now)
        # Restoring counts as a change in the store; the database has them already.
        await self._store.drain_changes()
        skipped = len(saved) - len(kept)
        if skipped:
            log.warning("%d saved conversation(s) not loaded: more than max_live", skipped)
        log.info("resumed %d saved conversation(s)", restored)
        return restored

    async def _restore(self, item: SavedConversation, now: float) -> int:
        try:
            conv = Conversation.from_json(item.data)
        except ValueError as exc:
            log.warning("saved conversation %s is unreadable, left in the database: %s", item.id, exc)
            return 0
        idle = max(now - item.last_active, 0.0)
        if idle >= lifetime(conv, self._store.ttl):
            return 0  # expired under the current ttl
        await self._store.restore(conv, idle)
        return 1

    def _merge(self, changes: StoreChanges) -> None:
        self._changed = (self._changed - changes.deleted) | changes.changed
        self._deleted = (self._deleted - changes.changed) | changes.deleted

    async def flush(self) -> bool:
        """One write-behind round: save what changed, delete what ended. ``False`` if the write failed."""
        self._merge(await self._store.drain_changes())
        if not self._changed and not self._deleted:
            return True
        now = self._clock()
        items: list[SavedConversation] = []
        for conv_id in list(self._changed):
            conv = await self._store.get(conv_id)
            if conv is None:  # expired since the store reported it
                self._changed.discard(conv_id)
                self._deleted.add(conv_id)
            else:
                items.append(self._snapshot(conv, now))
        failure = await self._write(items, set(self._deleted))
        if failure is not None:
            log.warning(
                "could not save %d changed and delete %d ended conversation(s), will retry: %s",
                len(self._changed),
                len(self._deleted),
                failure,
            )
        return failure is None

    async def save_all(self) -> bool:
        """Save every live conversation and delete the ended ones (at shutdown)."""
        live = await self._store.all()
        self._merge(await self._store.drain_changes())
        now = self._clock()
        items = [self._snapshot(conv, now) for conv in live]
        self._changed |= {item.id for item in items}
        self._deleted -= self._changed
        failure = await self._write(items, set(self._deleted))
        if failure is None:
            log.info("saved %d live conversation(s)", len(items))
        else:
            log.error(
                "could not save the %d live conversation(s) at shutdown; the database keeps them "
                "as of the last write-behind round: %s",
                len(items),
                failure,
            )
        return failure is None

    async def _write(self, items: list[SavedConversation], deleted: set[str]) -> str | None:
        """Save ``items``, delete ``deleted``; None, or why the database refused."""
        try:
            await self._repo.save_many(items)
            self._changed -= {item.id for item in items}
            await self._repo.delete_many(deleted)
            self._deleted -= deleted
        except DB_ERRORS as exc:
            return describe_error(exc)
        return None


async def write_behind(saver: ConversationSaver, interval: float) -> None:
    """Flush every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            await saver.flush()
        except Exception:
            # A bug in one round must not end write-behind for the rest of the run.
            log.exception("write-behind round failed")


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended (without swallowing our own cancellation)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


async def persistence_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load at start, write behind while running, save everything at cleanup.

    Registered after the engine, so its cleanup runs first: the store is still open,
    and aiohttp (or ``server.run``) has already let the answers in progress end.
    """
    store = app[keys.STORE]
    if not isinstance(store, PersistentMemoryStore):
        yield  # a shared store (Redis) keeps conversations itself
        return
    saver = ConversationSaver(store, ConversationRepository(app[keys.DB_ENGINE]))
    app[keys.SAVER] = saver
    await saver.load()
    interval = app[keys.CONFIG].conversations.write_behind
    task = asyncio.create_task(write_behind(saver, interval), name="write-behind") if interval > 0 else None
    try:
        yield
    finally:
        if task is not None:
            await stop_task(task)
        await saver.save_all()
