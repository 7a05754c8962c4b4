"""Rate limits across every dialect: only real model calls by authenticated clients count, and
``[limits] per_client`` keeps one client from taking the whole allowance."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py import appkeys
from alice_py.fake import FakeState
from alice_py.web.ratelimit import SlidingWindowLimiter
from tests.dialects.conftest import CLIENT_KEY, SECRET, MakeClient
from tests.support import Clock

Client = TestClient[web.Request, web.Application]
RELAY_KEY = "relay-key-0000000000009999"
OTHER_KEY = "sk-client-0000000000004321"
BEARER = {"Authorization": f"Bearer {CLIENT_KEY}"}
MESSAGES = [{"role": "user", "content": "hi"}]

# (path, headers, body, status): refused for auth or bad input, on every dialect.
REFUSED: list[tuple[str, dict[str, str], bytes, int]] = [
    ("/chatgpt/chat", {}, b"hi", 401),
    ("/chatgpt/chat", {"token": SECRET, "conversation": "nosuchid"}, b"hi", 404),
    ("/chatgpt/chat", {"token": SECRET}, b"", 400),
    ("/chatgpt/regenerate", {"token": SECRET, "conversation": "nosuchid"}, b"", 404),
    ("/chatgpt/quickAnswer", {"token": SECRET}, b"{", 400),
    ("/chatgpt/summary", {"token": SECRET}, b" ", 400),
    ("/chatgpt/createTurbo", {}, b"", 401),
    ("/v1/chat/completions", {}, orjson.dumps({"messages": MESSAGES}), 401),
    ("/v1/chat/completions", BEARER, b"{", 400),
    ("/v1/chat/completions", BEARER, b'{"model": "gpt-4o-mini"}', 400),
    ("/v1/completions", BEARER, b'{"model": 5}', 400),
    ("/conversation", {}, b'{"message": "hi"}', 401),
    ("/conversation", BEARER, b"{", 400),
    ("/conversation", BEARER, b'{"message": "hi", "conversationId": "not an id!"}', 400),
    ("/chat", {}, orjson.dumps({"messages": MESSAGES}), 401),
    ("/chat", {"Authorization": RELAY_KEY}, b"{", 400),
    ("/send_message", {}, b"prompt=hi", 500),
    ("/send_message", BEARER, b"model=gpt-4o-mini", 500),
]

# One good model call on each dialect.
GOOD: list[tuple[str, dict[str, str], bytes]] = [
    ("/chatgpt/summary", {"token": SECRET}, b"an article"),
    ("/v1/chat/completions", BEARER, orjson.dumps({"messages": MESSAGES})),
    ("/conversation", BEARER, b'{"message": "hi"}'),
    ("/chat", {"Authorization": RELAY_KEY}, orjson.dumps({"messages": MESSAGES})),
    ("/send_message", {**BEARER, "Content-Type": "application/x-www-form-urlencoded"}, b"prompt=hi"),
]


def locked_down(per_minute: int = 0, per_client: int = 0) -> dict[str, dict[str, object]]:
    return {
        "auth": {"mode": "simple"},
        "openai": {"client_keys": (CLIENT_KEY, OTHER_KEY)},
        "relay": {"authorization_key": RELAY_KEY},
        "limits": {"per_minute": per_minute, "per_client": per_client},
    }


async def post(client: Client, path: str, headers: dict[str, str], body: bytes) -> int:
    if path == "/send_message" and "Content-Type" not in headers:
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post(path, data=body, headers=headers)
    await response.read()
    return response.status


async def test_refused_requests_on_every_dialect_do_not_use_up_the_limit(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(**locked_down(per_minute=len(GOOD)))
    for _ in range(3):
        for path, headers, body, status in REFUSED:
            assert await post(client, path, headers, body) == status, (path, body)
    assert fake_state.requests == []
    for path, headers, body in GOOD:
        assert await post(client, path, headers, body) == 200, path
    # The allowance was whole: the good calls used it up, the next one is refused.
    assert await post(client, *GOOD[0]) == 429


async def test_garbage_to_an_open_relay_does_not_lock_everyone_out(make_client: MakeClient) -> None:
    """The issue's attack: ten ``POST /chat`` with body ``{`` against ``-l 10``."""
    client = await make_client(limits={"per_minute": 10})
    for _ in range(10):
        assert await post(client, "/chat", {}, b"{") == 400
    assert await post(client, "/chatgpt/summary", {}, b"an article") == 200
    assert await post(client, "/v1/chat/completions", {}, orjson.dumps({"messages": MESSAGES})) == 200


async def test_one_client_exhausted_another_still_served(make_client: MakeClient) -> None:
    clock = Clock()

    def setup(app: web.Application) -> None:
        app[appkeys.RATE_LIMITER] = SlidingWindowLimiter(0, 2, clock=clock)

    client = await make_client(setup, **locked_down(per_client=2))
    body = orjson.dumps({"messages": MESSAGES})
    for _ in range(2):
        assert await post(client, "/v1/chat/completions", BEARER, body) == 200
    response = await client.post("/v1/chat/completions", data=body, headers=BEARER)
    assert response.status == 429
    assert response.headers["Retry-After"] == "60"
    error = (await response.json())["error"]
    assert (error["code"], error["message"]) == (
        "rate_limit_exceeded",
        "Too many requests from this client: try again later",
    )
    # The same client on another dialect is the same client (the key counts, not the route).
    assert await post(client, "/conversation", BEARER, b'{"message": "hi"}') == 429
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert await post(client, "/v1/chat/completions", other, body) == 200
    assert await post(client, "/conversation", other, b'{"message": "hi"}') == 200
    clock.advance(60)
    assert await post(client, "/v1/chat/completions", BEARER, body) == 200


async def test_without_checked_keys_the_address_is_the_client(make_client: MakeClient) -> None:
    """With auth ``none`` any key passes: a fresh key per call must not escape the limit."""
    client = await make_client(limits={"per_client": 1})
    body = orjson.dumps({"messages": MESSAGES})
    assert await post(client, "/v1/chat/completions", {"Authorization": "Bearer one"}, body) == 200
    assert await post(client, "/v1/chat/completions", {"Authorization": "Bearer two"}, body) == 429


async def test_behind_a_trusted_proxy_each_forwarded_address_is_a_client(make_client: MakeClient) -> None:
    """One proxy is not one client: the address it forwards for is (``[server] trusted_proxies``)."""
    client = await make_client(limits={"per_client": 1}, server={"trusted_proxies": ["127.0.0.1"]})
    body = orjson.dumps({"messages": MESSAGES})

    def via(address: str) -> dict[str, str]:
        return {"Authorization": "Bearer any", "X-Forwarded-For": address}

    assert await post(client, "/v1/chat/completions", via("203.0.113.7"), body) == 200
    assert await post(client, "/v1/chat/completions", via("203.0.113.8"), body) == 200
    assert await post(client, "/v1/chat/completions", via("203.0.113.7"), body) == 429


async def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(make_client: MakeClient) -> None:
    client = await make_client(limits={"per_client": 1})
    body = orjson.dumps({"messages": MESSAGES})
    first = {"Authorization": "Bearer any", "X-Forwarded-For": "203.0.113.7"}
    second = {"Authorization": "Bearer any", "X-Forwarded-For": "203.0.113.8"}
    assert await post(client, "/v1/chat/completions", first, body) == 200
    assert await post(client, "/v1/chat/completions", second, body) == 429
