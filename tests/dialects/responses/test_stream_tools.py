"""Streaming with typed events, function tool round trips and ``text.format``, with the SDK."""

from __future__ import annotations

import json

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.responses.conftest import sdk

EVENTS = TypeAdapter(ResponseStreamEvent)
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


def collapse(types: list[str]) -> list[str]:
    return [kind for index, kind in enumerate(types) if index == 0 or types[index - 1] != kind]


async def test_stream_events_in_order_then_stored(server: TestServer, fake_state: FakeState) -> None:
    async with sdk(server) as client:
        stream = await client.responses.create(model="gpt-4o-mini", input="one two three", stream=True)
        events = [event async for event in stream]
        assert collapse([event.type for event in events]) == TEXT_EVENTS
        assert [event.sequence_number for event in events] == list(range(len(events)))
        for event in events:
            EVENTS.validate_python(event.model_dump())
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == CHAT_PREFIX + "one two three"
        completed = events[-1].response  # type: ignore[union-attr]
        assert completed.usage is not None and completed.usage.total_tokens > 0
        stored = await client.responses.retrieve(completed.id)
        assert stored.output_text == CHAT_PREFIX + "one two three"
        async with client.responses.stream(
            model="gpt-4o-mini", input="again", previous_response_id=completed.id
        ) as helper:
            final = await helper.get_final_response()
    assert final.output_text == CHAT_PREFIX + "again"
    assert len(fake_state.last.body["messages"]) == 3


async def test_upstream_failure_mid_stream_is_response_failed_and_nothing_stored(
    server: TestServer, fake_state: FakeState
) -> None:
    fake_state.stream_error_after = 3
    async with sdk(server) as client:
        stream = await client.responses.create(model="gpt-4o-mini", input="one two three four", stream=True)
        events = [event async for event in stream]
        assert events[-1].type == "response.failed"
        failed = events[-1].response
        assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"
        EVENTS.validate_python(events[-1].model_dump())
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(failed.id)


@pytest.mark.parametrize("stream", [False, True])
async def test_function_call_round_trip(server: TestServer, fake_state: FakeState, stream: bool) -> None:
    async with sdk(server) as client:
        if stream:
            async with client.responses.stream(
                model="gpt-4o-mini", input="Paris?", tools=[WEATHER]
            ) as events:
                call_response = await events.get_final_response()
        else:
            call_response = await client.responses.create(
                model="gpt-4o-mini", input="Paris?", tools=[WEATHER]
            )
        assert fake_state.last.body["tools"][0]["function"]["name"] == "get_weather"
        [call] = call_response.output
        assert call.type == "function_call" and call.name == "get_weather"
        assert json.loads(call.arguments) == {"text": "Paris?"}
        answer = await client.responses.create(
            model="gpt-4o-mini",
            previous_response_id=call_response.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            tools=[WEATHER],
        )
    assert answer.output_text == CHAT_PREFIX + "sunny"
    sent = fake_state.last.body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}


async def test_text_format_becomes_response_format(server: TestServer, fake_state: FakeState) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    text = {"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}}
    async with sdk(server) as client:
        response = await client.responses.create(model="gpt-4o-mini", input="x", text=text)  # type: ignore[arg-type]
    assert fake_state.last.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }
    assert response.text is not None and response.text.format.type == "json_schema"
