"""node-chatgpt-api's ``POST /conversation``: answers, branching, streaming, errors."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.api.node import DEFAULT_PROMPT
from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.conftest import SECRET, MakeClient
from tests.support import wait_until

Client = TestClient[web.Request, web.Application]


async def ask(client: Client, message: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/conversation", json={"message": message, **extra})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def history(fake_state: FakeState) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in fake_state.last.body["messages"]]


async def test_answer_shape(client: Client, fake_state: FakeState) -> None:
    body = await ask(client, "Hello, who are you?")
    # node's own order (its ChatGPTClient's returnData), details being the model API's answer.
    assert list(body) == ["response", "conversationId", "parentMessageId", "messageId", "details"]
    assert body["response"] == CHAT_PREFIX + "Hello, who are you?"
    assert all(isinstance(body[name], str) and body[name] for name in list(body)[:4])
    assert history(fake_state) == [("system", DEFAULT_PROMPT), ("user", "Hello, who are you?")]


async def test_branching_from_the_same_parent(client: Client, fake_state: FakeState) -> None:
    first = await ask(client, "one")
    conv, root_answer = first["conversationId"], first["messageId"]
    a = await ask(client, "two-a", conversationId=conv, parentMessageId=root_answer)
    assert history(fake_state)[1:] == [("user", "one"), ("assistant", CHAT_PREFIX + "one"), ("user", "two-a")]
    b = await ask(client, "two-b", conversationId=conv, parentMessageId=root_answer)
    assert history(fake_state)[1:] == [("user", "one"), ("assistant", CHAT_PREFIX + "one"), ("user", "two-b")]
    assert a["conversationId"] == b["conversationId"] == conv
    assert a["messageId"] != b["messageId"]
    # Each branch continues its own history.
    await ask(client, "three-a", conversationId=conv, parentMessageId=a["messageId"])
    assert [content for _, content in history(fake_state)[1:]] == [
        "one",
        CHAT_PREFIX + "one",
        "two-a",
        CHAT_PREFIX + "two-a",
        "three-a",
    ]
    await ask(client, "three-b", conversationId=conv, parentMessageId=b["messageId"])
    assert [content for _, content in history(fake_state)[1:]] == [
        "one",
        CHAT_PREFIX + "one",
        "two-b",
        CHAT_PREFIX + "two-b",
        "three-b",
    ]


async def test_without_parent_continues_from_the_latest_answer(client: Client, fake_state: FakeState) -> None:
    first = await ask(client, "one")
    conv = first["conversationId"]
    await ask(client, "two-a", conversationId=conv, parentMessageId=first["messageId"])
    await ask(client, "two-b", conversationId=conv, parentMessageId=first["messageId"])
    await ask(client, "three", conversationId=conv)
    assert [content for _, content in history(fake_state)[1:]] == [
        "one",
        CHAT_PREFIX + "one",
        "two-b",
        CHAT_PREFIX + "two-b",
        "three",
    ]


async def test_stream_events_byte_for_byte(client: Client) -> None:
    response = await client.post("/conversation", json={"message": "hi there", "stream": True})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
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
        "hi ",
        "there",
    ]
    head = "".join(f"data: {orjson.dumps(piece).decode()}\n\n" for piece in pieces)
    assert raw.startswith(head)
    result_event, done = raw[len(head) :].split("\n\n")[:2]
    name, data = result_event.split("\n")
    assert name == "event: result"
    result = orjson.loads(data.removeprefix("data: "))
    assert result["response"] == CHAT_PREFIX + "hi there"
    assert done == "data: [DONE]"
    assert raw.endswith("data: [DONE]\n\n")
    # The streamed answer was kept: the conversation goes on from it.
    again = await ask(client, "more", conversationId=result["conversationId"])
    assert again["conversationId"] == result["conversationId"]


async def test_stream_failing_midway_sends_an_error_event(client: Client, fake_state: FakeState) -> None:
    first = await ask(client, "one")
    fake_state.stream_error_after = 2
    response = await client.post(
        "/conversation", json={"message": "two", "conversationId": first["conversationId"], "stream": True}
    )
    raw = await response.text()
    assert raw.startswith('data: "Demo "\n\n')
    assert "event: error\ndata: " in raw
    error = orjson.loads(raw.split("event: error\ndata: ")[1].split("\n")[0])
    request_id = response.headers["X-Request-Id"]
    assert error == {"code": 502, "error": f"the model API reported an error (request id {request_id})"}
    assert "[DONE]" not in raw
    fake_state.stream_error_after = None
    await ask(client, "three", conversationId=first["conversationId"])
    assert [content for _, content in history(fake_state)[1:]] == ["one", CHAT_PREFIX + "one", "three"]


async def test_errors_are_json_with_a_status(client: Client, fake_state: FakeState) -> None:
    first = await ask(client, "one")
    response = await client.post("/conversation", json={"conversationId": first["conversationId"]})
    assert response.status == 400
    assert await response.json() == {"error": "The message parameter is required."}  # node's words
    response = await client.post("/conversation", data=b"[1]", headers={"Content-Type": "application/json"})
    assert response.status == 400
    fake_state.fail_next("bad_request")
    response = await client.post(
        "/conversation", json={"message": "x", "conversationId": first["conversationId"]}
    )
    assert response.status == 502
    assert "reject" in (await response.json())["error"]


async def test_settings_make_the_system_prompt(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(
        node={"prompt_prefix": "You are Bob, a cowboy.", "user_label": "Stranger", "chatgpt_label": "Bob"}
    )
    await ask(client, "howdy")
    system = fake_state.last.body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are Bob, a cowboy.\n")
    assert "Bob" in system["content"].split("\n")[1] and "Stranger" in system["content"]


async def test_key_auth_outside_mode_none(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    response = await client.post("/conversation", json={"message": "x"})
    assert response.status == 401
    assert "Authorization: Bearer" in (await response.json())["error"]
    response = await client.post(
        "/conversation", json={"message": "x"}, headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert response.status == 200


async def test_client_gone_mid_stream_keeps_nothing(client: Client, fake_state: FakeState) -> None:
    first = await ask(client, "one")
    conv = first["conversationId"]
    fake_state.chunk_delay = 0.05
    body = {"message": " ".join(["word"] * 20), "conversationId": conv, "stream": True}
    response = await client.post("/conversation", json=body)
    assert (await response.content.readline()).startswith(b'data: "')
    response.close()
    await wait_until(lambda: fake_state.disconnects == 1)
    fake_state.chunk_delay = 0
    await ask(client, "two", conversationId=conv)
    assert [content for _, content in history(fake_state)[1:]] == ["one", CHAT_PREFIX + "one", "two"]


async def test_conversations_survive_a_restart(make_client: MakeClient, fake_state: FakeState) -> None:
    first_app = await make_client()
    first = await ask(first_app, "remember me")
    await first_app.close()

    second_app = await make_client()
    await ask(
        second_app, "still there?", conversationId=first["conversationId"], parentMessageId=first["messageId"]
    )
    assert [content for _, content in history(fake_state)[1:]] == [
        "remember me",
        CHAT_PREFIX + "remember me",
        "still there?",
    ]


# --- ids the client chose (node's clients make every conversationId) ------------------------------

NODE_ID = "3f8e2a41-9c1b-4d6e-8f7a-2b5c9d0e1f3a"  # what node's client sends: crypto.randomUUID()


async def test_an_unknown_conversation_id_starts_a_conversation_under_it(
    client: Client, fake_state: FakeState
) -> None:
    first = await ask(client, "one", conversationId=NODE_ID)
    assert first["conversationId"] == NODE_ID
    assert history(fake_state) == [("system", DEFAULT_PROMPT), ("user", "one")]
    second = await ask(client, "two", conversationId=NODE_ID, parentMessageId=first["messageId"])
    assert second["conversationId"] == NODE_ID
    assert [content for _, content in history(fake_state)[1:]] == ["one", CHAT_PREFIX + "one", "two"]
    # A number is taken as its digits, as node's ``conversationId.toString()`` does.
    numbered = await ask(client, "three", conversationId=12345)
    assert numbered["conversationId"] == "12345"


async def test_an_unknown_parent_answers_from_an_empty_history(client: Client, fake_state: FakeState) -> None:
    first = await ask(client, "one")
    conv = first["conversationId"]
    branch = await ask(client, "fresh start", conversationId=conv, parentMessageId="not-a-message-of-ours")
    assert history(fake_state) == [("system", DEFAULT_PROMPT), ("user", "fresh start")]
    assert branch["conversationId"] == conv
    # The new root is a branch like any other: it goes on from its own answer.
    await ask(client, "and then", conversationId=conv, parentMessageId=branch["messageId"])
    assert [content for _, content in history(fake_state)[1:]] == [
        "fresh start",
        CHAT_PREFIX + "fresh start",
        "and then",
    ]
    # With no conversationId, a parentMessageId cannot be known either: a new conversation.
    alone = await ask(client, "solo", parentMessageId="from-another-server")
    assert alone["conversationId"] != conv
    assert history(fake_state) == [("system", DEFAULT_PROMPT), ("user", "solo")]


async def test_client_ids_are_bounded_in_length_and_characters(client: Client, fake_state: FakeState) -> None:
    asked = len(fake_state.requests)
    for name, value in [
        ("conversationId", "x" * 65),
        ("conversationId", "a/b"),
        ("conversationId", "a:b"),
        ("conversationId", "new\nline"),
        ("conversationId", ["list"]),
        ("parentMessageId", "p" * 65),
        ("parentMessageId", "a b"),
    ]:
        response = await client.post("/conversation", json={"message": "x", name: value})
        assert response.status == 400, (name, value)
        assert await response.json() == {
            "error": f'"{name}" must be ' + "1 to 64 letters, digits, '-' or '_'"
        }
    assert len(fake_state.requests) == asked  # refused before any model call
    longest = await ask(client, "x", conversationId="A-z_9" * 12 + "abcd")
    assert len(longest["conversationId"]) == 64


async def test_a_client_named_conversation_whose_first_answer_fails_is_dropped(
    client: Client, fake_state: FakeState
) -> None:
    fake_state.fail_next("server_error")
    response = await client.post("/conversation", json={"message": "one", "conversationId": NODE_ID})
    assert response.status == 502
    # Nothing was kept under that id (the Alice API reads the same store).
    response = await client.post("/chatgpt/context", headers={"conversation": NODE_ID})
    assert response.status == 404


async def test_a_client_id_cannot_take_over_a_share(client: Client) -> None:
    conv_id = await (await client.post("/chatgpt/createTurbo")).text()
    assert (await client.post("/chatgpt/chat", headers={"conversation": conv_id}, data="hi")).status == 200
    assert (await client.post("/chatgpt/store", headers={"conversation": conv_id})).status == 200
    assert (await client.post("/chatgpt/finish", headers={"conversation": conv_id})).status == 200
    # The share keeps its link: a node client cannot start a conversation under its id.
    response = await client.post("/conversation", json={"message": "mine now", "conversationId": conv_id})
    assert response.status == 400
    assert await response.json() == {
        "error": f"The conversation id {conv_id} is taken by a shared conversation: send another"
    }


async def test_a_uuid_named_conversation_survives_a_restart_and_asks_for_its_own_share_id(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    first_app = await make_client()
    first = await ask(first_app, "remember me", conversationId=NODE_ID)
    await first_app.close()
    second_app = await make_client()
    await ask(second_app, "still there?", conversationId=NODE_ID)
    assert [content for _, content in history(fake_state)[1:]] == [
        "remember me",
        CHAT_PREFIX + "remember me",
        "still there?",
    ]
    assert first["conversationId"] == NODE_ID
    # A share takes the conversation's id only up to 8 characters: a clear 400, not a 500.
    response = await second_app.post("/chatgpt/store", headers={"conversation": NODE_ID})
    assert response.status == 400
    assert "separate_ids = true" in await response.text()
