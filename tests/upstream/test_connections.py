"""Kept-alive connections a model server drops (llama-cpp-python's after a failed stream), and
streams that end without a ``finish_reason``: the client against the fake on real sockets."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX, FakeState
from alice_py.upstream.client import OpenAIClient, chunk_text, response_text
from alice_py.upstream.errors import (
    IncompleteStreamError,
    UpstreamConnectionError,
    UpstreamServerError,
)
from alice_py.upstream.types import UpstreamRequest

KEY = "sk-test-0123456789abcdef"


def chat(question: str = "Hello there") -> UpstreamRequest:
    messages = [{"role": "user", "content": question}]
    return UpstreamRequest("chat", {"model": "gpt-4o-mini", "messages": messages})


def completion(prompt: str) -> UpstreamRequest:
    return UpstreamRequest("completion", {"model": "gpt-3.5-turbo-instruct", "prompt": prompt})


async def streamed_text(client: OpenAIClient, request: UpstreamRequest, key: str = KEY) -> str:
    chunks = [chunk async for chunk in client.stream(key, request)]
    return "".join(chunk_text(request.endpoint, chunk) for chunk in chunks)


async def counting_session() -> tuple[aiohttp.ClientSession, SimpleNamespace]:
    """A session that counts the connections it opens (aiohttp's own tracing, no mock)."""
    counts = SimpleNamespace(opened=0)

    async def opened(*_: Any) -> None:
        counts.opened += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_start.append(opened)
    return aiohttp.ClientSession(trace_configs=[trace]), counts


# --- a failed stream's connection, reset later (llama-cpp-python) -------------------------------------


async def test_a_failed_stream_does_not_give_its_connection_to_the_next_request(
    fake_url: str, state: FakeState
) -> None:
    session, counts = await counting_session()
    async with session:
        client = OpenAIClient(session, fake_url, connect_timeout=2, timeout=5)
        # The body ends after the headers came (as when a model fails while it generates).
        state.chunk_delay = 0.02
        state.fail_next("failed_stream_reset")
        with pytest.raises(UpstreamConnectionError, match="ended before the answer was complete"):
            await streamed_text(client, chat("one"))
        state.chunk_delay = 0.0
        assert await streamed_text(client, chat("two")) == CHAT_PREFIX + "two"
        await client.close()
    # The failed stream's connection was not pooled: the next request never met the reset.
    assert state.resets == 0
    assert counts.opened == 2
    assert state.keys_used == [KEY, KEY]


async def test_after_a_failed_stream_the_next_request_answers(client: OpenAIClient, state: FakeState) -> None:
    # However the failed stream's bytes arrived (all of it with the headers, too), the next
    # request answers: on a fresh connection if it met the reset.
    for _ in range(3):
        state.fail_next("failed_stream_reset")
        with pytest.raises(UpstreamConnectionError):
            await streamed_text(client, chat("one"))
        assert await streamed_text(client, chat("two")) == CHAT_PREFIX + "two"
        assert response_text("chat", await client.call(KEY, chat("three"))) == CHAT_PREFIX + "three"


async def test_a_failed_call_keeps_the_connection_then_resets_it(
    client: OpenAIClient, state: FakeState
) -> None:
    state.fail_next("failed_stream_reset")
    with pytest.raises(UpstreamServerError):
        await client.call(KEY, chat("one"))
    # The 500's connection went back to the pool (its answer was complete), and the server reset it.
    assert response_text("chat", await client.call(KEY, chat("two"))) == CHAT_PREFIX + "two"
    assert state.resets == 1
    assert state.keys_used == [KEY, KEY, KEY]  # the reset request, then its retry with the same key


# --- a complete answer, then its kept-alive connection reset --------------------------------------


async def test_a_pooled_connection_reset_under_a_stream_is_retried_on_a_fresh_one(
    fake_url: str, state: FakeState
) -> None:
    session, counts = await counting_session()
    async with session:
        client = OpenAIClient(session, fake_url, connect_timeout=2, timeout=5)
        state.fail_next("reset_after_answer")
        assert await streamed_text(client, chat("one")) == CHAT_PREFIX + "one"
        assert await streamed_text(client, chat("two")) == CHAT_PREFIX + "two"
        await client.close()
    assert state.resets == 1
    assert [request.body["messages"][0]["content"] for request in state.requests] == ["one", "two", "two"]
    assert state.keys_used == [KEY, KEY, KEY]
    assert counts.opened == 1  # the retry's connection is not the shared pool's


async def test_a_key_whose_connections_are_always_reset_still_gets_answers(
    client: OpenAIClient, state: FakeState
) -> None:
    key = "sk-idlereset-0123456789"
    for question in ("one", "two", "three"):
        assert await streamed_text(client, completion(f"Human: {question}\nAI: "), key) == (
            COMPLETION_PREFIX + question
        )
        assert response_text("chat", await client.call(key, chat(question))) == CHAT_PREFIX + question
    assert state.resets >= 1


async def test_a_per_key_failed_stream_fails_every_stream_of_that_key(
    client: OpenAIClient, state: FakeState
) -> None:
    for _ in range(2):
        with pytest.raises(UpstreamConnectionError):
            await streamed_text(client, chat(), "sk-streamreset-0123456789")
    assert await streamed_text(client, chat("fine")) == CHAT_PREFIX + "fine"


async def test_a_refused_connection_is_not_retried_on_the_same_key() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        session, counts = await counting_session()
        async with session:
            client = OpenAIClient(session, f"http://127.0.0.1:{port}/v1", connect_timeout=1, timeout=1)
            with pytest.raises(UpstreamConnectionError):
                await client.call(KEY, chat())
            with pytest.raises(UpstreamConnectionError):
                await streamed_text(client, chat())
            await client.close()
    assert counts.opened == 2  # one attempt each


# --- finish_reason ---------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["chat", "completion"])
async def test_a_stream_interrupted_with_done_but_no_finish_reason_is_incomplete(
    client: OpenAIClient, state: FakeState, endpoint: str
) -> None:
    state.interrupt_stream_after = 3
    request = chat("a b c d e f") if endpoint == "chat" else completion("a b c d e f")
    received: list[str] = []
    with pytest.raises(IncompleteStreamError, match="no finish_reason"):
        async for chunk in client.stream(KEY, request):
            received.append(chunk_text(endpoint, chunk))
    assert "".join(received)  # the chunks before [DONE] came, then the error


async def test_without_require_finish_reason_such_a_stream_is_complete(
    session: aiohttp.ClientSession, fake_url: str, state: FakeState
) -> None:
    client = OpenAIClient(session, fake_url, require_finish_reason=False)
    state.omit_finish_reason = True
    assert await streamed_text(client, chat("x y")) == CHAT_PREFIX + "x y"
    state.interrupt_stream_after = 2
    assert await streamed_text(client, completion("x y")) == "Demo completion "
    await client.close()


async def test_a_finish_reason_in_any_chunk_counts(client: OpenAIClient, state: FakeState) -> None:
    # With include_usage the last chunk has no choices: the finish_reason came before it.
    request = UpstreamRequest("chat", {**chat("q").body, "stream_options": {"include_usage": True}})
    chunks = [chunk async for chunk in client.stream(KEY, request)]
    assert chunks[-1]["choices"] == [] and chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_an_error_mid_stream_does_not_leave_its_connection_to_the_pool(
    fake_url: str, state: FakeState
) -> None:
    session, counts = await counting_session()
    async with session:
        client = OpenAIClient(session, fake_url, connect_timeout=2, timeout=5)
        state.chunk_delay = 0.02
        state.stream_error_after = 2  # then the error, and the body ends cleanly
        with pytest.raises(UpstreamServerError):
            await streamed_text(client, chat("a b c"))
        state.stream_error_after = None
        assert await streamed_text(client, chat("one")) == CHAT_PREFIX + "one"
        assert await streamed_text(client, chat("two")) == CHAT_PREFIX + "two"
        await client.close()
    assert counts.opened == 2  # a new one after the failed stream, then kept alive as usual


async def test_a_timed_reset_of_an_idle_connection_costs_no_retry(fake_url: str, state: FakeState) -> None:
    session, counts = await counting_session()
    async with session:
        client = OpenAIClient(session, fake_url, connect_timeout=2, timeout=5)
        state.reset_delay = 0.02
        state.fail_next("reset_after_answer")
        assert await streamed_text(client, chat("one")) == CHAT_PREFIX + "one"
        await asyncio.sleep(0.2)  # the reset reaches the idle pooled connection: aiohttp drops it
        assert await streamed_text(client, chat("two")) == CHAT_PREFIX + "two"
        await client.close()
    assert state.resets == 0
    assert state.keys_used == [KEY, KEY]
    assert counts.opened == 2
