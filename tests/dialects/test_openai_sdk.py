"""The official ``openai`` Python SDK against ``/v1`` on a real socket, sync and async."""

from __future__ import annotations

import asyncio

import openai
import pytest
from aiohttp.test_utils import TestServer

from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX, FakeState
from tests.dialects.conftest import CLIENT_KEY, SECRET, UPSTREAM_KEY, MakeServer


def base_url(server: TestServer) -> str:
    return str(server.make_url("/v1"))


def async_client(server: TestServer, key: str = CLIENT_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url(server), api_key=key, max_retries=0, timeout=10)


def sync_client(server: TestServer, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url(server), api_key=key, max_retries=0, timeout=10)


@pytest.fixture
async def server(make_server: MakeServer) -> TestServer:
    return await make_server(auth={"mode": "simple"}, openai={"client_keys": (CLIENT_KEY,)})


async def test_async_chat_completion(server: TestServer, fake_state: FakeState) -> None:
    async with async_client(server) as client:
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello there"}]
        )
    assert completion.choices[0].message.content == CHAT_PREFIX + "Hello there"
    assert completion.object == "chat.completion"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert fake_state.last.key == UPSTREAM_KEY
    assert fake_state.last.body["messages"] == [{"role": "user", "content": "Hello there"}]


async def test_async_chat_stream_with_usage(server: TestServer) -> None:
    async with async_client(server) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CHAT_PREFIX + "one two three"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


async def test_async_chat_stream_without_usage(server: TestServer) -> None:
    async with async_client(server) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == CHAT_PREFIX + "hi"


async def test_sync_client_in_a_thread(server: TestServer) -> None:
    def run() -> tuple[str | None, str]:
        with sync_client(server) as client:
            plain = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "sync"}]
            )
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "sync stream"}], stream=True
            )
            streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        return plain.choices[0].message.content, streamed

    plain, streamed = await asyncio.to_thread(run)
    assert plain == CHAT_PREFIX + "sync"
    assert streamed == CHAT_PREFIX + "sync stream"


async def test_completions_and_models(server: TestServer) -> None:
    async with async_client(server) as client:
        completion = await client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Human: hello\nAI: ", max_tokens=20
        )
        stream = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="ping", stream=True)
        streamed = "".join([chunk.choices[0].text async for chunk in stream if chunk.choices])
        models = await client.models.list()
        one = await client.models.retrieve("gpt-4o")
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("no-such-model")
    assert completion.choices[0].text == COMPLETION_PREFIX + "hello"
    assert streamed == COMPLETION_PREFIX + "ping"
    assert [model.id for model in models.data] == ["gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo-instruct"]
    assert one.id == "gpt-4o"


async def test_wrong_client_key_is_an_authentication_error(server: TestServer, fake_state: FakeState) -> None:
    async with async_client(server, key="sk-wrong-000000000000") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert fake_state.requests == []


async def test_auth_token_is_the_client_key_when_none_are_configured(make_server: MakeServer) -> None:
    server = await make_server(auth={"mode": "simple"})
    async with async_client(server, key=SECRET) as client:
        models = await client.models.list()
    assert models.data
    async with async_client(server, key=CLIENT_KEY) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()


async def test_upstream_refusing_the_service_key_is_not_an_authentication_error(
    server: TestServer, fake_state: FakeState
) -> None:
    fake_state.fail_next("invalid_key")
    async with async_client(server) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_key_refused"
    assert "the model API refused the service's API key (invalid or revoked)" in caught.value.message
    assert UPSTREAM_KEY not in str(caught.value) and "…" not in caught.value.message


async def test_upstream_rate_limit_is_a_rate_limit_error(server: TestServer, fake_state: FakeState) -> None:
    fake_state.fail_next("rate_limit")
    async with async_client(server) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["Retry-After"] == "7"


async def test_upstream_5xx_is_an_internal_server_error(server: TestServer, fake_state: FakeState) -> None:
    fake_state.fail_next("server_error")
    async with async_client(server) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.status_code == 500
    assert isinstance(caught.value, openai.APIStatusError)


async def test_upstream_bad_request_passes_its_status(server: TestServer, fake_state: FakeState) -> None:
    fake_state.fail_next("bad_request")
    async with async_client(server) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.code == "invalid_value"


async def test_stream_failing_midway_raises_in_the_sdk(server: TestServer, fake_state: FakeState) -> None:
    fake_state.stream_error_after = 3
    received: list[str] = []
    async with async_client(server) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "a b c d e f"}], stream=True
        )
        with pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Demo answer "
    assert "the model API reported an error (request id " in caught.value.message
    assert "demo upstream" not in caught.value.message


async def test_no_usable_key_is_503(make_server: MakeServer) -> None:
    server = await make_server(upstream={"keys": ()})
    async with async_client(server) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.status_code == 503
    assert caught.value.code == "no_available_keys"


async def test_stream_refused_before_its_first_chunk_is_an_http_error(
    server: TestServer, fake_state: FakeState
) -> None:
    fake_state.fail_next("invalid_key")
    async with async_client(server) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
            )
    assert caught.value.status_code == 502


async def test_revoked_upstream_key_then_no_key_left(make_server: MakeServer, fake_state: FakeState) -> None:
    server = await make_server(upstream={"keys": ("sk-bad-revoked-00000000",)})
    async with async_client(server) as client:
        with pytest.raises(openai.InternalServerError) as first:
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.InternalServerError) as second:
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert "sk-bad-revoked-00000000" not in first.value.message
    assert first.value.status_code == 502 and first.value.code == "upstream_key_refused"
    assert second.value.status_code == 503
    assert second.value.message.endswith("No available API keys")
    assert len(fake_state.requests) == 1  # the disabled key is not tried again
