"""The OpenAI-compatible API, ``/v1`` (ChatGPT-to-API, and what the official SDKs speak).

- ``POST /v1/chat/completions`` and ``POST /v1/completions``: the request goes to the
  upstream as sent, unknown fields included; only ``model`` is mapped (``[models] aliases``;
  left out, it is ``[models] turbo`` for chat and ``[models] gpt3`` for completions). The
  answer is the upstream's: its JSON, or its stream chunks re-encoded one ``data:`` line each.
- ``GET /v1/models`` (and ``/v1/models/{id}``): the configured models and aliases.
- Auth: ``Authorization: Bearer <client key>`` (``dialects.ClientKeyGuard``). Errors:
  OpenAI's error object (``openai_errors``). Model calls count against the shared rate limit
  and use the shared key pool, with the router's failover before the first chunk.
- A stream that fails after its first chunk ends with ``data: {"error": {...}}`` (no
  ``[DONE]``), which the SDKs raise as ``APIError``.
- Any other path or method under ``/v1`` (``/v1/embeddings``, a doubled ``/v1/v1/...``) is
  OpenAI's 404 ``invalid_request_error`` naming the method, the path and what there is.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.api.dialects import json_response, resolve_model
from alice_py.api.openai_errors import OpenAIBadRequest, UnknownEndpoint, error_object
from alice_py.config import ModelsConfig
from alice_py.engine.allowed import visible_models
from alice_py.errors import ModelNotFound
from alice_py.upstream.types import Endpoint, UpstreamRequest
from alice_py.web.body import read_body
from alice_py.web.ratelimit import admission
from alice_py.web.sse import Ending, write_stream

log = logging.getLogger(__name__)

PREFIX = "/v1"
DONE = b"data: [DONE]\n\n"
OWNER = "alice-py"

Batches = AsyncGenerator[list[dict[str, Any]], None]


def sse_chunk(value: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(value) + b"\n\n"


async def read_request(request: web.Request) -> dict[str, Any]:
    raw = await read_body(request)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise OpenAIBadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(body, dict):
        raise OpenAIBadRequest("The request body must be a JSON object.")
    return body


def upstream_request(body: dict[str, Any], endpoint: Endpoint, models: ModelsConfig) -> UpstreamRequest:
    """The body to send upstream: the client's, with the model mapped and ``stream`` left to the call."""
    model = body.get("model")
    if model is None:
        model = models.turbo if endpoint == "chat" else models.gpt3
    if not isinstance(model, str) or not model:
        raise OpenAIBadRequest("'model' must be a non-empty string.", param="model")
    if endpoint == "chat" and not (isinstance(body.get("messages"), list) and body["messages"]):
        raise OpenAIBadRequest(
            "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise OpenAIBadRequest("'stream' must be true or false.", param="stream")
    forwarded = {name: value for name, value in body.items() if name != "stream"}
    forwarded["model"] = resolve_model(models, model)
    return UpstreamRequest(endpoint=endpoint, body=forwarded)


def _sse_batch(batch: list[dict[str, Any]]) -> bytes:
    return b"".join([sse_chunk(chunk) for chunk in batch])


OPENAI_ENDING = Ending(done=lambda: DONE, failed=lambda exc: sse_chunk(error_object(exc)))
"""``[DONE]``, or the error chunk of a failed stream (no ``[DONE]``): the SDKs raise ``APIError``."""


async def stream_chunks(request: web.Request, batches: Batches) -> web.StreamResponse:
    """The upstream's chunks as SSE, those that arrived together in one write (``write_stream``'s
    rules: a failure before the first one is an ordinary HTTP error)."""

    async def next_chunk() -> bytes | None:
        batch = await anext(batches, None)
        return None if batch is None else _sse_batch(batch)

    return await write_stream(request, next_chunk, batches.aclose, OPENAI_ENDING)


async def _model_call(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    body = await read_request(request)
    upstream = upstream_request(body, endpoint, request.app[appkeys.CONFIG].models)
    await admission(request)()  # counted once the request is known to be good
    router = request.app[appkeys.ROUTER]
    if body.get("stream"):
        return await stream_chunks(request, router.stream(upstream))
    return json_response(await router.call(upstream))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _model_call(request, "chat")


async def completions(request: web.Request) -> web.StreamResponse:
    return await _model_call(request, "completion")


def model_ids(models: ModelsConfig) -> list[str]:
    """The chat models first, then the completion model, then the aliases, then the allow-list's
    plain names; each once, and only those ``[models] allowed`` lets clients use."""
    return visible_models(models, [models.turbo, models.gpt4, models.gpt3, *models.aliases])


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": OWNER}


async def list_models(request: web.Request) -> web.Response:
    ids = model_ids(request.app[appkeys.CONFIG].models)
    return json_response({"object": "list", "data": [model_object(model_id) for model_id in ids]})


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model"]
    if model_id not in model_ids(request.app[appkeys.CONFIG].models):
        raise ModelNotFound(model_id)
    return json_response(model_object(model_id))


def endpoints(app: web.Application) -> list[str]:
    """``METHOD /v1/...`` of every route under ``/v1`` but the catch-all, in the order added."""
    found: list[str] = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method != "*" and (path == PREFIX or path.startswith(PREFIX + "/")):
            found.append(f"{route.method} {path}")
    return found


async def unknown_endpoint(request: web.Request) -> web.StreamResponse:
    """Any other path or method under ``/v1``: OpenAI's 404, naming what there is."""
    raise UnknownEndpoint(request.method, request.path, endpoints(request.app))


def add_routes(app: web.Application) -> None:
    """The routes, client-key auth on ``/v1``, OpenAI-shaped errors (an unknown endpoint too)."""
    app.router.add_post(f"{PREFIX}/chat/completions", chat_completions)
    app.router.add_post(f"{PREFIX}/completions", completions)
    app.router.add_get(f"{PREFIX}/models", list_models, allow_head=False)
    app.router.add_get(f"{PREFIX}/models/{{model:.+}}", get_model, allow_head=False)
    # aiohttp tries a path's own routes before its prefixes' (``/v1/x/y``, ``/v1/x``, then
    # ``/v1``), so this catch-all gets only what no other /v1 route takes, whenever added.
    app.router.add_route("*", PREFIX, unknown_endpoint)
    app.router.add_route("*", f"{PREFIX}/{{tail:.*}}", unknown_endpoint)
