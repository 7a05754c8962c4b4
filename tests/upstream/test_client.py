"""The OpenAI client against the fake upstream over real sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX, FakeState
from alice_py.upstream.client import (
    OpenAIClient,
    chunk_text,
    error_from_payload,
    error_from_response,
    response_text,
)
from alice_py.upstream.errors import (
    InvalidKeyError,
    QuotaExceededError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRequestError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from alice_py.upstream.types import UpstreamRequest

KEY = "sk-test-0123456789abcdef"


def chat(question: str = "Hello there", **extra: Any) -> UpstreamRequest:
    return UpstreamRequest(
        "chat", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}], **extra}
    )


def completion(prompt: str, **extra: Any) -> UpstreamRequest:
    return UpstreamRequest("completion", {"model": "gpt-3.5-turbo-instruct", "prompt": prompt, **extra})


async def collect(client: OpenAIClient, request: UpstreamRequest, key: str = KEY) -> list[dict[str, Any]]:
    return [chunk async for chunk in client.stream(key, request)]


async def fail(client: OpenAIClient, request: UpstreamRequest, key: str) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await client.call(key, request)
    return caught.value


async def test_chat_call(client: OpenAIClient, state: FakeState) -> None:
    request = chat("Hello there", temperature=0.5, stream=True, stream_options={"include_usage": True})
    response = await client.call(KEY, request)
    assert response_text("chat", response) == CHAT_PREFIX + "Hello there"
    assert response["object"] == "chat.completion" and response["choices"][0]["finish_reason"] == "stop"
    sent = state.last
    assert (sent.method, sent.path, sent.key) == ("POST", "/v1/chat/completions", KEY)
    assert sent.body["stream"] is False and sent.body["temperature"] == 0.5
    assert "stream_options" not in sent.body


async def test_completion_call(client: OpenAIClient, state: FakeState) -> None:
    response = await client.call(KEY, completion("Be nice.\nHuman: What is 2+2?\nAI: "))
    assert response_text("completion", response) == COMPLETION_PREFIX + "What is 2+2?"
    assert response["object"] == "text_completion"
    assert state.last.path == "/v1/completions"


async def test_chat_stream_joins_to_the_non_streamed_text(client: OpenAIClient, state: FakeState) -> None:
    question = "First line\nsecond line\n\nthird  line"
    chunks = await collect(client, chat(question))
    assert "".join(chunk_text("chat", c) for c in chunks) == CHAT_PREFIX + question
    assert len(chunks) > 5 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert state.last.body["stream"] is True


async def test_completion_stream_with_usage(client: OpenAIClient) -> None:
    request = completion("Say hi", stream_options={"include_usage": True})
    chunks = await collect(client, request)
    assert "".join(chunk_text("completion", c) for c in chunks) == COMPLETION_PREFIX + "Say hi"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


async def test_list_models(client: OpenAIClient, state: FakeState) -> None:
    models = await client.list_models(KEY)
    assert "gpt-4o-mini" in [m["id"] for m in models["data"]]
    assert (state.last.method, state.last.key) == ("GET", KEY)


async def test_invalid_key_says_the_service_key_was_refused_and_logs_it_masked(client: OpenAIClient) -> None:
    bad = "sk-bad-0123456789abcdef"
    error = await fail(client, chat(), bad)
    assert isinstance(error, InvalidKeyError)
    assert (error.upstream_status, error.code, error.status) == (401, "invalid_api_key", 502)
    assert error.message == "the model API refused the service's API key (invalid or revoked)"
    assert error.detail.startswith("Incorrect API key provided: sk-…cdef.")
    assert bad not in error.detail and bad not in str(error)


async def test_quota(client: OpenAIClient) -> None:
    error = await fail(client, chat(), "sk-noquota-0123456789")
    assert isinstance(error, QuotaExceededError) and error.code == "insufficient_quota"
    assert error.message == "the model API refused the service's API key (its quota is used up)"
    assert "exceeded your current quota" in error.detail


async def test_rate_limit_has_retry_after(client: OpenAIClient, state: FakeState) -> None:
    state.retry_after = 3.5
    error = await fail(client, chat(), "sk-ratelimit-0123456789")
    assert isinstance(error, UpstreamRateLimitError)
    assert error.retry_after == 3.5 and error.upstream_status == 429
    assert "Rate limit reached" in error.message


async def test_server_error(client: OpenAIClient) -> None:
    error = await fail(client, chat(), "sk-error5xx-0123456789")
    assert isinstance(error, UpstreamServerError) and error.upstream_status == 500
    assert error.message == "the model API failed (HTTP 500)"
    assert error.detail == "The server had an error while processing your request. Sorry about that!"


async def test_other_4xx_keeps_the_upstream_message(client: OpenAIClient) -> None:
    error = await fail(client, UpstreamRequest("chat", {"model": "gpt-4o-mini", "messages": []}), KEY)
    assert isinstance(error, UpstreamRequestError) and error.upstream_status == 400
    assert (error.message, error.code) == (
        "Missing required parameter: 'messages'.",
        "missing_required_parameter",
    )


async def test_http_error_of_a_stream_raises_before_any_chunk(client: OpenAIClient, state: FakeState) -> None:
    state.fail_next("server_error")
    with pytest.raises(UpstreamServerError):
        await collect(client, chat())


async def test_read_timeout(session: aiohttp.ClientSession, fake_url: str, state: FakeState) -> None:
    state.delay = 0.2
    client = OpenAIClient(session, fake_url, connect_timeout=1, timeout=0.05)
    with pytest.raises(UpstreamTimeoutError) as caught:
        await client.call(KEY, chat())
    assert caught.value.status == 504 and "did not answer within 0.05 s" in caught.value.message
    with pytest.raises(UpstreamTimeoutError):
        await collect(client, chat())


async def test_stream_timeout_is_between_chunks(
    session: aiohttp.ClientSession, fake_url: str, state: FakeState
) -> None:
    state.chunk_delay = 0.02
    client = OpenAIClient(session, fake_url, connect_timeout=1, timeout=0.1)
    started = time.monotonic()
    chunks = await collect(client, chat("a b c d"))
    assert time.monotonic() - started > 0.1  # longer than the timeout, yet fine: it kept sending
    assert "".join(chunk_text("chat", c) for c in chunks) == CHAT_PREFIX + "a b c d"
    state.chunk_delay = 0.2
    with pytest.raises(UpstreamTimeoutError, match=r"sent nothing for 0\.1 s"):
        await collect(client, chat())


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAIClient(session, f"http://127.0.0.1:{port}/v1", connect_timeout=1, timeout=1)
    with pytest.raises(UpstreamConnectionError) as caught:
        await client.call(KEY, chat())
    assert caught.value.message == "the model API is unreachable"
    assert caught.value.detail.startswith("Connection to the model API failed")
    assert f"127.0.0.1:{port}" in caught.value.detail


async def test_broken_stream(client: OpenAIClient, state: FakeState) -> None:
    state.break_stream_after = 3
    received = []
    with pytest.raises(UpstreamConnectionError):
        async for chunk in client.stream(KEY, chat()):
            received.append(chunk)
    assert len(received) == 3


async def test_stream_without_done(client: OpenAIClient, state: FakeState) -> None:
    state.omit_done = True
    with pytest.raises(UpstreamConnectionError, match="ended before the answer was complete"):
        await collect(client, chat())


@pytest.mark.parametrize("as_event", [False, True])
async def test_error_inside_a_stream(client: OpenAIClient, state: FakeState, as_event: bool) -> None:
    state.stream_error_after = 2
    state.stream_error_as_event = as_event
    received = []
    with pytest.raises(UpstreamServerError, match="the model API reported an error") as caught:
        async for chunk in client.stream(KEY, chat()):
            received.append(chunk)
    assert len(received) == 2
    assert "failed in the middle of the answer" in caught.value.detail


async def wait_for_disconnect(state: FakeState) -> None:
    for _ in range(100):
        if state.disconnects:
            return
        await asyncio.sleep(0.01)


async def test_closing_the_stream_closes_the_upstream_connection(
    client: OpenAIClient, state: FakeState
) -> None:
    state.chunk_delay = 0.02
    stream = client.stream(KEY, chat())
    await anext(stream)
    await stream.aclose()
    await wait_for_disconnect(state)
    assert state.disconnects == 1


async def test_cancelling_the_consumer_closes_the_upstream_connection(
    client: OpenAIClient, state: FakeState
) -> None:
    state.chunk_delay = 0.02
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in client.stream(KEY, chat()):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for_disconnect(state)
    assert state.disconnects == 1


def test_error_mapping_without_a_json_body() -> None:
    error = error_from_response(502, b"<html>Bad Gateway</html>", {})
    assert isinstance(error, UpstreamServerError)
    assert (error.message, error.detail) == ("the model API failed (HTTP 502)", "<html>Bad Gateway</html>")
    empty = error_from_response(404, b"", {})
    assert empty.message == empty.detail == "The model API answered HTTP 404 Not Found"


def test_error_mapping_of_loose_error_shapes() -> None:
    assert (
        error_from_response(404, b'{"error": "model \\"x\\" not found"}', {}).message == 'model "x" not found'
    )
    vllm = b'{"object": "error", "message": "max_tokens too large", "type": "BadRequestError", "code": 400}'
    error = error_from_response(400, vllm, {})
    assert (error.message, error.code, error.type) == ("max_tokens too large", "400", "BadRequestError")


def test_retry_after_headers() -> None:
    body = b'{"error": {"message": "slow", "code": "rate_limit_exceeded"}}'
    ms = error_from_response(429, body, {"retry-after-ms": "1500", "Retry-After": "9"})
    assert isinstance(ms, UpstreamRateLimitError) and ms.retry_after == 1.5
    date = error_from_response(429, body, {"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    assert isinstance(date, UpstreamRateLimitError) and date.retry_after is not None
    assert 25 < date.retry_after <= 30
    none = error_from_response(429, body, {})
    assert isinstance(none, UpstreamRateLimitError) and none.retry_after is None


def test_key_like_strings_are_masked_even_if_not_ours() -> None:
    body = b'{"error": {"message": "key sk-proj-ABCDEFGHIJKLMNOPQRST is revoked"}}'
    assert error_from_response(401, body, {}).detail == "key sk-…QRST is revoked"
    key = "sk-proj-ABCDEFGHIJKLMNOPQRST"
    wrong = b'{"error": {"message": "bad value %s", "param": "%s"}}' % (key.encode(), key.encode())
    passed = error_from_response(400, wrong, {}).error_object
    assert passed == {"message": "bad value sk-…QRST", "param": "sk-…QRST"}


def test_stream_error_classified_by_code() -> None:
    quota = error_from_payload('{"error": {"message": "no credit", "code": "insufficient_quota"}}')
    assert isinstance(quota, QuotaExceededError) and quota.detail == "no credit"
    assert isinstance(error_from_payload("plain text failure"), UpstreamServerError)


def test_text_helpers_tolerate_odd_shapes() -> None:
    assert response_text("chat", {"choices": []}) == ""
    assert response_text("chat", {"choices": [{"index": 0, "message": {"content": None}}]}) == ""
    assert chunk_text("chat", {"choices": [{"index": 1, "delta": {"content": "other"}}]}) == ""
    assert chunk_text("completion", {"choices": [{"index": 0, "text": "x"}]}) == "x"


async def json_only_upstream(
    aiohttp_server: Any, session: aiohttp.ClientSession, answer: Any
) -> OpenAIClient:
    """A client for a server that answers every chat request with ``answer`` as JSON, status 200."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = await aiohttp_server(app)
    return OpenAIClient(session, str(server.make_url("/v1")))


async def test_gateway_answering_200_with_an_error_object(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    error = {"error": {"message": "upstream overloaded", "type": "server_error"}}
    client = await json_only_upstream(aiohttp_server, session, error)
    with pytest.raises(UpstreamServerError) as called:
        await client.call(KEY, chat())
    with pytest.raises(UpstreamServerError) as streamed:
        await collect(client, chat())
    for caught in (called, streamed):
        assert caught.value.message == "the model API reported an error"
        assert caught.value.detail == "upstream overloaded"


async def test_server_ignoring_stream_true(aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
    client = await json_only_upstream(aiohttp_server, session, {"choices": [{"index": 0, "message": {}}]})
    with pytest.raises(UpstreamError, match="answered without streaming"):
        await collect(client, chat())


async def test_list_models_with_an_invalid_key(client: OpenAIClient) -> None:
    with pytest.raises(InvalidKeyError):
        await client.list_models("sk-bad-0123456789abcdef")
