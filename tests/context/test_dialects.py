"""node-chatgpt-api's /conversation and /send_message fit their stored history too, and say so."""

from __future__ import annotations

from typing import Any

from alice_py.fake import FakeState
from tests.context.conftest import MakeClient, count_chat


def question(index: int) -> str:
    return f"Question {index}: " + " ".join(f"word{index}x{n}" for n in range(12))


async def test_node_conversation_drops_oldest_and_sends_the_headers(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    ids: dict[str, Any] = {}
    for index in range(7):
        stream = index == 6  # the last one streamed: its headers come with the stream
        response = await client.post(
            "/conversation", json={"message": question(index), "stream": stream, **ids}
        )
        assert response.status == 200, await response.text()
        if not stream:
            body = await response.json()
            ids = {"conversationId": body["conversationId"], "parentMessageId": body["messageId"]}
        sent = fake_state.last.body["messages"]
        assert sent[0]["role"] == "system"
        assert sent[-1]["content"] == question(index)
        assert int(response.headers["X-Context-Tokens"]) == count_chat(sent) <= 250
        assert response.headers["X-Context-Window"] == "300"
    await response.text()
    assert int(response.headers["X-Context-Dropped"]) > 0


async def test_send_message_drops_oldest(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client()
    fields: dict[str, str] = {}
    for index in range(6):
        response = await client.post("/send_message", json={"prompt": question(index), **fields})
        assert response.status == 200, await response.text()
        answer = await response.json()
        fields = {
            "conversation_id": answer["conversation_id"],
            "parent_message_id": answer["parent_message_id"],
        }
    sent = fake_state.last.body["messages"]
    assert sent[-1]["content"] == question(5)
    assert int(response.headers["X-Context-Dropped"]) > 0
    assert int(response.headers["X-Context-Tokens"]) == count_chat(sent) <= 250
