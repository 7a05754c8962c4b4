from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.conversations import ConversationRepository, SavedConversation
from alice_py.db.engine import create_engine, current_revision, upgrade
from alice_py.db.keys import KeyRepository
from alice_py.db.models import Base
from alice_py.db.shares import Share, ShareRepository


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_creates_the_tables(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        tables = await connection.run_sync(_tables)
    assert tables == {
        "alembic_version",
        "shares",
        "conversations",
        "upstream_keys",
        "health_probe",
        "responses",
        "usage_totals",
        "openai_conversations",
        "openai_conversation_items",
        "response_runs",
        "response_keys",
        "admin_sessions",
        "service_secrets",
    }
    assert await current_revision(engine) == "0010"


async def test_models_match_the_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_upgrade_twice_changes_nothing(db_url: str, engine: AsyncEngine) -> None:
    await ShareRepository(engine).put("abcd1234", "p", ["q"])
    await upgrade(db_url)
    assert await current_revision(engine) == "0010"
    assert await ShareRepository(engine).get("abcd1234") == Share("abcd1234", "p", ("q",))


async def test_upgrade_in_place_from_0001_keeps_the_shares(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(db_url, revision="0001")
        assert await current_revision(engine) == "0001"
        await ShareRepository(engine).put("old12345", "老的提示", ["question", "答え 🎌"])
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == {"alembic_version", "shares"}

        await upgrade(db_url)

        assert await current_revision(engine) == "0010"
        assert await ShareRepository(engine).get("old12345") == Share(
            "old12345", "老的提示", ("question", "答え 🎌")
        )
        saved = SavedConversation("conv0001", "turbo", b"{}", 1.0, 10.0)
        await ConversationRepository(engine).save_many([saved])
        assert await ConversationRepository(engine).load_live(0.0) == [saved]
        assert await KeyRepository(engine).add(["sk-new"]) == 1
    finally:
        await engine.dispose()


async def test_instances_starting_together_upgrade_once(db_url: str) -> None:
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
        assert {await current_revision(engine) for engine in engines} == {"0010"}
    finally:
        for engine in engines:
            await engine.dispose()


async def test_upgrade_in_place_from_0002_gives_shares_a_conversation_column(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(db_url, revision="0002")
        await ShareRepository(engine).put("conv0001", "p", ["q", "a"])  # the original's kind

        await upgrade(db_url)

        assert await current_revision(engine) == "0010"
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
        shares = ShareRepository(engine)
        assert await shares.get("conv0001") == Share("conv0001", "p", ("q", "a"))
        [old] = await shares.recent(10)
        assert (old.id, old.conversation_id, old.messages) == ("conv0001", None, 2)
        # A separate share of the same conversation is a new one: the old link is the conversation's.
        own = await shares.put_separate("conv0001", "p", ["q", "a", "q2", "a2"])
        assert own != "conv0001"
        assert {share.id for share in await shares.recent(10)} == {"conv0001", own}
    finally:
        await engine.dispose()


async def test_upgrade_from_0005_keeps_admin_keys_on_the_first_upstream(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(db_url, revision="0005")
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO upstream_keys (key, added_at) VALUES ('sk-old', '2026-01-01 00:00:00')")
            )

        await upgrade(db_url)

        assert await current_revision(engine) == "0010"
        keys = KeyRepository(engine)
        await keys.add(["sk-new"], upstream="local")
        assert await keys.entries() == [("sk-old", None), ("sk-new", "local")]
    finally:
        await engine.dispose()
