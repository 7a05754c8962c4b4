"""node-chatgpt-api's API, ``POST /conversation``, as its server (``bin/server.js`` 1.37.3) answers.

Request ``{"message", "conversationId"?, "parentMessageId"?, "stream"?, "shouldGenerateTitle"?,
"clientOptions"?}``; answer ``{"response", "conversationId", "parentMessageId", "messageId",
"details", "title"?}`` in node's order, where ``messageId`` is the answer's id,
``parentMessageId`` the question's, and ``details`` the model API's whole response (``{}`` for
a streamed answer, as node sends). A conversation is a tree: ``parentMessageId`` continues
from any earlier message; without it, from the latest answer. An unknown ``conversationId``
starts a conversation under that id (node's clients make the ids); an unknown
``parentMessageId`` answers from an empty history, as node does. Conversations live in the
same store as Alice's.

``stream: true`` answers with SSE: ``data: "<piece as a JSON string>"`` per piece, then
``event: result`` with the answer object, then ``data: [DONE]``. Every error of such a
request, before the first piece or after it, is a 200 stream holding one
``event: error`` with ``{"code": <the status>, "error": message}`` and nothing after it,
byte for byte what node writes, so ``fetchEventSource`` clients show the message. Other
errors are ``{"error": message}`` with the status. Settings: ``[node]``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.api.dialects import ClientKeyGuard, discard_unanswered, json_response
from alice_py.api.node_options import MessageOptions, client_id, message_options
from alice_py.api.node_title import generate_title
from alice_py.config import NodeConfig
from alice_py.engine.answer import Answer
from alice_py.engine.context import TurnContext
from alice_py.engine.options import TurnOptions
from alice_py.engine.presets import Kind
from alice_py.engine.service import ConversationService
from alice_py.errors import AliceError, AuthFailed, BadRequest, ConversationBusy
from alice_py.web.body import read_json_object
from alice_py.web.context_headers import context_headers
from alice_py.web.errors import client_message
from alice_py.web.ratelimit import admission
from alice_py.web.sse import SSE_HEADERS, StreamFormat, sse_event, stream_answer

PATH = "/conversation"
DEFAULT_PROMPT = "You are ChatGPT, a large language model trained by OpenAI. Respond conversationally."
DEFAULT_LABELS = ("User", "ChatGPT")
MESSAGE_REQUIRED = "The message parameter is required."
STREAM_WANTED = web.RequestKey("node_stream_wanted", bool)
"""Set once the body said ``"stream": true``: errors are then answered in-stream."""


def system_prompt(cfg: NodeConfig) -> str:
    """``prompt_prefix`` (default: node-chatgpt-api's), naming the labels when they are not the defaults.

    The seed wrote labels into a text transcript; a chat model has roles instead, so custom
    labels are told to the model in the system prompt.
    """
    prompt = cfg.prompt_prefix.strip() or DEFAULT_PROMPT
    if (cfg.user_label, cfg.chatgpt_label) != DEFAULT_LABELS:
        prompt += f"\nIn this conversation you are {cfg.chatgpt_label} and the user is {cfg.user_label}."
    return prompt


class Reply:
    """One answer on its way to a node client, with what node adds at its end (the title)."""

    def __init__(self, answer: Answer, message: str, title_label: str | None, request: web.Request) -> None:
        self.answer = answer
        self._message = message
        self._title_label = title_label
        """The user label for the title call; ``None``: no title wanted."""
        self._request = request
        self.title: str | None = None

    async def next_batch(self) -> list[str] | None:
        """The answer's pieces; once they end (the turn is kept), the title is made."""
        batch = await self.answer.next_batch()
        if batch is None:
            await self.add_title()
        return batch

    async def aclose(self) -> None:
        await self.answer.aclose()

    @property
    def context(self) -> TurnContext | None:
        """The answer's fitting to the window (its ``X-Context-*`` headers)."""
        return self.answer.context

    async def add_title(self) -> None:
        if self._title_label is not None and self.answer.text is not None:
            self.title = await generate_title(self._request, self._message, self.answer, self._title_label)
            self._title_label = None

    def result(self) -> dict[str, Any]:
        answer = self.answer
        result: dict[str, Any] = {
            "response": answer.text,
            "conversationId": answer.conversation_id,
            "parentMessageId": answer.parent_id,
            "messageId": answer.message_id,
            "details": answer.response or {},
        }
        if self.title is not None:
            result["title"] = self.title
        return result


def error_event(message: str, status: int) -> bytes:
    return sse_event(orjson.dumps({"code": status, "error": message}).decode(), "error")


def node_stream(reply: Reply) -> StreamFormat:
    return StreamFormat(
        piece=lambda piece: sse_event(orjson.dumps(piece).decode()),
        done=lambda: sse_event(orjson.dumps(reply.result()).decode(), "result") + b"data: [DONE]\n\n",
        error=error_event,
    )


async def _respond(request: web.Request, reply: Reply, stream: bool) -> web.StreamResponse:
    if stream:
        return await stream_answer(request, reply, node_stream(reply))
    async with reply.answer:
        await reply.answer.collect()
    await reply.add_title()
    response = json_response(reply.result())
    response.headers.update(context_headers(reply.answer))
    return response


async def _read_body(request: web.Request) -> dict[str, Any]:
    data = await read_json_object(request) or {}
    request[STREAM_WANTED] = data.get("stream") is True  # node's ``body.stream === true``
    return data


async def _target(service: ConversationService, cfg: NodeConfig, conv_id: str | None) -> tuple[str, bool]:
    """The conversation to answer in, and whether this request created it."""
    prompt, human, ai = system_prompt(cfg), cfg.user_label, cfg.chatgpt_label
    if conv_id is None:
        conv = await service.create(Kind.TURBO, prompt=prompt, human_name=human, ai_name=ai, stream=True)
        return conv.id, True
    adopted = await service.adopt(
        conv_id, Kind.TURBO, prompt=prompt, human_name=human, ai_name=ai, stream=True
    )
    return conv_id, adopted


def _turn(options: MessageOptions, stream: bool) -> TurnOptions:
    prompt = None if options.settings is None else system_prompt(options.settings)
    return TurnOptions(
        prompt=prompt,
        params=options.params,
        stream=stream,
        keep_response=not stream,
        unknown_parent_is_root=True,
    )


async def conversation(request: web.Request) -> web.StreamResponse:
    data = await _read_body(request)
    message = data.get("message")
    if not message:
        raise BadRequest(MESSAGE_REQUIRED)
    if not isinstance(message, str):
        raise BadRequest('"message" must be a string')
    conv_id, parent_id = client_id(data, "conversationId"), client_id(data, "parentMessageId")
    cfg = request.app[appkeys.CONFIG]
    options = message_options(data, cfg.node, cfg.models)
    wants_title = data.get("shouldGenerateTitle")
    if not isinstance(wants_title, bool):
        wants_title = cfg.node.generate_titles
    stream = request[STREAM_WANTED]
    service = request.app[appkeys.SERVICE]
    conv_id, created = await _target(service, cfg.node, conv_id)
    started: Answer | None = None
    try:
        key = request.headers.get("Idempotency-Key")  # docs/tree.md: a repeat is not asked again
        started = await service.ask(
            conv_id, message, parent_id=parent_id, idempotency_key=key,
            admit=admission(request),  # the first answer's call is what counts a new conversation
            options=_turn(options, stream),
        )
        label = (options.settings or cfg.node).user_label if created and wants_title else None
        return await _respond(request, Reply(started, message, label, request), stream)
    except ConversationBusy:
        created = False  # another request is answering in it: it is not ours to drop
        raise
    finally:
        if created:
            await discard_unanswered(service, conv_id, started)


def node_error(request: web.Request, error: AliceError) -> web.Response:
    """node-chatgpt-api's error: ``{"error": message}`` with the status, or for a request that
    asked to stream, a 200 stream of one ``event: error`` with ``{"code", "error"}``."""
    if request.get(STREAM_WANTED):
        return web.Response(body=error_event(client_message(error), error.status), headers=SSE_HEADERS)
    return json_response({"error": client_message(error)}, error.status)


class NodeKeyGuard:
    """The client keys (``ClientKeyGuard``); a refused request that asked to stream is told so
    in-stream too, so its body is read (``[server] max_body`` bounds it) to find out."""

    def __init__(self, guard: ClientKeyGuard) -> None:
        self._guard = guard

    async def __call__(self, request: web.Request) -> None:
        try:
            await self._guard(request)
        except AuthFailed:
            # Not JSON, or too large: answered as a plain 401.
            with contextlib.suppress(AliceError, web.HTTPException):
                await _read_body(request)
            raise


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, conversation)
