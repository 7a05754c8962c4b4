"""One request's hold on a conversation, as one ``async with``: lock, work, commit, release.

``ConversationLock`` takes the conversation's lock (``ConversationBusy`` if another request
holds it) and reads the conversation under it, one store call (``acquire``: a shared store's
round trip is the cost of a turn), keeps the lock's lease renewed while the
block runs (a shared store's lock lapses by itself after ``lease`` seconds, so that a
killed instance frees its conversations), and releases it in ``__aexit__`` however the
block ends. ``commit`` carries the lock's fencing token: once the lease is lost (renewal
failed, the instance was paused past it) the store refuses the write, and the turn ends
with ``LeaseLost`` instead of overwriting whatever the new holder did. A commit is the
block's last act under the lock, so it releases the lock in the same store call.

``Turn`` is that lock for a question and its answer: entering it also builds the model
request under the lock (``Plan``); the answer (``engine.answer``) runs its whole life inside
``async with turn`` and commits the turn only when it completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from alice_py.engine.answer import Answer
from alice_py.engine.tree import Conversation, KeyedTurn, Message
from alice_py.errors import ConversationBusy, ConversationNotFound, StorageUnavailable
from alice_py.store.base import ConversationStore
from alice_py.upstream.types import UpstreamRequest

if TYPE_CHECKING:
    from alice_py.engine.context import TurnContext

log = logging.getLogger(__name__)

class LeaseLost(StorageUnavailable):
    """The conversation's lock lapsed before the turn was committed: nothing was kept."""

    def __init__(self) -> None:
        super().__init__("The answer was not kept: the conversation's lock lapsed meanwhile; ask again")


class ConversationLock:
    """``async with lock as conv``: the conversation under its lock (see the module's doc).

    ``renew_every`` (seconds): how often the lease is renewed while held; ``None`` for a store
    whose lock never lapses (the memory store: held by this process).
    """

    def __init__(
        self,
        store: ConversationStore,
        conv_id: str,
        *,
        renew_every: float | None = None,
        busy: str = "AI is thinking",
    ) -> None:
        self.store = store
        self.conv_id = conv_id
        self._renew_every = renew_every
        self._busy = busy
        self.token: int | None = None
        # A timer, not a task, until a renewal is due: most turns end well within a lease.
        self._due: asyncio.TimerHandle | None = None
        self._renewal: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Conversation:
        token, conv, live = await self.store.acquire(self.conv_id)
        if token is None or conv is None:
            raise ConversationBusy(self._busy) if live else ConversationNotFound(self.conv_id)
        self.token = token
        self._schedule_renewal()
        try:
            return await self.enter(conv)
        except BaseException:
            await self._release()
            raise

    async def enter(self, conv: Conversation) -> Conversation:
        """What ``__aenter__`` does with the conversation once locked (``Turn`` plans there)."""
        return conv

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._release()

    async def _release(self) -> None:
        await self._stop_renewal()
        token, self.token = self.token, None
        if token is None:
            return
        try:
            await self.store.unlock(self.conv_id, token)
        except StorageUnavailable:
            # The lease lapses by itself; the request's own outcome is what the client hears.
            log.warning("could not release the lock of conversation %s: it lapses by itself", self.conv_id)

    def _schedule_renewal(self) -> None:
        if self._renew_every is not None and self.token is not None:
            loop = asyncio.get_running_loop()
            self._due = loop.call_later(self._renew_every, self._start_renewal, self.token)

    def _start_renewal(self, token: int) -> None:
        self._due = None
        self._renewal = asyncio.create_task(self._renew(token), name="lease")

    async def _stop_renewal(self) -> None:
        self._renew_every = None  # and no timer again, whatever a renewal still running does
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
            self._renewal = None

    async def _renew(self, token: int) -> None:
        try:
            held = await self.store.renew(self.conv_id, token)
        except StorageUnavailable:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # redis-py can turn a cancel that lands inside a call into a connection error
                # (seen with 8.1): the release is waiting for this task to end.
                raise asyncio.CancelledError() from None
            held = True  # try again next time: the lease may still hold when Redis is back
        self._renewal = None
        if not held:
            log.warning("lost the lock of conversation %s while answering", self.conv_id)
        elif self.token == token:
            self._schedule_renewal()

    async def commit(self, updated: Conversation) -> None:
        """Store ``updated`` if this lock still holds, and release the lock with it. A
        conversation finished meanwhile stays finished (nothing stored); a lapsed lock is
        ``LeaseLost``."""
        await self._stop_renewal()  # the block ends here: no renewal may cross the release
        if await self.store.replace(updated, token=self.token, release=True):
            self.token = None
            return
        if self.token is not None and not await self.store.renew(self.conv_id, self.token):
            raise LeaseLost()


