"""Shares: snapshots of a conversation that survive restarts."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db._common import Clock, insert_for, stamp
from alice_py.db.models import SHARE_ID_LENGTH, ShareRow


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    prompt: str
    sentences: tuple[str, ...]


class ShareRepository:
    def __init__(self, engine: AsyncEngine, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def put(self, id: str, prompt: str, sentences: list[str] | tuple[str, ...]) -> None:
        """Store the snapshot; storing again under the same id replaces it."""
        if not 0 < len(id) <= SHARE_ID_LENGTH:
            raise ValueError(f"a share id has 1 to {SHARE_ID_LENGTH} characters, got {len(id)}")
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

    async def count(self) -> int:
        async with self._engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(ShareRow))).scalar_one())
