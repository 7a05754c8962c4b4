"""The admin key API: password, lockout, list / add / remove, keys kept across a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py import appkeys
from alice_py.api.admin_keys import FailureLimiter
from alice_py.fake import FakeState
from tests.dialects.conftest import ADMIN_PASSWORD, UPSTREAM_KEY, MakeClient
from tests.support import Clock

Client = TestClient[web.Request, web.Application]
NEW_A = "sk-added-aaaaaaaaaaaa1111"
NEW_B = "sk-added-bbbbbbbbbbbb2222"
ADMIN = {"Authorization": ADMIN_PASSWORD}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def with_clock(clock: Clock) -> Callable[[web.Application], None]:
    def setup(app: web.Application) -> None:
        app[appkeys.ADMIN_FAILURES] = FailureLimiter(clock=clock)

    return setup


@pytest.fixture
async def admin(make_client: MakeClient, with_clock: Callable[[web.Application], None]) -> Client:
    return await make_client(setup=with_clock, admin={"password": ADMIN_PASSWORD})


async def listed(client: Client) -> list[dict[str, object]]:
    response = await client.get("/admin/keys", headers=ADMIN)
    assert response.status == 200
    body = await response.json()
    assert body["count"] == len(body["keys"])
    result: list[dict[str, object]] = body["keys"]
    return result


async def test_admin_off_without_a_password(client: Client) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, "/admin/keys", json=[NEW_A], headers=ADMIN)
        assert response.status == 404
        assert "admin API is off" in (await response.json())["error"]


async def test_list_add_remove(admin: Client, fake_state: FakeState) -> None:
    (only,) = await listed(admin)
    assert only["key"] == "sk-…1234"
    assert (only["state"], only["source"], only["disabled_reason"]) == ("active", "config", None)

    response = await admin.patch(
        "/admin/keys", json=[NEW_A, f"  {NEW_B} ", NEW_A, UPSTREAM_KEY], headers=ADMIN
    )
    assert response.status == 200
    assert await response.json() == {
        "added": ["sk-…1111", "sk-…2222"],
        "already_present": ["sk-…1234"],
        "upstream": "default",
        "count": 3,
    }
    assert [(k["key"], k["source"]) for k in await listed(admin)] == [
        ("sk-…1234", "config"),
        ("sk-…1111", "admin"),
        ("sk-…2222", "admin"),
    ]
    for _ in range(3):
        assert (await admin.post("/v1/chat/completions", json=CHAT)).status == 200
    assert set(fake_state.keys_used) == {UPSTREAM_KEY, NEW_A, NEW_B}

    response = await admin.delete(
        "/admin/keys", json=[NEW_A, "sk-…2222", "sk-never-seen-00000000"], headers=ADMIN
    )
    assert response.status == 200
    assert await response.json() == {
        "removed": ["sk-…1111", "sk-…2222"],
        "not_found": ["sk-…0000"],
        "back_at_restart": [],
        "count": 1,
    }
    assert [k["key"] for k in await listed(admin)] == ["sk-…1234"]


async def test_removing_a_configured_key_says_it_comes_back(admin: Client) -> None:
    response = await admin.delete("/admin/keys", json=[UPSTREAM_KEY], headers=ADMIN)
    assert (await response.json())["back_at_restart"] == ["sk-…1234"]
    assert await listed(admin) == []
    assert (await admin.post("/v1/chat/completions", json=CHAT)).status == 503


async def test_state_shows_disabled_keys(admin: Client, fake_state: FakeState) -> None:
    await admin.patch("/admin/keys", json=["sk-bad-cccccccccccc3333"], headers=ADMIN)
    for _ in range(2):
        await admin.post("/v1/chat/completions", json=CHAT)
    states = {k["key"]: k for k in await listed(admin)}
    assert states["sk-…3333"]["state"] == "disabled"
    assert states["sk-…3333"]["disabled_reason"] == "invalid key"
    assert states["sk-…3333"]["failures"] == 1
    assert states["sk-…1234"]["state"] == "active"


async def test_bad_bodies(admin: Client) -> None:
    bodies = (b"not json", b'{"keys": "sk-x"}', b'{"key": ["sk-x"]}', b'["ok-key", 5]', b'["a b"]', b'[""]')
    for body in bodies:
        response = await admin.patch(
            "/admin/keys", data=body, headers={**ADMIN, "Content-Type": "application/json"}
        )
        assert response.status == 400, body
        assert "error" in await response.json()
    await admin.patch(
        "/admin/keys", json=["sk-one-xxxxxxxxxxxx9999", "sk-two-yyyyyyyyyyyy9999"], headers=ADMIN
    )
    ambiguous = await admin.delete("/admin/keys", json=["sk-…9999"], headers=ADMIN)
    assert ambiguous.status == 400
    assert len(await listed(admin)) == 3


async def test_wrong_passwords_are_refused_then_locked_out(admin: Client, clock: Clock) -> None:
    for attempt in range(5):
        response = await admin.get("/admin/keys", headers={"Authorization": f"guess-{attempt}"})
        assert response.status == 401
        assert "Wrong admin password" in (await response.json())["error"]
    locked = await admin.get("/admin/keys", headers=ADMIN)  # even the right one, while locked out
    assert locked.status == 429
    assert locked.headers["Retry-After"] == "60"
    clock.advance(61)
    assert (await admin.get("/admin/keys", headers=ADMIN)).status == 200
    assert (
        await admin.get("/admin/keys", headers={"Authorization": f"Bearer {ADMIN_PASSWORD}"})
    ).status == 200
    assert (await admin.get("/admin/keys")).status == 401


async def test_seed_route_admin_tokens(admin: Client) -> None:
    response = await admin.patch("/admin/tokens", json=[NEW_A], headers=ADMIN)
    assert (await response.json())["added"] == ["sk-…1111"]


async def test_keys_survive_a_restart(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="alice_py")
    caplog.set_level(logging.INFO)
    first = await make_client(admin={"password": ADMIN_PASSWORD})
    await first.patch("/admin/keys", json=[NEW_A, NEW_B], headers=ADMIN)
    await first.delete("/admin/keys", json=[NEW_B], headers=ADMIN)
    await first.close()

    second = await make_client(admin={"password": ADMIN_PASSWORD})
    assert [(k["key"], k["source"]) for k in await listed(second)] == [
        ("sk-…1234", "config"),
        ("sk-…1111", "admin"),
    ]
    fake_state.requests.clear()
    for _ in range(2):
        assert (await second.post("/v1/chat/completions", json=CHAT)).status == 200
    assert set(fake_state.keys_used) == {UPSTREAM_KEY, NEW_A}
    for record in caplog.records:
        assert NEW_A not in record.getMessage() and NEW_B not in record.getMessage()
