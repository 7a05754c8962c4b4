"""zhuweiyou's chatgpt-api: form-encoded ``POST /send_message``, its timeout, ``/get_access_token``."""

from __future__ import annotations

from typing import Any

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.conftest import SECRET, MakeClient

Client = TestClient[web.Request, web.Application]


async def send(client: Client, **fields: str) -> dict[str, Any]:
    response = await client.post("/send_message", data=fields)  # application/x-www-form-urlencoded
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def contents(fake_state: FakeState) -> list[str]:
    return [message["content"] for message in fake_state.last.body["messages"]]


async def test_form_encoded_conversation(client: Client, fake_state: FakeState) -> None:
    first = await send(client, prompt="hello", access_token="eyJ-ignored", reverse_proxy="https://x.example")
    assert list(first) == ["text", "conversation_id", "parent_message_id"]
    assert first["text"] == CHAT_PREFIX + "hello"
    assert contents(fake_state) == ["hello"]
    second = await send(
        client,
        prompt="again",
        conversation_id=first["conversation_id"],
        parent_message_id=first["parent_message_id"],
    )
    assert second["conversation_id"] == first["conversation_id"]
    assert contents(fake_state) == ["hello", CHAT_PREFIX + "hello", "again"]
    # parent_message_id picks the branch: answer "again" differently.
    await send(
        client,
        prompt="instead",
        conversation_id=first["conversation_id"],
        parent_message_id=first["parent_message_id"],
    )
    assert contents(fake_state) == ["hello", CHAT_PREFIX + "hello", "instead"]


async def test_json_body_and_model(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(models={"aliases": {"gpt-3.5-turbo": "gpt-4o-mini"}})
    response = await client.post("/send_message", json={"prompt": "hi", "model": "gpt-4"})
    assert response.status == 200
    assert fake_state.last.body["model"] == "gpt-4"
    await client.post("/send_message", json={"prompt": "hi", "model": "gpt-3.5-turbo"})
    assert fake_state.last.body["model"] == "gpt-4o-mini"
    form = FormData({"prompt": "multipart"})
    form.add_field("file", b"ignored", filename="x.bin")
    assert (await client.post("/send_message", data=form)).status == 200
    assert contents(fake_state) == ["multipart"]


async def test_timeout_leaves_the_conversation_unchanged(client: Client, fake_state: FakeState) -> None:
    first = await send(client, prompt="one")
    fake_state.delay = 0.2
    response = await client.post(
        "/send_message", data={"prompt": "slow", "conversation_id": first["conversation_id"], "timeout": "30"}
    )
    assert response.status == 500
    message = (await response.json())["message"]
    assert "timed out" in message and "30 ms" in message
    fake_state.delay = 0
    await send(client, prompt="two", conversation_id=first["conversation_id"])
    assert contents(fake_state) == ["one", CHAT_PREFIX + "one", "two"]


async def test_generous_timeout_is_fine(client: Client) -> None:
    assert (await send(client, prompt="quick", timeout="10000"))["text"] == CHAT_PREFIX + "quick"


async def test_every_failure_is_500_with_a_message(client: Client, fake_state: FakeState) -> None:
    cases: list[dict[str, str]] = [
        {},
        {"prompt": ""},
        {"prompt": "x", "conversation_id": "nope"},
        {"prompt": "x", "parent_message_id": "lonely"},
        {"prompt": "x", "timeout": "soon"},
    ]
    for fields in cases:
        response = await client.post("/send_message", data=fields)
        assert response.status == 500, fields
        body = await response.json()
        assert list(body) == ["message"] and body["message"], fields
    fake_state.fail_next("rate_limit")
    response = await client.post("/send_message", data={"prompt": "x"})
    assert response.status == 500
    assert "Rate limit" in (await response.json())["message"]


async def test_get_access_token_is_501(client: Client) -> None:
    response = await client.post("/get_access_token", data={"email": "a@b.c", "password": "pw"})
    assert response.status == 501
    assert "API keys" in (await response.json())["message"]


async def test_key_auth_outside_mode_none(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    response = await client.post("/send_message", data={"prompt": "x"})
    assert response.status == 500
    assert "API key" in (await response.json())["message"]
    ok = await client.post(
        "/send_message", data={"prompt": "x"}, headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert ok.status == 200
