"""Live conversations saved to the database, so that a restart resumes them."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db._common import Clock, chunks, insert_for, stamp
from alice_py.db.models import ConversationRow


@dataclass(frozen=True, slots=True)
class SavedConversation:
    """One conversation as the engine serialized it.

    ``data`` is opaque here: ``str`` is stored as UTF-8, and loading always
    gives ``bytes``. Times are seconds since the epoch, on the engine's clock.
    """

    id: str
    kind: str
    data: bytes | str
    last_active: float
    expires_at: float


class ConversationRepository:
    def __init__(self, engine: AsyncEngine, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def save_many(self, items: Iterable[SavedConversation]) -> None:
        """Insert or replace every item, all in one transaction."""
        # One row per id: PostgreSQL refuses to update the same row twice in a statement.
        latest = {item.id: item for item in items}
        if not latest:
            return
        now = stamp(self._clock)
        rows = [_to_row(item, now) for item in latest.values()]
        stmt = insert_for(self._engine.dialect, ConversationRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={name: stmt.excluded[name] for name in ("kind", "data", "last_active", "expires_at")}
            | {"updated_at": stmt.excluded.updated_at},
        )
        async with self._engine.begin() as connection:
            await connection.execute(stmt, rows)

    async def delete_many(self, ids: Iterable[str]) -> int:
        """Remove these conversations (unknown ids are ignored); returns how many were removed."""
        unique: Sequence[str] = list(dict.fromkeys(ids))
        removed = 0
        async with self._engine.begin() as connection:
            for part in chunks(unique):
                result = await connection.execute(delete(ConversationRow).where(ConversationRow.id.in_(part)))
                removed += result.rowcount
        return removed

    async def load_live(self, now: float) -> list[SavedConversation]:
        """Every conversation not yet expired at ``now``, the latest to expire (most recently used) first."""
        query = (
            select(ConversationRow)
            .where(ConversationRow.expires_at > now)
            .order_by(ConversationRow.expires_at.desc(), ConversationRow.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_from_row(row) for row in rows]

    async def load_one(self, conv_id: str, now: float) -> SavedConversation | None:
        """The saved conversation if it has not expired at ``now``."""
        query = select(ConversationRow).where(ConversationRow.id == conv_id, ConversationRow.expires_at > now)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return _from_row(row)

    async def purge_expired(self, now: float) -> int:
        """Remove conversations expired at ``now``; returns how many."""
        async with self._engine.begin() as connection:
            expired = delete(ConversationRow).where(ConversationRow.expires_at <= now)
            result = await connection.execute(expired)
        return result.rowcount


def _from_row(row: Any) -> SavedConversation:
    return SavedConversation(
        id=row.id, kind=row.kind, data=bytes(row.data), last_active=row.last_active, expires_at=row.expires_at
    )


def _to_row(item: SavedConversation, now: object) -> dict[str, object]:
    data = item.data.encode("utf-8") if isinstance(item.data, str) else bytes(item.data)
    return {
        "id": item.id,
        "kind": item.kind,
        "data": data,
        "last_active": item.last_active,
        "expires_at": item.expires_at,
        "updated_at": now,
    }
