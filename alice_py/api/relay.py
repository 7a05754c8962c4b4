"""openai-api-server's API, ``POST /chat``: stateless chat, answered as newline-delimited JSON.

Request ``{"model"?, "messages": [{"role", "content"}, ...]}`` (the client sends the whole
history). Answer, one JSON object per line::

    {"done":false,"error":false,"content":"<piece>"}
    ...
    {"done":true,"error":false,"content":"[DONE]"}

A failure, before or after the first piece, is ``{"done":false,"error":true,"content":
"<message>"}`` followed by the done line (before the first piece with the error's status).
Auth: ``Authorization: <[relay] authorization_key>`` when one is configured; without one,
the service's own client keys, as on ``/v1`` (``Authorization: Bearer <client key>``, open only
with ``[auth] mode = "none"``): an empty key must not make the route an open relay on the
operator's bill. CORS allows credentials (the seed's browser client fetches with
``credentials: "include"``), but only to origins listed by name in ``[server] cors_origins``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.api.dialects import ClientKeyGuard, authorization_value, matches_any, resolve_model
from alice_py.config import Config
from alice_py.errors import AliceError, AuthFailed, BadRequest
from alice_py.web.auth import CLIENT_KEY
from alice_py.web.body import read_json_object, string_field
from alice_py.web.errors import client_message
from alice_py.web.ratelimit import admission
from alice_py.web.sse import StreamFormat, stream_answer

PATH = "/chat"
NDJSON_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Type": "application/x-ndjson; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
)
WRONG_KEY = "Authorization failed: send the server's AUTHORIZATION_KEY as the Authorization header"
DONE_LINE = b'{"done":true,"error":false,"content":"[DONE]"}\n'


def line(done: bool, error: bool, content: str) -> bytes:
    return orjson.dumps({"done": done, "error": error, "content": content}) + b"\n"


def error_lines(message: str) -> bytes:
    return line(False, True, message) + DONE_LINE


NDJSON = StreamFormat(
    piece=lambda piece: line(False, False, piece),
    done=lambda: DONE_LINE,
    error=lambda message, _status: error_lines(message),
    headers=NDJSON_HEADERS,
)


def read_messages(data: dict[str, Any]) -> list[dict[str, str]]:
    value = data.get("messages")
    if not isinstance(value, list) or not value:
        raise BadRequest('"messages" must be a non-empty array of {"role", "content"} objects')
    messages: list[dict[str, str]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadRequest(f'"messages[{index}]" must be an object with "role" and "content"')
        role, content = item.get("role"), item.get("content")
        if not isinstance(role, str) or not role or not isinstance(content, str):
            raise BadRequest(f'"messages[{index}]" needs "role" and "content" strings')
        messages.append({"role": role, "content": content})
    return messages


async def chat(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    if data is None:
        raise BadRequest('A JSON body with "messages" is required')
    model = string_field(data, "model")
    messages = read_messages(data)
    models = request.app[appkeys.CONFIG].models
    answer = await request.app[appkeys.SERVICE].one_off_chat(
        messages, model=resolve_model(models, model) if model else None, stream=True, admit=admission(request)
    )
    return await stream_answer(request, answer, NDJSON)


class RelayKeyGuard:
    """``Authorization: <key>`` (a ``Bearer`` scheme is accepted too), whatever the auth mode."""

    def __init__(self, key: str) -> None:
        self._key = key

    async def __call__(self, request: web.Request) -> None:
        given = authorization_value(request)
        if not matches_any(given, (self._key,)):
            raise AuthFailed(WRONG_KEY)
        request[CLIENT_KEY] = given


def relay_guard(cfg: Config) -> RelayKeyGuard | ClientKeyGuard:
    """The relay's own key when set, else the client keys every other peer dialect takes."""
    key = cfg.relay.authorization_key
    return RelayKeyGuard(key) if key else ClientKeyGuard(cfg)


def relay_error(request: web.Request, error: AliceError) -> web.Response:
    """The error line and the done line, with the error's status."""
    body = error_lines(client_message(error))
    return web.Response(status=error.status, body=body, headers=dict(NDJSON_HEADERS))


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, chat)
