"""The saver on a real SQLite file, with one injected wall clock (the store's and the saver's).

A "restart" is a new store and saver on the same database while the clock only moves on:
what carries over is each conversation's wall-clock expiry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db.conversations import ConversationRepository, SavedConversation
from alice_py.db.engine import create_engine, upgrade
from alice_py.engine.presets import Kind
from alice_py.engine.tree import Conversation, Message, Role
from alice_py.errors import StorageUnavailable
from alice_py.store.durable import DurableStore
from alice_py.store.memory import MemoryStore
from alice_py.store.saver import ConversationSaver, write_behind
from alice_py.tasks import stop_task
from tests.support import Clock

TTL = 1800.0
WALL_START = 1_700_000_000.0


def conversation(conv_id: str, sentences: int, *, text_size: int = 0) -> Conversation:
    conv = Conversation(
        id=conv_id, kind=Kind.TURBO, prompt="", human_name="user", ai_name="assistant",
        preset="default", stream=False, created=WALL_START, last_active=WALL_START,
    )  # fmt: skip
    parent = None
    for index in range(sentences):
        role: Role = "user" if index % 2 == 0 else "assistant"
        content = f"sentence {index} 你好" + "x" * text_size
        message = Message(f"{conv_id}-{index}", parent, role, content, WALL_START)
        conv.add(message)
        parent = message.id
    conv.leaf = parent
    return conv


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}")
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def repo(engine: AsyncEngine) -> ConversationRepository:
    return ConversationRepository(engine)


@pytest.fixture
def wall() -> Clock:
    return Clock(WALL_START)


class Process:
    """One run of the service: a memory store, its saver, and the store the engine sees."""

    def __init__(self, repo: ConversationRepository, wall: Clock, max_live: int = 100) -> None:
        self.wall = wall
        self.live = MemoryStore(TTL, max_live, timer=wall)
        self.saver = ConversationSaver(self.live, repo, max_live=max_live, clock=wall)
        self.store = DurableStore(self.live, self.saver)


async def saved(repo: ConversationRepository) -> dict[str, SavedConversation]:
    return {row.id: row for row in await repo.load_live(0.0)}


async def _sql(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


@pytest.mark.parametrize(("sentences", "lifetime"), [(4, TTL), (2, TTL / 2)])
async def test_the_time_to_live_runs_on_across_a_restart(
    repo: ConversationRepository, wall: Clock, sentences: int, lifetime: float
) -> None:
    before = Process(repo, wall)
    await before.store.put(conversation("c", sentences))
    wall.advance(600)  # idle 10 minutes when the service stops
    assert await before.saver.save_all()
    wall.advance(60)  # down for a minute

    after = Process(repo, wall)
    assert await after.saver.load() == 1
    restored = await after.store.get("c")
    assert restored is not None and restored.sentences() == conversation("c", sentences).sentences()
    wall.advance(lifetime - 660 - 0.01)
    assert await after.live.exists("c")
    wall.advance(0.01)
    assert not await after.store.exists("c")  # and the database does not give it back


async def test_an_expired_conversation_is_not_loaded_and_is_purged(
    repo: ConversationRepository, wall: Clock
) -> None:
    before = Process(repo, wall)
    await before.store.put(conversation("short", 2))  # lives ttl/2
    await before.store.put(conversation("long", 4))
    wall.advance(TTL / 2 - 1)
    assert await before.saver.save_all()
    wall.advance(1)

    after = Process(repo, wall)
    assert await after.saver.load() == 1
    assert await after.store.get("short") is None
    assert await after.store.get("long") is not None
    assert set(await saved(repo)) == {"long"}


async def test_write_behind_saves_changes_and_deletes_what_ended(
    repo: ConversationRepository, wall: Clock
) -> None:
    run = Process(repo, wall)
    for conv_id in ("kept", "finished", "abandoned"):
        await run.store.put(conversation(conv_id, 4 if conv_id == "kept" else 0))
    assert await run.saver.flush()
    assert set(await saved(repo)) == {"kept", "finished", "abandoned"}

    await run.store.delete("finished")
    await run.store.put(conversation("kept", 6))
    wall.advance(TTL / 2)  # "abandoned" had at most 2 sentences: it expires
    assert await run.saver.flush()
    rows = await saved(repo)
    assert set(rows) == {"kept"}
    assert Conversation.from_json(rows["kept"].data).sentence_count() == 6


async def test_a_use_moves_the_saved_expiry(repo: ConversationRepository, wall: Clock) -> None:
    run = Process(repo, wall)
    await run.store.put(conversation("c", 4))
    assert await run.saver.flush()
    assert (await saved(repo))["c"].expires_at == WALL_START + TTL
    wall.advance(100)
    await run.store.touch("c")  # read, not changed: still a use
    assert await run.saver.flush()
    assert (await saved(repo))["c"].expires_at == WALL_START + 100 + TTL


async def test_one_conversation_the_database_refuses_does_not_stop_the_others(
    engine: AsyncEngine, repo: ConversationRepository, wall: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # The database refuses rows over 10 kB, as a size limit or a full disk would.
    await _sql(
        engine,
        "CREATE TRIGGER too_big BEFORE INSERT ON conversations WHEN length(NEW.data) > 10000 "
        "BEGIN SELECT RAISE(ABORT, 'row too big'); END",
    )
    run = Process(repo, wall)
    await run.store.put(conversation("big", 4, text_size=20_000))
    for index in range(50):
        await run.store.put(conversation(f"small{index}", 4))
    with caplog.at_level(logging.WARNING, logger="alice_py.store.saver"):
        assert not await run.saver.flush()
        await run.store.put(conversation("small0", 6))
        await run.store.put(conversation("later", 4))
        assert not await run.saver.flush()  # retried; the others still go through
    rows = await saved(repo)
    assert set(rows) == {f"small{index}" for index in range(50)} | {"later"}
    assert Conversation.from_json(rows["small0"].data).sentence_count() == 6
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "could not save 1 conversation(s) (big), will retry; the others are saved: row too big"
    ]
    assert run.saver.failing == {"big"}

    await _sql(engine, "DROP TRIGGER too_big")
    with caplog.at_level(logging.INFO, logger="alice_py.store.saver"):
        assert await run.saver.flush()
    assert "big" in await saved(repo)
    assert "conversation big saved after earlier failures" in caplog.text


async def test_a_failed_write_is_logged_and_retried_with_nothing_lost(
    engine: AsyncEngine, repo: ConversationRepository, wall: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    run = Process(repo, wall)
    await run.store.put(conversation("a", 4))
    await run.store.put(conversation("b", 4))
    assert await run.saver.flush()

    await _sql(engine, "ALTER TABLE conversations RENAME TO conversations_away")  # the database breaks
    await run.store.put(conversation("c", 4))
    await run.store.delete("a")
    with caplog.at_level(logging.WARNING, logger="alice_py.store.saver"):
        assert not await run.saver.flush()
        assert not await run.saver.flush()  # and again: still nothing forgotten
    assert "could not save 1 conversation(s) (c), will retry" in caplog.text
    assert "could not delete 1 ended conversation(s), will retry: no such table" in caplog.text
    assert run.saver.pending == ({"c"}, {"a"})
    assert await run.store.get("a") is None  # finished: the database's stale copy does not count

    await _sql(engine, "ALTER TABLE conversations_away RENAME TO conversations")
    assert await run.saver.flush()
    assert set(await saved(repo)) == {"b", "c"}


async def test_an_evicted_conversation_is_saved_as_it_leaves_and_comes_back_whole(
    repo: ConversationRepository, wall: Clock
) -> None:
    run = Process(repo, wall, max_live=2)
    await run.store.put(conversation("old", 4))
    assert await run.saver.flush()
    await run.store.put(conversation("old", 6))  # changed, not yet written
    wall.advance(100)
    await run.store.put(conversation("a", 4))
    await run.store.put(conversation("b", 4))  # pushes "old" out
    assert not await run.live.exists("old")
    # Before the next round the database still has the older copy: the leaving one is used.
    back = await run.store.get("old")
    assert back is not None and back.sentence_count() == 6
    assert (await run.live.entry("old")) is not None
    assert (await run.live.entry("old")).expires_at == WALL_START + TTL  # type: ignore[union-attr]

    for index in range(3):  # a flood of new ones pushes everything out
        await run.store.put(conversation(f"new{index}", 0))
    assert await run.saver.flush()
    rows = await saved(repo)
    assert {"old", "a", "b"} <= set(rows)
    assert Conversation.from_json(rows["old"].data).sentence_count() == 6
    for conv_id, sentences in (("old", 6), ("a", 4), ("b", 4)):
        conv = await run.store.get(conv_id)
        assert conv is not None and conv.sentence_count() == sentences


async def test_a_finished_or_expired_conversation_never_comes_back(
    repo: ConversationRepository, wall: Clock
) -> None:
    run = Process(repo, wall, max_live=1)
    await run.store.put(conversation("finished", 4))
    await run.store.put(conversation("expiring", 2))  # evicts "finished"; lives ttl/2
    assert await run.saver.flush()
    assert await run.store.delete("finished")  # loaded back, then finished
    assert "finished" not in await saved(repo)  # at once, not next round: a crash cannot revive it
    assert await run.store.get("finished") is None
    wall.advance(TTL / 2)
    assert await run.store.get("expiring") is None
    assert await run.saver.flush()
    assert await saved(repo) == {}
    assert not await run.store.exists("finished")


async def test_nothing_is_written_while_the_writer_lock_is_lost(
    repo: ConversationRepository, wall: Clock
) -> None:
    run = Process(repo, wall)
    allowed = False
    run.saver.writable = lambda: allowed
    await run.store.put(conversation("c", 4))
    assert not await run.saver.flush()
    assert await saved(repo) == {}
    allowed = True
    assert await run.saver.flush()
    assert set(await saved(repo)) == {"c"}


async def test_a_miss_while_the_database_is_away_is_a_503_not_a_404(
    engine: AsyncEngine, repo: ConversationRepository, wall: Clock
) -> None:
    run = Process(repo, wall)
    await _sql(engine, "ALTER TABLE conversations RENAME TO conversations_away")
    with pytest.raises(StorageUnavailable):
        await run.store.get("unknown")


async def test_loading_keeps_the_most_recent_up_to_max_live_and_the_rest_on_use(
    repo: ConversationRepository, wall: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    before = Process(repo, wall)
    for conv_id in ("oldest", "middle", "newest"):
        await before.store.put(conversation(conv_id, 4))
        wall.advance(10)
    assert await before.saver.save_all()

    after = Process(repo, wall, max_live=2)
    with caplog.at_level(logging.INFO):
        assert await after.saver.load() == 2
    assert [conv.id for conv in await after.live.all()] == ["middle", "newest"]
    assert (
        "1 saved conversation(s) left in the database (more than max_live): loaded when next used"
        in caplog.text
    )
    oldest = await after.store.get("oldest")
    assert oldest is not None and oldest.sentence_count() == 4


async def test_an_unreadable_saved_conversation_is_skipped_and_kept(
    repo: ConversationRepository, wall: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    good = conversation("good", 4)
    await repo.save_many(
        [
            SavedConversation("bad", "turbo", b'{"v": 99}', WALL_START, WALL_START + TTL),
            SavedConversation("good", "turbo", good.to_json(), WALL_START, WALL_START + TTL),
        ]
    )
    run = Process(repo, wall)
    with caplog.at_level(logging.WARNING):
        assert await run.saver.load() == 1
    assert "saved conversation bad is unreadable" in caplog.text
    assert set(await saved(repo)) == {"bad", "good"}  # left for a version that can read it


async def test_the_write_behind_task_runs_until_stopped(repo: ConversationRepository, wall: Clock) -> None:
    run = Process(repo, wall)
    task = asyncio.create_task(write_behind(run.saver, 0.01))
    await run.store.put(conversation("c", 4))
    async with asyncio.timeout(2):
        while "c" not in await saved(repo):  # noqa: ASYNC110 - the database: nothing to await on
            await asyncio.sleep(0.01)
    await stop_task(task)
    assert task.cancelled()


async def test_with_write_behind_off_only_evicted_conversations_are_saved(
    repo: ConversationRepository, wall: Clock
) -> None:
    run = Process(repo, wall, max_live=1)
    await run.store.put(conversation("first", 4))
    await run.store.put(conversation("second", 4))  # pushes "first" out
    task = asyncio.create_task(write_behind(run.saver, 0, evicted_interval=0.01))
    try:
        async with asyncio.timeout(2):
            while "first" not in await saved(repo):  # noqa: ASYNC110 - the database: nothing to await on
                await asyncio.sleep(0.05)
    finally:
        await stop_task(task)
    assert set(await saved(repo)) == {"first"}
    assert run.saver.pending == ({"second"}, frozenset())
