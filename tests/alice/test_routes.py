"""Every route of /chatgpt/*, and what reaches the model API for each conversation kind."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.engine.presets import DEFAULT_CHAT_PROMPT, DEFAULT_COMPLETION_PROMPT
from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX, FakeState
from tests.alice.helpers import joined_answer, read_sse

Client = TestClient[web.Request, web.Application]


async def ok_text(client: Client, path: str, *, data: Any = b"", **headers: str) -> str:
    response = await client.post(path, data=data, headers=headers)
    body = await response.text()
    assert response.status == 200, body
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return body


async def new(client: Client, route: str, body: Any = b"", **headers: str) -> str:
    conv_id = await ok_text(client, f"/chatgpt/{route}", data=body, **headers)
    assert len(conv_id) == 8 and conv_id.isalnum()
    return conv_id


async def chat(client: Client, conv_id: str, question: str) -> str:
    return await ok_text(client, "/chatgpt/chat", data=question.encode(), conversation=conv_id)


def last_body(fake_state: FakeState) -> dict[str, Any]:
    body: dict[str, Any] = fake_state.last.body
    return body


async def test_create_default_sends_the_transcript_with_the_default_preset(
    client: Client, fake_state: FakeState
) -> None:
    conv_id = await new(client, "create")
    assert await chat(client, conv_id, "hello") == COMPLETION_PREFIX + "hello"
    assert fake_state.last.path == "/v1/completions"
    body = last_body(fake_state)
    assert body["model"] == "gpt-3.5-turbo-instruct"
    assert body["prompt"] == DEFAULT_COMPLETION_PROMPT.rstrip("\n") + "\n\nHuman: hello\nAI: "
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (500, 0.9, 1)
    assert (body["frequency_penalty"], body["presence_penalty"]) == (0, 0.6)
    assert body["stop"] == ["\nHuman:", "\nAI:"]
    assert body["stream"] is False

    await chat(client, conv_id, "again")
    assert last_body(fake_state)["prompt"].endswith(
        f"\nHuman: hello\nAI: {COMPLETION_PREFIX}hello\nHuman: again\nAI: "
    )


async def test_create_with_a_prompt_and_friend_chat(client: Client, fake_state: FakeState) -> None:
    conv_id = await new(client, "create", b"Chat with me.", settings="FriendChat")
    await chat(client, conv_id, "hi")
    body = last_body(fake_state)
    assert body["prompt"] == "Chat with me.\n\nYou: hi\nFriend: "
    assert (body["max_tokens"], body["temperature"], body["frequency_penalty"]) == (512, 0.5, 0.5)
    assert body["presence_penalty"] == 0
    assert body["stop"] == ["You:"]
    context = await ok_text(client, "/chatgpt/context", conversation=conv_id)
    assert context == f"Chat with me.\n\nYou: hi\nFriend: {COMPLETION_PREFIX}hi"


async def test_create_rejects_an_unknown_setting(client: Client) -> None:
    response = await client.post("/chatgpt/create", headers={"settings": "Pirate"})
    assert response.status == 400
    assert await response.text() == "No such setting: Pirate"


async def test_create_turbo_alternates_roles_starting_with_user(
    client: Client, fake_state: FakeState
) -> None:
    conv_id = await new(client, "createTurbo")
    first = await chat(client, conv_id, "one")
    assert first == CHAT_PREFIX + "one"
    await chat(client, conv_id, "two")
    assert fake_state.last.path == "/v1/chat/completions"
    body = last_body(fake_state)
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "two"},
    ]


async def test_create_turbo_with_prompt_and_stream(client: Client, fake_state: FakeState) -> None:
    conv_id = await new(client, "createTurbo", orjson.dumps({"prompt": "Be brief.", "stream": True}))
    response = await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conv_id})
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "hi"
    body = last_body(fake_state)
    assert body["stream"] is True
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_create_turbo_takes_a_one_byte_body_for_none(client: Client, fake_state: FakeState) -> None:
    conv_id = await new(client, "createTurbo", b"\n")
    await chat(client, conv_id, "hi")
    assert last_body(fake_state)["messages"] == [{"role": "user", "content": "hi"}]


async def test_create_gpt4_default_and_given_prompt(client: Client, fake_state: FakeState) -> None:
    conv_id = await new(client, "createGPT4", b"x")
    await chat(client, conv_id, "hi")
    body = last_body(fake_state)
    assert body["model"] == "gpt-4o"
    assert body["messages"][0] == {"role": "system", "content": DEFAULT_CHAT_PROMPT}
    conv_id = await new(client, "createGPT4", "Réponds en français.".encode())
    answer = await chat(client, conv_id, "salut")
    assert last_body(fake_state)["messages"][0]["content"] == "Réponds en français."
    context = await ok_text(client, "/chatgpt/context", conversation=conv_id)
    assert context == f"Réponds en français.\n\nuser: salut\nassistant: {answer}"


async def test_create_role_play(client: Client, fake_state: FakeState) -> None:
    body = {"human_name": "Alice", "ai_name": "Bob", "prompt": "Bob is a pirate.\n"}
    conv_id = await new(client, "createRolePlay", orjson.dumps(body))
    await chat(client, conv_id, "Ahoy")
    sent = last_body(fake_state)
    assert sent["prompt"] == "Bob is a pirate.\n\nAlice: Ahoy\nBob: "
    assert sent["stop"] == ["Alice:"]
    assert (sent["max_tokens"], sent["temperature"], sent["frequency_penalty"]) == (512, 0.5, 0.5)


async def test_chat_without_conversation_is_a_one_off_stream(client: Client, fake_state: FakeState) -> None:
    response = await client.post("/chatgpt/chat", data="你好".encode())
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "你好"
    body = last_body(fake_state)
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [{"role": "user", "content": "你好"}]


async def test_non_streamed_answers_lose_surrounding_newlines(client: Client) -> None:
    conv_id = await new(client, "createTurbo")
    assert await chat(client, conv_id, "hi\n\n") == CHAT_PREFIX + "hi"
    sentences = orjson.loads(await ok_text_json(client, conv_id))
    assert sentences[1] == CHAT_PREFIX + "hi"


async def ok_text_json(client: Client, conv_id: str) -> bytes:
    response = await client.post("/chatgpt/contextArray", headers={"conversation": conv_id})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    return await response.read()


async def test_regenerate_asks_the_last_question_again(client: Client, fake_state: FakeState) -> None:
    conv_id = await new(client, "createTurbo")
    await chat(client, conv_id, "one")
    await chat(client, conv_id, "two")
    answer = await ok_text(client, "/chatgpt/regenerate", conversation=conv_id)
    assert answer == CHAT_PREFIX + "two"
    assert [m["content"] for m in last_body(fake_state)["messages"]] == ["one", CHAT_PREFIX + "one", "two"]
    assert orjson.loads(await ok_text_json(client, conv_id)) == ["one", CHAT_PREFIX + "one", "two", answer]


async def test_regenerate_with_nothing_answered(client: Client) -> None:
    conv_id = await new(client, "createTurbo")
    response = await client.post("/chatgpt/regenerate", headers={"conversation": conv_id})
    assert (response.status, await response.text()) == (400, "Nothing to regenerate")


async def test_rollback_removes_the_last_turn(client: Client) -> None:
    conv_id = await new(client, "createTurbo")
    await chat(client, conv_id, "one")
    await chat(client, conv_id, "two")
    assert await ok_text(client, "/chatgpt/rollback", conversation=conv_id) == "Rollback Succeeded"
    assert orjson.loads(await ok_text_json(client, conv_id)) == ["one", CHAT_PREFIX + "one"]
    await ok_text(client, "/chatgpt/rollback", conversation=conv_id)
    response = await client.post("/chatgpt/rollback", headers={"conversation": conv_id})
    assert (response.status, await response.text()) == (400, "Failed to rollback, dialog is empty")


async def test_context_of_a_completion_conversation(client: Client) -> None:
    conv_id = await new(client, "create", b"You are kind.\n\n\n")
    await chat(client, conv_id, "hi")
    context = await ok_text(client, "/chatgpt/context", conversation=conv_id)
    assert context == f"You are kind.\n\nHuman: hi\nAI: {COMPLETION_PREFIX}hi"


async def test_context_array_of_a_new_conversation_is_empty(client: Client) -> None:
    conv_id = await new(client, "create")
    assert orjson.loads(await ok_text_json(client, conv_id)) == []


async def test_finish_deletes_the_conversation(client: Client) -> None:
    conv_id = await new(client, "createTurbo")
    assert await ok_text(client, "/chatgpt/finish", conversation=conv_id) == "Conversation finished"
    response = await client.post("/chatgpt/context", headers={"conversation": conv_id})
    assert response.status == 404
    assert await response.text() == f"failed to find conversation with provided id: {conv_id}"


async def test_quick_answer_streams_by_default_with_examples(client: Client, fake_state: FakeState) -> None:
    request = {"question": "3?", "prompt": "Count.", "examples": ["1?", "one", "2?", "two"]}
    response = await client.post("/chatgpt/quickAnswer", data=orjson.dumps(request))
    assert joined_answer(await read_sse(response)) == CHAT_PREFIX + "3?"
    body = last_body(fake_state)
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Count."},
        {"role": "user", "content": "1?"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "2?"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "3?"},
    ]


async def test_quick_answer_gpt3_not_streamed(client: Client, fake_state: FakeState) -> None:
    request = {"question": "hi", "convType": "gpt3", "stream": False}
    answer = await ok_text(client, "/chatgpt/quickAnswer", data=orjson.dumps(request))
    assert answer == COMPLETION_PREFIX + "hi"
    body = last_body(fake_state)
    assert fake_state.last.path == "/v1/completions"
    assert (body["max_tokens"], body["temperature"], body["presence_penalty"]) == (3500, 0.9, 0.6)
    assert body["prompt"].endswith("\nHuman: hi\nAI: ")


async def test_quick_answer_gpt4(client: Client, fake_state: FakeState) -> None:
    request = {"question": "hi", "convType": "gpt4", "stream": False}
    assert await ok_text(client, "/chatgpt/quickAnswer", data=orjson.dumps(request)) == CHAT_PREFIX + "hi"
    assert last_body(fake_state)["model"] == "gpt-4o"


async def test_quick_answer_needs_a_question(client: Client) -> None:
    for body in (b"", b"{}", b'{"question": null}', b'{"question": ""}'):
        response = await client.post("/chatgpt/quickAnswer", data=body)
        assert (response.status, await response.text()) == (400, "Question can't be null")


async def test_summary(client: Client, fake_state: FakeState) -> None:
    article = "Line one.\nThe end."
    answer = await ok_text(client, "/chatgpt/summary", data=article.encode())
    assert answer.startswith(COMPLETION_PREFIX)
    body = last_body(fake_state)
    assert body["prompt"] == f"{article}\nTl;dr\n"
    assert (body["max_tokens"], body["temperature"], body["presence_penalty"]) == (2048, 0.7, 1)
    assert "stop" not in body
    response = await client.post("/chatgpt/summary", data=b"")
    assert response.status == 400
    assert await response.text()


async def test_nothing_is_kept_by_one_off_answers(client: Client, fake_state: FakeState) -> None:
    conv_id = await new(client, "createTurbo")
    await client.post("/chatgpt/quickAnswer", data=b'{"question": "q", "stream": false}')
    await client.post("/chatgpt/summary", data=b"article")
    assert orjson.loads(await ok_text_json(client, conv_id)) == []
    assert len(fake_state.requests) == 2
