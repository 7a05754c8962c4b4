"""The Alice API against a model server that misbehaves as llama-cpp-python's does: a failed
stream whose kept-alive connection is reset afterwards, and answers cut short with ``[DONE]``
but no ``finish_reason``."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX, FakeState
from tests.alice.conftest import MakeClient
from tests.alice.helpers import joined_answer, messages, read_sse, sentences, streaming_conversation

Client = TestClient[web.Request, web.Application]



def sent_upstream(fake_state: FakeState) -> list[str]:
    return [message["content"] for message in fake_state.last.body["messages"]]


# --- item 10: a failed stream does not fail the next request ---------------------------------------


@pytest.mark.parametrize("chunks", [0, 2])
async def test_after_a_failed_stream_another_conversation_answers(
    client: Client, fake_state: FakeState, chunks: int
) -> None:
    first, second = await streaming_conversation(client), await streaming_conversation(client)
    fake_state.failed_stream_chunks = chunks  # 0: it fails before its first piece
    fake_state.fail_next("failed_stream_reset")
    response = await client.post("/chatgpt/chat", data=b"one two", headers=first)
    if chunks:
        events = await read_sse(response)
        assert events[-1][0] == "error" and "[DONE]" not in messages(events)
    else:
        assert response.status == 502
    assert await sentences(client, first) == []
    # Today's service sent this on the reset connection: 502 "Connection reset by peer".
    response = await client.post("/chatgpt/chat", data=b"hello", headers=second)
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "hello"
    response = await client.post("/chatgpt/chat", data=b"again", headers=first)
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "again"


async def test_a_kept_alive_connection_reset_after_an_answer_is_invisible(
    client: Client, fake_state: FakeState
) -> None:
    first, second = await streaming_conversation(client), await streaming_conversation(client)
    fake_state.fail_next("reset_after_answer")
    response = await client.post("/chatgpt/chat", data=b"one", headers=first)
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "one"
    response = await client.post("/chatgpt/chat", data=b"two", headers=second)
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "two"
    assert fake_state.resets == 1  # the second request met the reset, and was sent again
    assert await sentences(client, second) == ["two", CHAT_PREFIX + "two"]


# --- item 11: no finish_reason, no complete answer -------------------------------------------------


async def test_an_interrupted_stream_is_an_error_event_and_nothing_is_kept(
    client: Client, fake_state: FakeState
) -> None:
    headers = await streaming_conversation(client)
    await (await client.post("/chatgpt/chat", data=b"one", headers=headers)).read()
    fake_state.interrupt_stream_after = 3  # the role chunk, two words, then [DONE]
    response = await client.post("/chatgpt/chat", data=b"a b c d e f", headers=headers)
    events = await read_sse(response)
    assert [kind for kind, _ in events] == ["message", "message", "error"]
    assert "finish_reason" in events[-1][1]
    assert await sentences(client, headers) == ["one", CHAT_PREFIX + "one"]
    fake_state.interrupt_stream_after = None
    response = await client.post("/chatgpt/chat", data=b"three", headers=headers)
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "three"
    assert sent_upstream(fake_state) == ["one", CHAT_PREFIX + "one", "three"]


async def test_an_interrupted_empty_stream_is_an_http_error(client: Client, fake_state: FakeState) -> None:
    headers = await streaming_conversation(client)
    fake_state.interrupt_stream_after = 1  # only the role chunk: no text at all
    response = await client.post("/chatgpt/chat", data=b"one", headers=headers)
    assert response.status == 502
    assert "finish_reason" in await response.text()
    assert await sentences(client, headers) == []  # today: ["one", ""]


async def test_an_interrupted_text_completion_stream_is_an_error_event(
    client: Client, fake_state: FakeState
) -> None:
    fake_state.interrupt_stream_after = 2
    body = b'{"question": "a b c d", "convType": "gpt3", "stream": true}'
    events = await read_sse(await client.post("/chatgpt/quickAnswer", data=body))
    assert [kind for kind, _ in events] == ["message", "message", "error"]
    assert fake_state.last.path == "/v1/completions"


async def test_without_require_finish_reason_the_answer_is_kept(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(upstream={"require_finish_reason": False})
    headers = await streaming_conversation(client)
    fake_state.omit_finish_reason = True  # a server that never sends one
    response = await client.post("/chatgpt/chat", data=b"one", headers=headers)
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "one"
    fake_state.interrupt_stream_after = 3
    response = await client.post("/chatgpt/chat", data=b"a b c", headers=headers)
    assert joined_answer(await read_sse(response)) == "Demo answer "
    assert await sentences(client, headers) == ["one", CHAT_PREFIX + "one", "a b c", "Demo answer "]
    body = b'{"question": "x", "convType": "gpt3", "stream": true}'
    fake_state.interrupt_stream_after = None
    events = await read_sse(await client.post("/chatgpt/quickAnswer", data=body))
    assert joined_answer(events) == COMPLETION_PREFIX + "x"
