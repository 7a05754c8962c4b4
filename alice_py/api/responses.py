"""OpenAI's Responses API, ``/v1/responses``, on our own engine (``docs/responses.md``).

A stored response is a node of a tree: ``previous_response_id`` is its parent, and the
history sent upstream (as a plain chat completion) is the path from the root to it plus the
new input; continuing from an older response starts a branch, and every branch stays
retrievable. A response belongs to the client key that made it: for another key it does not
exist (404 by path, 400 ``previous_response_not_found`` in a body, as OpenAI answers).
Auth and errors are ``/v1``'s (``api.table``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.api.dialects import json_response, resolve_model
from alice_py.api.openai import read_request
from alice_py.api.openai_errors import OpenAIBadRequest, OpenAINotFound
from alice_py.db.responses import ResponseRepository, StoredResponse
from alice_py.errors import AliceError
from alice_py.responses.items import chat_messages, new_id
from alice_py.responses.output import StreamedOutput, finished, output_from_completion, response_object
from alice_py.responses.request import ResponseRequest, chat_body, parse_request
from alice_py.upstream.errors import UpstreamRateLimitError
from alice_py.upstream.types import UpstreamRequest
from alice_py.web.auth import CLIENT_KEY
from alice_py.web.errors import client_message
from alice_py.web.ratelimit import admission
from alice_py.web.sse import Ending, write_stream

PATH = "/v1/responses"
RESPONSES: web.AppKey[ResponseRepository] = web.AppKey("responses")
MAX_PAGE = 100
DEFAULT_PAGE = 20


def owner(request: web.Request) -> str:
    """Who the request is: a digest of its client key (the key itself is never stored).
    With ``[auth] mode = "none"`` there is no key, and every caller is the same owner."""
    key = request.get(CLIENT_KEY)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() if key else ""


async def _history(request: web.Request, parsed: ResponseRequest) -> list[dict[str, Any]]:
    previous = parsed.previous_response_id
    if previous is None:
        return []
    stored = await request.app[RESPONSES].get(owner(request), previous)
    if stored is None:
        raise OpenAIBadRequest(
            f"Previous response with id '{previous}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return stored.context()


async def create(request: web.Request) -> web.StreamResponse:
    parsed = parse_request(await read_request(request))
    history = await _history(request, parsed)
    models = request.app[appkeys.CONFIG].models
    messages = chat_messages(parsed.instructions, [*history, *parsed.input_items])
    chat = chat_body(parsed, resolve_model(models, parsed.model), messages)
    await admission(request)()
    response = response_object(parsed, new_id("resp"))
    turn = Turn(request, parsed, history, response)
    if parsed.stream:
        chat["stream_options"] = {"include_usage": True}
        return await turn.stream(UpstreamRequest(endpoint="chat", body=chat))
    completion = await request.app[appkeys.ROUTER].call(UpstreamRequest(endpoint="chat", body=chat))
    done = finished(response, output_from_completion(completion), completion.get("usage"))
    await turn.save(done)
    return json_response(done)


class Turn:
    """One response being made: saved (with ``store``) only once it completed."""

    def __init__(
        self,
        request: web.Request,
        parsed: ResponseRequest,
        history: list[dict[str, Any]],
        response: dict[str, Any],
    ) -> None:
        self.request = request
        self.parsed = parsed
        self.history = history
        self.response = response
        self.sequence = 0

    async def save(self, done: dict[str, Any]) -> None:
        if self.parsed.store:
            stored = StoredResponse(body=done, input_items=self.parsed.input_items, history=self.history)
            await self.request.app[RESPONSES].save(owner(self.request), stored)

    def event(self, event: dict[str, Any]) -> bytes:
        event["sequence_number"] = self.sequence
        self.sequence += 1
        return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"

    def failed(self, error: AliceError) -> bytes:
        """``response.failed``: the error inside the response (a top-level ``error`` makes
        the SDKs raise instead of yielding the event). Nothing of the turn is stored."""
        code = "rate_limit_exceeded" if isinstance(error, UpstreamRateLimitError) else "server_error"
        body = {
            **self.response,
            "status": "failed",
            "error": {"code": code, "message": client_message(error)},
        }
        return self.event({"type": "response.failed", "response": body})

    async def _events(
        self, chunks: AsyncGenerator[list[dict[str, Any]], None]
    ) -> AsyncGenerator[bytes, None]:
        output = StreamedOutput()
        first = await anext(chunks, None)  # before any byte: a failure here is a plain HTTP error
        head = [
            self.event({"type": "response.created", "response": self.response}),
            self.event({"type": "response.in_progress", "response": self.response}),
        ]
        batch = first or []
        while True:
            events = [event for chunk in batch for event in output.chunk(chunk)]
            yield b"".join([*head, *(self.event(event) for event in events)])
            head = []
            next_batch = await anext(chunks, None)
            if next_batch is None:
                break
            batch = next_batch
        closing = [self.event(event) for event in output.finish()]
        done = finished(self.response, output.output, output.usage)
        await self.save(done)
        yield b"".join([*closing, self.event({"type": "response.completed", "response": done})])

    async def stream(self, upstream: UpstreamRequest) -> web.StreamResponse:
        chunks = self.request.app[appkeys.ROUTER].stream(upstream)
        events = self._events(chunks)

        async def next_chunk() -> bytes | None:
            return await anext(events, None)

        async def close() -> None:
            await events.aclose()
            await chunks.aclose()

        return await write_stream(self.request, next_chunk, close, Ending(lambda: b"", self.failed))


async def _stored(request: web.Request) -> StoredResponse:
    response_id = request.match_info["id"]
    stored = await request.app[RESPONSES].get(owner(request), response_id)
    if stored is None:
        raise OpenAINotFound(f"No response found with id '{response_id}'.")
    return stored


async def retrieve(request: web.Request) -> web.Response:
    if request.query.get("stream") in ("true", "1"):
        raise OpenAIBadRequest(
            "Resuming a stream is for background responses, which this service does not support yet.",
            param="stream",
        )
    return json_response((await _stored(request)).body)


async def delete(request: web.Request) -> web.Response:
    response_id = request.match_info["id"]
    if not await request.app[RESPONSES].delete(owner(request), response_id):
        raise OpenAINotFound(f"No response found with id '{response_id}'.")
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


def page_limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_PAGE))
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise OpenAIBadRequest(f"'limit' must be an integer from 1 to {MAX_PAGE}.", param="limit")
    return limit


def cursor_page(request: web.Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenAI's cursor list of ``items`` (oldest first): ``order`` (desc by default),
    ``after`` an item id, ``limit`` 1–100."""
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise OpenAIBadRequest("'order' must be asc or desc.", param="order")
    limit = page_limit(request)
    ordered = items if order == "asc" else items[::-1]
    after = request.query.get("after")
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise OpenAIBadRequest(f"No item with id '{after}' to list after.", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }


async def input_items(request: web.Request) -> web.Response:
    return json_response(cursor_page(request, (await _stored(request)).input_items))


async def responses_ctx(app: web.Application) -> AsyncGenerator[None, None]:
    """The stored responses, in the service's database (opened by ``database_ctx`` before)."""
    app[RESPONSES] = ResponseRepository(app[appkeys.DB_ENGINE], app[appkeys.CONFIG].responses.retention_days)
    yield


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(responses_ctx)
    app.router.add_post(PATH, create)
    app.router.add_get(PATH + "/{id}", retrieve, allow_head=False)
    app.router.add_delete(PATH + "/{id}", delete)
    app.router.add_get(PATH + "/{id}/input_items", input_items, allow_head=False)
