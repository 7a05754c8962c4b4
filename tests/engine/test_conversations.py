"""Creating, reading, regenerating, rolling back and finishing conversations."""

from __future__ import annotations

import re

import pytest

from alice_py.engine.presets import DEFAULT_CHAT_PROMPT, DEFAULT_COMPLETION_PROMPT, Kind
from alice_py.engine.service import ConversationService
from alice_py.errors import BadRequest, ConversationNotFound
from alice_py.store.memory import MemoryStore
from tests.engine.conftest import MODELS, TTL, FakeUpstream
from tests.support import Clock


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, (DEFAULT_COMPLETION_PROMPT, "Human", "AI", "default")),
        ({"prompt": ""}, (DEFAULT_COMPLETION_PROMPT, "Human", "AI", "default")),
        ({"prompt": "Be terse.\n"}, ("Be terse.\n", "Human", "AI", "default")),
        ({"settings": "FriendChat"}, ("", "You", "Friend", "friend")),
        ({"settings": "FriendChat", "prompt": "Old friends."}, ("Old friends.", "You", "Friend", "friend")),
        ({"human_name": "Alice", "ai_name": "Bob", "prompt": "P"}, ("P", "Alice", "Bob", "roleplay")),
    ],
)
async def test_create_completion_defaults(
    service: ConversationService, kwargs: dict[str, str], expected: tuple[str, str, str, str]
) -> None:
    conv = await service.create(Kind.GPT3, **kwargs)  # type: ignore[arg-type]
    assert (conv.prompt, conv.human_name, conv.ai_name, conv.preset) == expected
    assert conv.kind is Kind.GPT3 and not conv.stream
    assert re.fullmatch(r"[A-Za-z0-9]{8}", conv.id)
    assert await service.context_array(conv.id) == []


@pytest.mark.parametrize(
    ("kind", "prompt", "expected"),
    [
        (Kind.TURBO, None, ""),
        (Kind.TURBO, "Speak French.", "Speak French."),
        (Kind.GPT4, None, DEFAULT_CHAT_PROMPT),
        (Kind.GPT4, "", DEFAULT_CHAT_PROMPT),
        (Kind.GPT4, "Speak French.", "Speak French."),
    ],
)
async def test_create_chat_defaults(
    service: ConversationService, kind: Kind, prompt: str | None, expected: str
) -> None:
    conv = await service.create(kind, prompt=prompt, stream=True)
    assert (conv.prompt, conv.human_name, conv.ai_name, conv.stream) == (expected, "user", "assistant", True)


async def test_unknown_settings_are_refused(service: ConversationService, store: MemoryStore) -> None:
    with pytest.raises(BadRequest, match=r"^No such setting: Poetry$") as caught:
        await service.create(Kind.GPT3, settings="Poetry")
    assert caught.value.status == 400
    assert await store.count() == 0


async def test_ids_are_unique_among_live_conversations_and_shares(
    store: MemoryStore, upstream: FakeUpstream, clock: Clock
) -> None:
    drawn = iter(["AAAAAAAA", "AAAAAAAA", "SHARED00", "CCCCCCCC"])

    async def id_taken(conv_id: str) -> bool:
        return conv_id == "SHARED00"

    service = ConversationService(
        store, upstream, MODELS, clock=clock, id_taken=id_taken, new_id=lambda: next(drawn)
    )
    assert (await service.create(Kind.TURBO)).id == "AAAAAAAA"
    assert (await service.create(Kind.TURBO)).id == "CCCCCCCC"
    assert await store.count() == 2


CONTEXT_CASES = [
    (
        {"kind": Kind.GPT3},
        DEFAULT_COMPLETION_PROMPT + "\nHuman: 困的时候可以睡觉吗\nAI:  是的,睡觉可以帮助你放松身心。",
    ),
    (
        {"kind": Kind.GPT3, "settings": "FriendChat"},
        "\n\nYou: 困的时候可以睡觉吗\nFriend:  是的,睡觉可以帮助你放松身心。",
    ),
    (
        {"kind": Kind.GPT3, "prompt": "Night.\n\n\n", "human_name": "Yuki", "ai_name": "Neko"},
        "Night.\n\nYuki: 困的时候可以睡觉吗\nNeko:  是的,睡觉可以帮助你放松身心。",
    ),
    ({"kind": Kind.TURBO}, "\n\nuser: 困的时候可以睡觉吗\nassistant:  是的,睡觉可以帮助你放松身心。"),
    (
        {"kind": Kind.GPT4},
        DEFAULT_CHAT_PROMPT + "\n\nuser: 困的时候可以睡觉吗\nassistant:  是的,睡觉可以帮助你放松身心。",
    ),
]


@pytest.mark.parametrize(("create", "expected"), CONTEXT_CASES)
async def test_context_text(
    service: ConversationService, upstream: FakeUpstream, create: dict[str, object], expected: str
) -> None:
    conv = await service.create(**create)  # type: ignore[arg-type]
    upstream.say("\n\n 是的,睡觉可以帮助你放松身心。\n")
    await (await service.ask(conv.id, "困的时候可以睡觉吗")).collect()
    assert await service.context(conv.id) == expected
    assert await service.context_array(conv.id) == ["困的时候可以睡觉吗", " 是的,睡觉可以帮助你放松身心。"]


async def test_questions_lose_surrounding_line_breaks_like_answers(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO)
    await (await service.ask(conv.id, "\r\nfirst\nsecond\n\n")).collect()
    assert await service.context_array(conv.id) == ["first\nsecond", "answer 1"]
    assert upstream.bodies[0]["messages"][-1] == {"role": "user", "content": "first\nsecond"}
    with pytest.raises(BadRequest, match="Question can not be empty"):
        await service.ask(conv.id, "\n\r\n")


async def test_share_snapshot(service: ConversationService) -> None:
    conv = await service.create(Kind.TURBO, prompt="P")
    await (await service.ask(conv.id, "Hi")).collect()
    assert await service.share_snapshot(conv.id) == (conv.id, "P", ["Hi", "answer 1"])


async def test_regenerate_asks_again_and_keeps_the_old_answer_as_a_sibling(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO)
    await (await service.ask(conv.id, "q1")).collect()
    first = await service.ask(conv.id, "q2")
    await first.collect()
    again = await service.regenerate(conv.id)
    assert await again.collect() == "answer 3"
    assert upstream.bodies[2] == upstream.bodies[1]  # the same question, the same history
    assert await service.context_array(conv.id) == ["q1", "answer 1", "q2", "answer 3"]
    assert again.parent_id == first.parent_id
    stored = await service.get(conv.id)
    old = stored.messages[first.message_id]
    assert (old.content, old.parent_id) == ("answer 2", again.parent_id)
    # The old version is still reachable: continuing from it sees the old answer.
    await (await service.ask(conv.id, "q3", parent_id=first.message_id)).collect()
    sent = [m["content"] for m in upstream.bodies[-1]["messages"]]
    assert sent == ["q1", "answer 1", "q2", "answer 2", "q3"]


async def test_regenerate_needs_an_answer(service: ConversationService, upstream: FakeUpstream) -> None:
    conv = await service.create(Kind.TURBO)
    with pytest.raises(BadRequest, match=r"^Nothing to regenerate$"):
        await service.regenerate(conv.id)
    assert upstream.requests == []
    assert not await service.store.is_locked(conv.id)


async def test_rollback_removes_the_last_turn(service: ConversationService, upstream: FakeUpstream) -> None:
    conv = await service.create(Kind.TURBO)
    for question in ("q1", "q2"):
        await (await service.ask(conv.id, question)).collect()
    await (await service.regenerate(conv.id)).collect()
    await service.rollback(conv.id)  # drops q2 with both of its answers
    assert await service.context_array(conv.id) == ["q1", "answer 1"]
    stored = await service.get(conv.id)
    assert [m.content for m in stored.messages.values()] == ["q1", "answer 1"]
    await (await service.ask(conv.id, "q3")).collect()
    assert [m["content"] for m in upstream.bodies[-1]["messages"]] == ["q1", "answer 1", "q3"]
    assert await service.context_array(conv.id) == ["q1", "answer 1", "q3", "answer 4"]
    await service.rollback(conv.id)
    await service.rollback(conv.id)
    assert await service.context_array(conv.id) == []
    with pytest.raises(BadRequest, match=r"^Failed to rollback, dialog is empty$"):
        await service.rollback(conv.id)
    assert not await service.store.is_locked(conv.id)


async def test_finish_deletes(service: ConversationService) -> None:
    conv = await service.create(Kind.TURBO)
    await service.finish(conv.id)
    with pytest.raises(ConversationNotFound):
        await service.context(conv.id)
    with pytest.raises(ConversationNotFound):
        await service.finish(conv.id)


async def test_every_use_restarts_the_time_to_live(service: ConversationService, clock: Clock) -> None:
    conv = await service.create(Kind.TURBO)  # no sentences yet: ttl/2
    for _ in range(3):
        clock.advance(TTL / 2 - 1)
        await service.context(conv.id)
    clock.advance(TTL / 2)
    with pytest.raises(ConversationNotFound):
        await service.context(conv.id)


async def test_a_conversation_with_more_than_two_sentences_lives_a_full_ttl(
    service: ConversationService, clock: Clock
) -> None:
    conv = await service.create(Kind.TURBO)
    for question in ("q1", "q2"):
        await (await service.ask(conv.id, question)).collect()
    clock.advance(TTL - 1)
    assert len(await service.context_array(conv.id)) == 4
    clock.advance(TTL)
    with pytest.raises(ConversationNotFound):
        await service.context_array(conv.id)


@pytest.mark.parametrize("empty", ["", " \n"])
async def test_summary_of_nothing_is_refused(service: ConversationService, empty: str) -> None:
    with pytest.raises(BadRequest, match=r"^Article can not be empty$"):
        await service.summary(empty)


async def test_quick_answer_without_question_is_refused(service: ConversationService) -> None:
    with pytest.raises(BadRequest, match=r"^Question can not be empty$"):
        await service.one_off(Kind.TURBO, question="")
