from __future__ import annotations

import logging

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.engine import create_engine
from alice_py.db.keys import KeyRepository


async def test_add_dedupes_and_keeps_order(engine: AsyncEngine) -> None:
    repo = KeyRepository(engine)
    assert await repo.add(["sk-one", "sk-two", "sk-one", "  sk-three  ", "", "   "]) == 3
    assert await repo.add(["sk-two", "sk-four"]) == 1
    assert await repo.all() == ["sk-one", "sk-two", "sk-three", "sk-four"]


async def test_remove(engine: AsyncEngine) -> None:
    repo = KeyRepository(engine)
    await repo.add(["sk-one", "sk-two", "sk-three"])
    assert await repo.remove(["sk-two", "sk-unknown", "sk-two"]) == 1
    assert await repo.all() == ["sk-one", "sk-three"]
    assert await repo.remove([]) == 0


async def test_empty(engine: AsyncEngine) -> None:
    repo = KeyRepository(engine)
    assert await repo.all() == []
    assert await repo.add([]) == 0


async def test_keys_survive_reopening(db_url: str, engine: AsyncEngine) -> None:
    await KeyRepository(engine).add(["sk-persist"])
    await engine.dispose()
    reopened = create_engine(db_url)
    try:
        assert await KeyRepository(reopened).all() == ["sk-persist"]
    finally:
        await reopened.dispose()


async def test_keys_never_reach_the_log(engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-SECRET-0123456789abcdef"
    repo = KeyRepository(engine)
    # SQL logging on, as someone chasing a problem would turn it on: every statement is
    # logged, with its parameters unless hidden. (At DEBUG, aiosqlite and SQLAlchemy
    # log raw parameters and result rows: not a level to run with real keys.)
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        await repo.add([secret])
        assert await repo.all() == [secret]
        await repo.remove([secret])
    # SQL statements were logged, so the check below could have failed.
    assert "upstream_keys" in caplog.text
    assert secret not in caplog.text


async def test_each_key_keeps_its_upstream(db_url: str, engine: AsyncEngine) -> None:
    repo = KeyRepository(engine)
    await repo.add(["sk-first"])  # as before 0007: the first upstream
    await repo.add(["sk-local", "sk-first"], upstream="local")
    await engine.dispose()
    reopened = create_engine(db_url)
    try:
        assert await KeyRepository(reopened).entries() == [("sk-first", None), ("sk-local", "local")]
    finally:
        await reopened.dispose()
