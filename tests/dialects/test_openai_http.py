"""``/v1`` over plain HTTP: what reaches the upstream, the exact error shapes and statuses."""

from __future__ import annotations

import orjson

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.conftest import CLIENT_KEY, MakeClient
from tests.support import wait_until

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello"}]


def bearer(key: str = CLIENT_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_unknown_fields_pass_through_and_aliases_map(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(models={"aliases": {"gpt-4": "gpt-4o"}})
    body = {
        "model": "gpt-4",
        "messages": HELLO,
        "temperature": 0.2,
        "logit_bias": {"50256": -100},
        "x_vendor_option": {"nested": [1, 2]},
        "user": "u-1",
    }
    response = await client.post(CHAT, json=body)
    assert response.status == 200
    answer = await response.json()
    assert answer["model"] == "gpt-4o"
    assert answer["choices"][0]["message"]["content"] == CHAT_PREFIX + "hello"
    sent = fake_state.last.body
    assert sent == {**body, "model": "gpt-4o", "stream": False}


async def test_stream_is_passed_through_chunk_by_chunk(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    body = {
        "model": "gpt-4o-mini",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = await client.post(CHAT, json=body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    raw = await response.text()
    frames = raw.split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""]
    chunks = [orjson.loads(frame.removeprefix("data: ")) for frame in frames[:-2]]
    assert all(frame.startswith("data: {") for frame in frames[:-2])
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 11
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks if chunk["choices"])
    assert text == CHAT_PREFIX + "hello"
    assert fake_state.last.body["stream_options"] == {"include_usage": True}
    assert fake_state.last.body["stream"] is True


async def test_missing_model_takes_the_configured_default(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    assert (await client.post(CHAT, json={"messages": HELLO})).status == 200
    assert fake_state.last.body["model"] == "gpt-4o-mini"
    assert (await client.post("/v1/completions", json={"prompt": "x"})).status == 200
    assert fake_state.last.body["model"] == "gpt-3.5-turbo-instruct"


async def test_bad_bodies_get_openai_400s(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client()
    response = await client.post(CHAT, data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}
    response = await client.post(CHAT, json={"model": "gpt-4o-mini"})
    assert response.status == 400
    assert await response.json() == {
        "error": {
            "message": "Missing required parameter: 'messages'.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "missing_required_parameter",
        }
    }
    response = await client.post(CHAT, json={"model": 4, "messages": HELLO})
    assert (response.status, (await response.json())["error"]["param"]) == (400, "model")
    response = await client.post(CHAT, json={"model": "m", "messages": HELLO, "stream": "yes"})
    assert (response.status, (await response.json())["error"]["param"]) == (400, "stream")
    assert fake_state.requests == []


async def test_client_keys(make_client: MakeClient) -> None:
    client = await make_client(
        auth={"mode": "simple"}, openai={"client_keys": (CLIENT_KEY, "sk-second-key-0001")}
    )
    assert (await client.get("/v1/models", headers=bearer())).status == 200
    assert (await client.get("/v1/models", headers=bearer("sk-second-key-0001"))).status == 200
    response = await client.get("/v1/models", headers=bearer("sk-nope"))
    assert response.status == 401
    body = await response.json()
    assert body["error"]["code"] == "invalid_api_key"
    assert "sk-nope" not in orjson.dumps(body).decode()
    missing = await client.get("/v1/models")
    assert missing.status == 401
    assert "didn't provide an API key" in (await missing.json())["error"]["message"]


async def test_auth_mode_none_accepts_any_key(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "none"}, openai={"client_keys": (CLIENT_KEY,)})
    assert (await client.get("/v1/models", headers=bearer("anything"))).status == 200
    assert (await client.get("/v1/models")).status == 200


async def test_models_lists_configured_models_and_aliases(make_client: MakeClient) -> None:
    client = await make_client(models={"turbo": "t", "gpt4": "g4", "gpt3": "g3", "aliases": {"gpt-4": "g4"}})
    body = await (await client.get("/v1/models")).json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == ["t", "g4", "g3", "gpt-4"]
    assert body["data"][0] == {"id": "t", "object": "model", "created": 0, "owned_by": "alice-py"}


async def test_upstream_timeout_is_504(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(upstream={"timeout": 0.05})
    fake_state.delay = 0.2
    response = await client.post(CHAT, json={"model": "gpt-4o-mini", "messages": HELLO})
    assert response.status == 504
    assert (await response.json())["error"]["code"] == "timeout"


async def test_upstream_quota_exhausted_is_a_502_about_the_service_key(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    fake_state.fail_next("quota")
    response = await client.post(CHAT, json={"model": "gpt-4o-mini", "messages": HELLO})
    assert response.status == 502
    error = (await response.json())["error"]
    assert error["code"] == "upstream_key_refused"
    assert error["message"].startswith("the model API refused the service's API key (its quota is used up)")


async def test_failover_to_another_key_is_invisible(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(upstream={"keys": ("sk-first-00000000000a", "sk-second-0000000000b")})
    fake_state.fail_next("server_error")
    response = await client.post(CHAT, json={"model": "gpt-4o-mini", "messages": HELLO})
    assert response.status == 200
    assert fake_state.keys_used == ["sk-first-00000000000a", "sk-second-0000000000b"]


async def test_service_rate_limit_is_an_openai_429(make_client: MakeClient) -> None:
    client = await make_client(limits={"per_minute": 1})
    assert (await client.post(CHAT, json={"model": "m", "messages": HELLO})).status == 200
    response = await client.post(CHAT, json={"model": "m", "messages": HELLO})
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.json())["error"]["code"] == "rate_limit_exceeded"
    assert (await client.get("/v1/models")).status == 200  # listing models is not a model call


async def test_stream_broken_after_first_chunk_ends_with_an_error_chunk(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    fake_state.break_stream_after = 2
    response = await client.post(CHAT, json={"model": "m", "messages": HELLO, "stream": True})
    assert response.status == 200
    frames = (await response.text()).split("\n\n")
    last = orjson.loads(frames[-2].removeprefix("data: "))
    assert last["error"]["type"] == "server_error"
    assert "[DONE]" not in frames
    assert len(frames) == 4  # two chunks, the error chunk, and the empty rest


async def test_client_gone_mid_stream_closes_the_upstream_request(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    fake_state.chunk_delay = 0.05
    words = " ".join(["word"] * 20)
    body = {"model": "m", "messages": [{"role": "user", "content": words}], "stream": True}
    response = await client.post(CHAT, json=body)
    assert (await response.content.readline()).startswith(b"data: {")
    response.close()
    await wait_until(lambda: fake_state.disconnects == 1)
