"""node's ``/conversation`` and ``/v1`` against a model server that misbehaves as
llama-cpp-python's does: a failed stream whose kept-alive connection is reset afterwards, and
answers cut short with ``[DONE]`` but no ``finish_reason``."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX, FakeState
from tests.dialects.conftest import CLIENT_KEY, MakeClient, MakeServer

Client = TestClient[web.Request, web.Application]
CHAT = "/v1/chat/completions"


async def ask(client: Client, message: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/conversation", json={"message": message, **extra})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def history(fake_state: FakeState) -> list[str]:
    """What the last turn sent upstream, the system prompt left out."""
    return [message["content"] for message in fake_state.last.body["messages"][1:]]


def sse_frames(raw: str) -> list[str]:
    return [frame for frame in raw.split("\n\n") if frame]


# --- node: POST /conversation ----------------------------------------------------------------------


async def test_node_interrupted_stream_is_an_error_event_and_nothing_is_kept(
    client: Client, fake_state: FakeState
) -> None:
    conversation = (await ask(client, "one"))["conversationId"]
    fake_state.interrupt_stream_after = 3
    body = {"message": "a b c d", "conversationId": conversation, "stream": True}
    raw = await (await client.post("/conversation", json=body)).text()
    assert raw.startswith('data: "Demo "\n\ndata: "answer "\n\nevent: error\ndata: ')
    assert "finish_reason" in orjson.loads(raw.split("event: error\ndata: ")[1].split("\n")[0])["error"]
    assert "[DONE]" not in raw and "event: result" not in raw
    fake_state.interrupt_stream_after = None
    await ask(client, "three", conversationId=conversation)
    assert history(fake_state) == ["one", CHAT_PREFIX + "one", "three"]


async def test_node_without_require_finish_reason_the_cut_answer_is_kept(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(upstream={"require_finish_reason": False})
    fake_state.interrupt_stream_after = 3
    raw = await (await client.post("/conversation", json={"message": "a b c d", "stream": True})).text()
    assert "event: result" in raw and raw.endswith("data: [DONE]\n\n")
    result = orjson.loads(raw.split("event: result\ndata: ")[1].split("\n")[0])
    fake_state.interrupt_stream_after = None
    await ask(client, "next", conversationId=result["conversationId"])
    assert history(fake_state) == ["a b c d", "Demo answer ", "next"]


async def test_node_after_a_failed_stream_the_next_request_answers(
    client: Client, fake_state: FakeState
) -> None:
    fake_state.fail_next("failed_stream_reset")
    raw = await (await client.post("/conversation", json={"message": "one two", "stream": True})).text()
    assert "event: error" in raw
    assert (await ask(client, "hello"))["response"] == CHAT_PREFIX + "hello"


# --- /v1 -------------------------------------------------------------------------------------------


def sdk(server: TestServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=str(server.make_url("/v1")), api_key=CLIENT_KEY, max_retries=0, timeout=10
    )


@pytest.fixture
async def server(make_server: MakeServer) -> TestServer:
    return await make_server(auth={"mode": "simple"}, openai={"client_keys": (CLIENT_KEY,)})


async def test_v1_interrupted_chat_stream_raises_in_the_sdk(
    server: TestServer, fake_state: FakeState
) -> None:
    fake_state.interrupt_stream_after = 3
    received: list[str] = []
    async with sdk(server) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "a b c d"}], stream=True
        )
        with pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Demo answer "  # relayed as they came
    assert "finish_reason" in caught.value.message


async def test_v1_interrupted_completion_stream_ends_with_an_error_chunk_not_done(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    fake_state.interrupt_stream_after = 2
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "a b c", "stream": True}
    response = await client.post("/v1/completions", json=body)
    assert response.status == 200
    frames = sse_frames(await response.text())
    assert [orjson.loads(f.removeprefix("data: "))["choices"][0]["text"] for f in frames[:2]] == [
        "Demo ",
        "completion ",
    ]
    error = orjson.loads(frames[2].removeprefix("data: "))["error"]
    assert "finish_reason" in error["message"]
    assert len(frames) == 3  # no data: [DONE]


async def test_v1_without_require_finish_reason_the_stream_ends_with_done(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(upstream={"require_finish_reason": False})
    fake_state.omit_finish_reason = True
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Human: x\nAI: ", "stream": True}
    frames = sse_frames(await (await client.post("/v1/completions", json=body)).text())
    assert frames[-1] == "data: [DONE]"
    texts = [orjson.loads(f.removeprefix("data: "))["choices"][0]["text"] for f in frames[:-1]]
    assert "".join(texts) == COMPLETION_PREFIX + "x"


async def test_v1_after_a_failed_stream_the_next_request_answers(
    server: TestServer, fake_state: FakeState
) -> None:
    fake_state.fail_next("failed_stream_reset")
    async with sdk(server) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
        answer = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
    assert answer.choices[0].message.content == CHAT_PREFIX + "hello"
