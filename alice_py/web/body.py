"""Reading request bodies and fields, with a 400 naming the problem for anything malformed.

Bodies larger than ``[server] max_body`` make aiohttp raise its 413, which the
error middleware words for the user. Nothing here lets bad input become a 500.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from alice_py.errors import BadRequest


async def read_text(request: web.Request) -> str:
    """The body as UTF-8 text (may be empty)."""
    raw = await request.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The request body is not valid UTF-8 text (byte {exc.start})") from None


async def read_json_object(
    request: web.Request, *, invalid: str = "The request body is not valid JSON"
) -> dict[str, Any] | None:
    """The body as a JSON object; ``None`` for an empty body or ``null``. ``invalid`` is the
    message for a body that is not JSON (the field-type messages start with it too)."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(invalid) from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{invalid}: expected a JSON object, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _wrong(name: str, expected: str, value: Any, prefix: str) -> BadRequest:
    lead = f"{prefix}: " if prefix else ""
    return BadRequest(f"{lead}field {name!r} must be {expected}, got {_json_type(value)}")


def string_field(
    data: dict[str, Any], name: str, *, default: str | None = None, prefix: str = ""
) -> str | None:
    """``data[name]`` if it is a string; ``default`` if it is missing or null."""
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _wrong(name, "a string", value, prefix)
    return value


def required_string(data: dict[str, Any], name: str, *, prefix: str = "") -> str:
    value = string_field(data, name, prefix=prefix)
    if value is None:
        lead = f"{prefix}: " if prefix else ""
        raise BadRequest(f"{lead}field {name!r} is required (a string)")
    return value


def bool_field(data: dict[str, Any], name: str, *, default: bool, prefix: str = "") -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _wrong(name, "true or false", value, prefix)
    return value


def string_list_field(data: dict[str, Any], name: str, *, prefix: str = "") -> list[str]:
    """``data[name]`` if it is an array of strings; empty if missing or null."""
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong(name, "an array of strings", value, prefix)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _wrong(f"{name}[{index}]", "a string", item, prefix)
    return value
