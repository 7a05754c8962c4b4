"""Where live conversations are kept: one async interface, several backends.

The engine and the routes only use this protocol, so a backend can be added
without touching them. Every backend must give the same guarantees:

- ``get`` may return a copy: whoever changes a conversation puts it back
  (the engine copies, changes and calls ``replace``; it never relies on an
  in-place change being visible).
- A conversation expires ``ttl`` seconds after its last use; one with at most
  2 sentences after ``ttl/2``. ``put``/``add``/``replace``/``touch`` are uses.
- ``acquire`` (the lock) is atomic across every process sharing the store: one request at
  a time per conversation.

- ``acquire`` gives a fencing token: a ``replace`` carrying it is refused once the lock is
  no longer that token's (a lease that lapsed), so a late commit never lands.

How the Redis backend expresses them: ``store.redis`` (keys in ``docs/redis-store.md``).

Expiry is one wall-clock instant per conversation (``LiveEntry.expires_at``, seconds
since the epoch), the same number the database keeps beside the saved copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from alice_py.engine.tree import Conversation


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """A conversation with the wall-clock instant it expires at unless used again."""

    conv: Conversation
    expires_at: float


@dataclass(frozen=True, slots=True)
class StoreChanges:
    """What changed since the previous ``drain_changes``: for write-behind saving.

    The three are disjoint: the store keeps only the latest fate of each id.
    """

    changed: frozenset[str]
    """Ids put or used since (still live: read them with ``entry``)."""
    deleted: frozenset[str]
    """Ids finished or expired since (and not put again): they must never come back."""
    evicted: tuple[LiveEntry, ...] = ()
    """Conversations pushed out by ``max_live`` since, as they left: to be saved, not lost."""


class Acquired(NamedTuple):
    """What ``acquire`` found: the lock's token and the conversation, both or neither."""

    token: int | None
    """The fencing token of the lock now held; ``None`` if not taken."""
    conv: Conversation | None
    """The conversation (read under the lock); ``None`` if not taken."""
    live: bool
    """Whether the conversation is live: not taken while live means another holds the lock."""


class ConversationStore(Protocol):
    async def get(self, conv_id: str) -> Conversation | None:
        """The live conversation, or ``None`` if unknown or expired. Does not count as a use."""
        ...

    async def add(self, conv: Conversation) -> bool:
        """Store a new conversation; ``False`` (and nothing stored) if its id is already live."""
        ...

    async def put(self, conv: Conversation) -> None:
        """Store ``conv`` under its id, replacing any earlier version (restoring saved ones)."""
        ...

    async def replace(self, conv: Conversation, *, token: int | None = None, release: bool = False) -> bool:
        """Store ``conv`` only if its id is still live; ``False`` if it was finished or expired,
        or if ``token`` is given and the conversation's lock is no longer held with it.
        ``release`` (with ``token``): once stored, release the lock too, in the same step
        (a turn's commit is its last act under the lock: one round trip instead of two)."""
        ...

    async def delete(self, conv_id: str) -> bool:
        """Remove it; ``False`` if it was not live."""
        ...

    async def touch(self, conv_id: str) -> None:
        """Restart its time to live (unknown ids are ignored)."""
        ...

    async def exists(self, conv_id: str) -> bool: ...

    async def acquire(self, conv_id: str) -> Acquired:
        """Take the conversation's lock with a fencing token (1 or more), read the conversation
        and ``touch`` it, in one step: a turn's start. Never waits. The lock is taken only if
        the conversation is live; an unknown or expired id takes nothing. The lock is atomic
        across every process sharing the store; a shared store's lock is a lease: keep it with
        ``renew``."""
        ...

    async def try_lock(self, conv_id: str) -> int | None:
        """The lock alone, for an id that is not a live conversation (an OpenAI conversation,
        ``responses.hold``): its fencing token, or ``None`` if someone holds it. Never waits.
        A turn uses ``acquire``; both share one lock per id."""
        ...

    async def renew(self, conv_id: str, token: int) -> bool:
        """Extend the lease; ``False`` if the lock is no longer ``token``'s."""
        ...

    async def unlock(self, conv_id: str, token: int | None = None) -> None:
        """Release the lock (only if still ``token``'s, when given)."""
        ...

    async def is_locked(self, conv_id: str) -> bool: ...

    async def entry(self, conv_id: str) -> LiveEntry | None:
        """The live conversation with its expiry (for saving). Not a use."""
        ...

    async def restore(self, entry: LiveEntry) -> bool:
        """Put back a saved conversation with its saved expiry, unless its id is live or it has
        expired; not reported as a change (the database has it). ``False`` if not put back."""
        ...

    async def all(self) -> list[Conversation]:
        """Every live conversation (to save them on shutdown)."""
        ...

    async def drain_changes(self) -> StoreChanges:
        """Ids changed and deleted since the previous call."""
        ...

    async def count(self) -> int:
        """How many conversations are live."""
        ...

    async def close(self) -> None: ...
