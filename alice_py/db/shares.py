"""Shares: snapshots of a conversation that survive restarts.

A new conversation must not take the id of a share (storing it would overwrite that
share), so every ``create`` asks ``id_taken``. Asking the database each time cost a
SQLite round trip through aiosqlite's thread per conversation, a tenth of the CPU of a
create-and-chat load and a source of waits (docs/performance.md). So the repository
remembers the ids of the shares it knows: all of them, read once at first use, when the
database is a SQLite file (this process is its only writer: ``sole_writer``), and asks
PostgreSQL, which several instances may share, about any id it does not know.

A share's id is its conversation's id (``put``), as in the original, unless ``[shares]
separate_ids`` is on: then ``put_separate`` gives it an id of its own and keeps the
conversation's id beside it, so the link never reaches the live conversation and storing the
conversation again replaces the same share. ``recent`` and ``delete`` are the operator's list
and revoke (``/admin/shares``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py import ids
from alice_py.db._common import Clock, insert_for, stamp
from alice_py.db.models import SHARE_ID_LENGTH, ShareRow
from alice_py.errors import AliceError, BadRequest

MAX_ID_ATTEMPTS = 100
IdInUse = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    prompt: str
    sentences: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShareInfo:
    """A share as the operator's list shows it (no text: that is the share page's)."""

    id: str
    conversation_id: str | None
    """``None`` when the share's id is its conversation's (the original's way)."""
    messages: int
    created_at: datetime
    updated_at: datetime


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive times (it has no time zones); they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _check_text(prompt: str, sentences: Sequence[str]) -> None:
    # PostgreSQL's text and jsonb cannot hold NUL; refuse it on every database alike.
    if "\x00" in prompt or any("\x00" in sentence for sentence in sentences):
        raise BadRequest("This conversation contains a NUL character, which a share cannot store")


class ShareRepository:
    def __init__(
        self, engine: AsyncEngine, clock: Clock = time.time, *, sole_writer: bool | None = None
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._sole_writer = engine.dialect.name == "sqlite" if sole_writer is None else sole_writer
        self._known: set[str] = set()
        """Ids of shares that exist: every share put by this process, and (sole writer) all of them."""
        self._loaded = False
        self._loading = asyncio.Lock()

    async def put(self, id: str, prompt: str, sentences: list[str] | tuple[str, ...]) -> None:
        """Store the snapshot; storing again under the same id replaces it."""
        if not 0 < len(id) <= SHARE_ID_LENGTH:
            # A conversation a node-chatgpt-api client named (a uuid) cannot lend its id to a share.
            raise BadRequest(
                f"This conversation's id has {len(id)} characters, a share's at most {SHARE_ID_LENGTH}: "
                "set [shares] separate_ids = true to share it under an id of its own"
            )
        _check_text(prompt, sentences)
        now = stamp(self._clock)
        stmt = insert_for(self._engine.dialect, ShareRow).values(
            id=id, prompt=prompt, sentences=list(sentences), created_at=now, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"prompt": stmt.excluded.prompt, "sentences": stmt.excluded.sentences, "updated_at": now},
        )
        async with self._engine.begin() as connection:
            await connection.execute(stmt)
        self._known.add(id)

    async def put_separate(
        self,
        conversation_id: str,
        prompt: str,
        sentences: Sequence[str],
        *,
        in_use: IdInUse | None = None,
        new_id: Callable[[], str] = ids.new_id,
    ) -> str:
        """The share of ``conversation_id`` under an id of its own, which it returns: new on the
        first store, the same one (snapshot replaced) on the next. A fresh id is neither a share's
        nor, by ``in_use``, a live conversation's: the link must not reach one."""
        _check_text(prompt, sentences)
        for _ in range(MAX_ID_ATTEMPTS):
            candidate = new_id()
            if await self.id_taken(candidate) or (in_use is not None and await in_use(candidate)):
                continue
            try:
                share_id = await self._upsert_for(conversation_id, candidate, prompt, sentences)
            except IntegrityError:
                continue  # another instance took this id at the same moment: draw again
            self._known.add(share_id)
            return share_id
        raise AliceError("Could not find a free share id, please try again")

    async def _upsert_for(
        self, conversation_id: str, candidate: str, prompt: str, sentences: Sequence[str]
    ) -> str:
        """One statement, so two stores of one conversation at once still make one share."""
        now = stamp(self._clock)
        stmt = insert_for(self._engine.dialect, ShareRow).values(
            id=candidate,
            conversation_id=conversation_id,
            prompt=prompt,
            sentences=list(sentences),
            created_at=now,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["conversation_id"],
            set_={"prompt": stmt.excluded.prompt, "sentences": stmt.excluded.sentences, "updated_at": now},
        ).returning(ShareRow.id)
        async with self._engine.begin() as connection:
            return str((await connection.execute(stmt)).scalar_one())

    async def get(self, id: str) -> Share | None:
        query = select(ShareRow.prompt, ShareRow.sentences).where(ShareRow.id == id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).one_or_none()
        if row is None:
            return None
        return Share(id=id, prompt=row.prompt, sentences=tuple(row.sentences))

    async def exists(self, id: str) -> bool:
        query = select(ShareRow.id).where(ShareRow.id == id)
        async with self._engine.connect() as connection:
            return (await connection.execute(query)).first() is not None

    async def id_taken(self, id: str) -> bool:
        """Whether a share has this id: from memory when this process is the only writer."""
        if id in self._known:
            return True
        if not self._sole_writer:
            return await self.exists(id)
        if not self._loaded:
            await self._load_ids()
        return id in self._known

    async def _load_ids(self) -> None:
        async with self._loading:
            if self._loaded:
                return
            async with self._engine.connect() as connection:
                ids = (await connection.execute(select(ShareRow.id))).scalars().all()
            # Union, not assignment: shares put while the query ran are known already.
            self._known.update(ids)
            self._loaded = True

    async def recent(self, limit: int, offset: int = 0) -> list[ShareInfo]:
        """Shares, the most recently stored first."""
        query = (
            select(
                ShareRow.id,
                ShareRow.conversation_id,
                func.json_array_length(ShareRow.sentences).label("messages"),
                ShareRow.created_at,
                ShareRow.updated_at,
            )
            .order_by(ShareRow.updated_at.desc(), ShareRow.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            ShareInfo(
                row.id, row.conversation_id, int(row.messages), _utc(row.created_at), _utc(row.updated_at)
            )
            for row in rows
        ]

    async def delete(self, id: str) -> bool:
        """Revoke a share: its link answers 404 from now on. ``False`` if there was none."""
        async with self._engine.begin() as connection:
            deleted = (await connection.execute(delete(ShareRow).where(ShareRow.id == id))).rowcount
        self._known.discard(id)
        return bool(deleted)

    async def count(self) -> int:
        async with self._engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(ShareRow))).scalar_one())
