"""What a client can make the service keep: ``[conversations] max_bytes`` of text per
conversation (413 before any model call), and new conversations counted per client."""

from __future__ import annotations

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.fake import FakeState
from alice_py.web.ratelimit import SlidingWindowLimiter
from tests.alice.conftest import SECRET, MakeClient
from tests.support import Clock

LIMIT = {"conversations": {"max_bytes": 100}}


async def test_a_prompt_over_the_limit_is_refused_at_create(make_client: MakeClient) -> None:
    client = await make_client(**LIMIT)
    body = orjson.dumps({"prompt": "p" * 101})
    response = await client.post("/chatgpt/createTurbo", data=body)
    assert (response.status, await response.text()) == (
        413,
        "The prompt is 101 bytes: a conversation holds at most 100 bytes of text",
    )
    for path in ("/chatgpt/create", "/chatgpt/createGPT4"):
        assert (await client.post(path, data="é" * 51)).status == 413, path  # 102 bytes of UTF-8
    role_play = {"human_name": "h", "ai_name": "a", "prompt": "p" * 101}
    assert (await client.post("/chatgpt/createRolePlay", json=role_play)).status == 413
    assert await client.app[appkeys.STORE].count() == 0  # nothing kept
    assert (await client.post("/chatgpt/createTurbo", data=orjson.dumps({"prompt": "p" * 100}))).status == 200


async def test_a_question_that_would_pass_the_limit_is_refused(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(**LIMIT)
    created = await client.post("/chatgpt/createTurbo", data=orjson.dumps({"prompt": "p" * 10}))
    conv_id = await created.text()
    headers = {"conversation": conv_id}
    response = await client.post("/chatgpt/chat", data=b"q" * 91, headers=headers)
    assert response.status == 413
    assert await response.text() == (
        "This conversation would hold 101 bytes of text, more than the 100 allowed "
        "(its prompt and every message count): start a new conversation"
    )
    assert fake_state.requests == []
    assert await (await client.post("/chatgpt/contextArray", headers=headers)).json() == []
    # The answers count too: after one turn, the next question no longer fits.
    assert (await client.post("/chatgpt/chat", data=b"q", headers=headers)).status == 200
    answer = (await (await client.post("/chatgpt/contextArray", headers=headers)).json())[1]
    room = 100 - 10 - 1 - len(answer.encode())
    assert room > 1
    assert (await client.post("/chatgpt/chat", data=b"q" * (room + 1), headers=headers)).status == 413
    assert len(fake_state.requests) == 1
    assert (await client.post("/chatgpt/chat", data=b"q" * room, headers=headers)).status == 200


async def test_regenerating_stops_once_the_conversation_is_full(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    """Each regenerated answer is kept beside the old one: regenerate would grow it for ever."""
    client = await make_client(conversations={"max_bytes": 150})
    headers = {"conversation": await (await client.post("/chatgpt/createTurbo")).text()}
    assert (await client.post("/chatgpt/chat", data=b"q", headers=headers)).status == 200
    assert (await client.post("/chatgpt/regenerate", headers=headers)).status == 200  # ~110 bytes
    assert (await client.post("/chatgpt/regenerate", headers=headers)).status == 200  # past 150
    response = await client.post("/chatgpt/regenerate", headers=headers)
    assert response.status == 413
    assert "more than the 150 allowed" in await response.text()
    assert len(fake_state.requests) == 3


async def test_node_and_send_message_check_the_first_question(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(conversations={"max_bytes": 200})  # node's system prompt is 81 bytes
    response = await client.post("/conversation", json={"message": "m" * 150})
    assert response.status == 413
    assert "start a new conversation" in (await response.json())["error"]
    response = await client.post("/send_message", data={"prompt": "m" * 201})
    assert response.status == 500  # the dialect answers every failure so
    assert "more than the 200 allowed" in (await response.json())["message"]
    assert fake_state.requests == []
    assert await client.app[appkeys.STORE].count() == 0  # the conversations made for them were dropped


async def test_creating_conversations_counts_against_the_client(make_client: MakeClient) -> None:
    clock = Clock()

    def setup(app: web.Application) -> None:
        app[appkeys.RATE_LIMITER] = SlidingWindowLimiter(0, 3, clock=clock)

    client = await make_client(setup, auth={"mode": "simple"}, limits={"per_client": 3})
    token = {"token": SECRET}
    for path in ("/chatgpt/createTurbo", "/chatgpt/createGPT4", "/chatgpt/create"):
        assert (await client.post(path, headers=token)).status == 200, path
    response = await client.post("/chatgpt/createTurbo", headers=token)
    assert (response.status, await response.text()) == (
        429,
        "Too many requests from this client: try again later",
    )
    assert response.headers["Retry-After"] == "60"
    assert await client.app[appkeys.STORE].count() == 3
    # A refused token is not this client, and is refused for auth before anything counts.
    assert (await client.post("/chatgpt/createTurbo", headers={"token": "wrong"})).status == 401
