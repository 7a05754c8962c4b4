"""Auth modes of /chatgpt/*: none, simple (shared secret), normal (sha256 of secret + uuid, no
replays: ``[auth] replay`` strict or original)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py import appkeys
from alice_py.web.auth import UUID_REUSED, AliceAuth
from alice_py.web.replay import MemoryReplayGuard, memory_replay_guard
from tests.alice.conftest import SECRET, MakeClient
from tests.alice.helpers import normal_auth
from tests.support import Clock

Client = TestClient[web.Request, web.Application]


async def status_of(client: Client, headers: dict[str, str], path: str = "/chatgpt/create") -> int:
    response = await client.post(path, headers=headers)
    if response.status != 200:
        assert (response.status, await response.text()) in ((401, "Auth failed"), (401, UUID_REUSED))
    return response.status


def reuse_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "a client reuses uuids" in r.getMessage()]


def full_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "replay set is full" in r.getMessage()]


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


async def test_a_reused_uuid_gets_a_401_that_says_so(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "normal"})
    headers = normal_auth(SECRET)
    assert (await client.post("/chatgpt/create", headers=headers)).status == 200
    response = await client.post("/chatgpt/create", headers=headers)
    assert (response.status, await response.text()) == (
        401,
        "uuid already used: send a fresh random uuid with each request",
    )
    # A wrong token is still the plain refusal: nothing said about uuids to a client without the secret.
    wrong = await client.post("/chatgpt/create", headers={"uuid": headers["uuid"], "token": "0" * 64})
    assert (wrong.status, await wrong.text()) == (401, "Auth failed")


async def test_reused_uuids_are_logged_at_most_once_a_minute_naming_the_setting(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()

    def clocked_auth(app: web.Application) -> None:
        table = app[appkeys.DIALECTS]
        alice = table.for_path("/chatgpt")
        table.replace(replace(alice, guard=AliceAuth(app[appkeys.CONFIG].auth, clock=clock)))

    client = await make_client(setup=clocked_auth, auth={"mode": "normal"})
    headers = normal_auth(SECRET)
    assert await status_of(client, headers) == 200
    for _ in range(5):
        assert await status_of(client, headers) == 401
    clock.advance(59)
    assert await status_of(client, headers) == 401
    lines = reuse_lines(caplog)
    assert len(lines) == 1
    assert '[auth] replay = "strict"' in lines[0] and '"original"' in lines[0]
    assert SECRET not in caplog.text and headers["token"] not in caplog.text
    clock.advance(1)
    assert await status_of(client, headers) == 401
    lines = reuse_lines(caplog)
    assert len(lines) == 2
    assert lines[1].endswith("(5 more since the last such line)")


async def test_original_replay_refuses_a_uuid_only_among_the_last_50(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "normal", "replay": "original"})
    first = normal_auth(SECRET)
    assert await status_of(client, first) == 200
    assert await status_of(client, first) == 401
    for _ in range(49):
        assert await status_of(client, normal_auth(SECRET)) == 200
    assert await status_of(client, first) == 401  # 49 others since: still among the last 50
    assert await status_of(client, normal_auth(SECRET)) == 200
    assert await status_of(client, first) == 200  # pushed out by the 50th


@pytest.mark.parametrize(("replay", "refused"), [("original", 0), ("strict", 60)])
async def test_a_frontend_whose_uuids_come_back_after_60_requests(
    make_client: MakeClient, replay: str, refused: int
) -> None:
    # As with the Alice README's uuid = new Date().getMilliseconds(): few values, so they recur.
    client = await make_client(auth={"mode": "normal", "replay": replay})
    statuses = [await status_of(client, normal_auth(SECRET, str(i % 60))) for i in range(120)]
    assert statuses[:60] == [200] * 60
    assert statuses[60:].count(401) == refused


async def test_a_full_strict_set_forgets_the_oldest_and_logs_it_folded(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()

    def small_set(app: web.Application) -> None:
        app[appkeys.REPLAY_GUARD] = memory_replay_guard(app[appkeys.CONFIG], capacity=2, clock=clock)

    client = await make_client(setup=small_set, auth={"mode": "normal"})
    first, second, third = normal_auth(SECRET), normal_auth(SECRET), normal_auth(SECRET)
    assert await status_of(client, first) == 200
    assert await status_of(client, second) == 200
    assert full_lines(caplog) == []
    # Full: the newcomer is let in (never a 429 for everyone), the oldest forgotten.
    assert await status_of(client, third) == 200
    assert await status_of(client, second) == 401 and await status_of(client, third) == 401
    assert await status_of(client, first) == 200  # forgotten early, as the warning says
    for _ in range(3):
        assert await status_of(client, normal_auth(SECRET)) == 200
    assert len(full_lines(caplog)) == 1
    assert "forgetting the oldest" in full_lines(caplog)[0]
    clock.advance(60)
    assert await status_of(client, normal_auth(SECRET)) == 200
    assert full_lines(caplog)[1].endswith("(4 more since the last such line)")


async def test_replay_guard_remembers_for_the_retention_window() -> None:
    clock = Clock()
    guard = MemoryReplayGuard(retention=1800, capacity=10, clock=clock)
    assert await guard.first_use("a")
    clock.advance(1799.9)
    assert not await guard.first_use("a")
    clock.advance(0.1)
    assert await guard.first_use("a")
    assert len(guard) == 1


async def test_replay_guard_when_full_makes_room_by_forgetting_the_oldest() -> None:
    clock = Clock()
    forgotten: list[int] = []
    guard = MemoryReplayGuard(math.inf, capacity=2, clock=clock, on_full=lambda: forgotten.append(1))
    assert await guard.first_use("a") and await guard.first_use("b")
    clock.advance(10**9)  # no expiry with an infinite retention
    assert not await guard.first_use("a")
    assert await guard.first_use("c")
    assert (len(guard), len(forgotten)) == (2, 1)
    assert await guard.first_use("a")  # "a" made room for "c"
    assert not await guard.first_use("c")

