"""node-chatgpt-api's API, ``POST /conversation``.

Request ``{"message", "conversationId"?, "parentMessageId"?, "stream"?}``; answer
``{"response", "conversationId", "messageId", "parentMessageId"}``, where ``messageId`` is
the answer's id and ``parentMessageId`` the question's. A conversation is a tree:
``parentMessageId`` continues from any earlier message (the history sent upstream is the
path from the root to it); without it, from the latest answer. Conversations live in the
same store as Alice's.

``stream: true`` answers with SSE: ``data: "<piece as a JSON string>"`` per piece, then
``event: result`` with the answer object, then ``data: [DONE]``; a failure after the first
piece is ``event: error`` with ``{"error": message}``. Errors are ``{"error": message}``
with the right status. Settings: ``[node] prompt_prefix`` (the system prompt),
``user_label`` and ``chatgpt_label``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from alice_py import keys
from alice_py.api.dialects import ClientKeyGuard, discard_unanswered, json_response
from alice_py.config import NodeConfig
from alice_py.engine.answer import Answer
from alice_py.engine.presets import Kind
from alice_py.errors import AliceError, BadRequest
from alice_py.web.body import bool_field, read_json_object, string_field
from alice_py.web.errors import client_message
from alice_py.web.ratelimit import admission
from alice_py.web.sse import StreamFormat, sse_event, stream_answer

PATH = "/conversation"
DEFAULT_PROMPT = "You are ChatGPT, a large language model trained by OpenAI. Respond conversationally."
DEFAULT_LABELS = ("User", "ChatGPT")


def system_prompt(cfg: NodeConfig) -> str:
    """``prompt_prefix`` (default: node-chatgpt-api's), naming the labels when they are not the defaults.

    The seed wrote labels into a text transcript; a chat model has roles instead, so custom
    labels are told to the model in the system prompt.
    """
    prompt = cfg.prompt_prefix.strip() or DEFAULT_PROMPT
    if (cfg.user_label, cfg.chatgpt_label) != DEFAULT_LABELS:
        prompt += f"\nIn this conversation you are {cfg.chatgpt_label} and the user is {cfg.user_label}."
    return prompt


def result_object(answer: Answer) -> dict[str, Any]:
    return {
        "response": answer.text,
        "conversationId": answer.conversation_id,
        "messageId": answer.message_id,
        "parentMessageId": answer.parent_id,
    }


def node_stream(answer: Answer) -> StreamFormat:
    return StreamFormat(
        piece=lambda piece: sse_event(orjson.dumps(piece).decode()),
        done=lambda: sse_event(orjson.dumps(result_object(answer)).decode(), "result") + b"data: [DONE]\n\n",
        error=lambda message: sse_event(orjson.dumps({"error": message}).decode(), "error"),
    )


async def _respond(request: web.Request, answer: Answer, stream: bool) -> web.StreamResponse:
    if stream:
        return await stream_answer(request, answer, node_stream(answer))
    async with answer:
        await answer.collect()
    return json_response(result_object(answer))


async def conversation(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    if data is None:
        raise BadRequest('A JSON body with "message" is required')
    message = string_field(data, "message")
    if not message:
        raise BadRequest('"message" is required (a non-empty string)')
    conv_id = string_field(data, "conversationId")
    parent_id = string_field(data, "parentMessageId")
    stream = bool_field(data, "stream", default=False)
    service = request.app[keys.SERVICE]
    if conv_id:
        key = request.headers.get("Idempotency-Key")  # docs/tree.md: a repeat is not asked again
        answer = await service.ask(
            conv_id, message, parent_id=parent_id or None, idempotency_key=key, admit=admission(request)
        )
        return await _respond(request, answer, stream)
    if parent_id:
        raise BadRequest('"parentMessageId" needs the "conversationId" it belongs to')
    cfg = request.app[keys.CONFIG].node
    conv = await service.create(
        Kind.TURBO,
        prompt=system_prompt(cfg),
        human_name=cfg.user_label,
        ai_name=cfg.chatgpt_label,
        stream=True,
    )
    started: Answer | None = None
    try:
        # The first answer's model call is what counts a new conversation (once, not twice).
        started = await service.ask(conv.id, message, admit=admission(request))
        return await _respond(request, started, stream)
    finally:
        await discard_unanswered(service, conv.id, started)


def node_error(request: web.Request, error: AliceError) -> web.Response:
    """node-chatgpt-api's error: ``{"error": message}`` with a 4xx/5xx status."""
    return json_response({"error": client_message(error)}, error.status)


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, conversation)
    app[keys.AUTH_TABLE].protect(PATH, ClientKeyGuard(app[keys.CONFIG]))
    app[keys.ERROR_FORMATTERS].register(PATH, node_error)