@dataclass(frozen=True, slots=True)
class Plan:
    """What a turn asks, worked out under the lock."""

    asked: Message
    new_question: bool
    """Not yet in the tree (``ask``, ``edit``), or asked again (``regenerate``)."""
    request: UpstreamRequest
    streaming: bool
    context: TurnContext | None = None
    """How the history was fitted to the window (``engine.context``); None: sent whole."""


Planner = Callable[[Conversation], Awaitable[Plan]]
"""Given the locked conversation: the plan (raises to refuse: bad input, rate limits…)."""


class Replayed(Exception):
    """Raised out of ``Turn.__aenter__`` when the conversation already kept this keyed turn."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("replayed")
        self.answer = answer


Replay = Callable[[Conversation], Awaitable[Answer | None]]


class Turn(ConversationLock):
    """The lock for one question and its answer (the ``Answer`` enters it when started)."""

    def __init__(
        self,
        store: ConversationStore,
        conv_id: str,
        plan: Planner,
        *,
        answer_id: str,
        clock: Callable[[], float],
        keyed: tuple[str, str] | None = None,
        replay: Replay | None = None,
        renew_every: float | None = None,
    ) -> None:
        super().__init__(store, conv_id, renew_every=renew_every)
        self._plan = plan
        self._clock = clock
        self.answer_id = answer_id
        self._keyed = keyed
        self._replay = replay
        self._conv: Conversation | None = None
        self.plan: Plan | None = None

    async def enter(self, conv: Conversation) -> Conversation:
        # A keyed turn kept by a request that ended just before this one took the lock.
        replayed = None if self._replay is None else await self._replay(conv)
        if replayed is not None:
            raise Replayed(replayed)
        self.plan = await self._plan(conv)
        self._conv = conv
        return conv

    async def commit_answer(self, text: str) -> None:
        """Add the question (if new) and ``text`` as its answer, and store them under the lock."""
        assert self._conv is not None and self.plan is not None, "commit outside the turn"
        asked = self.plan.asked
        updated = self._conv.copy()
        if self.plan.context is not None:
            self.plan.context.record(updated, text, asked.id)
        if self.plan.new_question:
            updated.add(asked)
        now = self._clock()
        updated.add(Message(self.answer_id, asked.id, "assistant", text, now))
        updated.leaf = self.answer_id
        updated.last_active = now
        if self._keyed is not None:
            key, fingerprint = self._keyed
            kept = KeyedTurn(fingerprint, self.answer_id, asked.id, text)
            updated.turns_by_key = {**(updated.turns_by_key or {}), key: kept}
        await self.commit(updated)

    @property
    def request(self) -> UpstreamRequest:
        assert self.plan is not None, "the turn has not started"
        return self.plan.request

    @property
    def streaming(self) -> bool:
        assert self.plan is not None, "the turn has not started"
        return self.plan.streaming

    @property
    def parent_id(self) -> str:
        assert self.plan is not None, "the turn has not started"
        return self.plan.asked.id

    @property
    def context(self) -> TurnContext | None:
        assert self.plan is not None, "the turn has not started"
        return self.plan.context
