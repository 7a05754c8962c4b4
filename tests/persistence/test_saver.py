"""The saver on a real SQLite file, with injected clocks: the store's monotonic one and the wall clock.

A "restart" is a new store whose monotonic clock starts somewhere else entirely, while the
wall clock only moves on: what carries over is the idle time.
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
from alice_py.persistence import ConversationSaver, PersistentMemoryStore, stop_task, write_behind

TTL = 1800.0
WALL_START = 1_700_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def conversation(conv_id: str, sentences: int) -> Conversation:
    conv = Conversation(
        id=conv_id, kind=Kind.TURBO, prompt="", human_name="user", ai_name="assistant",
        preset="default", stream=False, created=WALL_START, last_active=WALL_START,
    )  # fmt: skip
    parent = None
    for index in range(sentences):
        role: Role = "user" if index % 2 == 0 else "assistant"
        message = Message(f"{conv_id}-{index}", parent, role, f"sentence {index} 你好", WALL_START)
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
    """One run of the service: a store on its own monotonic clock, and its saver."""

    def __init__(
        self, repo: ConversationRepository, wall: Clock, mono_start: float, max_live: int = 100
    ) -> None:
        self.mono = Clock(mono_start)
        self.wall = wall
        self.store = PersistentMemoryStore(TTL, max_live, timer=self.mono)
        self.saver = ConversationSaver(self.store, repo, clock=wall)

    def advance(self, seconds: float) -> None:
        self.mono.advance(seconds)
        self.wall.advance(seconds)


async def saved(repo: ConversationRepository) -> dict[str, SavedConversation]:
    return {row.id: row for row in await repo.load_live(0.0)}


@pytest.mark.parametrize(("sentences", "lifetime"), [(4, TTL), (2, TTL / 2)])
async def test_the_time_to_live_runs_on_across_a_restart(
    repo: ConversationRepository, wall: Clock, sentences: int, lifetime: float
) -> None:
    before = Process(repo, wall, mono_start=100.0)
    await before.store.put(conversation("c", sentences))
    before.advance(600)  # idle 10 minutes when the service stops
    assert await before.saver.save_all()
    wall.advance(60)  # down for a minute

    after = Process(repo, wall, mono_start=5.0)
    assert await after.saver.load() == 1
    restored = await after.store.get("c")
    assert restored is not None and restored.sentences() == conversation("c", sentences).sentences()
    after.advance(lifetime - 660 - 0.01)
    assert await after.store.exists("c")
    after.advance(0.01)
    assert not await after.store.exists("c")


async def test_a_conversation_idle_past_its_lifetime_is_not_loaded_and_is_purged(
    repo: ConversationRepository, wall: Clock
) -> None:
    before = Process(repo, wall, mono_start=100.0)
    await before.store.put(conversation("short", 2))  # lives ttl/2
    await before.store.put(conversation("long", 4))
    before.advance(TTL / 2 - 1)
    assert await before.saver.save_all()
    wall.advance(1)

    after = Process(repo, wall, mono_start=0.0)
    assert await after.saver.load() == 1
    assert await after.store.get("short") is None
    assert await after.store.get("long") is not None
    assert set(await saved(repo)) == {"long"}


async def test_write_behind_saves_changes_and_deletes_what_ended(
    repo: ConversationRepository, wall: Clock
) -> None:
    run = Process(repo, wall, mono_start=0.0)
    for conv_id in ("kept", "finished", "abandoned"):
        await run.store.put(conversation(conv_id, 4 if conv_id == "kept" else 0))
    assert await run.saver.flush()
    assert set(await saved(repo)) == {"kept", "finished", "abandoned"}

    await run.store.delete("finished")
    await run.store.put(conversation("kept", 6))
    run.advance(TTL / 2)  # "abandoned" had at most 2 sentences: it expires
    assert await run.saver.flush()
    rows = await saved(repo)
    assert set(rows) == {"kept"}
    assert Conversation.from_json(rows["kept"].data).sentence_count() == 6


async def test_a_use_moves_the_saved_expiry(repo: ConversationRepository, wall: Clock) -> None:
    run = Process(repo, wall, mono_start=0.0)
    await run.store.put(conversation("c", 4))
    assert await run.saver.flush()
    assert (await saved(repo))["c"].expires_at == WALL_START + TTL
    run.advance(100)
    await run.store.touch("c")  # read, not changed: still a use
    assert await run.saver.flush()
    row = (await saved(repo))["c"]
    assert (row.last_active, row.expires_at) == (WALL_START + 100, WALL_START + 100 + TTL)


async def _rename(engine: AsyncEngine, old: str, new: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_a_failed_write_is_logged_and_retried_with_nothing_lost(
    engine: AsyncEngine, repo: ConversationRepository, wall: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    run = Process(repo, wall, mono_start=0.0)
    await run.store.put(conversation("a", 4))
    await run.store.put(conversation("b", 4))
    assert await run.saver.flush()

    await _rename(engine, "conversations", "conversations_away")  # the database breaks
    await run.store.put(conversation("c", 4))
    await run.store.delete("a")
    with caplog.at_level(logging.WARNING, logger="alice_py.persistence"):
        assert not await run.saver.flush()
        assert not await run.saver.flush()  # and again: still nothing forgotten
    assert "could not save 1 changed and delete 1 ended conversation(s), will retry" in caplog.text
    assert "no such table" in caplog.text

    await _rename(engine, "conversations_away", "conversations")
    assert await run.saver.flush()
    assert set(await saved(repo)) == {"b", "c"}


async def test_a_failed_save_at_shutdown_leaves_the_last_write_behind_state(
    engine: AsyncEngine, repo: ConversationRepository, wall: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    run = Process(repo, wall, mono_start=0.0)
    await run.store.put(conversation("c", 4))
    assert await run.saver.flush()
    await run.store.put(conversation("c", 6))
    await _rename(engine, "conversations", "conversations_away")
    with caplog.at_level(logging.ERROR, logger="alice_py.persistence"):
        assert not await run.saver.save_all()
    assert "could not save the 1 live conversation(s) at shutdown" in caplog.text
    await _rename(engine, "conversations_away", "conversations")
    assert Conversation.from_json((await saved(repo))["c"].data).sentence_count() == 4


async def test_loading_keeps_the_most_recent_up_to_max_live(
    repo: ConversationRepository, wall: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    before = Process(repo, wall, mono_start=0.0)
    for conv_id in ("oldest", "middle", "newest"):
        await before.store.put(conversation(conv_id, 4))
        before.advance(10)
    assert await before.saver.save_all()

    after = Process(repo, wall, mono_start=0.0, max_live=2)
    with caplog.at_level(logging.WARNING):
        assert await after.saver.load() == 2
    assert [conv.id for conv in await after.store.all()] == ["middle", "newest"]
    assert "1 saved conversation(s) not loaded: more than max_live" in caplog.text
    assert "evicted" not in caplog.text


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
    run = Process(repo, wall, mono_start=0.0)
    with caplog.at_level(logging.WARNING):
        assert await run.saver.load() == 1
    assert "saved conversation bad is unreadable" in caplog.text
    assert set(await saved(repo)) == {"bad", "good"}  # left for a version that can read it


async def test_the_write_behind_task_runs_until_stopped(repo: ConversationRepository, wall: Clock) -> None:
    run = Process(repo, wall, mono_start=0.0)
    task = asyncio.create_task(write_behind(run.saver, 0.01))
    await run.store.put(conversation("c", 4))
    async with asyncio.timeout(2):
        while "c" not in await saved(repo):  # noqa: ASYNC110 - the database: nothing to await on
            await asyncio.sleep(0.01)
    await stop_task(task)
    assert task.cancelled()
