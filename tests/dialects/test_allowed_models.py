"""``[models] allowed``: a model outside the list is refused (404 ``model_not_found`` in each
dialect's own format) before anything reaches the upstream; ``/v1/models`` lists only allowed ones."""

from __future__ import annotations

import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer

from alice_py.fake import FakeState
from tests.dialects.conftest import MakeClient, MakeServer

MESSAGES = [{"role": "user", "content": "hi"}]
REFUSED = "The model 'gpt-4o' does not exist or you do not have access to it."
# turbo (gpt-4o-mini) is listed, gpt4 (gpt-4o) and gpt3 (gpt-3.5-turbo-instruct) are not.
ALLOWED = {
    "models": {"allowed": ("gpt-4o-mini", "fast", "llama-*"), "aliases": {"fast": "gpt-4o"}},
}


async def test_v1_refuses_a_model_outside_the_list(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(**ALLOWED)
    response = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": MESSAGES})
    assert response.status == 404
    assert await response.json() == {
        "error": {
            "message": REFUSED,
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    # Leaving the model out means gpt3's for completions: outside the list too.
    response = await client.post("/v1/completions", json={"prompt": "hi"})
    assert (response.status, (await response.json())["error"]["code"]) == (404, "model_not_found")
    assert fake_state.requests == []


async def test_aliases_are_checked_by_the_name_the_client_sends(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(**ALLOWED)
    for model, upstream in (("fast", "gpt-4o"), ("llama-3b", "llama-3b"), ("gpt-4o-mini", "gpt-4o-mini")):
        response = await client.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES})
        assert response.status == 200, model
        assert fake_state.last.body["model"] == upstream
    response = await client.post("/v1/chat/completions", json={"model": "LLAMA-3b", "messages": MESSAGES})
    assert response.status == 404  # patterns match case-sensitively, as model names are


async def test_v1_models_lists_only_allowed_models(make_client: MakeClient) -> None:
    client = await make_client(**ALLOWED)
    listed = await (await client.get("/v1/models")).json()
    assert [model["id"] for model in listed["data"]] == ["gpt-4o-mini", "fast"]
    assert (await client.get("/v1/models/gpt-4o")).status == 404
    assert (await client.get("/v1/models/fast")).status == 200


async def test_the_sdk_sees_not_found(make_server: MakeServer, fake_state: FakeState) -> None:
    server: TestServer = await make_server(**ALLOWED)
    sdk = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="any", max_retries=0)
    async with sdk:
        with pytest.raises(openai.NotFoundError) as caught:
            await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"
    assert fake_state.requests == []


async def test_every_other_dialect_refuses_in_its_own_format(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(**ALLOWED)
    response = await client.post("/chat", json={"model": "gpt-4o", "messages": MESSAGES})
    assert response.status == 404
    lines = [orjson.loads(line) for line in (await response.text()).splitlines()]
    assert lines == [
        {"done": False, "error": True, "content": REFUSED},
        {"done": True, "error": False, "content": "[DONE]"},
    ]
    response = await client.post("/send_message", data={"prompt": "hi", "model": "gpt-4o"})
    assert (response.status, await response.json()) == (500, {"message": REFUSED})
    # Alice's kinds use their configured models: gpt4's and gpt3's are outside the list.
    for path in ("/chatgpt/createGPT4", "/chatgpt/create"):
        response = await client.post(path, data=b"")
        assert response.status == 404, path
        assert "does not exist or you do not have access to it" in await response.text()
    response = await client.post("/chatgpt/quickAnswer", json={"question": "q", "convType": "gpt4"})
    assert (response.status, await response.text()) == (404, REFUSED)
    assert (await client.post("/chatgpt/summary", data=b"an article")).status == 404
    assert fake_state.requests == []
    # turbo's model is listed: Alice's turbo kind and node-chatgpt-api (which uses it) work.
    conv_id = await (await client.post("/chatgpt/createTurbo")).text()
    assert (await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conv_id})).status == 200
    assert (await client.post("/conversation", json={"message": "hi"})).status == 200


async def test_node_conversations_need_turbos_model(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(models={"allowed": ("gpt-4o",)})
    response = await client.post("/conversation", json={"message": "hi"})
    assert (response.status, await response.json()) == (
        404,
        {"error": "The model 'gpt-4o-mini' does not exist or you do not have access to it."},
    )
    assert fake_state.requests == []
