"""openai-api-server's ``POST /chat``: NDJSON lines, error lines, auth, CORS with credentials."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.fake import FakeState
from tests.dialects.conftest import MakeClient

Client = TestClient[web.Request, web.Application]
DONE = '{"done":true,"error":false,"content":"[DONE]"}'
MESSAGES = [{"role": "user", "content": "hi"}]


async def test_ndjson_lines_byte_for_byte(client: Client, fake_state: FakeState) -> None:
    history = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "say hi"},
    ]
    response = await client.post("/chat", json={"messages": history})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    raw = await response.text()
    pieces = [
        "Demo ",
        "answer ",
        "(built-in ",
        "demo ",
        "model, ",
        "not ",
        "a ",
        "real ",
        "AI) ",
        "to: ",
        "say ",
        "hi",
    ]
    expected = "".join(
        f'{{"done":false,"error":false,"content":{orjson.dumps(p).decode()}}}\n' for p in pieces
    )
    assert raw == expected + DONE + "\n"
    assert fake_state.last.body["messages"] == history
    assert fake_state.last.body["model"] == "gpt-4o-mini"


async def test_model_is_passed_with_aliases(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(models={"aliases": {"gpt-3.5-turbo": "gpt-4o-mini"}})
    await (await client.post("/chat", json={"model": "gpt-3.5-turbo", "messages": MESSAGES})).read()
    assert fake_state.last.body["model"] == "gpt-4o-mini"
    await (await client.post("/chat", json={"model": "gpt-4o", "messages": MESSAGES})).read()
    assert fake_state.last.body["model"] == "gpt-4o"


async def test_failure_before_the_first_piece(client: Client, fake_state: FakeState) -> None:
    fake_state.fail_next("bad_request")
    response = await client.post("/chat", json={"messages": MESSAGES})
    assert response.status == 502
    lines = (await response.text()).split("\n")
    assert lines[2:] == [""] and lines[1] == DONE
    error = orjson.loads(lines[0])
    assert error["done"] is False and error["error"] is True
    assert "reject" in error["content"]


async def test_failure_midway_sends_an_error_line_then_done(client: Client, fake_state: FakeState) -> None:
    fake_state.stream_error_after = 3  # the role chunk and two words
    response = await client.post("/chat", json={"messages": MESSAGES})
    assert response.status == 200
    lines = (await response.text()).split("\n")
    assert lines[0] == '{"done":false,"error":false,"content":"Demo "}'
    assert lines[1] == '{"done":false,"error":false,"content":"answer "}'
    assert orjson.loads(lines[2])["error"] is True
    assert lines[3:] == [DONE, ""]


async def test_bad_messages_are_400_error_lines(client: Client, fake_state: FakeState) -> None:
    bodies: list[dict[str, object]] = [
        {},
        {"messages": []},
        {"messages": [{"role": "user"}]},
        {"messages": "hi"},
    ]
    for body in bodies:
        response = await client.post("/chat", json=body)
        assert response.status == 400, body
        first, done, _ = (await response.text()).split("\n")
        assert orjson.loads(first)["error"] is True and done == DONE
    assert fake_state.requests == []


async def test_authorization_key(make_client: MakeClient) -> None:
    client = await make_client(relay={"authorization_key": "relay-key-1"})
    response = await client.post("/chat", json={"messages": MESSAGES})
    assert response.status == 401
    assert orjson.loads((await response.text()).split("\n")[0])["error"] is True
    wrong = await client.post("/chat", json={"messages": MESSAGES}, headers={"Authorization": "relay-key-2"})
    assert wrong.status == 401
    right = await client.post("/chat", json={"messages": MESSAGES}, headers={"Authorization": "relay-key-1"})
    assert right.status == 200
    assert (await right.text()).endswith(DONE + "\n")


async def test_no_authorization_key_means_no_check_whatever_the_auth_mode(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    assert (await client.post("/chat", json={"messages": MESSAGES})).status == 200


async def test_cors_with_credentials(make_client: MakeClient) -> None:
    client = await make_client(server={"cors_origins": ("*",)})
    origin = "http://chaoxing.com"
    preflight = await client.options(
        "/chat",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"]
    response = await client.post("/chat", json={"messages": MESSAGES}, headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]


async def test_cors_keeps_to_the_configured_origins(make_client: MakeClient) -> None:
    client = await make_client(server={"cors_origins": ("https://good.example",)})
    good = await client.post("/chat", json={"messages": MESSAGES}, headers={"Origin": "https://good.example"})
    assert good.headers["Access-Control-Allow-Origin"] == "https://good.example"
    evil = await client.post("/chat", json={"messages": MESSAGES}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers
