from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.engine import create_engine
from alice_py.db.shares import Share, ShareRepository
from alice_py.errors import BadRequest


async def test_put_then_get_returns_the_snapshot(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    await shares.put("abcd1234", "You are helpful.", ["hi", "hello, how can I help?"])
    expected = Share("abcd1234", "You are helpful.", ("hi", "hello, how can I help?"))
    assert await shares.get("abcd1234") == expected
    assert await shares.exists("abcd1234")
    assert await shares.count() == 1


async def test_unknown_share_is_none(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    assert await shares.get("nope0000") is None
    assert not await shares.exists("nope0000")
    assert await shares.count() == 0


async def test_storing_again_replaces(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    await shares.put("abcd1234", "old prompt", ["q1", "a1"])
    await shares.put("abcd1234", "new prompt", ["q1", "a1", "q2", "a2"])
    assert await shares.get("abcd1234") == Share("abcd1234", "new prompt", ("q1", "a1", "q2", "a2"))
    assert await shares.count() == 1


async def test_unicode_round_trip(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    sentences = ["你好，世界", "こんにちは、世界！", "emoji 🎉👩‍💻🇯🇵", 'quotes " \\ and \n newlines', ""]
    await shares.put("Uni00001", "用中文回答 🙂", sentences)
    share = await shares.get("Uni00001")
    assert share is not None
    assert share.prompt == "用中文回答 🙂"
    assert share.sentences == tuple(sentences)


async def test_empty_share(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    await shares.put("e", "", [])
    assert await shares.get("e") == Share("e", "", ())


async def test_id_longer_than_eight_is_refused_on_every_backend(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    with pytest.raises(BadRequest, match="9 characters, a share's at most 8"):
        await shares.put("123456789", "p", [])
    assert await shares.count() == 0


async def test_concurrent_puts_all_land(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    await asyncio.gather(*(shares.put(f"id{n:06d}", f"p{n}", [str(n)]) for n in range(25)))
    assert await shares.count() == 25
    assert await shares.get("id000024") == Share("id000024", "p24", ("24",))


async def test_shares_survive_reopening_the_database(db_url: str, engine: AsyncEngine) -> None:
    await ShareRepository(engine).put("keep1234", "prompt", ["q", "a"])
    await engine.dispose()
    reopened = create_engine(db_url)
    try:
        assert await ShareRepository(reopened).get("keep1234") == Share("keep1234", "prompt", ("q", "a"))
    finally:
        await reopened.dispose()


async def test_nul_is_refused_alike_on_every_database(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    with pytest.raises(BadRequest, match="NUL character"):
        await shares.put("nul00001", "prompt", ["a\x00b"])
    with pytest.raises(BadRequest, match="NUL character"):
        await shares.put("nul00002", "pro\x00mpt", [])
    assert await shares.get("nul00001") is None
    assert await shares.count() == 0


async def test_a_separate_share_has_its_own_id_and_is_replaced_by_storing_again(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    first = await shares.put_separate("conv0001", "p", ["q1", "a1"])
    assert first != "conv0001" and len(first) == 8
    again = await shares.put_separate("conv0001", "p", ["q1", "a1", "q2", "a2"])
    assert again == first  # the link handed out stays the link
    assert await shares.get(first) == Share(first, "p", ("q1", "a1", "q2", "a2"))
    assert await shares.get("conv0001") is None
    assert await shares.id_taken(first)  # no new conversation may take it
    other = await shares.put_separate("conv0002", "", ["x", "y"])
    assert other not in (first, "conv0002")
    assert await shares.count() == 2


async def test_a_separate_id_is_never_a_taken_one(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    await shares.put("share001", "", ["q"])
    drawn = iter(["share001", "live0001", "fresh001"])

    async def live(candidate: str) -> bool:
        return candidate == "live0001"

    share_id = await shares.put_separate("conv0001", "", ["q"], in_use=live, new_id=lambda: next(drawn))
    assert share_id == "fresh001"
    assert await shares.get("share001") == Share("share001", "", ("q",))  # not overwritten


async def test_stores_of_one_conversation_at_once_make_one_share(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    ids = await asyncio.gather(*(shares.put_separate("conv0001", "", [str(n)]) for n in range(5)))
    assert len(set(ids)) == 1
    assert await shares.count() == 1


async def test_recent_lists_newest_first_and_delete_revokes(engine: AsyncEngine) -> None:
    now = [1000.0]
    shares = ShareRepository(engine, clock=lambda: now[0])
    for index, share_id in enumerate(("old00001", "mid00001", "new00001")):
        now[0] = 1000.0 + index
        await shares.put(share_id, "", ["q", "a", "q"][: index + 1])
    listed = await shares.recent(2)
    assert [(share.id, share.messages, share.conversation_id) for share in listed] == [
        ("new00001", 3, None),
        ("mid00001", 2, None),
    ]
    assert listed[0].updated_at.timestamp() == 1002.0
    assert [share.id for share in await shares.recent(10, offset=2)] == ["old00001"]

    assert await shares.delete("mid00001") is True
    assert await shares.get("mid00001") is None
    assert not await shares.id_taken("mid00001")
    assert await shares.delete("mid00001") is False
    assert await shares.count() == 2
