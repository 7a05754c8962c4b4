"""Streamed answers: Server-Sent Events, errors in the stream, and clients that go away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.app import create_app
from alice_py.fake import CHAT_PREFIX, FakeState, RunningFake
from alice_py.web.sse import sse_event
from tests.alice.conftest import make_config
from tests.alice.helpers import (
    joined_answer,
    messages,
    parse_sse,
    read_sse,
    sentences,
    streaming_conversation,
    wait_until,
)

Client = TestClient[web.Request, web.Application]



def test_a_multi_line_piece_is_one_event_of_several_data_lines() -> None:
    assert sse_event("a\nb\n\nc") == b"data: a\ndata: b\ndata: \ndata: c\n\n"
    assert sse_event(" x") == b"data:  x\n\n"
    assert sse_event("boom", "error") == b"event: error\ndata: boom\n\n"
    for piece in ("a\nb", "\n", "\n\nx\n", " lead", "x\r\ny"):
        assert parse_sse(sse_event(piece).decode()) == [("message", piece.replace("\r\n", "\n"))]


async def test_pieces_then_done(client: Client, fake_state: FakeState) -> None:
    headers = await streaming_conversation(client)
    response = await client.post("/chatgpt/chat", data="こんにちは 世界".encode(), headers=headers)
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = await read_sse(response)
    assert len(messages(events)) > 3  # one event per piece, as the model wrote them
    assert joined_answer(events) == CHAT_PREFIX + "こんにちは 世界"
    assert await sentences(client, headers) == ["こんにちは 世界", CHAT_PREFIX + "こんにちは 世界"]


@pytest.mark.parametrize("words_per_chunk", [1, 100])
async def test_newlines_survive_the_stream(
    client: Client, fake_state: FakeState, words_per_chunk: int
) -> None:
    fake_state.words_per_chunk = words_per_chunk
    headers = await streaming_conversation(client)
    question = "first line\nsecond line\n\n  indented"
    response = await client.post("/chatgpt/chat", data=question.encode(), headers=headers)
    raw = await response.text()
    if words_per_chunk == 100:  # the whole answer is one piece: one event, a data line per line
        expected = f"data: {CHAT_PREFIX}first line\ndata: second line\ndata: \ndata:   indented\n\n"
        assert raw.startswith(expected)
    else:  # "line\n" is a piece of its own
        assert "data: line\ndata: \n\n" in raw
    assert joined_answer(parse_sse(raw)) == CHAT_PREFIX + question


async def test_regenerate_and_quick_answer_stream_too(client: Client) -> None:
    headers = await streaming_conversation(client)
    await (await client.post("/chatgpt/chat", data=b"hi", headers=headers)).read()
    response = await client.post("/chatgpt/regenerate", headers=headers)
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "hi"
    response = await client.post("/chatgpt/quickAnswer", data=b'{"question": "q", "stream": true}')
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "q"


async def test_failure_before_the_first_byte_is_an_http_error(client: Client, fake_state: FakeState) -> None:
    headers = await streaming_conversation(client)
    fake_state.fail_next("bad_request")
    response = await client.post("/chatgpt/chat", data=b"hi", headers=headers)
    assert response.status == 502
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "The demo upstream was told to reject this request." in await response.text()


@pytest.mark.parametrize("switch", ["stream_error_after", "break_stream_after"])
async def test_failure_after_the_first_byte_is_an_error_event(
    client: Client, fake_state: FakeState, switch: str
) -> None:
    headers = await streaming_conversation(client)
    setattr(fake_state, switch, 3)  # the role chunk, then two pieces of text
    response = await client.post("/chatgpt/chat", data=b"a b c d e f", headers=headers)
    events = await read_sse(response)
    assert [kind for kind, _ in events] == ["message", "message", "error"]
    assert events[-1][1]  # the message says what went wrong
    assert "[DONE]" not in messages(events)
    assert await sentences(client, headers) == []  # nothing half-kept
    setattr(fake_state, switch, None)
    response = await client.post("/chatgpt/chat", data=b"again", headers=headers)
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "again"


async def test_a_second_request_during_a_stream_is_refused(client: Client, fake_state: FakeState) -> None:
    headers = await streaming_conversation(client)
    fake_state.chunk_delay = 0.02
    async with client.post("/chatgpt/chat", data=b"a b", headers=headers) as first:
        await first.content.readline()
        second = await client.post("/chatgpt/chat", data=b"two", headers=headers)
        assert (second.status, await second.text()) == (409, "AI is thinking")
        assert joined_answer(parse_sse((await first.read()).decode())).endswith("a b")


async def test_client_gone_mid_stream_leaves_the_conversation_usable(
    client: Client, fake_state: FakeState
) -> None:
    headers = await streaming_conversation(client)
    fake_state.chunk_delay = 0.05
    response = await client.post("/chatgpt/chat", data=b"one two three four five six", headers=headers)
    assert (await response.content.readline()).startswith(b"data: ")
    response.close()
    await wait_until(lambda: fake_state.disconnects == 1)  # the upstream request was cancelled
    fake_state.chunk_delay = 0
    answer = await client.post("/chatgpt/chat", data=b"next", headers=headers)
    assert answer.status == 200
    assert joined_answer(await read_sse(answer)) == CHAT_PREFIX + "next"
    assert await sentences(client, headers) == ["next", CHAT_PREFIX + "next"]


@pytest.fixture
async def plain_server(fake: RunningFake, tmp_path: Path) -> AsyncIterator[str]:
    """The app as ``web.run_app`` serves it (no handler cancellation): only failed writes tell."""
    runner = web.AppRunner(create_app(make_config(fake, tmp_path)), handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_client_gone_without_handler_cancellation(plain_server: str, fake_state: FakeState) -> None:
    async with aiohttp.ClientSession(plain_server) as session:
        created = await session.post("/chatgpt/createTurbo", data=b'{"stream": true}')
        headers = {"conversation": await created.text()}
        fake_state.chunk_delay = 0.02
        response = await session.post("/chatgpt/chat", data=b"a b c d e f g h i j", headers=headers)
        await response.content.readline()
        response.close()
        await wait_until(lambda: fake_state.disconnects == 1)
        fake_state.chunk_delay = 0
        again = await session.post("/chatgpt/chat", data=b"next", headers=headers)
        assert joined_answer(parse_sse(await again.text())) == CHAT_PREFIX + "next"
        context = await session.post("/chatgpt/contextArray", headers=headers)
        assert orjson.loads(await context.read()) == ["next", CHAT_PREFIX + "next"]
