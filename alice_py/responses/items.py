"""Input items: parsed from a request into the stored shape, and mapped to chat messages.

Stored items have the shapes ``input_items.list`` returns (the SDK's ``ResponseItem``): a
``message`` (``input_text`` parts for user / system / developer, ``output_text`` for
assistant), a ``function_call``, a ``function_call_output``; each with an id of its own.
Anything else (images, files, built-in tool calls) is a 400 naming the field: never dropped.
"""

from __future__ import annotations

import secrets
from typing import Any

from alice_py.api.openai_errors import OpenAIBadRequest

Item = dict[str, Any]
ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")
ID_BYTES = 24


def new_id(prefix: str) -> str:
    """``msg_…``, ``fc_…``, ``resp_…``: a prefix and a random id, never guessable from another."""
    return f"{prefix}_{secrets.token_hex(ID_BYTES)}"


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise OpenAIBadRequest(f"'{field}' must be a string.", param=field)
    return value


def _content_text(content: Any, field: str) -> str:
    """A message's text: a string, or its text parts joined (model servers want one string)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise OpenAIBadRequest(f"'{field}' must be a string or a list of content parts.", param=field)
    texts: list[str] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS:
            raise OpenAIBadRequest(
                f"Unsupported content part type {kind!r} in '{field}[{index}]': this service takes "
                "text only (input_text, output_text).",
                param=f"{field}[{index}].type",
            )
        texts.append(_text(part.get("text"), f"{field}[{index}].text"))
    return "".join(texts)


def message_item(role: str, text: str, item_id: str | None = None) -> Item:
    if role == "assistant":
        part: Item = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        return {
            "type": "message",
            "id": item_id or new_id("msg"),
            "role": "assistant",
            "status": "completed",
            "content": [part],
        }
    return {
        "type": "message",
        "id": item_id or new_id("msg"),
        "role": role,
        "status": "completed",
        "content": [{"type": "input_text", "text": text}],
    }


def _message(raw: dict[str, Any], field: str) -> Item:
    role = raw.get("role")
    if role not in ROLES:
        raise OpenAIBadRequest(
            f"Invalid value for '{field}.role': expected one of {', '.join(ROLES)}.", param=f"{field}.role"
        )
    return message_item(role, _content_text(raw.get("content"), f"{field}.content"))


def _function_call(raw: dict[str, Any], field: str) -> Item:
    return {
        "type": "function_call",
        "id": new_id("fc"),
        "call_id": _text(raw.get("call_id"), f"{field}.call_id"),
        "name": _text(raw.get("name"), f"{field}.name"),
        "arguments": _text(raw.get("arguments"), f"{field}.arguments"),
        "status": "completed",
    }


def _function_call_output(raw: dict[str, Any], field: str) -> Item:
    return {
        "type": "function_call_output",
        "id": new_id("fco"),
        "call_id": _text(raw.get("call_id"), f"{field}.call_id"),
        "output": _content_text(raw.get("output"), f"{field}.output"),
        "status": "completed",
    }


_PARSERS = {
    "message": _message,
    "function_call": _function_call,
    "function_call_output": _function_call_output,
}


def parse_input(value: Any, field: str = "input") -> list[Item]:
    """``input``: a string (one user message) or a list of items."""
    if isinstance(value, str):
        return [message_item("user", value)]
    if not isinstance(value, list) or not value:
        raise OpenAIBadRequest(f"'{field}' must be a string or a non-empty list of items.", param=field)
    items: list[Item] = []
    for index, raw in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(raw, dict):
            raise OpenAIBadRequest(f"'{where}' must be an object.", param=where)
        kind = raw.get("type", "message" if "role" in raw else None)
        parser = _PARSERS.get(kind) if isinstance(kind, str) else None
        if parser is None:
            raise OpenAIBadRequest(
                f"Unsupported item type {kind!r} in '{where}': this service takes message, "
                "function_call and function_call_output items.",
                param=f"{where}.type",
            )
        items.append(parser(raw, where))
    return items


def _item_text(item: Item) -> str:
    return "".join(part.get("text", "") for part in item.get("content", []))


def chat_messages(instructions: str | None, items: list[Item]) -> list[dict[str, Any]]:
    """The chat completions messages for ``items``: instructions (and system / developer
    messages) as ``system``, text joined into one string, function calls as ``tool_calls``
    (consecutive ones in one assistant message) and their outputs as ``tool`` messages."""
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item["type"]
        if kind == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            messages.append({"role": role, "content": _item_text(item)})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        else:
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
    return messages
