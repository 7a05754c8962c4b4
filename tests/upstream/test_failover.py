"""Several upstreams: failover, error classes, thresholds and windows, probes, wait-for-key,
sticky keys, weights and model patterns, against two or three fake upstreams (real HTTP servers)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest

from alice_py.errors import ModelNotFound
from alice_py.fake import CHAT_PREFIX, FakeState, RunningFake, start_fake_upstream
from alice_py.upstream.client import OpenAIClient
from alice_py.upstream.errors import (
    KeysCoolingError,
    NoAvailableKeysError,
    UpstreamConnectionError,
    UpstreamRequestError,
    UpstreamServerError,
)
from alice_py.upstream.keypool import KeyPool
from alice_py.upstream.probe import probe_once
from alice_py.upstream.router import Target, UpstreamRouter
from alice_py.upstream.text import answer_text, piece_batches
from alice_py.upstream.types import UpstreamRequest
from tests.support import Clock, free_port

K1, K2, K3 = "sk-one-1111111111111111", "sk-two-2222222222222222", "sk-three-333333333333333"
L1 = "sk-local-4444444444444444"
CHAT = UpstreamRequest("chat", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
ANSWER = CHAT_PREFIX + "Hi"


@pytest.fixture
async def fakes() -> AsyncIterator[list[RunningFake]]:
    running = [await start_fake_upstream() for _ in range(3)]
    yield running
    for fake in running:
        await fake.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


class Upstreams:
    """Builds routers over the fakes; closes their clients at the end."""

    def __init__(self, session: aiohttp.ClientSession, fakes: list[RunningFake], clock: Clock) -> None:
        self.session = session
        self.fakes = fakes
        self.clock = clock
        self.clients: list[OpenAIClient] = []

    def target(
        self,
        name: str,
        url: str,
        keys: Sequence[str],
        *,
        priority: int = 0,
        weight: int = 1,
        models: Sequence[str] = ("*",),
        fail_threshold: int = 3,
        timeout: float = 5.0,
    ) -> Target:
        client = OpenAIClient(self.session, url, connect_timeout=1.0, timeout=timeout)
        self.clients.append(client)
        pool = KeyPool(keys, auto_remove=True, clock=self.clock, name=name, fail_threshold=fail_threshold)
        return Target(name, client, pool, models=models, priority=priority, weight=weight)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def ups(session: aiohttp.ClientSession, fakes: list[RunningFake]) -> AsyncIterator[Upstreams]:
    built = Upstreams(session, fakes, Clock())
    yield built
    await built.close()


def two(ups: Upstreams, **router: Any) -> tuple[UpstreamRouter, FakeState, FakeState]:
    """ "a" (priority 0, keys K1 K2) and "b" (priority 1, key L1)."""
    a, b = ups.fakes[0], ups.fakes[1]
    targets = [ups.target("a", a.url, [K1, K2]), ups.target("b", b.url, [L1], priority=1)]
    return UpstreamRouter(targets, **router), a.state, b.state


async def pieces(router: UpstreamRouter, request: UpstreamRequest) -> AsyncIterator[str]:
    """The answer's text pieces, as the engine reads a stream."""
    async for batch in piece_batches(router, request):
        for piece in batch:
            yield piece


async def joined(router: UpstreamRouter, request: UpstreamRequest = CHAT) -> str:
    return "".join([piece async for piece in pieces(router, request)])


def state_of(router: UpstreamRouter, name: str) -> list[tuple[str, str | None]]:
    [target] = [t for t in router.targets if t.name == name]
    return [(s.state, s.disabled_reason) for s in target.pool.snapshot()]


async def test_a_server_error_fails_over_to_the_next_upstream(ups: Upstreams) -> None:
    router, a, b = two(ups)
    a.fail_next("server_error")
    assert await answer_text(router, CHAT) == ANSWER
    assert (a.keys_used, b.keys_used) == ([K1], [L1])
    assert state_of(router, "a")[0] == ("cooling", None)
    # the next request goes to "a" again (its other key): priority first
    assert await answer_text(router, CHAT) == ANSWER
    assert a.keys_used == [K1, K2]


async def test_a_refused_connection_moves_straight_on(ups: Upstreams) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    b = ups.fakes[1]
    targets = [ups.target("dead", dead, [K1, K2]), ups.target("b", b.url, [L1], priority=1)]
    router = UpstreamRouter(targets)
    assert await answer_text(router, CHAT) == ANSWER
    assert b.state.keys_used == [L1]  # one try on "dead" (not one per key), then "b"
    assert state_of(router, "dead") == [("cooling", None), ("active", None)]


