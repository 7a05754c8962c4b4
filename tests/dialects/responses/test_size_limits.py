"""Issue 11 (items 1 and 5) on the Responses API: what one client key can make the service keep.

A ``/v1/conversations`` conversation and a chain of stored responses are held to
``[conversations] max_bytes`` (413 before anything is written or any model call), creating a
conversation counts against ``[limits] per_client``, and a response refused as bad input (its
size, its context) never uses up a limit.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.fake import FakeState
from tests.dialects.conftest import CLIENT_KEY, MakeClient
from tests.dialects.responses.conftest import OTHER_KEY

Client = TestClient[web.Request, web.Application]
MAX_BYTES = 4000


def bearer(key: str = CLIENT_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


async def post(client: Client, path: str, body: dict[str, Any], key: str = CLIENT_KEY) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=bearer(key))
    return response.status, await response.json()


async def limited(make_client: MakeClient, **sections: dict[str, Any]) -> Client:
    return await make_client(
        auth={"mode": "simple"},
        openai={"client_keys": (CLIENT_KEY, OTHER_KEY)},
        conversations={"max_bytes": MAX_BYTES},
        **sections,
    )


def too_large(status: int, body: Any) -> bool:
    error = body["error"]
    return (
        status == 413
        and error["type"] == "invalid_request_error"
        and f"more than the {MAX_BYTES} allowed" in error["message"]
        and "start a new conversation" in error["message"]
    )


async def test_a_conversation_s_items_are_held_to_max_bytes(make_client: MakeClient) -> None:
    client = await limited(make_client)
    status, body = await post(client, "/v1/conversations", {"items": [message("x" * 5000)]})
    assert too_large(status, body)
    status, conversation = await post(client, "/v1/conversations", {"items": [message("a" * 3000)]})
    assert status == 200
    items = f"/v1/conversations/{conversation['id']}/items"
    status, body = await post(client, items, {"items": [message("b" * 1000)]})
    assert too_large(status, body)
    assert "bytes of items" in body["error"]["message"]
    status, _ = await post(client, items, {"items": [message("c" * 100)]})
    assert status == 200  # what still fits is taken
    listed = await (await client.get(items + "?order=asc", headers=bearer())).json()
    assert [item["content"][0]["text"][0] for item in listed["data"]] == ["a", "c"]


async def test_a_response_that_would_pass_max_bytes_is_refused_before_any_model_call(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await limited(make_client)
    status, conversation = await post(client, "/v1/conversations", {"items": [message("a" * 3000)]})
    body = {"model": "gpt-4o-mini", "input": "b" * 1000, "conversation": conversation["id"]}
    assert too_large(*await post(client, "/v1/responses", body))
    # A chain of stored responses is a conversation too: each keeps the history it was made from.
    status, first = await post(client, "/v1/responses", {"model": "gpt-4o-mini", "input": "c" * 2000})
    assert status == 200
    asked = len(fake_state.requests)
    body = {"model": "gpt-4o-mini", "input": "d" * 2000, "previous_response_id": first["id"]}
    assert too_large(*await post(client, "/v1/responses", body))
    assert len(fake_state.requests) == asked
    items = f"/v1/conversations/{conversation['id']}/items"
    listed = await (await client.get(items, headers=bearer())).json()
    assert len(listed["data"]) == 1  # nothing of the refused response was added


async def test_creating_conversations_counts_against_the_client(make_client: MakeClient) -> None:
    client = await limited(make_client, limits={"per_client": 3})
    for _ in range(3):
        assert (await post(client, "/v1/conversations", {}))[0] == 200
    status, body = await post(client, "/v1/conversations", {})
    assert status == 429
    assert body["error"]["message"] == "Too many requests from this client: try again later"
    assert (await post(client, "/v1/conversations", {}, key=OTHER_KEY))[0] == 200


async def test_a_create_refused_as_too_large_does_not_count(make_client: MakeClient) -> None:
    client = await limited(make_client, limits={"per_client": 1})
    for _ in range(3):
        assert too_large(*await post(client, "/v1/conversations", {"items": [message("x" * 5000)]}))
    assert (await post(client, "/v1/conversations", {}))[0] == 200


async def test_responses_refused_as_bad_input_do_not_use_up_the_limit(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await limited(
        make_client,
        limits={"per_client": 2},
        context={"windows": {"gpt-4o-mini": 300}, "reserve": 20},
    )
    over_window = {"model": "gpt-4o-mini", "input": " ".join(["word"] * 400)}
    for _ in range(5):
        status, body = await post(client, "/v1/responses", over_window)
        assert (status, body["error"]["code"]) == (400, "context_length_exceeded")
        assert too_large(*await post(client, "/v1/responses", {"model": "gpt-4o-mini", "input": "x" * 5000}))
    assert fake_state.requests == []
    for _ in range(2):
        assert (await post(client, "/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}))[0] == 200
    assert (await post(client, "/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}))[0] == 429
