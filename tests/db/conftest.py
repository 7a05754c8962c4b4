"""Database fixtures: every repository test runs on a SQLite file and on PostgreSQL.

PostgreSQL tests use a fresh schema per test (tables and Alembic's version table
alike), dropped afterwards. Without PostgreSQL at 127.0.0.1:5432 they fail,
unless ALICE_TEST_SKIP_POSTGRES=1 says to skip them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.engine import create_engine, upgrade

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL at 127.0.0.1:5432 is missing ({PG_DSN}: {exc})"
        if os.environ.get("ALICE_TEST_SKIP_POSTGRES") == "1":
            pytest.skip(f"{reason}; ALICE_TEST_SKIP_POSTGRES=1")
        pytest.fail(f"{reason}: start it, or set ALICE_TEST_SKIP_POSTGRES=1 to skip these tests", False)


@contextlib.asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A PostgreSQL URL whose search_path is a schema of its own, dropped afterwards."""
    admin = await _pg_admin()
    schema = f"alice_test_{uuid.uuid4().hex[:12]}"
    try:
        # A test that left a transaction open must not hang the clean-up forever.
        await admin.execute("SET lock_timeout = '10s'")
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield f"{PG_URL}?search_path={schema}"
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'alice.db'}"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        async with postgres_schema() as url:
            yield url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database upgraded to the newest schema."""
    engine = create_engine(db_url)
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
