"""The memory store: time to live (with the ttl/2 rule), LRU eviction, locks, write-behind changes."""

from __future__ import annotations

import logging

import pytest

from alice_py.engine.presets import Kind
from alice_py.engine.tree import Conversation, Message
from alice_py.store.base import LiveEntry, StoreChanges
from alice_py.store.memory import MemoryStore
from tests.engine.conftest import TTL
from tests.support import Clock


def conversation(conv_id: str, sentences: int = 0) -> Conversation:
    conv = Conversation(
        id=conv_id, kind=Kind.TURBO, prompt="", human_name="user", ai_name="assistant",
        preset="default", stream=False, created=0.0, last_active=0.0,
    )
    parent = None
    for index in range(sentences):
        message = Message(f"{conv_id}-{index}", parent, "user" if index % 2 == 0 else "assistant", "s", 0.0)
        conv.add(message)
        parent = message.id
    conv.leaf = parent
    return conv


@pytest.mark.parametrize(("sentences", "lifetime"), [(0, TTL / 2), (2, TTL / 2), (3, TTL), (4, TTL)])
async def test_conversations_expire_after_ttl_or_half_of_it(
    store: MemoryStore, clock: Clock, sentences: int, lifetime: float
) -> None:
    await store.put(conversation("c", sentences))
    clock.advance(lifetime - 0.01)
    assert await store.get("c") is not None  # reading does not restart the time to live
    clock.advance(0.01)
    assert await store.get("c") is None
    assert not await store.exists("c")
    assert await store.count() == 0


async def test_touch_and_put_restart_the_time_to_live(store: MemoryStore, clock: Clock) -> None:
    await store.put(conversation("c", 4))
    clock.advance(TTL - 1)
    await store.touch("c")
    clock.advance(TTL - 1)
    assert await store.exists("c")
    await store.put(conversation("c", 2))  # now short: ttl/2 from now
    clock.advance(TTL / 2)
    assert not await store.exists("c")
    await store.touch("c")  # touching an expired conversation does not revive it
    assert await store.get("c") is None


async def test_the_least_recently_used_conversation_is_evicted_logged_and_handed_over_for_saving(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore(TTL, 2, timer=clock)
    for conv_id in ("a", "b"):
        await store.put(conversation(conv_id))
    b_expiry = (await store.entry("b")).expires_at  # type: ignore[union-attr]
    await store.drain_changes()
    await store.get("a")  # "b" is now the least recently used
    with caplog.at_level(logging.INFO, logger="alice_py.store.memory"):
        await store.put(conversation("c"))
    assert [await store.exists(i) for i in ("a", "b", "c")] == [True, False, True]
    assert caplog.messages == ["conversation b moved out of memory: more than 2 live conversations"]
    changes = await store.drain_changes()
    assert (changes.changed, changes.deleted) == ({"c"}, frozenset())  # evicted is not ended
    assert [(entry.conv.id, entry.expires_at) for entry in changes.evicted] == [("b", b_expiry)]


async def test_add_never_overwrites_and_replace_never_revives(store: MemoryStore) -> None:
    original = conversation("c", 2)
    assert await store.add(original)
    assert not await store.add(conversation("c"))
    assert await store.get("c") is original
    assert await store.delete("c")
    assert not await store.delete("c")
    assert not await store.replace(conversation("c"))
    assert await store.get("c") is None


async def test_locks(store: MemoryStore, clock: Clock) -> None:
    assert await store.acquire("c") == (None, None, False)  # not live: nothing to lock
    await store.put(conversation("c", 4))
    clock.advance(TTL - 1)
    token, conv, live = await store.acquire("c")
    assert token is not None and conv is not None and conv.sentence_count() == 4 and live
    assert await store.acquire("c") == (None, None, True)  # held: busy
    assert await store.is_locked("c")
    clock.advance(TTL - 1)
    assert await store.exists("c")  # taking the lock was a use: the countdown started again
    await store.unlock("c")
    assert not await store.is_locked("c")
    token, _, _ = await store.acquire("c")
    assert token is not None
    assert not await store.replace(conversation("c", 6), token=token + 1, release=True)  # not its lock
    assert await store.is_locked("c")
    assert await store.replace(conversation("c", 6), token=token, release=True)  # commit and release
    assert not await store.is_locked("c")
    assert (await store.get("c")).sentence_count() == 6  # type: ignore[union-attr]


async def test_drain_changes_reports_puts_deletes_and_expiry_once(store: MemoryStore, clock: Clock) -> None:
    await store.put(conversation("kept", 4))
    await store.put(conversation("finished", 4))
    await store.put(conversation("short", 2))
    await store.delete("finished")
    assert await store.drain_changes() == StoreChanges(frozenset({"kept", "short"}), frozenset({"finished"}))
    assert await store.drain_changes() == StoreChanges(frozenset(), frozenset())
    clock.advance(TTL / 2)
    await store.touch("kept")  # a use: the saved expiry must follow
    assert await store.drain_changes() == StoreChanges(frozenset({"kept"}), frozenset({"short"}))
    assert [conv.id for conv in await store.all()] == ["kept"]


async def test_close_forgets_everything(store: MemoryStore) -> None:
    await store.put(conversation("c"))
    await store.acquire("c")
    await store.close()
    assert await store.count() == 0
    assert not await store.is_locked("c")


async def test_a_restored_conversation_keeps_its_saved_expiry_and_is_not_a_change(
    store: MemoryStore, clock: Clock
) -> None:
    await store.put(conversation("now", 4))
    await store.drain_changes()
    assert await store.restore(LiveEntry(conversation("earlier", 4), clock() + TTL / 2))
    assert not await store.restore(LiveEntry(conversation("now", 2), clock() + TTL))  # live: kept
    assert not await store.restore(LiveEntry(conversation("gone", 4), clock()))  # expired: refused
    assert await store.drain_changes() == StoreChanges(frozenset(), frozenset())
    clock.advance(TTL / 2)
    assert await store.count() == 1
    assert (await store.exists("earlier"), await store.exists("now")) == (False, True)
    assert (await store.get("now")).sentence_count() == 4  # type: ignore[union-attr]
    assert (await store.drain_changes()).deleted == frozenset({"earlier"})


async def test_the_ttl_follows_the_path_not_the_whole_tree(store: MemoryStore, clock: Clock) -> None:
    conv = conversation("c", 4)
    conv.leaf = "c-1"  # rolled back to the second sentence: two on the path, four in the tree
    await store.put(conv)
    clock.advance(TTL / 2)
    assert not await store.exists("c")
