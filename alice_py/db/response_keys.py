"""The ``Idempotency-Key`` of each answered ``POST /v1/responses``, with what it answered.

A key is kept ``KEY_TTL`` (24 hours, as Stripe and OpenAI keep theirs) after its response
was written, in the same transaction as the response: a request that failed leaves no key,
so the client may send it again and the model is asked again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alice_py.db._common import Clock
from alice_py.db.models import ResponseKeyRow

KEY_TTL = 86400.0


@dataclass(frozen=True, slots=True)
class KeptKey:
    fingerprint: str
    body: dict[str, Any]
    """The response object the first request was answered."""


class ResponseKeyRepository:
    def __init__(self, engine: AsyncEngine, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def get(self, owner: str, key: str) -> KeptKey | None:
        query = select(ResponseKeyRow.fingerprint, ResponseKeyRow.body).where(
            ResponseKeyRow.owner == owner,
            ResponseKeyRow.key == key,
            ResponseKeyRow.expires_at > self._clock(),
        )
        async with self._engine.connect() as connection:
            found = (await connection.execute(query)).first()
        return None if found is None else KeptKey(fingerprint=found.fingerprint, body=found.body)

    async def save(
        self, connection: AsyncConnection, owner: str, key: str, kept: KeptKey
    ) -> None:
        """In the transaction that writes the response (expired keys go first; a key that
        expired is a new key, so its old row is replaced)."""
        now = self._clock()
        await connection.execute(delete(ResponseKeyRow).where(ResponseKeyRow.expires_at <= now))
        row = {
            "owner": owner,
            "key": key,
            "fingerprint": kept.fingerprint,
            "body": kept.body,
            "expires_at": now + KEY_TTL,
        }
        await connection.execute(insert(ResponseKeyRow), [row])
