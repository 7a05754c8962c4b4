"""OpenAI's Conversations API, ``/v1/conversations``: durable item lists (``docs/responses.md``).

A conversation belongs to the client key that made it: for another key it does not exist
(404). Its items are the history of a response made with ``conversation=``, which appends
its input and output to them (``api.response_turn``). Beyond OpenAI: ``GET
/v1/conversations`` lists the caller's conversations. Auth and errors are ``/v1``'s.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from alice_py import appkeys
from alice_py.api.dialects import json_response
from alice_py.api.openai import read_request
from alice_py.api.openai_errors import OpenAIBadRequest, OpenAINotFound
from alice_py.api.responses import cursor_page, page_limit
from alice_py.api.responses_state import CONVERSATIONS, owner
from alice_py.db.openai_conversations import StoredConversation
from alice_py.responses.items import Item, new_id, parse_input
from alice_py.responses.request import check_metadata
from alice_py.responses.size import check_items
from alice_py.web.ratelimit import admission

PATH = "/v1/conversations"
MAX_ITEMS = 20
"""Items per create call (of a conversation or of items), as at OpenAI."""


def _fields(body: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    given = {name: value for name, value in body.items() if value is not None}
    for name in given:
        if name not in allowed:
            raise OpenAIBadRequest(
                f"Unsupported parameter: '{name}' is not supported by this service.", param=name
            )
    return given


def _no_include(request: web.Request) -> None:
    """``include`` asks for extra output data (logprobs, search results …) that these items
    never have: refused rather than ignored."""
    if any(name.startswith("include") for name in request.query):
        raise OpenAIBadRequest("'include' is not supported by this service.", param="include")


def _items(value: Any, *, required: bool) -> list[Item]:
    if value is None or value == []:
        if required:
            raise OpenAIBadRequest("'items' must be a non-empty list of items.", param="items")
        return []
    if not isinstance(value, list):
        raise OpenAIBadRequest("'items' must be a list of items.", param="items")
    if len(value) > MAX_ITEMS:
        raise OpenAIBadRequest(f"'items' takes at most {MAX_ITEMS} items at a time.", param="items")
    return parse_input(value, "items")


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata", {})
    check_metadata(metadata)
    return dict(metadata)


def _max_bytes(request: web.Request) -> int:
    return request.app[appkeys.CONFIG].conversations.max_bytes


def _not_found(conversation_id: str) -> OpenAINotFound:
    return OpenAINotFound(f"Conversation with id '{conversation_id}' not found.")


async def _conversation(request: web.Request) -> StoredConversation:
    conversation_id = request.match_info["id"]
    found = await request.app[CONVERSATIONS].get(owner(request), conversation_id)
    if found is None:
        raise _not_found(conversation_id)
    return found


def _item_list(items: list[Item]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
    }


async def create(request: web.Request) -> web.Response:
    body = _fields(await read_request(request), {"items", "metadata"})
    items = _items(body.get("items"), required=False)
    metadata = _metadata(body)
    check_items(_max_bytes(request), [], items)
    # A new conversation counts against [limits] per_client, as the Alice API's creates do:
    # it is kept until deleted, so one key must not make them without bound.
    await admission(request, model_call=False)()
    conversation = StoredConversation(id=new_id("conv"), created_at=int(time.time()), metadata=metadata)
    await request.app[CONVERSATIONS].create(owner(request), conversation, items)
    return json_response(conversation.as_object())


async def list_conversations(request: web.Request) -> web.Response:
    """Beyond OpenAI: the caller's conversations, newest first, as a cursor list."""
    limit = page_limit(request)
    after = request.query.get("after")
    page = await request.app[CONVERSATIONS].page(owner(request), after, limit)
    if page is None:
        raise OpenAIBadRequest(f"No conversation with id '{after}' to list after.", param="after")
    data = [conversation.as_object() for conversation in page.data]
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more,
        }
    )


async def retrieve(request: web.Request) -> web.Response:
    return json_response((await _conversation(request)).as_object())


async def update(request: web.Request) -> web.Response:
    body = _fields(await read_request(request), {"metadata"})
    if "metadata" not in body:
        raise OpenAIBadRequest(
            "Missing required parameter: 'metadata'.", param="metadata", code="missing_required_parameter"
        )
    conversation_id = request.match_info["id"]
    found = await request.app[CONVERSATIONS].update_metadata(owner(request), conversation_id, _metadata(body))
    if found is None:
        raise _not_found(conversation_id)
    return json_response(found.as_object())


async def delete(request: web.Request) -> web.Response:
    conversation_id = request.match_info["id"]
    if not await request.app[CONVERSATIONS].delete(owner(request), conversation_id):
        raise _not_found(conversation_id)
    return json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


async def add_items(request: web.Request) -> web.Response:
    _no_include(request)
    body = _fields(await read_request(request), {"items"})
    items = _items(body.get("items"), required=True)
    conversation_id = request.match_info["id"]
    if max_bytes := _max_bytes(request):
        check_items(max_bytes, await _all_items(request), items)
    if not await request.app[CONVERSATIONS].add_items(owner(request), conversation_id, items):
        raise _not_found(conversation_id)
    return json_response(_item_list(items))


async def _all_items(request: web.Request) -> list[Item]:
    conversation_id = request.match_info["id"]
    items = await request.app[CONVERSATIONS].items(owner(request), conversation_id)
    if items is None:
        raise _not_found(conversation_id)
    return items


async def list_items(request: web.Request) -> web.Response:
    _no_include(request)
    return json_response(cursor_page(request, await _all_items(request)))


async def retrieve_item(request: web.Request) -> web.Response:
    _no_include(request)
    item_id = request.match_info["item_id"]
    for item in await _all_items(request):
        if item["id"] == item_id:
            return json_response(item)
    raise OpenAINotFound(f"Item with id '{item_id}' not found.")


async def delete_item(request: web.Request) -> web.Response:
    conversation_id = request.match_info["id"]
    item_id = request.match_info["item_id"]
    found = await request.app[CONVERSATIONS].delete_item(owner(request), conversation_id, item_id)
    if found is None:
        await _conversation(request)  # an unknown conversation says so; else the item is unknown
        raise OpenAINotFound(f"Item with id '{item_id}' not found.")
    return json_response(found.as_object())


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, create)
    app.router.add_get(PATH, list_conversations, allow_head=False)
    app.router.add_get(PATH + "/{id}", retrieve, allow_head=False)
    app.router.add_post(PATH + "/{id}", update)
    app.router.add_delete(PATH + "/{id}", delete)
    app.router.add_post(PATH + "/{id}/items", add_items)
    app.router.add_get(PATH + "/{id}/items", list_items, allow_head=False)
    app.router.add_get(PATH + "/{id}/items/{item_id}", retrieve_item, allow_head=False)
    app.router.add_delete(PATH + "/{id}/items/{item_id}", delete_item)
