from __future__ import annotations

from typing import cast

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.conversations import ConversationRepository, SavedConversation
from alice_py.db.engine import create_engine

NOW = 1_700_000_000.0


def conv(
    id: str, data: bytes | str = b"{}", *, active: float = NOW, expires: float = NOW + 1800
) -> SavedConversation:
    return SavedConversation(id=id, kind="turbo", data=data, last_active=active, expires_at=expires)


async def test_save_then_load_round_trip(engine: AsyncEngine) -> None:
    repo = ConversationRepository(engine)
    payload = '{"messages": ["你好", "🎉"]}'.encode()
    first = conv("aaaa1111", payload, active=NOW - 5, expires=NOW + 1795)
    await repo.save_many([first, conv("bbbb2222", '{"x": "こんにちは"}')])
    loaded = await repo.load_live(NOW)
    assert loaded == [conv("bbbb2222", '{"x": "こんにちは"}'.encode()), first]  # the latest to expire first
    assert await repo.load_one("aaaa1111", NOW) == first
    assert await repo.load_one("aaaa1111", NOW + 1795) is None  # expired
    assert await repo.load_one("unknown", NOW) is None


async def test_saving_again_replaces(engine: AsyncEngine) -> None:
    repo = ConversationRepository(engine)
    await repo.save_many([conv("aaaa1111", b"v1")])
    await repo.save_many([conv("aaaa1111", b"v2", active=NOW + 10, expires=NOW + 2000)])
    assert await repo.load_live(NOW) == [conv("aaaa1111", b"v2", active=NOW + 10, expires=NOW + 2000)]


async def test_duplicate_ids_in_one_batch_keep_the_last(engine: AsyncEngine) -> None:
    repo = ConversationRepository(engine)
    await repo.save_many([conv("aaaa1111", b"first"), conv("aaaa1111", b"last")])
    assert [c.data for c in await repo.load_live(NOW)] == [b"last"]


async def test_expired_conversations_are_not_loaded_and_can_be_purged(engine: AsyncEngine) -> None:
    repo = ConversationRepository(engine)
    await repo.save_many([conv("old00001", expires=NOW - 1), conv("edge0001", expires=NOW), conv("live0001")])
    assert [c.id for c in await repo.load_live(NOW)] == ["live0001"]
    assert await repo.purge_expired(NOW) == 2
    assert await repo.purge_expired(NOW) == 0
    assert [c.id for c in await repo.load_live(NOW - 100)] == ["live0001"]


async def test_delete_many(engine: AsyncEngine) -> None:
    repo = ConversationRepository(engine)
    await repo.save_many([conv("a"), conv("b"), conv("c")])
    assert await repo.delete_many(["a", "c", "unknown", "a"]) == 2
    assert [c.id for c in await repo.load_live(NOW)] == ["b"]
    assert await repo.delete_many([]) == 0


async def test_large_batch(engine: AsyncEngine) -> None:
    repo = ConversationRepository(engine)
    await repo.save_many([conv(f"c{n:07d}", active=NOW + n, expires=NOW + 1800 + n) for n in range(1200)])
    loaded = await repo.load_live(NOW)
    assert len(loaded) == 1200
    assert loaded[0].id == "c0001199"
    assert await repo.delete_many([f"c{n:07d}" for n in range(1100)]) == 1100
    assert len(await repo.load_live(NOW)) == 100


async def test_failed_batch_writes_nothing(engine: AsyncEngine) -> None:
    repo = ConversationRepository(engine)
    await repo.save_many([conv("aaaa1111", b"v1")])
    broken = SavedConversation("bbbb2222", "turbo", b"{}", cast(float, None), NOW + 10)
    with pytest.raises(IntegrityError):
        await repo.save_many([conv("aaaa1111", b"v2"), conv("cccc3333"), broken])
    assert await repo.load_live(NOW) == [conv("aaaa1111", b"v1")]


async def test_conversations_survive_reopening(db_url: str, engine: AsyncEngine) -> None:
    await ConversationRepository(engine).save_many([conv("keep1234", b'{"k": 1}')])
    await engine.dispose()
    reopened = create_engine(db_url)
    try:
        assert await ConversationRepository(reopened).load_live(NOW) == [conv("keep1234", b'{"k": 1}')]
    finally:
        await reopened.dispose()
