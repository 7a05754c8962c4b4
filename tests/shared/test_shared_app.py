"""Two instances of the real app on one Redis (``[conversations] store = "redis"``) count the
rate limits and refuse replayed uuids as one service; Redis down is a 503 that heals.

Each instance is its own app with its own Redis pool and database file, served on a real
socket; ``tests/persistence`` style real processes are in ``test_shared_processes.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py import appkeys
from alice_py.app import create_app
from alice_py.fake import RunningFake
from alice_py.web.auth import normal_token
from tests.alice.conftest import SECRET, make_config
from tests.redis_support import OwnRedis

pytestmark = pytest.mark.redis

Client = TestClient[web.Request, web.Application]
Instance = Callable[..., Awaitable[Client]]


@pytest.fixture
def instance(aiohttp_client: Any, fake: RunningFake, tmp_path: Path) -> Instance:
    """``await instance(name, url, prefix, limits=..., auth=...)``: one instance on that Redis."""

    async def make(name: str, url: str, prefix: str, **sections: dict[str, Any]) -> Client:
        store = {"store": "redis", "redis_url": url, "key_prefix": prefix}
        (tmp_path / name).mkdir(exist_ok=True)
        cfg = make_config(fake, tmp_path / name, conversations=store, **sections)
        client: Client = await aiohttp_client(create_app(cfg))
        return client

    return make


def signed(uuid: str) -> dict[str, str]:
    return {"uuid": uuid, "token": normal_token(SECRET, uuid)}


async def summary(client: Client, headers: dict[str, str] | None = None) -> tuple[int, str]:
    response = await client.post("/chatgpt/summary", data=b"an article", headers=headers)
    return response.status, await response.text()


async def test_the_limit_is_exact_across_instances(
    instance: Instance, redis_prefix: tuple[str, str]
) -> None:
    a = await instance("a", *redis_prefix, limits={"per_minute": 3})
    b = await instance("b", *redis_prefix, limits={"per_minute": 3})
    for client in (a, b, a):
        assert (await summary(client))[0] == 200
    for client in (b, a):
        response = await client.post("/chatgpt/summary", data=b"an article")
        assert (response.status, await response.text()) == (429, "Server busy")
        assert 59 <= int(response.headers["Retry-After"]) <= 60


async def test_the_per_client_limit_follows_the_client_across_instances(
    instance: Instance, redis_prefix: tuple[str, str]
) -> None:
    sections: dict[str, dict[str, Any]] = {"limits": {"per_minute": 0, "per_client": 2}}
    sections["auth"] = {"mode": "simple"}
    a = await instance("a", *redis_prefix, **sections)
    b = await instance("b", *redis_prefix, **sections)
    mine = {"token": SECRET}
    assert (await summary(a, mine))[0] == 200
    assert (await summary(b, mine))[0] == 200
    assert await summary(a, mine) == (429, "Too many requests from this client: try again later")


async def test_a_uuid_used_on_one_instance_is_refused_on_another_and_after_a_restart(
    instance: Instance, redis_prefix: tuple[str, str]
) -> None:
    auth = {"mode": "normal"}
    a = await instance("a", *redis_prefix, auth=auth)
    b = await instance("b", *redis_prefix, auth=auth)
    assert (await summary(a, signed("u-1")))[0] == 200
    refused = (401, "uuid already used: send a fresh random uuid with each request")
    assert await summary(b, signed("u-1")) == refused
    assert (await summary(b, signed("u-2")))[0] == 200
    assert await summary(a, signed("u-2")) == refused
    await a.close()
    restarted = await instance("a", *redis_prefix, auth=auth)
    assert await summary(restarted, signed("u-1")) == refused
    assert (await summary(restarted, signed("u-3")))[0] == 200


async def test_original_replay_is_shared_too(instance: Instance, redis_prefix: tuple[str, str]) -> None:
    auth = {"mode": "normal", "replay": "original"}
    a = await instance("a", *redis_prefix, auth=auth)
    b = await instance("b", *redis_prefix, auth=auth)
    assert (await summary(a, signed("7")))[0] == 200
    assert (await summary(b, signed("7")))[0] == 401
    for n in range(50):
        assert (await summary(a if n % 2 else b, signed(f"fresh-{n}")))[0] == 200
    assert (await summary(b, signed("7")))[0] == 200  # no longer among the last 50 seen


async def test_redis_down_is_a_clear_503_and_the_service_comes_back(
    instance: Instance, own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    limited = await instance("a", own_redis.url, "p:", limits={"per_minute": 10})
    normal = await instance("b", own_redis.url, "p:", auth={"mode": "normal"})
    assert (await summary(limited))[0] == 200
    assert (await summary(normal, signed("u-1")))[0] == 200
    own_redis.stop()
    with caplog.at_level(logging.INFO):
        failed = await limited.post("/chatgpt/summary", data=b"an article")
    assert failed.status == 503
    request_id = failed.headers["X-Request-Id"]
    assert [r for r in caplog.records if request_id in r.getMessage() and "Redis" in r.getMessage()]
    for status, text in (await summary(limited), await summary(normal, signed("u-2"))):
        assert status == 503
        assert text.startswith("The shared store (Redis) is not answering, please try again later")
    health = await limited.get("/healthz")
    assert health.status == 200  # the process itself is fine
    await own_redis.start()
    assert (await summary(limited))[0] == 200
    assert (await summary(normal, signed("u-2")))[0] == 200


async def test_redis_down_on_streamed_and_openai_routes_is_a_503_before_any_byte(
    instance: Instance, own_redis: OwnRedis
) -> None:
    client = await instance("a", own_redis.url, "p:", limits={"per_minute": 10})
    conv_id = await (await client.post("/chatgpt/createTurbo")).text()
    # This Redis keeps nothing across its restart: the conversation comes back from the
    # database, as after a flush, once a write-behind round has saved it.
    assert await client.app[appkeys.SAVER].flush()
    own_redis.stop()
    streamed = await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conv_id})
    assert streamed.status == 503
    assert (await streamed.text()).startswith("The shared store (Redis) is not answering")
    body = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status == 503
    error = (await response.json())["error"]
    assert error["message"].startswith("The shared store (Redis) is not answering")
    await own_redis.start()
    chat = await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conv_id})
    assert chat.status == 200
    await chat.read()
    context = await client.post("/chatgpt/contextArray", headers={"conversation": conv_id})
    assert len(await context.json()) == 2  # the refused question left nothing behind
    assert (await client.post("/v1/chat/completions", json=body)).status == 200
