"""OpenAI's Responses API, ``/v1/responses``, on our own engine (``docs/responses.md``).

A stored response is a node of a tree: ``previous_response_id`` is its parent, and the
history sent upstream (as a plain chat completion) is the path from the root to it plus the
new input; continuing from an older response starts a branch, and every branch stays
retrievable. A response belongs to the client key that made it: for another key it does not
exist (404 by path, 400 ``previous_response_not_found`` in a body, as OpenAI answers).
Auth and errors are ``/v1``'s (``api.table``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.api import response_background, response_keys
from alice_py.api.dialects import json_response, resolve_model
from alice_py.api.openai import read_request
from alice_py.api.openai_errors import ConversationInUse, OpenAIBadRequest, OpenAINotFound
from alice_py.api.response_turn import Turn
from alice_py.api.responses_state import CONVERSATIONS, RESPONSES, RUNS, owner, responses_ctx
from alice_py.db.response_keys import KeptKey
from alice_py.db.responses import StoredResponse
from alice_py.engine.context import ContextPolicy
from alice_py.responses.fit import fit
from alice_py.responses.hold import Hold
from alice_py.responses.items import chat_messages, new_id
from alice_py.responses.output import finished, output_from_completion, response_object
from alice_py.responses.request import ResponseRequest, chat_body, parse_request
from alice_py.responses.size import check_items
from alice_py.upstream.types import UpstreamRequest
from alice_py.web.ratelimit import admission

PATH = "/v1/responses"
MAX_PAGE = 100
DEFAULT_PAGE = 20
Release = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


def _conversation_not_found(conversation: str) -> OpenAIBadRequest:
    return OpenAIBadRequest(
        f"Conversation with id '{conversation}' not found.",
        param="conversation",
        code="conversation_not_found",
    )


async def _lock(request: web.Request, conversation: str | None) -> Release:
    """One response at a time per conversation (``responses.hold``). A busy conversation of
    another key is "not found", not "busy": its existence is not told."""
    if conversation is None:
        return _nothing
    service = request.app[appkeys.SERVICE]
    hold = await Hold.take(service.store, conversation, service.renew_every)
    if hold is None:
        if await request.app[CONVERSATIONS].get(owner(request), conversation) is None:
            raise _conversation_not_found(conversation)
        raise ConversationInUse(
            f"Another response is in progress on conversation '{conversation}': "
            "try again when it has finished."
        )
    return hold.release


async def _history(request: web.Request, parsed: ResponseRequest) -> list[dict[str, Any]]:
    conversation = parsed.conversation
    if conversation is not None:
        items = await request.app[CONVERSATIONS].items(owner(request), conversation)
        if items is None:
            raise _conversation_not_found(conversation)
        return items
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
    body = await read_request(request)
    parsed = parse_request(body)
    key = await response_keys.claim(request, body)
    if isinstance(key, KeptKey):
        return await response_keys.replay(request, key, parsed.stream)
    try:
        return await _create(request, parsed, key)
    finally:
        if key is not None:
            await key.release()


async def _create(
    request: web.Request, parsed: ResponseRequest, key: response_keys.Claim | None
) -> web.StreamResponse:
    release = await _lock(request, parsed.conversation)
    handed_over = False
    try:
        turn, upstream = await _prepare(request, parsed)
        if key is not None:
            turn.key = (key.key, key.fingerprint)
        turn.release = release  # let go as soon as the turn is written: the next may start
        if parsed.background:
            reply = await response_background.start(request, turn, upstream)
            handed_over = True  # the background run holds the conversation now
            return await reply()
        if parsed.stream:
            return await turn.stream(request, upstream)
        completion = await request.app[appkeys.ROUTER].call(upstream)
        done = finished(turn.response, output_from_completion(completion), completion.get("usage"))
        await turn.save(done)
        return json_response(done)
    finally:
        if not handed_over:
            await release()


async def _prepare(request: web.Request, parsed: ResponseRequest) -> tuple[Turn, UpstreamRequest]:
    history = await _history(request, parsed)
    cfg = request.app[appkeys.CONFIG]
    instructions = [{"instructions": parsed.instructions}] if parsed.instructions else []
    check_items(cfg.conversations.max_bytes, history, [*instructions, *parsed.input_items])
    messages = chat_messages(parsed.instructions, [*history, *parsed.input_items])
    chat = chat_body(parsed, resolve_model(cfg.models, parsed.model), messages)
    response = response_object(parsed, new_id("resp"))
    if parsed.conversation is not None:
        response["conversation"] = {"id": parsed.conversation}
    if parsed.stream or parsed.background:
        chat["stream_options"] = {"include_usage": True}
    turn = Turn(request.app, owner(request), parsed, history, response, parsed.conversation)
    fitted = await fit(_policy(request), parsed.truncation, UpstreamRequest(endpoint="chat", body=chat))
    # Counted only now: a request refused for its size or its context (a 400 from ``fit``) is
    # bad input, which never uses up anyone's limit.
    await admission(request)()
    return turn, fitted


async def input_tokens(request: web.Request) -> web.Response:
    """``POST /v1/responses/input_tokens``: what ``create`` with this body would send, counted
    with the context policy's tokenizer (per-message overhead included) — no model call."""
    parsed = parse_request(await read_request(request))
    history = await _history(request, parsed)
    model = resolve_model(request.app[appkeys.CONFIG].models, parsed.model)
    chat = chat_body(parsed, model, chat_messages(parsed.instructions, [*history, *parsed.input_items]))
    policy = _policy(request)
    encoding = policy.encoding(model)
    count = policy.counter.messages(encoding, chat["messages"])
    if chat.get("tools"):  # the tools' schemas are sent too (as JSON, as a model reads them)
        count += policy.counter.text(encoding, orjson.dumps(chat["tools"]).decode())
    return json_response({"object": "response.input_tokens", "input_tokens": count})


def _policy(request: web.Request) -> ContextPolicy:
    service = request.app[appkeys.SERVICE]
    return service.context_policy or ContextPolicy(request.app[appkeys.CONFIG].context)


async def _stored(request: web.Request) -> StoredResponse:
    response_id = request.match_info["id"]
    stored = await request.app[RESPONSES].get(owner(request), response_id)
    if stored is None:
        raise OpenAINotFound(f"No response found with id '{response_id}'.")
    return stored


async def retrieve(request: web.Request) -> web.StreamResponse:
    stored = await _stored(request)
    if request.query.get("stream") in ("true", "1"):
        return await response_background.resume(request, stored.body)
    return json_response(stored.body)


async def cancel(request: web.Request) -> web.Response:
    stored = await _stored(request)
    return json_response(await response_background.cancel(request, stored.body))


async def delete(request: web.Request) -> web.Response:
    response_id = request.match_info["id"]
    if not await request.app[RESPONSES].delete(owner(request), response_id):
        raise OpenAINotFound(f"No response found with id '{response_id}'.")
    await request.app[RUNS].cancel(response_id)  # a deleted background response stops being made
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


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(responses_ctx)
    app.router.add_post(PATH, create)
    app.router.add_post(PATH + "/input_tokens", input_tokens)
    app.router.add_get(PATH + "/{id}", retrieve, allow_head=False)
    app.router.add_delete(PATH + "/{id}", delete)
    app.router.add_post(PATH + "/{id}/cancel", cancel)
    app.router.add_get(PATH + "/{id}/input_items", input_items, allow_head=False)
