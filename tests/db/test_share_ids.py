"""``id_taken``: a new conversation never takes a share's id, whichever process stored the share."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.shares import ShareRepository


async def test_shares_stored_before_the_start_are_taken(engine: AsyncEngine) -> None:
    await ShareRepository(engine).put("before01", "", ["q", "a"])  # e.g. by the previous run
    shares = ShareRepository(engine)
    assert await shares.id_taken("before01")
    assert not await shares.id_taken("free0001")


async def test_a_share_stored_here_is_taken_at_once(engine: AsyncEngine) -> None:
    shares = ShareRepository(engine)
    assert not await shares.id_taken("mine0001")
    await shares.put("mine0001", "", ["q", "a"])
    assert await shares.id_taken("mine0001")


async def test_shared_database_is_asked_about_unknown_ids(engine: AsyncEngine) -> None:
    # Several instances on one PostgreSQL: another one may store a share at any time.
    here = ShareRepository(engine, sole_writer=False)
    assert not await here.id_taken("other001")
    await ShareRepository(engine).put("other001", "", ["q", "a"])
    assert await here.id_taken("other001")
