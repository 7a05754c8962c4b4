"""Every row of the spec's status table, with correct codes and with ``--compat-status``."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from alice_py import appkeys
from alice_py.fake import FakeState
from alice_py.web.ratelimit import SlidingWindowLimiter
from tests.alice.conftest import MakeClient
from tests.alice.helpers import wait_until

Client = TestClient[web.Request, web.Application]


@pytest.fixture(params=[False, True], ids=["correct", "compat"])
def compat(request: pytest.FixtureRequest) -> bool:
    flag: bool = request.param
    return flag


async def expect(response: ClientResponse, status: int, message: str) -> None:
    assert (response.status, await response.text()) == (status, message)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


async def make(make_client: MakeClient, compat: bool, **sections: dict[str, object]) -> Client:
    return await make_client(server={"compat_status": compat}, **sections)


async def new_turbo(client: Client) -> str:
    response = await client.post("/chatgpt/createTurbo")
    return await response.text()


async def test_auth_failed(make_client: MakeClient, compat: bool) -> None:
    client = await make(make_client, compat, auth={"mode": "simple"})
    response = await client.post("/chatgpt/create", headers={"token": "wrong"})
    await expect(response, 505 if compat else 401, "Auth failed")


async def test_rate_limit_hit(make_client: MakeClient, compat: bool) -> None:
    def one_per_minute(app: web.Application) -> None:
        app[appkeys.RATE_LIMITER] = SlidingWindowLimiter(1, clock=lambda: 50.0)

    client = await make_client(setup=one_per_minute, server={"compat_status": compat})
    assert (await client.post("/chatgpt/summary", data=b"article")).status == 200
    response = await client.post("/chatgpt/summary", data=b"article")
    await expect(response, 502 if compat else 429, "Server busy")
    assert response.headers["Retry-After"] == "60"


async def test_conversation_header_missing(make_client: MakeClient, compat: bool) -> None:
    client = await make(make_client, compat)
    for route in ("regenerate", "rollback", "context", "contextArray", "finish", "store"):
        response = await client.post(f"/chatgpt/{route}")
        await expect(response, 500 if compat else 400, "conversation id is nil")


async def test_unknown_conversation(make_client: MakeClient, compat: bool) -> None:
    client = await make(make_client, compat)
    for route in ("chat", "regenerate", "rollback", "context", "contextArray", "finish", "store"):
        response = await client.post(f"/chatgpt/{route}", data=b"hi", headers={"conversation": "Nope1234"})
        message = "failed to find conversation with provided id: Nope1234"
        await expect(response, 500 if compat else 404, message)


async def test_conversation_busy(make_client: MakeClient, compat: bool, fake_state: FakeState) -> None:
    client = await make(make_client, compat)
    conv_id = await new_turbo(client)
    fake_state.delay = 0.15
    first = asyncio.create_task(client.post("/chatgpt/chat", data=b"one", headers={"conversation": conv_id}))
    await wait_until(lambda: bool(fake_state.requests))
    second = await client.post("/chatgpt/chat", data=b"two", headers={"conversation": conv_id})
    await expect(second, 500 if compat else 409, "AI is thinking")
    again = await client.post("/chatgpt/regenerate", headers={"conversation": conv_id})
    await expect(again, 500 if compat else 409, "AI is thinking")
    rollback = await client.post("/chatgpt/rollback", headers={"conversation": conv_id})
    await expect(rollback, 500 if compat else 409, "Failed to rollback, cant rollback while AI is thinking")
    assert (await first).status == 200


async def test_empty_question(make_client: MakeClient, compat: bool) -> None:
    client = await make(make_client, compat)
    conv_id = await new_turbo(client)
    response = await client.post("/chatgpt/chat", data=b"", headers={"conversation": conv_id})
    await expect(response, 500 if compat else 400, "Question can not be empty")


async def test_malformed_body(make_client: MakeClient, compat: bool) -> None:
    client = await make(make_client, compat)
    response = await client.post("/chatgpt/createTurbo", data=b"{not json")
    await expect(response, 500 if compat else 400, "Failed to read request body")


async def test_upstream_failure_passes_its_message(
    make_client: MakeClient, compat: bool, fake_state: FakeState
) -> None:
    client = await make(make_client, compat)
    conv_id = await new_turbo(client)
    fake_state.fail_next("bad_request")
    response = await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conv_id})
    assert response.status == (500 if compat else 502)
    assert "The demo upstream was told to reject this request." in await response.text()


async def test_upstream_timeout(make_client: MakeClient, compat: bool, fake_state: FakeState) -> None:
    client = await make(make_client, compat, upstream={"timeout": 0.05})
    conv_id = await new_turbo(client)
    fake_state.delay = 0.2
    response = await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conv_id})
    assert response.status == (500 if compat else 504)
    assert "did not answer within 0.05 s" in await response.text()


async def test_no_available_keys(make_client: MakeClient, compat: bool) -> None:
    client = await make(make_client, compat, upstream={"keys": ()})
    response = await client.post("/chatgpt/summary", data=b"article")
    await expect(response, 500 if compat else 503, "No available API keys")


async def test_payload_too_large_keeps_413(make_client: MakeClient, compat: bool) -> None:
    client = await make_client(server={"compat_status": compat, "max_body": 1000})
    response = await client.post("/chatgpt/create", data=b"x" * 1001)
    await expect(response, 413, "Request body too large: at most 1000 bytes are accepted")
