"""node-chatgpt-api's answer fields and per-message options, as its server 1.37.3 has them:
``details`` (the model API's answer), ``title`` (``shouldGenerateTitle``,
``apiOptions.generateTitles``) and ``clientOptions`` (``perMessageClientOptionsWhitelist``)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py import config
from alice_py.api.node import DEFAULT_PROMPT
from alice_py.api.node_title import TITLE_PROMPT
from alice_py.errors import ConfigError
from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.conftest import MakeClient

Client = TestClient[web.Request, web.Application]

# What node's clean-up leaves of the fake's answer to the title prompt (it has no user message).
DEMO_TITLE = "Demo answer builtin demo model not a real AI to"


async def ask(client: Client, message: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/conversation", json={"message": message, **extra})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def streamed_result(client: Client, message: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/conversation", json={"message": message, "stream": True, **extra})
    assert response.status == 200
    raw = await response.text()
    assert raw.endswith("\n\ndata: [DONE]\n\n")
    result_event = raw.split("\n\n")[-3]
    assert result_event.startswith("event: result\ndata: ")
    result: dict[str, Any] = orjson.loads(result_event.removeprefix("event: result\ndata: "))
    return result


# --- details --------------------------------------------------------------------------------------


async def test_details_is_the_model_api_s_answer(client: Client, fake_state: FakeState) -> None:
    body = await ask(client, "hello")
    details = body["details"]
    assert details["object"] == "chat.completion"
    assert details["id"].startswith("chatcmpl-demo-")
    assert details["model"] == fake_state.last.body["model"]
    assert details["choices"][0]["message"]["content"] == CHAT_PREFIX + "hello"
    assert details["choices"][0]["finish_reason"] == "stop"
    assert set(details["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    # As node does, a request that does not stream makes a call that does not stream.
    assert fake_state.last.body["stream"] is False


async def test_a_streamed_answer_has_empty_details_as_node_sends(
    client: Client, fake_state: FakeState
) -> None:
    result = await streamed_result(client, "hello")
    assert list(result) == ["response", "conversationId", "parentMessageId", "messageId", "details"]
    assert result["details"] == {}
    assert fake_state.last.body["stream"] is True


# --- title ----------------------------------------------------------------------------------------


async def test_should_generate_title_makes_node_s_title_call(client: Client, fake_state: FakeState) -> None:
    body = await ask(client, "What is the capital of France?", shouldGenerateTitle=True)
    assert list(body) == ["response", "conversationId", "parentMessageId", "messageId", "details", "title"]
    assert body["title"] == DEMO_TITLE
    answer_call, title_call = fake_state.requests[-2:]
    prompt = TITLE_PROMPT.format(message="What is the capital of France?", response=body["response"])
    assert title_call.body == {
        "model": answer_call.body["model"],
        "messages": [{"role": "system", "content": prompt}],
        "temperature": 0,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "stop": ["||>", "\nUser:", "<|diff_marker|>"],
        "stream": False,
    }
    assert prompt.startswith(
        "Write an extremely concise subtitle for this conversation with no more than a few"
    )
    # Only the first answer of a conversation gets one (node: ``shouldGenerateTitle && isNewConversation``).
    calls = len(fake_state.requests)
    again = await ask(client, "And Spain?", conversationId=body["conversationId"], shouldGenerateTitle=True)
    assert "title" not in again
    assert len(fake_state.requests) == calls + 1


async def test_a_streamed_answer_carries_its_title_in_the_result(
    client: Client, fake_state: FakeState
) -> None:
    result = await streamed_result(client, "hi", shouldGenerateTitle=True, conversationId="my-new-chat")
    assert result["title"] == DEMO_TITLE
    assert result["conversationId"] == "my-new-chat"  # a client-named new conversation is new too
    assert fake_state.last.body["stream"] is False  # the title call itself is not streamed


async def test_generate_titles_setting_and_the_request_s_flag(make_client: MakeClient) -> None:
    client = await make_client(node={"generate_titles": True})
    assert (await ask(client, "hi"))["title"] == DEMO_TITLE
    assert "title" not in await ask(client, "hi", shouldGenerateTitle=False)
    # Not a boolean: the setting decides, as in node.
    assert (await ask(client, "hi", shouldGenerateTitle="yes"))["title"] == DEMO_TITLE
    await client.close()  # one instance per database
    default = await make_client()
    assert "title" not in await ask(default, "hi")


async def test_a_failed_title_call_still_gives_the_answer(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(limits={"per_minute": 1})  # the answer takes the one model call
    with caplog.at_level(logging.WARNING, logger="alice_py.api.node_title"):
        body = await ask(client, "hi", shouldGenerateTitle=True)
    assert "title" not in body
    assert body["response"] == CHAT_PREFIX + "hi"
    assert f"no title for new conversation {body['conversationId']} (answered without one)" in caplog.text
    assert len(fake_state.requests) == 1


# --- clientOptions --------------------------------------------------------------------------------


async def test_client_options_are_ignored_without_a_whitelist(client: Client, fake_state: FakeState) -> None:
    options = {"promptPrefix": "You are Bob.", "modelOptions": {"temperature": 0.1, "model": "other"}}
    await ask(client, "hi", clientOptions=options)
    body = fake_state.last.body
    assert body["messages"][0] == {"role": "system", "content": DEFAULT_PROMPT}
    assert "temperature" not in body and body["model"] != "other"
    # Ignored means not even looked at, as in node (it returns before reading them).
    await ask(client, "hi", clientOptions="not an object")


async def test_whitelisted_client_options_apply_to_their_message(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(
        node={"client_options": ("promptPrefix", "chatGptLabel", "modelOptions.temperature")}
    )
    options = {
        "promptPrefix": "You are Bob, a cowboy.",
        "chatGptLabel": "Bob",
        "userLabel": "Stranger",  # not listed: dropped
        "modelOptions": {"temperature": 0.2, "max_tokens": 3},  # only temperature is listed
        "openaiApiKey": "sk-never-used",
    }
    first = await ask(client, "howdy", clientOptions=options)
    sent = fake_state.last
    assert sent.body["messages"][0] == {
        "role": "system",
        "content": "You are Bob, a cowboy.\nIn this conversation you are Bob and the user is User.",
    }
    assert sent.body["temperature"] == 0.2
    assert "max_tokens" not in sent.body
    assert sent.key != "sk-never-used"
    # The next message without them is built from the settings again (node builds each request anew).
    await ask(client, "again", conversationId=first["conversationId"])
    body = fake_state.last.body
    assert body["messages"][0] == {"role": "system", "content": DEFAULT_PROMPT}
    assert "temperature" not in body
    assert [m["content"] for m in body["messages"][1:]] == ["howdy", CHAT_PREFIX + "howdy", "again"]


async def test_all_model_options_with_aliases_but_never_the_request_s_structure(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(
        node={"client_options": ("modelOptions", "userLabel")}, models={"aliases": {"fast": "gpt-4o-mini"}}
    )
    model_options = {"model": "fast", "top_p": 0.5, "stream": True, "messages": [], "prompt": "x"}
    body = await ask(client, "hi", clientOptions={"modelOptions": model_options, "userLabel": ""})
    sent = fake_state.last.body
    assert sent["model"] == "gpt-4o-mini" and sent["top_p"] == 0.5
    assert sent["stream"] is False and "prompt" not in sent
    assert sent["messages"][-1] == {"role": "user", "content": "hi"}
    assert body["response"] == CHAT_PREFIX + "hi"  # not streamed: node's answer object as ever
    # An empty label is node's default label, and so changes nothing here.
    assert sent["messages"][0]["content"] == DEFAULT_PROMPT


async def test_malformed_client_options_are_a_400(make_client: MakeClient) -> None:
    client = await make_client(node={"client_options": ("promptPrefix", "modelOptions")})
    for options, message in [
        ("abc", '"clientOptions" must be an object'),
        ({"promptPrefix": 5}, '"clientOptions.promptPrefix" must be a string'),
        ({"modelOptions": []}, '"clientOptions.modelOptions" must be an object'),
        ({"modelOptions": {"model": 4}}, '"clientOptions.modelOptions.model" must be a model name'),
    ]:
        response = await client.post("/conversation", json={"message": "x", "clientOptions": options})
        assert response.status == 400
        assert await response.json() == {"error": message}


@pytest.mark.parametrize(
    "name", ["openaiApiKey", "reverseProxyUrl", "clientToUse", "modelOptions.", "promptPrefix.x"]
)
def test_only_options_the_service_honours_can_be_whitelisted(tmp_path: Path, name: str) -> None:
    settings = tmp_path / "config.toml"
    settings.write_text(f'[node]\nclient_options = ["userLabel", "{name}"]\n')
    with pytest.raises(ConfigError, match=f"node client_options: '{re.escape(name)}' is not one of"):
        config.load(str(settings), {"OPENAI_API_KEY": "sk-test"}, {})
    settings.write_text('[node]\nclient_options = ["userLabel", "modelOptions.top_p", "modelOptions"]\n')
    loaded = config.load(str(settings), {"OPENAI_API_KEY": "sk-test"}, {})
    assert loaded.node.client_options == ("userLabel", "modelOptions.top_p", "modelOptions")
