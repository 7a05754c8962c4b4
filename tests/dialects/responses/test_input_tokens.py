"""``client.responses.input_tokens.count(...)``: what a create would send, counted offline."""

from __future__ import annotations

import openai
import pytest
import tiktoken
from aiohttp.test_utils import TestServer

from alice_py.engine.tokens import encoding
from alice_py.fake import FakeState
from tests.dialects.responses.conftest import OTHER_KEY, sdk

MESSAGE_OVERHEAD = 3  # OpenAI's chat format: <|start|>role ... <|end|> per message
REPLY_PRIMING = 3  # and the assistant's reply is primed with three more


def expected(*messages: tuple[str, str]) -> int:
    """The count OpenAI's cookbook gives for chat messages (num_tokens_from_messages)."""
    enc: tiktoken.Encoding = encoding("o200k_base")
    return REPLY_PRIMING + sum(MESSAGE_OVERHEAD + len(enc.encode(role)) + len(enc.encode(text))
                               for role, text in messages)  # fmt: skip


async def test_the_count_is_tiktokens_with_the_history_and_no_model_call(
    server: TestServer, fake_state: FakeState
) -> None:
    async with sdk(server) as client:
        counted = await client.responses.input_tokens.count(
            model="gpt-4o-mini", input="How many tokens is this?", instructions="Be brief."
        )
        assert counted.object == "response.input_tokens"
        assert counted.input_tokens == expected(("system", "Be brief."), ("user", "How many tokens is this?"))
        calls = len(fake_state.requests)
        first = await client.responses.create(model="gpt-4o-mini", input="Hello there")
        assert len(fake_state.requests) == calls + 1
        follow = await client.responses.input_tokens.count(
            model="gpt-4o-mini", input="And now?", previous_response_id=first.id
        )
        assert len(fake_state.requests) == calls + 1  # counting never calls the model
    assert follow.input_tokens == expected(
        ("user", "Hello there"), ("assistant", first.output_text), ("user", "And now?")
    )


async def test_another_clients_response_is_not_found_and_bad_input_is_a_400(server: TestServer) -> None:
    async with sdk(server) as client:
        first = await client.responses.create(model="gpt-4o-mini", input="mine")
        with pytest.raises(openai.BadRequestError) as missing:
            await client.responses.input_tokens.count(model="gpt-4o-mini")
        assert missing.value.param == "input"
    async with sdk(server, key=OTHER_KEY) as stranger:
        with pytest.raises(openai.BadRequestError) as caught:
            await stranger.responses.input_tokens.count(
                model="gpt-4o-mini", input="theirs?", previous_response_id=first.id
            )
    assert caught.value.code == "previous_response_not_found"
