"""The limits of model calls per minute: a sliding window, global and per client, counted only
when a model call (or, per client, a new conversation) is about to be made."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py import appkeys
from alice_py.errors import RateLimited
from alice_py.fake import FakeState
from alice_py.web.ratelimit import SlidingWindowLimiter
from tests.alice.conftest import MakeClient
from tests.support import Clock

Client = TestClient[web.Request, web.Application]


async def test_sliding_window_frees_one_slot_at_a_time() -> None:
    clock = Clock(0)
    limiter = SlidingWindowLimiter(3, clock=clock)
    for at in (0, 30, 59):
        clock.now = at
        await limiter.acquire("a")
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("a")
    assert caught.value.retry_after == pytest.approx(1)
    clock.now = 61  # the call at 0 left the window; a fixed window would now allow 3 more
    await limiter.acquire("a")
    clock.now = 62
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("a")
    assert caught.value.retry_after == pytest.approx(28)  # until the call at 30 leaves


async def test_refused_calls_do_not_count() -> None:
    clock = Clock(0)
    limiter = SlidingWindowLimiter(1, clock=clock)
    await limiter.acquire("a")
    for at in (10, 20, 30):
        clock.now = at
        with pytest.raises(RateLimited):
            await limiter.acquire("a")
    clock.now = 60
    await limiter.acquire("a")


async def test_zero_is_no_limit() -> None:
    limiter = SlidingWindowLimiter(0, clock=lambda: 0.0)
    for _ in range(10_000):
        await limiter.acquire("a")


def limited_app(clock: Clock, per_minute: int, per_client: int = 0) -> Callable[[web.Application], None]:
    def setup(app: web.Application) -> None:
        app[appkeys.RATE_LIMITER] = SlidingWindowLimiter(per_minute, per_client, clock=clock)

    return setup


async def busy(client: Client, path: str, data: bytes = b"", headers: dict[str, str] | None = None) -> None:
    response = await client.post(path, data=data, headers=headers)
    assert (response.status, await response.text()) == (429, "Server busy")
    assert int(response.headers["Retry-After"]) >= 1


async def test_every_model_route_counts_and_others_do_not(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    clock = Clock()
    client = await make_client(setup=limited_app(clock, 4))
    conv_id = await (await client.post("/chatgpt/createTurbo")).text()
    headers = {"conversation": conv_id}
    assert (await client.post("/chatgpt/chat", data=b"hi", headers=headers)).status == 200
    assert (await client.post("/chatgpt/regenerate", headers=headers)).status == 200
    quick = b'{"question": "q", "stream": false}'
    assert (await client.post("/chatgpt/quickAnswer", data=quick)).status == 200
    assert (await client.post("/chatgpt/summary", data=b"article")).status == 200
    calls = len(fake_state.requests)
    for path in ("/chatgpt/chat", "/chatgpt/regenerate", "/chatgpt/quickAnswer", "/chatgpt/summary"):
        await busy(client, path, data=quick if "quick" in path else b"hi", headers=headers)
    assert len(fake_state.requests) == calls  # refused before the model was called
    for path in ("/chatgpt/create", "/chatgpt/context", "/chatgpt/contextArray", "/chatgpt/rollback"):
        assert (await client.post(path, headers=headers)).status == 200, path
    clock.advance(60)
    assert (await client.post("/chatgpt/chat", data=b"hi", headers=headers)).status == 200


async def test_retry_after_says_when_a_slot_frees(make_client: MakeClient) -> None:
    clock = Clock()
    client = await make_client(setup=limited_app(clock, 1))
    assert (await client.post("/chatgpt/summary", data=b"a")).status == 200
    clock.advance(45.5)
    response = await client.post("/chatgpt/summary", data=b"a")
    assert response.status == 429
    assert response.headers["Retry-After"] == "15"


async def test_limit_comes_from_the_config(make_client: MakeClient) -> None:
    client = await make_client(limits={"per_minute": 2})
    for _ in range(2):
        assert (await client.post("/chatgpt/summary", data=b"a")).status == 200
    await busy(client, "/chatgpt/summary", data=b"a")


async def test_unauthenticated_requests_do_not_use_up_the_limit(make_client: MakeClient) -> None:
    client = await make_client(limits={"per_minute": 1}, auth={"mode": "simple"})
    for _ in range(3):
        assert (await client.post("/chatgpt/summary", data=b"a", headers={"token": "x"})).status == 401
    response = await client.post("/chatgpt/summary", data=b"a", headers={"token": "s3cret"})
    assert response.status == 200


async def test_per_client_limit_spares_other_clients() -> None:
    clock = Clock(0)
    limiter = SlidingWindowLimiter(0, 2, clock=clock)
    await limiter.acquire("a")
    await limiter.acquire("a", model_call=False)  # a new conversation counts for its client
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("a")
    assert caught.value.message == "Too many requests from this client: try again later"
    await limiter.acquire("b")
    clock.now = 60
    await limiter.acquire("a")


async def test_a_refusal_by_one_limit_counts_against_neither() -> None:
    clock = Clock(0)
    limiter = SlidingWindowLimiter(2, 1, clock=clock)
    await limiter.acquire("a")
    with pytest.raises(RateLimited):
        await limiter.acquire("a")  # refused per client: the global slot it would take stays free
    await limiter.acquire("b")
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("c")
    assert caught.value.message == "Server busy"


async def test_new_conversations_do_not_count_globally() -> None:
    limiter = SlidingWindowLimiter(1, 0, clock=Clock(0))
    for _ in range(5):
        await limiter.acquire("a", model_call=False)
    await limiter.acquire("a")


async def test_idle_clients_are_forgotten() -> None:
    clock = Clock(0)
    limiter = SlidingWindowLimiter(0, 1, clock=clock)
    for client in range(1000):
        await limiter.acquire(f"addr:{client}")
    clock.now = 61
    await limiter.acquire("addr:new")
    assert len(limiter._clients) == 1  # what one client costs is bounded by the window
