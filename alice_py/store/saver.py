"""The bridge between a live store and the database: the live store is a cache, not the only copy.

- At start, the saved conversations that have not expired are put back in the live
  store with their saved wall-clock expiry (up to ``max_live``, most recent first;
  the others are loaded on their next use).
- While running, every ``[conversations] write_behind`` seconds each conversation
  changed or used since the previous round is saved *on its own*: one the database
  refuses (too big, a constraint, a full disk) is logged and retried next round while
  the others are written. Finished and expired ones are deleted from the database.
- A conversation pushed out of the live store by ``max_live`` is saved as it leaves
  (it travels in ``StoreChanges.evicted``), and comes back whole on its next use
  (``load_one``, called by ``store.durable`` on a miss): eviction loses nothing.
- At shutdown (after the answers in progress finished or were cancelled, see
  ``server``), every live conversation is saved.

An ended conversation never comes back: the ids finished or expired but not yet deleted
from the database are refused by ``load_one``, and the database is only asked for rows
whose ``expires_at`` (the same wall-clock instant the live store keeps) is still ahead.

Nothing here knows which live store it serves: only the ``ConversationStore`` protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from alice_py.db.conversations import ConversationRepository, SavedConversation
from alice_py.db.engine import DB_ERRORS, describe_error
from alice_py.db.models import CONVERSATION_ID_LENGTH
from alice_py.engine.tree import Conversation
from alice_py.errors import StorageUnavailable
from alice_py.store.base import ConversationStore, LiveEntry, StoreChanges

log = logging.getLogger(__name__)

Clock = Callable[[], float]
SHOWN_IDS = 5
"""How many ids of failing conversations a log line names."""


def _storable(conv_id: str) -> bool:
    """Whether the database could hold this id: anything else a client sends is simply unknown."""
    if not 0 < len(conv_id) <= CONVERSATION_ID_LENGTH:
        return False
    try:
        conv_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in conv_id


def _always() -> bool:
    return True


def snapshot(entry: LiveEntry) -> SavedConversation:
    conv = entry.conv
    return SavedConversation(
        id=conv.id, kind=conv.kind.value, data=conv.to_json(),
        last_active=conv.last_active, expires_at=entry.expires_at,
    )  # fmt: skip


def _entry(item: SavedConversation) -> LiveEntry | None:
    try:
        return LiveEntry(Conversation.from_json(item.data), item.expires_at)
    except ValueError as exc:
        log.warning("saved conversation %s is unreadable, left in the database: %s", item.id, exc)
        return None


class ConversationSaver:
    """Moves conversations between a live store and the database (see the module's doc).

    ``writable`` says whether this process may write now (the memory store's writer
    lock, ``db.writer_lock``): while it may not, everything stays pending.
    """

    def __init__(
        self,
        store: ConversationStore,
        repo: ConversationRepository,
        *,
        max_live: int,
        clock: Clock = time.time,
        writable: Callable[[], bool] = _always,
    ) -> None:
        self._store = store
        self._repo = repo
        self._max_live = max_live
        self._clock = clock
        self.writable = writable
        # What the database still has to learn: kept until a write succeeds.
        self._dirty: set[str] = set()
        self._outgoing: dict[str, LiveEntry] = {}
        self._ended: set[str] = set()
        self._failing: dict[str, str] = {}
        """Conversations whose last save failed, with the reason."""

    @property
    def store(self) -> ConversationStore:
        """The live store it saves."""
        return self._store

    @property
    def pending(self) -> tuple[frozenset[str], frozenset[str]]:
        """``(to save, to delete)``: ids not yet written to the database."""
        return frozenset(self._dirty | set(self._outgoing)), frozenset(self._ended)

    @property
    def failing(self) -> frozenset[str]:
        return frozenset(self._failing)

    # --- loading ---------------------------------------------------------------------------

    async def load(self) -> int:
        """Put the saved, unexpired conversations back in the store; returns how many."""
        now = self._clock()
        try:
            await self._repo.purge_expired(now)
            saved = await self._repo.load_live(now)
        except DB_ERRORS as exc:
            log.error(
                "could not load the saved conversations, starting without them: %s", describe_error(exc)
            )
            return 0
        kept = saved[: self._max_live]  # most recent first
        restored = 0
        for item in reversed(kept):  # oldest first, so the store's LRU order matches
            entry = _entry(item)
            if entry is not None and await self._store.restore(entry):
                restored += 1
        await self._absorb()
        if len(saved) > len(kept):
            log.info(
                "%d saved conversation(s) left in the database (more than max_live): loaded when next used",
                len(saved) - len(kept),
            )
        log.info("resumed %d saved conversation(s)", restored)
        return restored

    async def load_one(self, conv_id: str) -> LiveEntry | None:
        """A conversation the live store lacks, as last saved; None if it ended or is unknown.

        Raises ``StorageUnavailable`` when the database does not answer: a 404 would tell
        the user the conversation is gone.
        """
        await self._absorb()
        if conv_id in self._ended or not _storable(conv_id):
            return None
        leaving = self._outgoing.get(conv_id)
        if leaving is not None:
            return leaving if leaving.expires_at > self._clock() else None
        try:
            item = await self._repo.load_one(conv_id, self._clock())
        except DB_ERRORS as exc:
            log.warning("could not load conversation %s from the database: %s", conv_id, describe_error(exc))
            raise StorageUnavailable("The database is not answering, please try again later") from None
        return None if item is None else _entry(item)

    # --- saving ----------------------------------------------------------------------------

    async def forget(self, conv_id: str) -> None:
        """A conversation was finished: delete its saved copy now rather than next round, so that
        not even a crash right after brings it back. A failure leaves it for the next round."""
        await self._absorb()
        if conv_id not in self._ended or not self.writable():
            return
        try:
            await self._repo.delete_many([conv_id])
        except DB_ERRORS:
            return  # logged by the round that retries it
        self._ended.discard(conv_id)

    async def _absorb(self) -> None:
        self._merge(await self._store.drain_changes())

    def _merge(self, changes: StoreChanges) -> None:
        for conv_id in changes.changed:
            self._dirty.add(conv_id)
            self._ended.discard(conv_id)
            self._outgoing.pop(conv_id, None)
        for conv_id in changes.deleted:
            self._dirty.discard(conv_id)
            self._outgoing.pop(conv_id, None)
            self._failing.pop(conv_id, None)
            self._ended.add(conv_id)
        for entry in changes.evicted:
            conv_id = entry.conv.id
            self._dirty.discard(conv_id)
            self._ended.discard(conv_id)
            self._outgoing[conv_id] = entry

    async def flush(self, *, evicted_only: bool = False) -> bool:
        """One write-behind round. ``False`` if anything is left to write (it is retried).

        ``evicted_only``: just the conversations pushed out of the live store (with
        write-behind off, they still must not be kept in memory until shutdown).
        """
        await self._absorb()
        if not self.writable():
            return False
        saved = await self._save(await self._collect(evicted_only=evicted_only))
        if evicted_only:
            return saved
        return await self._delete_ended() and saved

    async def save_all(self, *, everything: bool = True) -> bool:
        """Save every live conversation and delete the ended ones (at shutdown).

        ``everything=False`` (a shared store: Redis): only what changed since the last round.
        The rest is in the database already, and the store stays with the other instances:
        each one stopping must not write the whole service's conversations again.
        """
        try:
            live = await self._store.all() if everything else []
            await self._absorb()
        except StorageUnavailable as exc:  # a shared store that is down keeps what it holds
            log.error("could not read the live conversations to save them at shutdown: %s", exc)
            return False
        self._dirty.update(conv.id for conv in live)
        changed = len(self._dirty) + len(self._outgoing)
        if not self.writable():
            log.error("could not save the live conversations at shutdown: the writer lock is lost")
            return False
        try:
            ok = await self.flush()
        except StorageUnavailable as exc:
            log.error("could not save the live conversations at shutdown: %s", exc)
            return False
        if not ok:
            log.error(
                "could not save %d conversation(s) at shutdown; the database keeps them as of their "
                "last successful save",
                len(self._dirty) + len(self._outgoing),
            )
        elif everything:
            log.info("saved %d live conversation(s)", len(live))
        else:
            log.info("saved %d conversation(s) changed since the last round", changed)
        return ok

    async def _collect(self, *, evicted_only: bool = False) -> list[tuple[LiveEntry, SavedConversation]]:
        """Snapshots of what is to be saved. Dirty ids are taken out now: a change made while
        the write runs marks them dirty again, and a failed write puts them back (``_failed``)."""
        items: list[tuple[LiveEntry, SavedConversation]] = []
        for conv_id in [] if evicted_only else list(self._dirty):
            self._dirty.discard(conv_id)
            entry = await self._store.entry(conv_id)
            if entry is not None:  # else it ended since: the next drain reports it
                items.append((entry, snapshot(entry)))
        now = self._clock()
        for conv_id, entry in list(self._outgoing.items()):
            if entry.expires_at > now:
                items.append((entry, snapshot(entry)))
            else:  # expired while waiting to be written: it ends like any other
                del self._outgoing[conv_id]
                self._ended.add(conv_id)
        return items

    def _written(self, entry: LiveEntry) -> None:
        conv_id = entry.conv.id
        if self._outgoing.get(conv_id) is entry:
            del self._outgoing[conv_id]
        if self._failing.pop(conv_id, None) is not None:
            log.info("conversation %s saved after earlier failures", conv_id)

    def _failed(self, entry: LiveEntry) -> None:
        conv_id = entry.conv.id
        if conv_id not in self._ended and conv_id not in self._outgoing:
            self._dirty.add(conv_id)

    async def _save(self, items: list[tuple[LiveEntry, SavedConversation]]) -> bool:
        """Save in one transaction what has not failed before; one by one when that fails."""
        fresh = [pair for pair in items if pair[0].conv.id not in self._failing]
        retried = [pair for pair in items if pair[0].conv.id in self._failing]
        if fresh:
            try:
                await self._repo.save_many(item for _, item in fresh)
            except DB_ERRORS:
                retried.extend(fresh)  # find which one the database refuses
            else:
                for entry, _ in fresh:
                    self._written(entry)
        newly: list[str] = []
        for entry, item in retried:
            reason = await self._save_one(entry, item)
            if reason is not None and self._failing.get(item.id) != reason:
                newly.append(item.id)
                self._failing[item.id] = reason
        if newly:
            shown = ", ".join(newly[:SHOWN_IDS]) + (" …" if len(newly) > SHOWN_IDS else "")
            log.warning(
                "could not save %d conversation(s) (%s), will retry; the others are saved: %s",
                len(newly),
                shown,
                self._failing[newly[0]],
            )
        return not self._failing

    async def _save_one(self, entry: LiveEntry, item: SavedConversation) -> str | None:
        try:
            await self._repo.save_many([item])
        except DB_ERRORS as exc:
            self._failed(entry)
            return describe_error(exc)
        self._written(entry)
        return None

    async def _delete_ended(self) -> bool:
        if not self._ended:
            return True
        ended = set(self._ended)
        try:
            await self._repo.delete_many(ended)
        except DB_ERRORS as exc:
            log.warning(
                "could not delete %d ended conversation(s), will retry: %s", len(ended), describe_error(exc)
            )
            return False
        self._ended -= ended
        return True


EVICTED_INTERVAL = 5.0
"""With write-behind off: seconds between saves of the conversations pushed out of memory."""


async def write_behind(
    saver: ConversationSaver, interval: float, *, evicted_interval: float = EVICTED_INTERVAL
) -> None:
    """Flush every ``interval`` seconds until cancelled; with ``interval`` 0 (write-behind off),
    save only what was pushed out of the live store, every ``evicted_interval`` seconds."""
    while True:
        await asyncio.sleep(interval if interval > 0 else evicted_interval)
        try:
            await saver.flush(evicted_only=interval <= 0)
        except StorageUnavailable as exc:
            log.warning("write-behind round skipped: %s", exc.message)  # a shared store is down
        except Exception:
            # A bug in one round must not end write-behind for the rest of the run.
            log.exception("write-behind round failed")
