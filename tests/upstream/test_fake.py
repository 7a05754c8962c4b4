"""The fake upstream as the official OpenAI SDK sees it, its deterministic answers, and its CLI."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator

import openai
import pytest

from alice_py.fake import (
    CHAT_PREFIX,
    COMPLETION_PREFIX,
    FakeState,
    RecordedRequest,
    split_answer,
    start_fake_upstream,
)
from alice_py.fake.answers import completion_subject
from tests.support import free_port


@pytest.fixture
async def sdk(fake_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake_url, api_key="sk-sdk-0123456789abcdef", max_retries=0
    ) as client:
        yield client


async def test_sdk_chat(sdk: openai.AsyncOpenAI) -> None:
    answer = await sdk.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert answer.choices[0].message.content == CHAT_PREFIX + "Hi"
    assert answer.usage is not None and answer.usage.completion_tokens > 0


async def test_sdk_chat_stream_with_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "x"}, {"role": "user", "content": "多行\n问题"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CHAT_PREFIX + "多行\n问题"
    assert chunks[-1].usage is not None and chunks[-1].choices == []


async def test_sdk_completion(sdk: openai.AsyncOpenAI) -> None:
    answer = await sdk.completions.create(model="gpt-3.5-turbo-instruct", prompt="Tell me a joke")
    assert answer.choices[0].text == COMPLETION_PREFIX + "Tell me a joke"


async def test_sdk_models(sdk: openai.AsyncOpenAI) -> None:
    assert "gpt-4o" in [model.id async for model in sdk.models.list()]


async def test_sdk_sees_its_usual_errors(fake_url: str, state: FakeState) -> None:
    async with openai.AsyncOpenAI(base_url=fake_url, api_key="sk-bad-0123456789", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    state.fail_next("rate_limit")
    async with openai.AsyncOpenAI(base_url=fake_url, api_key="sk-ok-0123456789", max_retries=0) as good:
        with pytest.raises(openai.RateLimitError) as caught:
            await good.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "7"


async def test_answers_cut_at_stop_words(sdk: openai.AsyncOpenAI) -> None:
    answer = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "one STOP two"}], stop=["STOP"]
    )
    assert answer.choices[0].message.content == CHAT_PREFIX + "one "


async def test_words_per_chunk(sdk: openai.AsyncOpenAI, state: FakeState) -> None:
    state.words_per_chunk = 100
    stream = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    contents = [c.choices[0].delta.content async for c in stream if c.choices]
    assert contents == ["", CHAT_PREFIX + "x", None]  # role chunk, one text chunk, finish chunk


async def test_requests_are_recorded(sdk: openai.AsyncOpenAI, state: FakeState) -> None:
    await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], user="u1")
    assert (state.last.path, state.last.key, state.last.body["user"]) == (
        "/v1/chat/completions",
        "sk-sdk-0123456789abcdef",
        "u1",
    )


async def test_start_fake_upstream_serves_on_a_real_port() -> None:
    fake = await start_fake_upstream()
    try:
        assert fake.url.startswith("http://127.0.0.1:") and fake.url.endswith("/v1")
        async with openai.AsyncOpenAI(base_url=fake.url, api_key="sk-any-0123456789", max_retries=0) as sdk:
            answer = await sdk.completions.create(model="m", prompt="ping")
        assert answer.choices[0].text == COMPLETION_PREFIX + "ping"
        assert len(fake.state.requests) == 1
    finally:
        await fake.close()


@pytest.mark.parametrize(
    ("prompt", "subject"),
    [
        ("Be kind.\nHuman: hello\nAI: ", "hello"),
        ("You: hi there\nFriend:", "hi there"),
        ("An article.\nTl;dr\n", "Tl;dr"),
        ("", ""),
    ],
)
def test_completion_subject(prompt: str, subject: str) -> None:
    assert completion_subject(prompt) == subject


@pytest.mark.parametrize("text", ["", "one", "  lead and trail  ", "a\nb\n\nc  d\t e", "中文 文本\n第二行"])
@pytest.mark.parametrize("words", [1, 2, 5])
def test_split_answer_joins_back_exactly(text: str, words: int) -> None:
    pieces = split_answer(text, words)
    assert "".join(pieces) == text
    assert all(pieces)


def test_runs_as_a_module() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "alice_py.fake", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": "Bearer sk-x"}
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(request, timeout=1) as response:
                    assert b"gpt-4o-mini" in response.read()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "demo model" in output


def test_recorded_requests_stay_bounded() -> None:
    state = FakeState(max_recorded=2)
    for number in range(10):
        state.record(RecordedRequest("POST", "/v1/completions", f"sk-{number}", None))
    assert 2 <= len(state.requests) <= 4
    assert state.keys_used[-2:] == ["sk-8", "sk-9"]