async def test_when_attempts_run_out_the_client_gets_the_last_failure(ups: Upstreams) -> None:
    targets = [ups.target(f"u{i}", fake.url, [K1], priority=i) for i, fake in enumerate(ups.fakes)]
    router = UpstreamRouter(targets, max_attempts=2)
    for fake in ups.fakes:
        fake.state.fail_next("server_error")
    with pytest.raises(UpstreamServerError) as caught:
        await router.call(CHAT)
    assert caught.value.status == 502
    assert [len(fake.state.requests) for fake in ups.fakes] == [1, 1, 0]


async def test_the_deadline_stops_further_attempts(ups: Upstreams) -> None:
    a, b = ups.fakes[0], ups.fakes[1]
    targets = [ups.target("a", a.url, [K1], timeout=0.2), ups.target("b", b.url, [L1], priority=1)]
    router = UpstreamRouter(targets, deadline=0.1)
    a.state.delay = 0.5
    with pytest.raises(Exception, match="did not answer within"):
        await router.call(CHAT)
    assert b.state.requests == []


async def test_key_errors_move_to_another_key_of_the_same_upstream(ups: Upstreams) -> None:
    a, b = ups.fakes[0], ups.fakes[1]
    bad, noquota = "sk-bad-aaaaaaaaaaaaaaaa", "sk-noquota-cccccccccccc"
    targets = [ups.target("a", a.url, [bad, noquota, K1]), ups.target("b", b.url, [L1], priority=1)]
    router = UpstreamRouter(targets)
    assert await answer_text(router, CHAT) == ANSWER
    assert a.state.keys_used == [bad, noquota, K1] and b.state.requests == []
    assert state_of(router, "a") == [
        ("disabled", "invalid key"),
        ("disabled", "quota exceeded"),
        ("active", None),
    ]


async def test_account_deactivated_disables_the_key(ups: Upstreams) -> None:
    from alice_py.upstream.client import error_from_response

    error = error_from_response(
        403, b'{"error": {"message": "deactivated", "code": "account_deactivated"}}', {}
    )
    pool = KeyPool([K1], auto_remove=True)
    pool.report_failure(K1, error)
    assert pool.snapshot()[0].disabled_reason == "invalid key"


async def test_a_rate_limit_cools_the_key_for_retry_after(ups: Upstreams) -> None:
    router, a, _ = two(ups)
    a.retry_after = 30
    a.fail_next("rate_limit")
    assert await answer_text(router, CHAT) == ANSWER
    assert a.keys_used == [K1, K2]
    key = router.targets[0].pool.snapshot()[0]
    assert (key.state, key.cooldown_remaining) == ("cooling", 30)


async def test_a_request_refused_for_itself_is_not_retried_and_not_counted(ups: Upstreams) -> None:
    router, a, b = two(ups)
    a.fail_next("context_overflow")
    with pytest.raises(UpstreamRequestError) as caught:
        await router.call(CHAT)
    assert caught.value.upstream_status == 400
    assert (len(a.requests), len(b.requests)) == (1, 0)
    assert [s.failures for s in router.targets[0].pool.snapshot()] == [0, 0]


async def test_server_errors_disable_a_key_only_at_the_threshold_within_the_window(ups: Upstreams) -> None:
    a = ups.fakes[0]
    target = ups.target("a", a.url, [K1], fail_threshold=3)
    router = UpstreamRouter([target], wait_for_key=0)
    for _ in range(2):
        a.state.fail_next("server_error")
        with pytest.raises(UpstreamServerError):
            await router.call(CHAT)
        ups.clock.advance(61)  # past the cooldown, and past the window
    a.state.fail_next("server_error")
    with pytest.raises(UpstreamServerError):
        await router.call(CHAT)
    assert state_of(router, "a") == [("cooling", None)]  # 3 failures, but never 3 in one window
    for _ in range(2):
        ups.clock.advance(10)  # past the cooldown, within the window
        a.state.fail_next("server_error")
        with pytest.raises(UpstreamServerError):
            await router.call(CHAT)
    assert state_of(router, "a") == [("disabled", "failing: 3 server errors within 60 s")]
    with pytest.raises(NoAvailableKeysError):
        await router.call(CHAT)


async def test_the_probe_brings_a_disabled_key_back_once_it_works(ups: Upstreams) -> None:
    a = ups.fakes[0]
    target = ups.target("a", a.url, [K1], fail_threshold=1)
    router = UpstreamRouter([target])
    a.state.fail_next("server_error")
    with pytest.raises(UpstreamServerError):
        await router.call(CHAT)
    assert state_of(router, "a")[0][0] == "disabled"
    model_calls = len(a.state.requests)
    assert await probe_once(router) == 1
    assert a.state.last.path == "/v1/models" and len(a.state.requests) == model_calls + 1
    assert state_of(router, "a") == [("active", None)]
    assert await answer_text(router, CHAT) == ANSWER
    # a key the probe finds still refused stays out
    bad = "sk-bad-aaaaaaaaaaaaaaaa"
    target.pool.add([bad])
    target.pool.disable(bad, "invalid key")
    assert await probe_once(router) == 0
    assert state_of(router, "a")[1] == ("disabled", "invalid key")


