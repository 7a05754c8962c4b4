"""Stored responses (``POST /v1/responses`` with ``store``), each owned by one client key.

A response expires ``[responses] retention_days`` after its creation: from then on it is not
found, and the next save deletes it (and every other expired one) for good.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alice_py.db._common import Clock
from alice_py.db.models import ResponseRow

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class StoredResponse:
    body: dict[str, Any]
    """The response object as the client got it."""
    input_items: list[dict[str, Any]]
    """This response's own input items, with their ids."""
    history: list[dict[str, Any]]
    """The items of the responses it continues, oldest first."""

    def context(self) -> list[dict[str, Any]]:
        """What a response continuing from this one has before its own input."""
        return [*self.history, *self.input_items, *self.body.get("output", [])]


class ResponseRepository:
    def __init__(self, engine: AsyncEngine, retention_days: float, clock: Clock = time.time) -> None:
        self.engine = engine
        self._engine = engine
        self._retention = retention_days * DAY
        self._clock = clock

    async def save(
        self, owner: str, stored: StoredResponse, connection: AsyncConnection | None = None
    ) -> None:
        """Insert the response; in ``connection``'s transaction when given (with what else the
        turn writes: its conversation's new items), else in a transaction of its own."""
        if connection is None:
            async with self._engine.begin() as own:
                await self._insert(own, owner, stored)
        else:
            await self._insert(connection, owner, stored)

    async def _insert(self, connection: AsyncConnection, owner: str, stored: StoredResponse) -> None:
        now = self._clock()
        row = {
            "id": stored.body["id"],
            "owner": owner,
            "created_at": now,
            "expires_at": now + self._retention,
            "body": stored.body,
            "input_items": stored.input_items,
            "history": stored.history,
        }
        await connection.execute(delete(ResponseRow).where(ResponseRow.expires_at <= now))
        await connection.execute(insert(ResponseRow), [row])

    @staticmethod
    async def set_body(connection: AsyncConnection, response_id: str, body: dict[str, Any]) -> None:
        """A background response's new state (its status, then its output)."""
        await connection.execute(update(ResponseRow).where(ResponseRow.id == response_id).values(body=body))

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        """The response, unless it is unknown, expired or another owner's (all alike)."""
        query = select(ResponseRow.body, ResponseRow.input_items, ResponseRow.history).where(
            ResponseRow.id == response_id,
            ResponseRow.owner == owner,
            ResponseRow.expires_at > self._clock(),
        )
        async with self._engine.connect() as connection:
            found = (await connection.execute(query)).first()
        if found is None:
            return None
        return StoredResponse(body=found.body, input_items=found.input_items, history=found.history)

    async def delete(self, owner: str, response_id: str) -> bool:
        query = delete(ResponseRow).where(
            ResponseRow.id == response_id,
            ResponseRow.owner == owner,
            ResponseRow.expires_at > self._clock(),
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(query)
        return bool(result.rowcount)
