"""The admin page's sessions and its generated cookie secret, in the database.

Kept here rather than in a process's memory so that every ``--workers`` process and every
instance on one database is one service: a login through one is a login on all, a logout
(``revoke``) ends the session on all at once, and they all decrypt the same cookies.

A session id is stored as its sha256 only: someone who can read the database (a backup)
learns no id that would log them in. The ids carry 192 random bits, so no salt is needed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db._common import Clock, insert_for
from alice_py.db.models import AdminSessionRow, ServiceSecretRow

SECRET_NAME = "admin_session"


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class AdminSessionRepository:
    def __init__(
        self, engine: AsyncEngine, max_age: float, max_sessions: int, clock: Clock = time.time
    ) -> None:
        self._engine = engine
        self._max_age = max_age
        self._max_sessions = max_sessions
        self._clock = clock

    async def secret(self) -> str:
        """The generated cookie secret (url-safe base64 of 32 bytes): made by the first process
        that asks, and the same for every process after it (two asking at once: one insert wins)."""
        mine = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
        async with self._engine.begin() as connection:
            stmt = insert_for(connection.dialect, ServiceSecretRow).values(name=SECRET_NAME, value=mine)
            await connection.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
            query = select(ServiceSecretRow.value).where(ServiceSecretRow.name == SECRET_NAME)
            value: str = (await connection.execute(query)).scalar_one()
        return value

    async def open(self) -> str:
        """A new session's id. Sessions past their age go first; past ``max_sessions`` live ones,
        those nearest their end go (logins need the password, so this only bounds the table)."""
        session_id = secrets.token_urlsafe(24)
        now = self._clock()
        row = {"id_hash": _hash(session_id), "expires_at": now + self._max_age}
        async with self._engine.begin() as connection:
            await connection.execute(delete(AdminSessionRow).where(AdminSessionRow.expires_at <= now))
            await connection.execute(insert(AdminSessionRow), [row])
            oldest = (
                select(AdminSessionRow.id_hash)
                .order_by(AdminSessionRow.expires_at.desc())
                .offset(self._max_sessions)
            )
            await connection.execute(delete(AdminSessionRow).where(AdminSessionRow.id_hash.in_(oldest)))
        return session_id

    async def alive(self, session_id: str) -> bool:
        query = select(AdminSessionRow.id_hash).where(
            AdminSessionRow.id_hash == _hash(session_id),
            AdminSessionRow.expires_at > self._clock(),
        )
        async with self._engine.connect() as connection:
            return (await connection.execute(query)).first() is not None

    async def revoke(self, session_id: str) -> None:
        """Ended for every process: its row is gone (a copied cookie names no session)."""
        stmt = delete(AdminSessionRow).where(AdminSessionRow.id_hash == _hash(session_id))
        async with self._engine.begin() as connection:
            await connection.execute(stmt)
