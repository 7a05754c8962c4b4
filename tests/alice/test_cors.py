"""CORS: browsers call /chatgpt/* directly, with Alice's custom headers."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.alice.conftest import SECRET, MakeClient

Client = TestClient[web.Request, web.Application]

PAGE = "https://chat.example"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "token, uuid, conversation, x-stainless-os",
}


def header_list(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


async def test_preflight_on_every_route_needs_no_auth(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    for path in ("/chatgpt/chat", "/chatgpt/create", "/chatgpt/store", "/chatgpt/share/abcdefgh"):
        response = await client.options(path, headers=PREFLIGHT)
        assert response.status == 204, path
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert {"post", "get", "options"} <= header_list(response.headers["Access-Control-Allow-Methods"])
        allowed = header_list(response.headers["Access-Control-Allow-Headers"])
        assert {"token", "uuid", "conversation", "settings", "content-type", "authorization"} <= allowed
        assert "x-stainless-os" in allowed  # what the browser asked for
        assert int(response.headers["Access-Control-Max-Age"]) > 0


async def test_preflight_on_an_unknown_path_is_404(client: Client) -> None:
    response = await client.options("/nowhere", headers=PREFLIGHT)
    assert response.status == 404


async def test_answers_and_errors_carry_the_headers(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    ok = await client.post("/chatgpt/create", headers={"Origin": PAGE, "token": SECRET})
    refused = await client.post("/chatgpt/create", headers={"Origin": PAGE})
    missing = await client.post("/chatgpt/nothing", headers={"Origin": PAGE})
    for response in (ok, refused, missing):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "retry-after" in header_list(response.headers["Access-Control-Expose-Headers"])
        assert "Access-Control-Allow-Credentials" not in response.headers
    assert (ok.status, refused.status, missing.status) == (200, 401, 404)


async def test_streamed_answers_carry_the_headers(client: Client) -> None:
    response = await client.post("/chatgpt/chat", data=b"hi", headers={"Origin": PAGE})
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    await response.read()


async def test_listed_origins_are_echoed_with_credentials(make_client: MakeClient) -> None:
    client = await make_client(server={"cors_origins": (PAGE, "http://localhost:3000")})
    response = await client.post("/chatgpt/create", headers={"Origin": PAGE})
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "origin" in header_list(response.headers["Vary"])
    preflight = await client.options("/chatgpt/chat", headers=PREFLIGHT)
    assert preflight.headers["Access-Control-Allow-Origin"] == PAGE

    other = await client.post("/chatgpt/create", headers={"Origin": "https://evil.example"})
    assert other.status == 200  # CORS is the browser's to enforce; it just gets no permission
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "origin" in header_list(other.headers["Vary"])


async def test_a_listed_null_origin_is_never_echoed(make_client: MakeClient) -> None:
    # Sandboxed frames and file: pages send "Origin: null": any page can, so it proves nothing.
    client = await make_client(server={"cors_origins": (PAGE, "null")})
    response = await client.post("/chatgpt/create", headers={"Origin": "null"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers
