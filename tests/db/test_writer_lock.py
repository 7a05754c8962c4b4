"""The writer lock itself, on a real SQLite file and a real PostgreSQL: exclusive, released at
``release``, scoped to one database (one schema on PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.engine import create_engine
from alice_py.db.writer_lock import DatabaseInUse, WriterLock, writer_lock
from tests.db.conftest import postgres_schema


def _lock(engine: AsyncEngine) -> WriterLock:
    lock = writer_lock(engine)
    assert lock is not None
    return lock


async def test_one_holder_at_a_time_then_the_next(engine: AsyncEngine, db_url: str) -> None:
    other = create_engine(db_url)
    try:
        first, second = _lock(engine), _lock(other)
        await first.acquire()
        with pytest.raises(DatabaseInUse, match="another alice-py instance"):
            await second.acquire()
        assert (await first.check(), first.held, second.held) == (None, True, False)
        await first.release()
        await second.acquire()
        assert second.held
        await second.release()
    finally:
        await other.dispose()


@pytest.fixture
async def two_schemas() -> AsyncIterator[tuple[str, str]]:
    async with postgres_schema() as one, postgres_schema() as two:
        yield one, two


@pytest.mark.postgres
async def test_postgresql_schemas_of_one_database_do_not_exclude_each_other(
    two_schemas: tuple[str, str],
) -> None:
    engines = [create_engine(url) for url in two_schemas]
    try:
        locks = [_lock(engine) for engine in engines]
        for lock in locks:
            await lock.acquire()
        assert all(lock.held for lock in locks)
        for lock in locks:
            await lock.release()
    finally:
        for engine in engines:
            await engine.dispose()


def test_an_in_memory_sqlite_database_needs_no_lock() -> None:
    assert writer_lock(create_engine("sqlite+aiosqlite://")) is None
