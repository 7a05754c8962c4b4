"""zhuweiyou's chatgpt-api, ``POST /send_message`` (and ``/get_access_token``, answered 501).

Body ``application/x-www-form-urlencoded`` (JSON and multipart accepted too): ``prompt``
(required), ``model``, ``timeout`` (milliseconds; none or 0: no limit),
``conversation_id`` and ``parent_message_id`` (continue a conversation). Success:
``{"text", "conversation_id", "parent_message_id"}``, where ``parent_message_id`` is the
answer's id, to send next time. Any failure: status 500 and ``{"message": "<error>"}``
(a form body that cannot be parsed: 400; one that came too slowly: 408).

``access_token`` and ``reverse_proxy`` belonged to scraping the ChatGPT website; they are
accepted and ignored. A conversation keeps the model of its first message.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp import web

from alice_py import appkeys
from alice_py.api.dialects import discard_unanswered, json_response, resolve_model
from alice_py.engine.answer import Answer
from alice_py.engine.presets import Kind
from alice_py.errors import AliceError, BadRequest
from alice_py.web.body import BodyTimedOut, MalformedBody, read_form, read_json_object
from alice_py.web.context_headers import context_headers
from alice_py.web.errors import client_message
from alice_py.web.ratelimit import admission

PATH = "/send_message"
ACCESS_TOKEN_PATH = "/get_access_token"
NO_ACCESS_TOKEN = (
    "This service does not log in to ChatGPT and needs no access_token: it calls the model API "
    "with the API keys configured on the server. Call /send_message without access_token."
)


class AnswerTimedOut(AliceError):
    def __init__(self, milliseconds: int) -> None:
        super().__init__(
            f"ChatGPT timed out waiting for response after {milliseconds} ms; the conversation is unchanged"
        )


async def read_fields(request: web.Request) -> dict[str, Any]:
    """The form fields, or the JSON object's (by Content-Type)."""
    if request.content_type == "application/json":
        return await read_json_object(request) or {}
    form = await read_form(request)
    return {name: value for name, value in form.items() if isinstance(value, str)}


def text_field(fields: dict[str, Any], name: str) -> str | None:
    """A string field (numbers in JSON are accepted as their text); None if missing or empty."""
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"{name} must be a string")
    return str(value)


def timeout_ms(fields: dict[str, Any]) -> int | None:
    raw = text_field(fields, "timeout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"timeout must be a number of milliseconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"timeout must be a number of milliseconds, got {raw!r}")
    return int(value) or None


async def _answer(answer: Answer, milliseconds: int | None) -> str:
    """The whole answer, or ``AnswerTimedOut`` (the answer closed: nothing committed)."""
    async with answer:
        if milliseconds is None:
            return await answer.collect()
        try:
            async with asyncio.timeout(milliseconds / 1000):
                return await answer.collect()
        except TimeoutError:
            raise AnswerTimedOut(milliseconds) from None


def _reply(text: str, answer: Answer) -> web.Response:
    response = json_response(
        {"text": text, "conversation_id": answer.conversation_id, "parent_message_id": answer.message_id}
    )
    response.headers.update(context_headers(answer))
    return response


async def send_message(request: web.Request) -> web.Response:
    fields = await read_fields(request)
    prompt = text_field(fields, "prompt")
    if prompt is None:
        raise BadRequest("prompt is required")
    conv_id = text_field(fields, "conversation_id")
    parent_id = text_field(fields, "parent_message_id")
    milliseconds = timeout_ms(fields)
    service = request.app[appkeys.SERVICE]
    if conv_id is not None:
        answer = await service.ask(conv_id, prompt, parent_id=parent_id, admit=admission(request))
        return _reply(await _answer(answer, milliseconds), answer)
    if parent_id is not None:
        raise BadRequest("parent_message_id needs the conversation_id it belongs to")
    model = text_field(fields, "model")
    models = request.app[appkeys.CONFIG].models
    conv = await service.create(Kind.TURBO, model=resolve_model(models, model) if model else None)
    started: Answer | None = None
    try:
        # The first answer's model call is what counts a new conversation (once, not twice).
        started = await service.ask(conv.id, prompt, admit=admission(request))
        return _reply(await _answer(started, milliseconds), started)
    finally:
        await discard_unanswered(service, conv.id, started)


async def get_access_token(request: web.Request) -> web.Response:
    return json_response({"message": NO_ACCESS_TOKEN}, 501)


def sendmessage_error(request: web.Request, error: AliceError) -> web.Response:
    """Every failure: 500 with ``{"message": ...}``, as the seed answered; except a body that
    cannot be parsed as a form (400) and one that came too slowly (408, the connection closes)."""
    status = error.status if isinstance(error, MalformedBody | BodyTimedOut) else 500
    return json_response({"message": client_message(error)}, status)


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, send_message)
    app.router.add_post(ACCESS_TOKEN_PATH, get_access_token)
