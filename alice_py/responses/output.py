"""The response object, and its output items from a chat completion (whole or streamed)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from alice_py.responses.items import Item, message_item, new_id
from alice_py.responses.request import ResponseRequest

ECHOED_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "previous_response_id": None,
    "temperature": 1.0,
    "top_p": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "parallel_tool_calls": True,
    "text": {"format": {"type": "text"}},
    "truncation": "disabled",
    "metadata": {},
    "user": None,
    "safety_identifier": None,
    "prompt_cache_key": None,
}
"""The request's settings a response object echoes, with OpenAI's values when not sent."""


def response_object(request: ResponseRequest, response_id: str) -> dict[str, Any]:
    """The response in progress, output still empty."""
    echoed = {name: request.body.get(name, default) for name, default in ECHOED_DEFAULTS.items()}
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": request.model,
        "output": [],
        "usage": None,
        "store": request.store,
        "conversation": None,
        **echoed,
    }


def usage_object(usage: Any) -> dict[str, Any] | None:
    """Chat completions' usage as the Responses API counts it."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(cached), "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(reasoning)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Item:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def output_from_completion(completion: dict[str, Any]) -> list[Item]:
    """The output items of a whole (non-streamed) chat completion: its text, its tool calls."""
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    output: list[Item] = []
    if message.get("content"):
        output.append(message_item("assistant", str(message["content"])))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            function_call_item(
                new_id("fc"),
                str(call.get("id") or new_id("call")),
                str(function.get("name", "")),
                str(function.get("arguments") or ""),
                "completed",
            )
        )
    return output


def finished(response: dict[str, Any], output: list[Item], usage: Any) -> dict[str, Any]:
    return {**response, "status": "completed", "output": output, "usage": usage_object(usage)}


@dataclass(slots=True)
class _Call:
    item_id: str
    call_id: str
    name: str
    output_index: int
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StreamedOutput:
    """The output of a streamed chat completion, item by item, as Responses stream events
    (without ``sequence_number``: the writer numbers every event it sends)."""

    output: list[Item] = field(default_factory=list)
    usage: Any = None
    _text_id: str | None = None
    _text_index: int = -1
    _text: list[str] = field(default_factory=list)
    _calls: dict[int, _Call] = field(default_factory=dict)

    def chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events.extend(self._text_delta(str(delta["content"])))
            for call in delta.get("tool_calls") or []:
                events.extend(self._call_delta(call))
        return events

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self._text_id is None:
            self._text_id = new_id("msg")
            self._text_index = len(self.output)
            item = {**message_item("assistant", "", self._text_id), "status": "in_progress", "content": []}
            self.output.append(item)
            events.append(self._added(item))
            events.append({**self._part_ids(), "type": "response.content_part.added", "part": _part("")})
        self._text.append(text)
        events.append(
            {**self._part_ids(), "type": "response.output_text.delta", "delta": text, "logprobs": []}
        )
        return events

    def _part_ids(self) -> dict[str, Any]:
        return {"item_id": self._text_id, "output_index": self._text_index, "content_index": 0}

    def _added(self, item: Item) -> dict[str, Any]:
        return {"type": "response.output_item.added", "output_index": len(self.output) - 1, "item": item}

    def _call_delta(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        index = int(call.get("index") or 0)
        function = call.get("function") or {}
        events: list[dict[str, Any]] = []
        known = self._calls.get(index)
        if known is None:
            known = _Call(new_id("fc"), str(call.get("id") or new_id("call")), "", len(self.output))
            known.name = str(function.get("name") or "")
            self._calls[index] = known
            item = function_call_item(known.item_id, known.call_id, known.name, "", "in_progress")
            self.output.append(item)
            events.append(self._added(item))
        if function.get("arguments"):
            piece = str(function["arguments"])
            known.arguments.append(piece)
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": known.item_id,
                    "output_index": known.output_index,
                    "delta": piece,
                }
            )
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The ``.done`` events of every item, in output order; the output complete."""
        events: list[dict[str, Any]] = []
        if self._text_id is not None:
            text = "".join(self._text)
            ids = self._part_ids()
            events.append({**ids, "type": "response.output_text.done", "text": text, "logprobs": []})
            events.append({**ids, "type": "response.content_part.done", "part": _part(text)})
            self.output[self._text_index] = message_item("assistant", text, self._text_id)
        for call in self._calls.values():
            arguments = "".join(call.arguments)
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": call.item_id,
                    "output_index": call.output_index,
                    "name": call.name,
                    "arguments": arguments,
                }
            )
            self.output[call.output_index] = function_call_item(
                call.item_id, call.call_id, call.name, arguments, "completed"
            )
        done = [
            {"type": "response.output_item.done", "output_index": index, "item": item}
            for index, item in enumerate(self.output)
        ]
        return [*events, *done]


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
