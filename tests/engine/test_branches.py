"""Edit, checkout, fork and keyed turns in the engine (no HTTP): the tree they leave."""

from __future__ import annotations

import pytest

from alice_py.engine.presets import Kind
from alice_py.engine.service import ConversationService
from alice_py.engine.tree import Conversation
from tests.engine.conftest import FakeUpstream


def content_ids(conv: Conversation) -> dict[str, str]:
    return {message.content: message.id for message in conv.messages.values()}


async def test_newest_leaf_below_follows_the_latest_branch(service: ConversationService) -> None:
    conv = await service.create(Kind.TURBO)
    for question in ("q1", "q2", "q3"):
        await (await service.ask(conv.id, question)).collect()
    ids = content_ids(await service.get(conv.id))
    await (await service.edit(conv.id, ids["q2"], "q2b")).collect()
    edited = await service.get(conv.id)
    assert edited.newest_leaf_below(ids["answer 1"]) == content_ids(edited)["answer 4"]
    assert edited.newest_leaf_below(ids["q2"]) == ids["answer 3"]
    assert edited.newest_leaf_below(ids["answer 3"]) == ids["answer 3"]


async def test_keyed_turns_survive_serialization_and_stay_out_of_a_fork(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO)
    await (await service.ask(conv.id, "q1", idempotency_key="k")).collect()
    kept = await service.get(conv.id)
    loaded = Conversation.from_json(kept.to_json())
    assert loaded == kept and set(loaded.turns_by_key or ()) == {"k"}
    await service.store.put(loaded)
    assert await (await service.ask(conv.id, "q1", idempotency_key="k")).collect() == "answer 1"
    assert len(upstream.requests) == 1

    forked = await service.fork(conv.id)
    assert forked.turns_by_key is None
    assert await (await service.ask(forked.id, "q1", idempotency_key="k")).collect() == "answer 2"


async def test_a_failed_keyed_turn_keeps_no_record(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO)
    upstream.fail(RuntimeError("boom"))
    answer = await service.ask(conv.id, "q1", idempotency_key="k")
    with pytest.raises(RuntimeError, match="boom"):
        await answer.collect()
    assert (await service.get(conv.id)).turns_by_key is None
    assert await (await service.ask(conv.id, "q1", idempotency_key="k")).collect() == "answer 2"
