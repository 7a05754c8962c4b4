"""The router: key rotation, failover once on the next key, stream failover before the first chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX, FakeState
from alice_py.upstream.client import OpenAIClient
from alice_py.upstream.errors import (
    InvalidKeyError,
    NoAvailableKeysError,
    UpstreamConnectionError,
    UpstreamRequestError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from alice_py.upstream.keypool import KeyPool
from alice_py.upstream.router import Target, UpstreamRouter
from alice_py.upstream.text import answer_text, piece_batches
from alice_py.upstream.types import Upstream, UpstreamRequest

from .conftest import Clock

GOOD1, GOOD2, GOOD3 = "sk-good-1111111111111111", "sk-good-2222222222222222", "sk-good-3333333333333333"
BAD1, BAD2 = "sk-bad-aaaaaaaaaaaaaaaa", "sk-bad-bbbbbbbbbbbbbbbb"
NOQUOTA = "sk-noquota-cccccccccccccc"

CHAT = UpstreamRequest(
    "chat", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi\nthere"}]}
)
ANSWER = CHAT_PREFIX + "Hi\nthere"


def make_router(
    client: OpenAIClient, keys: list[str], clock: Clock, auto_remove: bool = True, max_attempts: int = 3
) -> UpstreamRouter:
    pool = KeyPool(keys, auto_remove=auto_remove, clock=clock)
    return UpstreamRouter([Target("default", client, pool)], max_attempts=max_attempts)


def states(router: UpstreamRouter) -> list[tuple[str, str]]:
    return [(s.masked, s.state) for s in router.targets[0].pool.snapshot()]


async def pieces(router: UpstreamRouter, request: UpstreamRequest) -> AsyncIterator[str]:
    """The answer's text pieces, as the engine reads a stream."""
    async for batch in piece_batches(router, request):
        for piece in batch:
            yield piece


async def joined(router: UpstreamRouter, request: UpstreamRequest = CHAT) -> str:
    return "".join([piece async for piece in pieces(router, request)])


async def test_router_is_an_upstream(client: OpenAIClient, clock: Clock) -> None:
    upstream: Upstream = make_router(client, [GOOD1], clock)
    assert await answer_text(upstream, CHAT) == ANSWER


async def test_keys_rotate(client: OpenAIClient, state: FakeState, clock: Clock) -> None:
    router = make_router(client, [GOOD1, GOOD2], clock)
    for _ in range(3):
        assert await answer_text(router, CHAT) == ANSWER
    assert state.keys_used == [GOOD1, GOOD2, GOOD1]
    assert [s.requests for s in router.targets[0].pool.snapshot()] == [2, 1]


async def test_invalid_key_is_disabled_and_request_retried_on_next_key(
    client: OpenAIClient, state: FakeState, clock: Clock
) -> None:
    router = make_router(client, [BAD1, GOOD1], clock)
    assert await answer_text(router, CHAT) == ANSWER
    assert state.keys_used == [BAD1, GOOD1]
    assert states(router) == [("sk-…aaaa", "disabled"), ("sk-…1111", "active")]
    assert router.targets[0].pool.snapshot()[0].disabled_reason == "invalid key"
    await answer_text(router, CHAT)
    assert state.keys_used[-1] == GOOD1


async def test_quota_key_is_disabled_and_request_retried(
    client: OpenAIClient, state: FakeState, clock: Clock
) -> None:
    router = make_router(client, [NOQUOTA, GOOD1], clock)
    assert await answer_text(router, CHAT) == ANSWER
    assert router.targets[0].pool.snapshot()[0].disabled_reason == "quota exceeded"


async def test_without_auto_remove_bad_key_is_retried_but_not_disabled(
    client: OpenAIClient, state: FakeState, clock: Clock
) -> None:
    router = make_router(client, [BAD1, GOOD1], clock, auto_remove=False)
    assert await answer_text(router, CHAT) == ANSWER
    assert states(router)[0] == ("sk-…aaaa", "cooling")


async def test_max_attempts_counts_every_try(client: OpenAIClient, state: FakeState, clock: Clock) -> None:
    assert await answer_text(make_router(client, [BAD1, BAD2, GOOD1], clock), CHAT) == ANSWER  # 3 tries
    state.requests.clear()
    router = make_router(client, [BAD1, BAD2, GOOD1], clock, max_attempts=2)
    with pytest.raises(InvalidKeyError) as caught:
        await answer_text(router, CHAT)
    assert BAD2 not in caught.value.detail and "sk-…bbbb" in caught.value.detail
    assert state.keys_used == [BAD1, BAD2]
    assert await answer_text(router, CHAT) == ANSWER


