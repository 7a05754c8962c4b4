"""openai-api-server's ``POST /chat``: NDJSON lines, error lines, auth, CORS with credentials
(only for origins listed by name)."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.fake import FakeState
from tests.dialects.conftest import CLIENT_KEY, SECRET, MakeClient

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


async def first_line(response: object) -> dict[str, object]:
    assert hasattr(response, "text")
    line: dict[str, object] = orjson.loads((await response.text()).split("\n")[0])
    return line


async def test_without_a_relay_key_the_client_keys_protect_it(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    # Issue 11 item 2: an empty [relay] authorization_key no longer makes /chat an open relay.
    for mode in ("simple", "normal"):
        client = await make_client(auth={"mode": mode})
        anonymous = await client.post("/chat", json={"messages": MESSAGES})
        assert anonymous.status == 401, mode
        line = await first_line(anonymous)
        assert line["error"] is True and "Authorization: Bearer" in str(line["content"])
        wrong = await client.post("/chat", json={"messages": MESSAGES}, headers={"Authorization": "Bearer x"})
        assert wrong.status == 401
        assert fake_state.requests == []  # nothing reached the upstream
        right = await client.post(
            "/chat", json={"messages": MESSAGES}, headers={"Authorization": f"Bearer {SECRET}"}
        )
        assert right.status == 200 and (await right.text()).endswith(DONE + "\n")
        await client.close()
        fake_state.requests.clear()


async def test_configured_client_keys_are_the_keys_of_chat(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"}, openai={"client_keys": (CLIENT_KEY,)})
    bare = await client.post("/chat", json={"messages": MESSAGES}, headers={"Authorization": CLIENT_KEY})
    assert bare.status == 200  # openai-api-server's clients send the key without "Bearer"
    await bare.read()
    token = await client.post("/chat", json={"messages": MESSAGES}, headers={"Authorization": SECRET})
    assert token.status == 401


async def test_auth_none_still_opens_chat_when_no_relay_key_is_set(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "none"})
    response = await client.post("/chat", json={"messages": MESSAGES})
    assert response.status == 200
    await response.read()


async def test_the_relay_key_is_needed_even_with_auth_none(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "none"}, relay={"authorization_key": "relay-key-1"})
    assert (await client.post("/chat", json={"messages": MESSAGES})).status == 401
    # The relay key is the only key then: the client keys don't open it.
    bearer = await client.post(
        "/chat", json={"messages": MESSAGES}, headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert bearer.status == 401


PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


async def test_star_never_grants_credentials(make_client: MakeClient) -> None:
    client = await make_client(server={"cors_origins": ("*",)})
    for origin in ("http://chaoxing.com", "null"):
        preflight = await client.options("/chat", headers={"Origin": origin, **PREFLIGHT})
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        assert "content-type" in preflight.headers["Access-Control-Allow-Headers"]
        response = await client.post("/chat", json={"messages": MESSAGES}, headers={"Origin": origin})
        assert response.headers["Access-Control-Allow-Origin"] == "*", origin
        assert "Access-Control-Allow-Credentials" not in response.headers
        await response.read()


async def test_cors_with_credentials_for_origins_listed_by_name(make_client: MakeClient) -> None:
    origin = "http://chaoxing.com"
    client = await make_client(server={"cors_origins": ("*", origin, "null")})
    preflight = await client.options("/chat", headers={"Origin": origin, **PREFLIGHT})
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    response = await client.post("/chat", json={"messages": MESSAGES}, headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]
    # Unlisted origins, and "null" even when listed (any page can send it), get "*" at most.
    for other in ("https://evil.example", "null"):
        response = await client.post("/chat", json={"messages": MESSAGES}, headers={"Origin": other})
        assert response.headers["Access-Control-Allow-Origin"] == "*", other
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert "Origin" in response.headers["Vary"]
        await response.read()


async def test_cors_keeps_to_the_configured_origins(make_client: MakeClient) -> None:
    client = await make_client(server={"cors_origins": ("https://good.example",)})
    good = await client.post("/chat", json={"messages": MESSAGES}, headers={"Origin": "https://good.example"})
    assert good.headers["Access-Control-Allow-Origin"] == "https://good.example"
    evil = await client.post("/chat", json={"messages": MESSAGES}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers
