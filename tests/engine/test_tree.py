"""Serialization of the message tree, its memory footprint, and the id formats."""

from __future__ import annotations

import dataclasses
import os
import re
import sys

import pytest
import shortuuid

from alice_py import ids
from alice_py.engine.presets import Kind
from alice_py.engine.service import ConversationService
from alice_py.engine.tree import Conversation, KeyedTurn, Message, Summary
from tests.engine.conftest import FakeUpstream


async def branched(service: ConversationService) -> Conversation:
    """Two turns with a regenerated answer, a role-play completion conversation with a model of its own."""
    conv = await service.create(
        Kind.GPT3, prompt="P", human_name="Yuki", ai_name="Neko", stream=True, model="m"
    )
    for question in ("q1", "q2"):
        await (await service.ask(conv.id, question)).collect()
    await (await service.regenerate(conv.id)).collect()
    return await service.get(conv.id)


async def test_serialization_round_trip_keeps_the_whole_tree(service: ConversationService) -> None:
    conv = await branched(service)
    loaded = Conversation.from_json(conv.to_json())
    assert loaded == conv
    assert len(loaded.messages) == 5
    assert loaded.sentences() == ["q1", "answer 1", "q2", "answer 3"]
    assert (loaded.kind, loaded.preset, loaded.stream, loaded.model) == (Kind.GPT3, "roleplay", True, "m")
    # A loaded conversation works like a live one.
    await service.store.put(loaded)
    await (await service.ask(conv.id, "q3")).collect()
    assert len(await service.context_array(conv.id)) == 6


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b'{"v": 1}', b'{"v": 99}', b"not json"],
)
def test_from_json_refuses_what_is_not_a_conversation(data: bytes) -> None:
    with pytest.raises(ValueError, match="conversation"):
        Conversation.from_json(data)


async def test_from_json_refuses_a_broken_tree(service: ConversationService) -> None:
    conv = await branched(service)
    orphan = conv.copy()
    orphan.messages = {m.id: m for m in list(conv.messages.values())[1:]}  # the root is missing
    with pytest.raises(ValueError, match="conversation"):
        Conversation.from_json(orphan.to_json())


def deep_size(conv: Conversation) -> int:
    seen: set[int] = set()
    size = 0
    pending: list[object] = [conv]
    while pending:
        obj = pending.pop()
        if id(obj) in seen or obj is None or isinstance(obj, Kind | bool):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        if isinstance(obj, Conversation | Message):
            pending.extend(getattr(obj, name) for name in obj.__slots__)
        elif isinstance(obj, dict):
            pending.extend(obj.keys())
            pending.extend(obj.values())
    return size


async def test_a_five_turn_conversation_fits_in_8_kib_with_its_text(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO)
    for turn in range(5):
        upstream.say(f"An answer of about a hundred and fifty characters, like most answers are. {turn}" * 2)
        question = f"A question of some sixty characters, as people ask. {turn}"
        await (await service.ask(conv.id, question)).collect()
    stored = await service.get(conv.id)
    text = sum(len(m.content) for m in stored.messages.values()) + len(stored.prompt)
    assert text > 1000
    assert deep_size(stored) <= 8 * 1024
    assert deep_size(Conversation.from_json(stored.to_json())) <= 8 * 1024


def test_conversation_ids_are_8_alphanumerics_and_do_not_repeat() -> None:
    drawn = [ids.new_id() for _ in range(2000)]
    assert all(re.fullmatch(r"[A-Za-z0-9]{8}", i) for i in drawn)
    assert len(set(drawn)) == len(drawn)
    # Every character of the alphabet is in use (not shortuuid's default, which leaves out 0, 1, I, O, l).
    assert set("".join(drawn)) == set(ids.CONVERSATION_ID_ALPHABET)


def test_message_ids_are_opaque_22_character_strings() -> None:
    drawn = [ids.new_message_id() for _ in range(1000)]
    assert all(len(i) == 22 and i.isalnum() for i in drawn)
    assert len(set(drawn)) == len(drawn)


def test_message_ids_are_shortuuids_spread_over_the_whole_alphabet() -> None:
    alphabet = shortuuid.ShortUUID()
    drawn = [ids.new_message_id() for _ in range(1000)]
    assert all(alphabet.encode(alphabet.decode(i), pad_length=22) == i for i in drawn)
    assert set("".join(drawn)) == set(alphabet.get_alphabet())


def test_a_forked_worker_never_draws_its_parents_ids() -> None:
    ids.new_message_id()  # the parent now holds a block of random bytes
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write_end, " ".join(ids.new_message_id() for _ in range(20)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child = set(pipe.read().split())
    parent = {ids.new_message_id() for _ in range(20)}
    assert len(child) == 20
    assert not child & parent


def test_a_copy_keeps_every_field_and_shares_no_dict() -> None:
    conv = Conversation(
        id="c", kind=Kind.GPT3, prompt="P", human_name="Yuki", ai_name="Neko", preset="roleplay",
        stream=True, created=1.0, last_active=2.0, model="m", leaf="a",
        messages={"a": Message("a", None, "user", "hi", 1.5)},
        turns_by_key={"k": KeyedTurn("f", "x", "a", "answer")}, usage=(3, 4), dropped=1, anchor=("a", 1, 3),
        summaries={"a": Summary("s", "a", "the story so far", 1.6, 1)}, summarized=1,
    )  # fmt: skip
    defaults = Conversation(id="", kind=Kind.TURBO, prompt="", human_name="", ai_name="", preset="",
                            stream=False, created=0.0, last_active=0.0)  # fmt: skip
    for field in dataclasses.fields(Conversation):  # a field added later must be copied too
        assert getattr(conv, field.name) != getattr(defaults, field.name), field.name
    copied = conv.copy()
    assert copied == conv
    assert copied.messages is not conv.messages and copied.turns_by_key is not conv.turns_by_key
    assert copied.summaries is not conv.summaries
