"""The live store is a cache of the database, on the real ``alice-py`` process: each conversation
is saved on its own, eviction by ``max_live`` loses nothing, and what ended never comes back."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from alice_py.app import create_app
from alice_py.db.engine import create_engine, upgrade
from alice_py.engine.tree import Conversation
from alice_py.fake import RunningFake
from tests.persistence.helpers import UPSTREAM_KEY, db_url, running_alice, saved_rows
from tests.support import app_config

FAST = {"ALICE_CONVERSATIONS_WRITE_BEHIND": "0.2"}


async def _refuse_big_rows(tmp_path: Path, limit: int) -> None:
    """Make the database refuse conversations over ``limit`` bytes, as a size cap or a full disk would."""
    engine = create_engine(db_url(tmp_path))
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            for event in ("INSERT", "UPDATE"):
                await connection.execute(
                    text(
                        f"CREATE TRIGGER too_big_{event.lower()} BEFORE {event} ON conversations "
                        f"WHEN length(NEW.data) > {limit} BEGIN SELECT RAISE(ABORT, 'row too big'); END"
                    )
                )
    finally:
        await engine.dispose()


async def _until_saved(tmp_path: Path, expected: dict[str, int], limit: float = 10.0) -> None:
    """Until every id in ``expected`` is saved with that many sentences."""
    async with asyncio.timeout(limit):
        while True:
            rows = await saved_rows(tmp_path)
            counts = {i: Conversation.from_json(rows[i].data).sentence_count() for i in expected if i in rows}
            if counts == expected:
                return
            await asyncio.sleep(0.1)


async def test_one_conversation_the_database_refuses_does_not_cost_the_others_at_a_kill_9(
    tmp_path: Path, fake: RunningFake
) -> None:
    await _refuse_big_rows(tmp_path, 10_000)
    async with running_alice(tmp_path, fake, **FAST) as alice:
        big = await alice.create_turbo(stream=False)
        await alice.chat(big, "x" * 20_000)
        small = [await alice.create_turbo(stream=False) for _ in range(50)]
        answers = [await alice.chat(conv, f"hello {index}") for index, conv in enumerate(small)]
        await _until_saved(tmp_path, dict.fromkeys(small, 2))
        await alice.wait_for_log(f"could not save 1 conversation(s) ({big}), will retry")
        alice.signal(signal.SIGKILL)
        assert await alice.stopped() == -signal.SIGKILL

    async with running_alice(tmp_path, fake) as alice:
        for index, conv in enumerate(small):
            assert await alice.sentences(conv) == [f"hello {index}", answers[index]]
        await alice.stop()


async def test_a_conversation_pushed_out_by_max_live_continues_with_its_history(
    tmp_path: Path, fake: RunningFake
) -> None:
    async with running_alice(tmp_path, fake, ALICE_CONVERSATIONS_MAX_LIVE="3", **FAST) as alice:
        kept = await alice.create_turbo(stream=False)
        first = await alice.chat(kept, "one")
        flood = [await alice.create_turbo(stream=False) for _ in range(10)]  # pushes "kept" out
        second = await alice.chat(kept, "two")
        assert await alice.sentences(kept) == ["one", first, "two", second]
        await _until_saved(tmp_path, {kept: 4})
        assert flood[0] in await saved_rows(tmp_path)  # those pushed out stay too
        assert await alice.sentences(flood[0]) == []

        # Pushed out again, then finished: gone for good, before and after a restart.
        for _ in range(5):
            await alice.create_turbo(stream=False)
        assert (await alice.post("finish", conv=kept))[0] == 200
        assert await alice.sentences(kept) is None
        await alice.stop()
    assert kept not in await saved_rows(tmp_path)

    async with running_alice(tmp_path, fake) as alice:
        assert await alice.sentences(kept) is None
        assert await alice.sentences(flood[0]) == []
        await alice.stop()


async def test_a_conversation_asked_for_while_the_database_is_away_is_a_503_not_a_404(
    aiohttp_client: Any, fake: RunningFake, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(app_config(fake.url, tmp_path, upstream_key=UPSTREAM_KEY)))
    engine = create_engine(db_url(tmp_path))
    try:
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE conversations RENAME TO away"))
        response = await client.post("/chatgpt/contextArray", headers={"conversation": "unknown1"})
        assert response.status == 503
        assert "The database is not answering, please try again later" in await response.text()
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE away RENAME TO conversations"))
        response = await client.post("/chatgpt/contextArray", headers={"conversation": "unknown1"})
        assert response.status == 404
    finally:
        await engine.dispose()
