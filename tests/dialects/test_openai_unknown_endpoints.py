"""An unknown path (or method) under ``/v1`` answers OpenAI's 404 error object, so that an SDK
shows a useful message instead of failing to parse aiohttp's plain-text ``404: Not Found``."""

from __future__ import annotations

import openai
import pytest

from alice_py.fake import FakeState
from tests.dialects.conftest import CLIENT_KEY, MakeClient, MakeServer

LISTED = "POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /v1/models/{model}"
"""The endpoints the message names (more may follow as other dialects add theirs)."""


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/audio/speech"),
        ("GET", "/v1/chat/completions"),  # a known path with the wrong method
        ("GET", "/v1"),
        ("DELETE", "/v1/models"),
    ],
)
async def test_unknown_endpoint_is_openais_404(
    make_client: MakeClient, fake_state: FakeState, method: str, path: str
) -> None:
    client = await make_client()
    response = await client.request(method, path, json={"model": "m", "input": "x"})
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/json")
    error = (await response.json())["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, None)
    assert error["message"].startswith(f"Invalid URL ({method} {path}): this service has no such endpoint.")
    assert f" Its endpoints: {LISTED}" in error["message"]
    assert fake_state.requests == []


async def test_a_doubled_v1_is_named(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post("/v1/v1/chat/completions", json={})
    assert response.status == 404
    message = (await response.json())["error"]["message"]
    assert message.startswith(
        "Invalid URL (POST /v1/v1/chat/completions): this service has no such endpoint."
    )
    assert "The path has /v1 twice: the client's base URL should end in /v1 once." in message


async def test_known_endpoints_still_answer(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await client.get("/v1/models")).status == 200
    assert (await client.get("/v1/models/gpt-4o")).status == 200
    chat = await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert chat.status == 200


async def test_unknown_endpoint_needs_the_client_key_first(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"}, openai={"client_keys": (CLIENT_KEY,)})
    refused = await client.post("/v1/embeddings", json={})
    assert refused.status == 401
    allowed = await client.post("/v1/embeddings", json={}, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert allowed.status == 404


async def test_other_paths_keep_their_plain_404(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/nothing/here")
    assert (response.status, await response.text()) == (404, "404: Not Found")


async def test_the_sdk_raises_not_found_with_the_message(make_server: MakeServer) -> None:
    server = await make_server()
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError) as caught:
            await sdk.embeddings.create(model="text-embedding-3-small", input="hello")
    assert caught.value.status_code == 404
    assert "Invalid URL (POST /v1/embeddings): this service has no such endpoint." in caught.value.message
    assert caught.value.type == "invalid_request_error"
