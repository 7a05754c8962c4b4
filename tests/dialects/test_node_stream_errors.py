"""node-chatgpt-api's streamed errors: with ``"stream": true`` every error is a 200 SSE stream of
one ``event: error`` with ``{"code", "error"}``, byte for byte what node's server writes
(``reply.sse({event: 'error', data: JSON.stringify({code, error})})``, then the end), so a
``fetchEventSource`` client shows the message instead of failing on an HTTP status."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from alice_py.api.dialects import WRONG_KEY
from alice_py.fake import FakeState
from alice_py.fake.state import FailureKind
from tests.dialects.conftest import MakeClient

Client = TestClient[web.Request, web.Application]


async def error_event(response: ClientResponse) -> dict[str, Any]:
    """The one error event of a stream, checking the stream is exactly that event and nothing else."""
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    raw = await response.text()
    assert raw.startswith("event: error\ndata: ") and raw.endswith("\n\n"), raw
    data = raw.removeprefix("event: error\ndata: ").removesuffix("\n\n")
    assert "\n" not in data, raw  # one event, nothing after it: no [DONE], no result
    event: dict[str, Any] = orjson.loads(data)
    assert list(event) == ["code", "error"]
    return event


def without_request_id(message: str, response: ClientResponse) -> str:
    return message.replace(response.headers["X-Request-Id"], "<id>")


async def test_a_missing_message_is_node_s_error_event_byte_for_byte(client: Client) -> None:
    response = await client.post("/conversation", json={"stream": True})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert await response.read() == (
        b'event: error\ndata: {"code":400,"error":"The message parameter is required."}\n\n'
    )
    # Without "stream": true, the same error is node's JSON with its status.
    response = await client.post("/conversation", json={"message": ""})
    assert response.status == 400
    assert await response.json() == {"error": "The message parameter is required."}


async def test_a_refused_client_key_is_an_error_event_too(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    response = await client.post(
        "/conversation", json={"message": "x", "stream": True}, headers={"Authorization": "Bearer wrong"}
    )
    assert await error_event(response) == {"code": 401, "error": WRONG_KEY}
    response = await client.post(
        "/conversation", json={"message": "x"}, headers={"Authorization": "Bearer wrong"}
    )
    assert response.status == 401
    assert await response.json() == {"error": WRONG_KEY}


async def same_error_both_ways(client: Client, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The status and error of ``body`` answered as JSON, and the event of it streamed."""
    plain = await client.post("/conversation", json=body)
    assert plain.status >= 400
    message = without_request_id((await plain.json())["error"], plain)
    streamed = await client.post("/conversation", json={**body, "stream": True})
    event = await error_event(streamed)
    assert without_request_id(event["error"], streamed) == message
    return plain.status, event


@pytest.mark.parametrize("failure", ["server_error", "traceback", "bad_request", "context_overflow"])
async def test_a_model_api_failure_before_the_first_piece_carries_the_json_status(
    client: Client, fake_state: FakeState, failure: FailureKind
) -> None:
    fake_state.fail_next(failure, 10)  # retries included, for both requests
    status, event = await same_error_both_ways(client, {"message": "x"})
    assert status == event["code"]
    if failure in ("server_error", "traceback"):
        assert status >= 500


async def test_bad_ids_and_options_carry_400(make_client: MakeClient) -> None:
    client = await make_client(node={"client_options": ("promptPrefix",)})
    for body in ({"message": "x", "conversationId": "a b"}, {"message": "x", "clientOptions": "abc"}):
        status, event = await same_error_both_ways(client, body)
        assert status == event["code"] == 400


async def test_the_rate_limit_carries_429(make_client: MakeClient) -> None:
    client = await make_client(limits={"per_minute": 1})
    assert (await client.post("/conversation", json={"message": "x"})).status == 200
    status, event = await same_error_both_ways(client, {"message": "x"})
    assert status == event["code"] == 429


async def test_a_busy_conversation_carries_409(client: Client, fake_state: FakeState) -> None:
    first = await (await client.post("/conversation", json={"message": "one"})).json()
    conv = first["conversationId"]
    fake_state.chunk_delay = 0.05
    running = await client.post(
        "/conversation", json={"message": " ".join(["word"] * 20), "conversationId": conv, "stream": True}
    )
    assert (await running.content.readline()).startswith(b'data: "')
    status, event = await same_error_both_ways(client, {"message": "two", "conversationId": conv})
    assert status == event["code"] == 409
    running.close()


async def test_a_failure_after_the_first_piece_ends_with_the_event_and_nothing_else(
    client: Client, fake_state: FakeState
) -> None:
    fake_state.stream_error_after = 3  # the role chunk, then two pieces
    response = await client.post("/conversation", json={"message": "one two three", "stream": True})
    raw = await response.text()
    head = 'data: "Demo "\n\ndata: "answer "\n\n'
    assert raw.startswith(head)
    event = orjson.loads(raw.removeprefix(head).removeprefix("event: error\ndata: ").removesuffix("\n\n"))
    request_id = response.headers["X-Request-Id"]
    assert event == {"code": 502, "error": f"the model API reported an error (request id {request_id})"}
    assert raw == head + "event: error\ndata: " + orjson.dumps(event).decode() + "\n\n"
