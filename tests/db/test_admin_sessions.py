"""The admin page's session record, on SQLite and PostgreSQL, as two processes on one database
see it (two engines): one secret for both, a login on one alive on the other, a logout on
either ended on both, expiry and the bound on the table."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.admin_sessions import AdminSessionRepository
from alice_py.db.engine import create_engine
from tests.support import Clock

AGE = 3600.0


@pytest.fixture
async def second(db_url: str, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Another process's engine on the same (already migrated) database."""
    other = create_engine(db_url)
    try:
        yield other
    finally:
        await other.dispose()


async def test_two_processes_starting_at_once_agree_on_one_secret(
    engine: AsyncEngine, second: AsyncEngine
) -> None:
    one, two = (AdminSessionRepository(e, AGE, 10) for e in (engine, second))
    first, other = await asyncio.gather(one.secret(), two.secret())
    assert first == other
    assert len(base64.urlsafe_b64decode(first)) == 32
    assert await two.secret() == first  # and it stays


async def test_a_session_opened_on_one_is_alive_on_the_other_until_revoked_on_either(
    engine: AsyncEngine, second: AsyncEngine
) -> None:
    clock = Clock()
    one, two = (AdminSessionRepository(e, AGE, 10, clock=clock) for e in (engine, second))
    kept, revoked = await one.open(), await one.open()
    assert await two.alive(kept) and await two.alive(revoked)
    await two.revoke(revoked)
    assert not await one.alive(revoked)
    assert await one.alive(kept)
    assert not await one.alive("made-up-id")
    clock.advance(AGE)
    assert not await two.alive(kept)


async def test_past_the_bound_the_sessions_nearest_their_end_go_first(engine: AsyncEngine) -> None:
    clock = Clock()
    record = AdminSessionRepository(engine, AGE, 2, clock=clock)
    ids = []
    for _ in range(3):
        ids.append(await record.open())
        clock.advance(1)
    assert [await record.alive(i) for i in ids] == [False, True, True]