async def test_the_probe_leaves_a_rate_limited_key_to_its_retry_after(ups: Upstreams) -> None:
    router, a, _ = two(ups)
    a.fail_next("rate_limit")
    await answer_text(router, CHAT)
    assert await probe_once(router) == 0
    assert state_of(router, "a")[0] == ("cooling", None)


async def test_when_every_key_cools_a_call_waits_for_the_first_back(
    session: aiohttp.ClientSession, fakes: list[RunningFake]
) -> None:
    # real time: the wait is a real sleep
    a = fakes[0]
    client = OpenAIClient(session, a.url)
    router = UpstreamRouter([Target("a", client, KeyPool([K1], auto_remove=True))], wait_for_key=2.0)
    a.state.retry_after = 0.3
    a.state.fail_next("rate_limit")
    with pytest.raises(Exception, match=r"(?i)rate limit"):
        await router.call(CHAT)  # one key, rate limited: nothing else to try
    started = time.monotonic()
    assert await answer_text(router, CHAT) == ANSWER  # waits for the key to cool down
    assert time.monotonic() - started >= 0.25
    await client.close()


async def test_a_wait_longer_than_wait_for_key_is_a_429_with_retry_after(ups: Upstreams) -> None:
    router, a, b = two(ups, wait_for_key=5.0)
    a.retry_after = 30
    b.retry_after = 10
    a.fail_next("rate_limit", 2)
    b.fail_next("rate_limit")
    with pytest.raises(Exception, match=r"(?i)rate limit"):
        await router.call(CHAT)
    with pytest.raises(KeysCoolingError) as caught:
        await router.call(CHAT)
    assert caught.value.status == 429 and caught.value.retry_after == 10


async def test_a_stream_fails_over_before_its_first_byte(ups: Upstreams) -> None:
    router, a, b = two(ups)
    a.fail_next("server_error", 2)
    assert await joined(router) == ANSWER
    assert (a.keys_used, b.keys_used) == ([K1], [L1])


async def test_a_stream_broken_after_its_first_byte_never_fails_over(ups: Upstreams) -> None:
    router, a, b = two(ups)
    a.break_stream_after = 2
    got: list[str] = []
    with pytest.raises(UpstreamConnectionError):
        async for piece in pieces(router, CHAT):
            got.append(piece)
    assert got and b.requests == []
    key = router.targets[0].pool.snapshot()[0]
    assert (key.state, key.failures, key.window_failures) == ("active", 1, 1)  # counted, no cooldown


async def test_a_conversation_keeps_its_key_while_it_is_usable(ups: Upstreams) -> None:
    a = ups.fakes[0]
    router = UpstreamRouter([ups.target("a", a.url, [K1, K2, K3])])
    one = UpstreamRequest(CHAT.endpoint, CHAT.body, affinity="conv-1")
    other = UpstreamRequest(CHAT.endpoint, CHAT.body, affinity="conv-2")
    for _ in range(3):
        await answer_text(router, one)
        await answer_text(router, other)
        await answer_text(router, CHAT)  # no affinity: round robin
    keys = a.state.keys_used
    assert keys[0::3] == [keys[0]] * 3 and keys[1::3] == [keys[1]] * 3 and keys[0] != keys[1]
    assert len(set(keys[2::3])) > 1
    router.targets[0].pool.disable(keys[0], "invalid key")
    await answer_text(router, one)
    moved = a.state.keys_used[-1]
    assert moved != keys[0]
    await answer_text(router, other)
    await answer_text(router, one)
    assert a.state.keys_used[-1] == moved  # it stays where it moved


async def test_equal_priorities_share_by_weight(ups: Upstreams) -> None:
    a, b = ups.fakes[0], ups.fakes[1]
    router = UpstreamRouter([ups.target("a", a.url, [K1], weight=3), ups.target("b", b.url, [L1])])
    for _ in range(8):
        await answer_text(router, CHAT)
    assert (len(a.state.requests), len(b.state.requests)) == (6, 2)


async def test_models_pick_the_upstreams_and_an_unserved_model_is_404(ups: Upstreams) -> None:
    a, b = ups.fakes[0], ups.fakes[1]
    targets = [
        ups.target("a", a.url, [K1], models=["gpt-4o*"]),
        ups.target("b", b.url, [L1], models=["llama-*"]),
    ]
    router = UpstreamRouter(targets)
    await answer_text(router, CHAT)
    await answer_text(router, UpstreamRequest("chat", {**CHAT.body, "model": "llama-3"}))
    assert (a.state.keys_used, b.state.keys_used) == ([K1], [L1])
    with pytest.raises(ModelNotFound):
        await router.call(UpstreamRequest("chat", {**CHAT.body, "model": "mistral"}))
