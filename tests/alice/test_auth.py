"""Auth modes of /chatgpt/*: none, simple (shared secret), normal (sha256 of secret + uuid, no replays)."""

from __future__ import annotations

import hashlib

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py import keys
from alice_py.errors import RateLimited
from alice_py.web.auth import MemoryReplayGuard
from tests.alice.conftest import SECRET, MakeClient
from tests.alice.helpers import normal_auth
from tests.support import Clock

Client = TestClient[web.Request, web.Application]


async def status_of(client: Client, headers: dict[str, str], path: str = "/chatgpt/create") -> int:
    response = await client.post(path, headers=headers)
    if response.status != 200:
        assert (response.status, await response.text()) == (401, "Auth failed")
    return response.status


async def test_none_lets_everything_through(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "none"})
    assert await status_of(client, {}) == 200


async def test_simple_needs_the_secret(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    assert await status_of(client, {}) == 401
    assert await status_of(client, {"token": ""}) == 401
    assert await status_of(client, {"token": SECRET + "x"}) == 401
    assert await status_of(client, {"token": SECRET.upper()}) == 401
    assert await status_of(client, {"token": SECRET}) == 200
    assert await status_of(client, {"token": SECRET}) == 200  # no nonce in simple mode


async def test_simple_guards_every_route_but_the_share_page(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    routes = ["create", "createTurbo", "createGPT4", "createRolePlay", "chat", "regenerate", "rollback"]
    routes += ["context", "contextArray", "finish", "store", "quickAnswer", "summary"]
    for route in routes:
        assert await status_of(client, {"token": "nope"}, f"/chatgpt/{route}") == 401, route
    response = await client.get("/chatgpt/share/Unknown1")
    assert response.status == 404  # reached the handler: no auth on the share page


async def test_normal_accepts_a_fresh_uuid_once(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "normal"})
    headers = normal_auth(SECRET)
    assert headers["token"] == hashlib.sha256((SECRET + headers["uuid"]).encode()).hexdigest()
    assert await status_of(client, headers) == 200
    assert await status_of(client, headers) == 401


async def test_normal_replay_fails_even_after_many_other_requests(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "normal"})
    first = normal_auth(SECRET)
    assert await status_of(client, first) == 200
    for _ in range(60):  # the original forgot every uuid after 50 requests
        assert await status_of(client, normal_auth(SECRET)) == 200
    assert await status_of(client, first) == 401


async def test_normal_rejects_bad_tokens_and_uuids(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "normal"})
    good = normal_auth(SECRET)
    assert await status_of(client, {"token": good["token"]}) == 401  # uuid missing
    assert await status_of(client, {"uuid": good["uuid"]}) == 401  # token missing
    assert await status_of(client, {"uuid": good["uuid"], "token": good["token"].upper()}) == 401
    assert await status_of(client, normal_auth("other-secret")) == 401
    assert await status_of(client, {"token": SECRET}) == 401  # the simple-mode secret is not enough
    assert await status_of(client, normal_auth(SECRET, "")) == 401
    assert await status_of(client, normal_auth(SECRET, "u" * 51)) == 401
    assert await status_of(client, normal_auth(SECRET, "u" * 50)) == 200
    assert await status_of(client, normal_auth(SECRET, "1")) == 200
    assert await status_of(client, normal_auth(SECRET, "ünïcødé-uuid")) == 200
    # a refused attempt does not use the uuid up
    assert await status_of(client, {"uuid": good["uuid"], "token": "0" * 64}) == 401
    assert await status_of(client, good) == 200


async def test_a_full_replay_set_refuses_new_uuids_instead_of_forgetting(make_client: MakeClient) -> None:
    clock = Clock()

    def small_set(app: web.Application) -> None:
        app[keys.REPLAY_GUARD] = MemoryReplayGuard(retention=100, capacity=2, clock=clock)

    client = await make_client(setup=small_set, auth={"mode": "normal"})
    first, second = normal_auth(SECRET), normal_auth(SECRET)
    assert await status_of(client, first) == 200
    clock.advance(10)
    assert await status_of(client, second) == 200
    response = await client.post("/chatgpt/create", headers=normal_auth(SECRET))
    assert (response.status, await response.text()) == (429, "Server busy")
    assert response.headers["Retry-After"] == "90"
    assert await status_of(client, first) == 401  # still remembered
    clock.advance(90)
    assert await status_of(client, normal_auth(SECRET)) == 200  # the first one's room is free again


async def test_replay_guard_remembers_for_the_retention_window() -> None:
    clock = Clock()
    guard = MemoryReplayGuard(retention=1800, capacity=10, clock=clock)
    assert await guard.first_use("a")
    clock.advance(1799.9)
    assert not await guard.first_use("a")
    clock.advance(0.1)
    assert await guard.first_use("a")
    assert len(guard) == 1


async def test_replay_guard_when_full() -> None:
    clock = Clock()
    guard = MemoryReplayGuard(retention=60, capacity=1, clock=clock)
    assert await guard.first_use("a")
    clock.advance(20)
    with pytest.raises(RateLimited) as caught:
        await guard.first_use("b")
    assert caught.value.retry_after == pytest.approx(40)
    assert not await guard.first_use("a")
