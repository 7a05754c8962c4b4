"""Shares: snapshots of a conversation that survive restarts.

A new conversation must not take the id of a share (storing it would overwrite that
share), so every ``create`` asks ``id_taken``. Asking the database each time cost a
SQLite round trip through aiosqlite's thread per conversation, a tenth of the CPU of a
create-and-chat load and a source of waits (docs/performance.md). So the repository
remembers the ids of the shares it knows: all of them, read once at first use, when the
database is a SQLite file (this process is its only writer: ``sole_writer``), and asks
PostgreSQL, which several instances may share, about any id it does not know.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db._common import Clock, insert_for, stamp
from alice_py.db.models import SHARE_ID_LENGTH, ShareRow
from alice_py.errors import BadRequest


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    prompt: str
    sentences: tuple[str, ...]


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
            raise ValueError(f"a share id has 1 to {SHARE_ID_LENGTH} characters, got {len(id)}")
        # PostgreSQL's text and jsonb cannot hold NUL; refuse it on every database alike.
        if "\x00" in prompt or any("\x00" in sentence for sentence in sentences):
            raise BadRequest("This conversation contains a NUL character, which a share cannot store")
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

    async def count(self) -> int:
        async with self._engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(ShareRow))).scalar_one())
