"""Token usage totals per upstream key and per client, added to in place (``usage.UsageBook``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db._common import Clock, insert_for, stamp
from alice_py.db.models import UsageRow


@dataclass(frozen=True, slots=True)
class UsageTotal:
    scope: str
    """``upstream`` (a key of the pool) or ``client`` (the key or address a request came from)."""
    name: str
    label: str
    prompt_tokens: int
    completion_tokens: int
    answers: int


class UsageRepository:
    def __init__(self, engine: AsyncEngine, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def add(self, deltas: Iterable[UsageTotal]) -> None:
        """Add each delta to its row (made at the first), in one transaction: all or nothing."""
        rows = [
            {
                "scope": d.scope,
                "name": d.name,
                "label": d.label,
                "prompt_tokens": d.prompt_tokens,
                "completion_tokens": d.completion_tokens,
                "answers": d.answers,
                "updated_at": stamp(self._clock),
            }
            for d in deltas
        ]
        if not rows:
            return
        stmt = insert_for(self._engine.dialect, UsageRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=["scope", "name"],
            set_={
                "label": stmt.excluded.label,
                "prompt_tokens": UsageRow.prompt_tokens + stmt.excluded.prompt_tokens,
                "completion_tokens": UsageRow.completion_tokens + stmt.excluded.completion_tokens,
                "answers": UsageRow.answers + stmt.excluded.answers,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        async with self._engine.begin() as connection:
            for row in rows:
                await connection.execute(stmt, row)

    async def all(self) -> list[UsageTotal]:
        query = select(UsageRow).order_by(UsageRow.scope, UsageRow.name)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            UsageTotal(r.scope, r.name, r.label, r.prompt_tokens, r.completion_tokens, r.answers)
            for r in rows
        ]
