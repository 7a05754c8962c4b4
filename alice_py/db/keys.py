"""Upstream API keys added at run time through the admin API, each with its upstream's name.

A key is stored once, for one upstream. Rows stored before the ``upstream`` column (revision
0007) have none: they belong to the first upstream listed, where they were added.
Keys are secrets: nothing here logs them or puts them in an error message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db._common import Clock, chunks, insert_for, stamp
from alice_py.db.models import UpstreamKeyRow


def _clean(keys: Iterable[str]) -> list[str]:
    """Surrounding spaces dropped, blanks skipped, duplicates once, order kept."""
    return list(dict.fromkeys(key.strip() for key in keys if key.strip()))


class KeyRepository:
    def __init__(self, engine: AsyncEngine, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def add(self, keys: Iterable[str], upstream: str | None = None) -> int:
        """Store the keys not stored yet, for ``upstream`` (None: the first one); returns how many
        were new. A key stored already keeps the upstream it was stored for."""
        fresh = _clean(keys)
        if not fresh:
            return 0
        now = stamp(self._clock)
        stmt = (
            insert_for(self._engine.dialect, UpstreamKeyRow)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(UpstreamKeyRow.key)
        )
        rows = [{"key": key, "added_at": now, "upstream": upstream} for key in fresh]
        # RETURNING yields only the rows DO NOTHING let through: the new ones.
        async with self._engine.begin() as connection:
            added = len((await connection.execute(stmt, rows)).all())
        return added

    async def remove(self, keys: Iterable[str]) -> int:
        """Forget the keys (unknown ones are ignored); returns how many were removed."""
        gone = _clean(keys)
        removed = 0
        async with self._engine.begin() as connection:
            for part in chunks(gone):
                result = await connection.execute(delete(UpstreamKeyRow).where(UpstreamKeyRow.key.in_(part)))
                removed += result.rowcount
        return removed

    async def all(self) -> list[str]:
        """Every stored key, oldest first."""
        query = select(UpstreamKeyRow.key).order_by(UpstreamKeyRow.id)
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).scalars().all())

    async def entries(self) -> list[tuple[str, str | None]]:
        """Every stored key with its upstream's name (None: the first upstream), oldest first."""
        query = select(UpstreamKeyRow.key, UpstreamKeyRow.upstream).order_by(UpstreamKeyRow.id)
        async with self._engine.connect() as connection:
            return [(key, upstream) for key, upstream in (await connection.execute(query)).all()]
