"""A ``POST /v1/responses`` body: checked field by field, and mapped to a chat completion.

Every field is either handled or refused with a 400 naming it: nothing is silently dropped
(``docs/responses.md`` lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alice_py.api.openai_errors import OpenAIBadRequest
from alice_py.responses.items import Item, parse_input

HANDLED = frozenset(
    {
        "model", "input", "instructions", "previous_response_id", "store", "stream",
        "max_output_tokens", "temperature", "top_p", "metadata", "tools", "tool_choice",
        "parallel_tool_calls", "text", "truncation", "user", "safety_identifier",
        "prompt_cache_key", "background", "conversation",
    }
)  # fmt: skip
PASSED_ON = ("user", "safety_identifier", "prompt_cache_key")
TOOL_CHOICES = ("none", "auto", "required")
MAX_METADATA = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def bad(message: str, param: str) -> OpenAIBadRequest:
    return OpenAIBadRequest(message, param=param)


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    model: str
    input_items: list[Item]
    body: dict[str, Any]
    """The client's fields as sent (nulls dropped)."""
    store: bool
    stream: bool

    @property
    def previous_response_id(self) -> str | None:
        value = self.body.get("previous_response_id")
        return value if isinstance(value, str) else None

    @property
    def conversation(self) -> str | None:
        return _conversation_id(self.body)

    @property
    def background(self) -> bool:
        return self.body.get("background") is True

    @property
    def truncation(self) -> str:
        return str(self.body.get("truncation", "disabled"))

    @property
    def instructions(self) -> str | None:
        value = self.body.get("instructions")
        return value if isinstance(value, str) else None


def _conversation_id(body: dict[str, Any]) -> str | None:
    """``conversation``: an id, or ``{"id": …}`` as the SDK also sends it."""
    value = body.get("conversation")
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"id"}:
        value = value["id"]
    if not isinstance(value, str) or not value:
        raise bad("'conversation' must be a conversation id or {\"id\": <conversation id>}.", "conversation")
    if "previous_response_id" in body:
        raise bad(
            "'conversation' and 'previous_response_id' cannot be used together: a conversation "
            "carries its own history.",
            "conversation",
        )
    return value


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad(f"'{name}' must be true or false.", name)
    return value


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise bad(f"'{name}' must be a number from {low:g} to {high:g}.", name)


def _metadata(value: Any) -> None:
    if not isinstance(value, dict) or len(value) > MAX_METADATA:
        raise bad(f"'metadata' must be an object of at most {MAX_METADATA} pairs.", "metadata")
    for key, text in value.items():
        if len(key) > MAX_METADATA_KEY or not isinstance(text, str) or len(text) > MAX_METADATA_VALUE:
            raise bad(
                f"'metadata' keys are at most {MAX_METADATA_KEY} characters and values strings of "
                f"at most {MAX_METADATA_VALUE}.",
                "metadata",
            )


check_metadata = _metadata


def _tools(value: Any) -> None:
    if not isinstance(value, list):
        raise bad("'tools' must be a list.", "tools")
    for index, tool in enumerate(value):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise bad(
                f"Unsupported tool type {kind!r} in 'tools[{index}]': "
                "this service takes function tools only.",
                f"tools[{index}].type",
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad(f"'tools[{index}].name' must be a non-empty string.", f"tools[{index}].name")


def _tool_choice(value: Any) -> None:
    if value in TOOL_CHOICES:
        return
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        return
    raise bad("'tool_choice' must be none, auto, required or {type: function, name}.", "tool_choice")


def _text_format(value: Any) -> None:
    fmt = value.get("format") if isinstance(value, dict) else None
    if fmt is None:
        if not isinstance(value, dict) or set(value) - {"format"}:
            raise bad("'text' takes only 'format'.", "text")
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise bad("'text.format.type' must be text, json_object or json_schema.", "text.format.type")
    if kind == "json_schema" and not (
        isinstance(fmt.get("name"), str) and isinstance(fmt.get("schema"), dict)
    ):
        raise bad("A json_schema format needs a 'name' and a 'schema' object.", "text.format")


def _check(body: dict[str, Any]) -> None:
    for name in body:
        if name not in HANDLED:
            raise bad(f"Unsupported parameter: '{name}' is not supported by this service.", name)
    _conversation_id(body)
    if body.get("truncation", "disabled") not in ("disabled", "auto"):
        raise bad("Invalid value: 'truncation' must be 'disabled' or 'auto'.", "truncation")
    for name in ("instructions", "previous_response_id", *PASSED_ON):
        if name in body and not isinstance(body[name], str):
            raise bad(f"'{name}' must be a string.", name)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    tokens = body.get("max_output_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        raise bad("'max_output_tokens' must be a positive integer.", "max_output_tokens")
    checks = {"metadata": _metadata, "tools": _tools, "tool_choice": _tool_choice, "text": _text_format}
    for name, check in checks.items():
        if name in body:
            check(body[name])


def parse_request(raw: dict[str, Any]) -> ResponseRequest:
    body = {name: value for name, value in raw.items() if value is not None}
    _check(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIBadRequest(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if "input" not in body:
        raise OpenAIBadRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    parsed = ResponseRequest(
        model=model,
        input_items=parse_input(body["input"]),
        body=body,
        store=_bool(body, "store", True),
        stream=_bool(body, "stream", False),
    )
    if _bool(body, "background", False) and not parsed.store:
        raise bad("A background response must be stored: 'background' needs 'store' true.", "background")
    return parsed


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = {
        "name": tool["name"],
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _response_format(fmt: dict[str, Any]) -> dict[str, Any] | None:
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {name: fmt[name] for name in ("name", "schema", "description", "strict") if name in fmt}
        return {"type": "json_schema", "json_schema": schema}
    return None


def chat_body(request: ResponseRequest, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat completions request: ``model`` as the upstream knows it."""
    body = request.body
    chat: dict[str, Any] = {"model": model, "messages": messages}
    for name in ("temperature", "top_p", *PASSED_ON):
        if name in body:
            chat[name] = body[name]
    if "max_output_tokens" in body:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = [_tool(tool) for tool in body["tools"]]
        if "parallel_tool_calls" in body:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif choice is not None:
        chat["tool_choice"] = choice
    fmt = body.get("text", {}).get("format")
    if fmt is not None and (response_format := _response_format(fmt)) is not None:
        chat["response_format"] = response_format
    return chat
