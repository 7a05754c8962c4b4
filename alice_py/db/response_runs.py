"""Which instance is making each background response, and when it last said so.

The row is written with the queued response and deleted with its final state, in the same
transactions; while it lives, its instance renews ``heartbeat_at``. A row whose heartbeat is
stale belongs to an instance that died: ``fail_abandoned`` marks its response failed, so no
response is left ``in_progress`` for ever.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alice_py.db.models import ResponseRow, ResponseRunRow


async def register(connection: AsyncConnection, response_id: str, instance: str, now: float) -> None:
    await connection.execute(
        insert(ResponseRunRow), [{"response_id": response_id, "instance": instance, "heartbeat_at": now}]
    )


async def unregister(connection: AsyncConnection, response_id: str) -> None:
    await connection.execute(delete(ResponseRunRow).where(ResponseRunRow.response_id == response_id))


async def renew(engine: AsyncEngine, response_ids: list[str], now: float) -> None:
    """The runs still alive here: only those a live task makes (one that crashed lapses)."""
    if not response_ids:
        return
    async with engine.begin() as connection:
        await connection.execute(
            update(ResponseRunRow)
            .where(ResponseRunRow.response_id.in_(response_ids))
            .values(heartbeat_at=now)
        )


async def fail_abandoned(engine: AsyncEngine, stale_before: float, error: dict[str, Any]) -> list[str]:
    """Mark failed (with ``error``) every response whose run's heartbeat is older than
    ``stale_before``; their ids."""
    async with engine.begin() as connection:
        query = select(ResponseRunRow.response_id).where(ResponseRunRow.heartbeat_at < stale_before)
        ids = [row.response_id for row in await connection.execute(query)]
        for response_id in ids:
            found = (
                await connection.execute(select(ResponseRow.body).where(ResponseRow.id == response_id))
            ).first()
            if found is not None and found.body.get("status") in ("queued", "in_progress"):
                body = {**found.body, "status": "failed", "error": error}
                await connection.execute(
                    update(ResponseRow).where(ResponseRow.id == response_id).values(body=body)
                )
            await unregister(connection, response_id)
    return ids
