"""What reaches the upstream for each kind: transcript, roles, presets, stop words, models."""

from __future__ import annotations

import pytest

from alice_py.engine.presets import DEFAULT_CHAT_PROMPT, DEFAULT_COMPLETION_PROMPT, Kind
from alice_py.engine.service import ConversationService
from tests.engine.conftest import FakeUpstream

DEFAULT_PARAMS = {
    "max_tokens": 500, "temperature": 0.9, "top_p": 1, "frequency_penalty": 0, "presence_penalty": 0.6,
}
FRIEND_PARAMS = {
    "max_tokens": 512, "temperature": 0.5, "top_p": 1, "frequency_penalty": 0.5, "presence_penalty": 0,
}


async def two_turns(service: ConversationService, upstream: FakeUpstream, conv_id: str) -> None:
    upstream.say("\nHello there\n")
    await (await service.ask(conv_id, "Hi")).collect()
    await (await service.ask(conv_id, "How are you?")).collect()


async def test_default_completion_sends_the_transcript_with_the_default_preset(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.GPT3)
    await two_turns(service, upstream, conv.id)
    endpoint = upstream.requests[-1][1].endpoint
    assert endpoint == "completion"
    assert upstream.bodies[-1] == {
        "model": "test-instruct",
        "prompt": DEFAULT_COMPLETION_PROMPT + "\nHuman: Hi\nAI: Hello there\nHuman: How are you?\nAI: ",
        **DEFAULT_PARAMS,
        "stop": ["\nHuman:", "\nAI:"],
    }


async def test_friend_chat_uses_you_and_friend_and_stops_at_you(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.GPT3, settings="FriendChat")
    await two_turns(service, upstream, conv.id)
    assert upstream.bodies[-1] == {
        "model": "test-instruct",
        "prompt": "\n\nYou: Hi\nFriend: Hello there\nYou: How are you?\nFriend: ",
        **FRIEND_PARAMS,
        "stop": ["You:"],
    }


async def test_role_play_uses_its_names_and_stops_at_the_human_name(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.GPT3, prompt="Bob is a pirate.\n\n", human_name="Alice", ai_name="Bob")
    upstream.say("Arr!")
    await (await service.ask(conv.id, "Hi")).collect()
    await (await service.ask(conv.id, "Where is the ship?")).collect()
    assert upstream.bodies[-1] == {
        "model": "test-instruct",
        "prompt": "Bob is a pirate.\n\nAlice: Hi\nBob: Arr!\nAlice: Where is the ship?\nBob: ",
        **FRIEND_PARAMS,
        "stop": ["Alice:"],
    }


async def test_turbo_roles_alternate_starting_with_user_and_no_empty_system(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO)
    await two_turns(service, upstream, conv.id)
    assert [request.endpoint for _, request in upstream.requests] == ["chat", "chat"]
    assert upstream.bodies[0] == {"model": "test-turbo", "messages": [{"role": "user", "content": "Hi"}]}
    assert upstream.bodies[-1] == {
        "model": "test-turbo",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello there"},
            {"role": "user", "content": "How are you?"},
        ],
    }


async def test_turbo_prompt_is_the_system_message(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO, prompt="Speak French.")
    await (await service.ask(conv.id, "Hi")).collect()
    assert upstream.bodies[-1]["messages"] == [
        {"role": "system", "content": "Speak French."},
        {"role": "user", "content": "Hi"},
    ]


async def test_gpt4_default_prompt_and_model(service: ConversationService, upstream: FakeUpstream) -> None:
    conv = await service.create(Kind.GPT4)
    await two_turns(service, upstream, conv.id)
    assert upstream.bodies[-1] == {
        "model": "test-gpt4",
        "messages": [
            {"role": "system", "content": DEFAULT_CHAT_PROMPT},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello there"},
            {"role": "user", "content": "How are you?"},
        ],
    }


async def test_a_conversation_model_overrides_the_kind_model(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO, model="local-llama")
    await (await service.ask(conv.id, "Hi")).collect()
    assert upstream.bodies[-1]["model"] == "local-llama"


async def test_quick_answer_gpt3_uses_examples_and_the_quick_preset(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    answer = await service.one_off(
        Kind.GPT3, prompt="Write poems.\n", examples=["sun", "bright sun"], question="moon", stream=False
    )
    await answer.collect()
    assert upstream.bodies == [
        {
            "model": "test-instruct",
            "prompt": "Write poems.\n\nHuman: sun\nAI: bright sun\nHuman: moon\nAI: ",
            "max_tokens": 3500,
            "temperature": 0.9,
            "top_p": 1,
            "frequency_penalty": 0,
            "presence_penalty": 0.6,
            "stop": ["\nHuman:", "\nAI:"],
        }
    ]


@pytest.mark.parametrize(("kind", "model"), [(Kind.TURBO, "test-turbo"), (Kind.GPT4, "test-gpt4")])
async def test_quick_answer_chat_kinds_send_examples_as_alternating_turns(
    service: ConversationService, upstream: FakeUpstream, kind: Kind, model: str
) -> None:
    answer = await service.one_off(kind, examples=["sun", "bright sun"], question="moon", stream=True)
    assert answer.streaming
    assert await answer.collect() == f"answer {1}"
    assert upstream.requests[0][0] == "stream"
    assert upstream.bodies == [
        {
            "model": model,
            "messages": [
                {"role": "user", "content": "sun"},
                {"role": "assistant", "content": "bright sun"},
                {"role": "user", "content": "moon"},
            ],
        }
    ]


async def test_summary_asks_for_a_tldr_with_the_summary_preset(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    upstream.say("\n\nIt is short.\n")
    answer = await service.summary("A long article.")
    assert not answer.streaming
    assert await answer.collect() == "It is short."
    assert upstream.requests[0][0] == "call"
    assert upstream.bodies == [
        {
            "model": "test-instruct",
            "prompt": "A long article.\nTl;dr\n",
            "max_tokens": 2048,
            "temperature": 0.7,
            "top_p": 1,
            "frequency_penalty": 0,
            "presence_penalty": 1,
        }
    ]


async def test_one_off_chat_sends_the_messages_as_given(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    answer = await service.one_off_chat(messages, stream=True)
    assert answer.conversation_id is None
    assert [piece async for piece in answer] == ["answer 1"]
    assert upstream.bodies == [{"model": "test-turbo", "messages": messages}]