async def test_all_keys_bad(client: OpenAIClient, state: FakeState, clock: Clock) -> None:
    router = make_router(client, [BAD1, BAD2], clock)
    with pytest.raises(InvalidKeyError):
        await router.call(CHAT)
    with pytest.raises(NoAvailableKeysError, match=r"^No available API keys$"):
        await router.call(CHAT)
    assert len(state.requests) == 2


async def test_server_error_retried_on_another_key_which_cools_down(
    client: OpenAIClient, state: FakeState, clock: Clock
) -> None:
    router = make_router(client, [GOOD1, GOOD2], clock)
    state.fail_next("server_error")
    assert await answer_text(router, CHAT) == ANSWER
    assert state.keys_used == [GOOD1, GOOD2]
    assert states(router) == [("sk-…1111", "cooling"), ("sk-…2222", "active")]


async def test_rate_limit_cooldown_follows_retry_after(
    client: OpenAIClient, state: FakeState, clock: Clock
) -> None:
    router = make_router(client, [GOOD1, GOOD2], clock)
    state.fail_next("rate_limit")
    assert await answer_text(router, CHAT) == ANSWER
    assert router.targets[0].pool.snapshot()[0].cooldown_remaining == 7.0
    assert await answer_text(router, CHAT) == ANSWER
    assert state.keys_used == [GOOD1, GOOD2, GOOD2]  # the cooling key is skipped
    clock.advance(7.0)
    await answer_text(router, CHAT)
    assert state.keys_used[-1] == GOOD1


async def test_single_key_error_is_not_retried(client: OpenAIClient, state: FakeState, clock: Clock) -> None:
    router = make_router(client, [GOOD1], clock)
    state.fail_next("server_error")
    with pytest.raises(UpstreamServerError):
        await router.call(CHAT)
    assert len(state.requests) == 1


async def test_bad_request_is_not_retried(client: OpenAIClient, state: FakeState, clock: Clock) -> None:
    router = make_router(client, [GOOD1, GOOD2], clock)
    state.fail_next("bad_request")
    with pytest.raises(UpstreamRequestError):
        await router.call(CHAT)
    assert len(state.requests) == 1
    assert states(router) == [("sk-…1111", "active"), ("sk-…2222", "active")]


async def test_timeout_moves_on_within_max_attempts(
    session: aiohttp.ClientSession, fake_url: str, state: FakeState, clock: Clock
) -> None:
    client = OpenAIClient(session, fake_url, timeout=0.05)
    router = make_router(client, [GOOD1, GOOD2, GOOD3], clock, max_attempts=2)
    state.delay = 0.2
    with pytest.raises(UpstreamTimeoutError):
        await router.call(CHAT)
    assert state.keys_used == [GOOD1, GOOD2]
    await client.close()


async def test_stream_fails_over_before_the_first_chunk(
    client: OpenAIClient, state: FakeState, clock: Clock
) -> None:
    router = make_router(client, [BAD1, GOOD1, GOOD2], clock)
    assert await joined(router) == ANSWER
    assert state.keys_used == [BAD1, GOOD1]
    state.fail_next("server_error")
    assert await joined(router) == ANSWER
    assert state.keys_used[2:] == [GOOD2, GOOD1]
    assert [s.state for s in router.targets[0].pool.snapshot()] == ["disabled", "active", "cooling"]


async def test_stream_error_inside_first_event_fails_over(
    client: OpenAIClient, state: FakeState, clock: Clock
) -> None:
    router = make_router(client, [GOOD1, GOOD2], clock)
    state.stream_error_after = 0
    with pytest.raises(UpstreamServerError):
        await joined(router)
    assert state.keys_used == [GOOD1, GOOD2]


async def test_stream_errors_after_the_first_chunk_propagate(
    client: OpenAIClient, state: FakeState, clock: Clock
) -> None:
    router = make_router(client, [GOOD1, GOOD2], clock)
    state.break_stream_after = 3
    got: list[str] = []
    with pytest.raises(UpstreamConnectionError):
        async for piece in pieces(router, CHAT):
            got.append(piece)
    assert got == ["Demo ", "answer "]  # chunk 1 is the role chunk, with no text
    assert state.keys_used == [GOOD1]
    assert router.targets[0].pool.snapshot()[0].failures == 1


async def test_stream_all_keys_bad(client: OpenAIClient, state: FakeState, clock: Clock) -> None:
    router = make_router(client, [BAD1, BAD2], clock)
    with pytest.raises(InvalidKeyError):
        await joined(router)
    with pytest.raises(NoAvailableKeysError):
        await joined(router)


async def test_completion_text_and_pieces(client: OpenAIClient, clock: Clock) -> None:
    router = make_router(client, [GOOD1], clock)
    request = UpstreamRequest("completion", {"model": "m", "prompt": "Hi\nHuman: How are you?\nAI: "})
    assert await answer_text(router, request) == COMPLETION_PREFIX + "How are you?"
    assert await joined(router, request) == COMPLETION_PREFIX + "How are you?"
