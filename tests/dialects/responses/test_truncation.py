"""``truncation`` on ``/v1/responses`` with a small window (``[context] windows``), via the SDK."""

from __future__ import annotations

import openai
import pytest
from aiohttp.test_utils import TestServer

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.conftest import CLIENT_KEY, MakeServer
from tests.dialects.responses.conftest import sdk

LONG = " ".join(["word"] * 60)  # ~60 tokens a turn, ~120 with its answer


@pytest.fixture
async def small(make_server: MakeServer) -> TestServer:
    return await make_server(
        auth={"mode": "simple"},
        openai={"client_keys": (CLIENT_KEY,)},
        context={"windows": {"gpt-4o-mini": 300}, "reserve": 20},
    )


def chats(fake_state: FakeState) -> int:
    return sum(1 for r in fake_state.requests if r.path.endswith("/chat/completions"))


async def test_disabled_refuses_before_any_upstream_call_and_auto_drops_oldest_turns(
    small: TestServer, fake_state: FakeState
) -> None:
    async with sdk(small) as client:
        first = await client.responses.create(model="gpt-4o-mini", input="one " + LONG, instructions="Sys")
        second = await client.responses.create(
            model="gpt-4o-mini", input="two " + LONG, previous_response_id=first.id
        )
        assert second.truncation == "disabled" and chats(fake_state) == 2
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(
                model="gpt-4o-mini", input="three " + LONG, previous_response_id=second.id
            )
        assert caught.value.code == "context_length_exceeded" and caught.value.param == "input"
        assert "300" in caught.value.message
        assert chats(fake_state) == 2  # nothing was sent
        third = await client.responses.create(
            model="gpt-4o-mini",
            input="three " + LONG,
            previous_response_id=second.id,
            instructions="Sys",
            truncation="auto",
        )
    assert third.truncation == "auto" and third.output_text == CHAT_PREFIX + "three " + LONG
    sent = fake_state.last.body["messages"]
    # the system message and the newest whole turns that fit; the oldest turn left out
    assert sent[0] == {"role": "system", "content": "Sys"}
    assert [m["content"].split()[0] for m in sent[1:]] == ["two", CHAT_PREFIX.split()[0], "three"]


async def test_auto_still_refuses_an_input_that_alone_passes_the_window(
    small: TestServer, fake_state: FakeState
) -> None:
    async with sdk(small) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="gpt-4o-mini", input=LONG * 6, truncation="auto")
    assert caught.value.code == "context_length_exceeded"
    assert chats(fake_state) == 0


async def test_an_unknown_truncation_is_400(small: TestServer) -> None:
    async with sdk(small) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="gpt-4o-mini", input="x", truncation="middle")  # type: ignore[arg-type]
    assert caught.value.param == "truncation"
