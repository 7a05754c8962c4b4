"""Reading request bodies and fields, with a 400 naming the problem for anything malformed.

Every body is read here (``read_body``, ``read_form``), so that one rule holds for all:

- Bodies larger than ``[server] max_body`` make aiohttp raise its 413, which the
  error middleware words for the user.
- A body must arrive within ``[server] body_timeout`` seconds of the handler asking for
  it, else ``BodyTimedOut`` (408) and the connection is closed (``answer_and_close``):
  aiohttp itself has no body timeout, and a client trickling a byte every few seconds
  would hold its socket for ever. A body that came whole with the headers (nearly all)
  is taken without a timer.
- A form that cannot be parsed (a broken multipart body, an unknown charset) is a
  ``MalformedBody`` (400). Nothing here lets bad input become a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from alice_py import appkeys
from alice_py.errors import AliceError, BadRequest

T = TypeVar("T")


class BodyTimedOut(AliceError):
    status = 408
    compat_status = 408

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The request body did not arrive within {seconds:g} s; send it at once")


class MalformedBody(BadRequest):
    """A form body that cannot be parsed: a 400 in every dialect, even zhuweiyou's (500 for the rest)."""


async def _in_time(request: web.Request, reading: Awaitable[T]) -> T:
    seconds = request.app[appkeys.CONFIG].server.body_timeout
    try:
        async with asyncio.timeout(seconds):
            return await reading
    except TimeoutError:
        raise BodyTimedOut(seconds) from None


async def read_body(request: web.Request) -> bytes:
    """The raw body, within ``[server] body_timeout``."""
    if request.content.is_eof():  # all of it came with the headers: nothing to wait for
        return await request.read()
    return await _in_time(request, request.read())


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The urlencoded or multipart form, within ``[server] body_timeout``; ``MalformedBody`` if broken."""
    try:
        return await _in_time(request, request.post())
    except (ValueError, LookupError, HttpProcessingError) as exc:
        # ValueError: no boundary, a part without a name, text not in its charset; LookupError:
        # an unknown charset; HttpProcessingError: a part's header lines are not headers.
        raise MalformedBody(f"The form body cannot be read: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, HttpProcessingError):
        return exc.message.strip() or "malformed part headers"
    return str(exc).strip() or type(exc).__name__


async def answer_and_close(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Send ``response`` now, then close the connection without waiting for the rest of the body
    (aiohttp would otherwise read and drop it for up to 10 s more)."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # the transport flushes the answer before it closes
    return response


async def read_text(request: web.Request) -> str:
    """The body as UTF-8 text (may be empty)."""
    raw = await read_body(request)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The request body is not valid UTF-8 text (byte {exc.start})") from None


async def read_json_object(
    request: web.Request, *, invalid: str = "The request body is not valid JSON"
) -> dict[str, Any] | None:
    """The body as a JSON object; ``None`` for an empty body or ``null``. ``invalid`` is the
    message for a body that is not JSON (the field-type messages start with it too)."""
    raw = await read_body(request)
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
