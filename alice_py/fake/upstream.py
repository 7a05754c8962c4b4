"""A fake OpenAI-compatible server: a real aiohttp app, for ``--demo`` and for the tests.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions`` (streaming and not),
``GET /v1/models``. Every request needs ``Authorization: Bearer <key>``; any key is
accepted unless it holds a trigger word (``bad``, ``noquota``, ``ratelimit``,
``error5xx``, ``streamreset``, ``idlereset``, see ``state.KEY_TRIGGERS``). The answers are
described in ``answers``; the connection resets llama-cpp-python's server does, in ``resets``.

Unlike OpenAI, which shows a key half-hidden, the invalid-key message here repeats
the whole key: it is how the tests check that the service masks it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from alice_py.fake.answers import (
    Shape,
    chat_answer,
    completion_answer,
    error_body,
    split_answer,
    tool_call,
    usage,
)
from alice_py.fake.resets import ConnectionResets, reset
from alice_py.fake.state import CONNECTION_FAILURES, FailureKind, FakeState, RecordedRequest

STATE = web.AppKey("fake_state", FakeState)
RESETS = web.AppKey("fake_resets", ConnectionResets)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY = 32 * 1024 * 1024

CONTEXT_OVERFLOW: dict[str, Any] = {
    "code": 400,
    "message": "the request exceeds the available context size, try increasing it",
    "type": "exceed_context_size_error",
    "n_prompt_tokens": 5000,
    "n_ctx": 4096,
}
"""llama.cpp's ``llama-server`` error object for a prompt longer than its context."""

TRACEBACK = """Traceback (most recent call last):
  File "/srv/llama/venv/lib/python3.11/site-packages/llama_cpp/server/app.py", line 412, in create
    return await run_in_threadpool(llama.create_chat_completion, **kwargs)
  File "/srv/llama/venv/lib/python3.11/site-packages/llama_cpp/llama.py", line 1640, in _create_completion
    raise RuntimeError("llama_decode returned -3 (model server 10.20.30.40:8000)")
RuntimeError: llama_decode returned -3 (model server 10.20.30.40:8000)"""
"""What llama-cpp-python's server puts in a 500: a traceback with file paths and an address."""


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    """An error answer with an ``x-request-id``, as OpenAI's (the admin page shows it with the error)."""
    headers = {"x-request-id": f"req_{secrets.token_hex(8)}", **(headers or {})}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _failure_response(kind: FailureKind, key: str, state: FakeState) -> web.Response:
    if kind == "invalid_key":
        message = (
            f"Incorrect API key provided: {key}. "
            "You can find your API key at https://platform.openai.com/account/api-keys."
        )
        return _error(401, error_body(message, "invalid_request_error", "invalid_api_key"))
    if kind == "quota":
        message = "You exceeded your current quota, please check your plan and billing details."
        return _error(429, error_body(message, "insufficient_quota", "insufficient_quota"))
    if kind == "rate_limit":
        message = f"Rate limit reached for requests. Please try again in {state.retry_after:g}s."
        body = error_body(message, "requests", "rate_limit_exceeded")
        return _error(429, body, {"Retry-After": f"{state.retry_after:g}"})
    if kind == "server_error":
        message = "The server had an error while processing your request. Sorry about that!"
        return _error(500, error_body(message, "server_error"))
    if kind == "context_overflow":
        return _error(400, {"error": CONTEXT_OVERFLOW})
    if kind == "traceback":
        return _error(500, error_body(TRACEBACK, "internal_server_error"))
    if kind == "plain_text_error":
        return web.Response(status=500, text=TRACEBACK, content_type="text/plain")
    message = "The demo upstream was told to reject this request."
    return _error(400, error_body(message, "invalid_request_error", "invalid_value", "temperature"))


def _too_long(window: int, tokens: int, chat: bool) -> web.Response:
    """OpenAI's refusal of a prompt longer than the model's window."""
    sent = "messages" if chat else "prompt"
    message = (
        f"This model's maximum context length is {window} tokens. However, your {sent} resulted in "
        f"{tokens} tokens. Please reduce the length of the {sent}."
    )
    return _error(400, error_body(message, "invalid_request_error", "context_length_exceeded", sent))


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _refusal(
    state: FakeState, key: str | None, kind: FailureKind | None, body: Any, chat: bool
) -> web.Response | None:
    """The error answer this request gets, if any, checked in the order OpenAI does."""
    if key is None:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        return _error(401, error_body(message, "invalid_request_error"))
    if kind is not None and kind not in CONNECTION_FAILURES:
        return _failure_response(kind, key, state)
    if not isinstance(body, dict):
        message = "We could not parse the JSON body of your request. Please send a JSON object."
        return _error(400, error_body(message, "invalid_request_error"))
    if not body.get("model"):
        return _error(400, error_body("you must provide a model parameter", "invalid_request_error"))
    if chat and not (isinstance(body.get("messages"), list) and body["messages"]):
        message = "Missing required parameter: 'messages'."
        return _error(
            400, error_body(message, "invalid_request_error", "missing_required_parameter", "messages")
        )
    return None


async def _model_call(request: web.Request, chat: bool) -> web.StreamResponse:
    state = request.app[STATE]
    key = _bearer(request)
    body = await _read_json(request)
    state.record(RecordedRequest(request.method, request.path, key, body))
    kind = state.take_failure(key) if key is not None else None
    refusal = _refusal(state, key, kind, body, chat)
    if refusal is not None:
        return refusal
    if state.delay:
        await asyncio.sleep(state.delay)
    prefix = "chatcmpl-demo-" if chat else "cmpl-demo-"
    shape = Shape(chat, f"{prefix}{state.next_id()}", int(time.time()), str(body["model"]))
    answer = chat_answer(body) if chat else completion_answer(body)
    call = tool_call(body) if chat else None
    counts = usage(body, answer, state.tokens_per_word)
    if state.context_window is not None and counts["prompt_tokens"] > state.context_window:
        return _too_long(state.context_window, counts["prompt_tokens"], chat)
    finish = not (state.omit_finish_reason or state.interrupt_stream_after is not None)
    if body.get("stream"):
        options = body.get("stream_options")
        with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        finish = finish and kind != "failed_stream_reset"
        pieces = split_answer(answer, state.words_per_chunk)
        chunks = list(shape.chunks(pieces, counts, with_usage, finish, call))
        return await _stream(request, state, chunks, kind)
    if kind == "failed_stream_reset":
        message = "The demo upstream failed like llama-cpp-python's server: see its log."
        response = _error(500, error_body(message, "server_error"))
    else:
        response = web.Response(
            body=orjson.dumps(shape.response(answer, counts, finish, call)), content_type="application/json"
        )
    if kind in CONNECTION_FAILURES:
        await response.prepare(request)
        await response.write_eof()
        request.app[RESETS].mark(request, state.reset_delay)
    return response


def _frames(
    state: FakeState, chunks: list[dict[str, Any]], kind: FailureKind | None
) -> tuple[list[bytes], bool]:
    """The SSE frames to send, and whether to cut the connection after them."""
    frames = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    if kind == "failed_stream_reset":
        return frames[: state.failed_stream_chunks], False
    if state.interrupt_stream_after is not None:
        return [*frames[: state.interrupt_stream_after], b"data: [DONE]\n\n"], False
    if state.break_stream_after is not None:
        return frames[: state.break_stream_after], True
    if state.stream_error_after is not None:
        error = orjson.dumps(
            error_body("The demo upstream failed in the middle of the answer.", "server_error")
        )
        frame = (
            b"event: error\ndata: " + error + b"\n\n"
            if state.stream_error_as_event
            else b"data: " + error + b"\n\n"
        )
        return [*frames[: state.stream_error_after], frame], False
    if not state.omit_done:
        frames.append(b"data: [DONE]\n\n")
    return frames, False


async def _stream(
    request: web.Request, state: FakeState, chunks: list[dict[str, Any]], kind: FailureKind | None
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    frames, cut = _frames(state, chunks, kind)
    try:
        if state.chunk_delay:
            for index, frame in enumerate(frames):
                if index:
                    await asyncio.sleep(state.chunk_delay)
                await response.write(frame)
        else:
            await response.write(b"".join(frames))
    except ConnectionError:
        state.disconnects += 1
        return response
    except asyncio.CancelledError:
        # A server run with handler_cancellation (aiohttp's TestServer) cancels the
        # handler when the client goes away, instead of failing its next write.
        state.disconnects += 1
        raise
    if cut and request.transport is not None:
        # Closing the socket before the last (empty) chunk of the chunked body is
        # what a client sees when a stream breaks off.
        request.transport.close()
        return response
    await response.write_eof()
    if kind in CONNECTION_FAILURES:
        request.app[RESETS].mark(request, state.reset_delay)
    return response


@web.middleware
async def reset_marked(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request on a connection marked for a reset is recorded, then met with the reset."""
    transport = request.app[RESETS].take(request)
    if transport is None:
        return await handler(request)
    state = request.app[STATE]
    state.record(RecordedRequest(request.method, request.path, _bearer(request), await _read_json(request)))
    state.resets += 1
    reset(transport)
    return web.Response(status=500)  # never sent: the connection is gone


async def _cancel_resets(app: web.Application) -> None:
    app[RESETS].close()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _model_call(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _model_call(request, chat=False)


async def models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    key = _bearer(request)
    state.record(RecordedRequest(request.method, request.path, key, None))
    if key is None:
        return _error(401, error_body("You didn't provide an API key.", "invalid_request_error"))
    kind = state.key_failure(key)
    if kind is not None and kind not in CONNECTION_FAILURES:
        return _failure_response(kind, key, state)
    data: list[dict[str, Any]] = [
        {"id": name, "object": "model", "created": 0, "owned_by": "alice-py-demo"} for name in state.models
    ]
    for entry in data:
        if entry["id"] in state.model_windows:
            entry["max_model_len"] = state.model_windows[entry["id"]]  # vLLM's field
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")


def create_fake_upstream(state: FakeState | None = None) -> web.Application:
    """The fake OpenAI API as an app; its routes are under ``/v1``."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[reset_marked])
    app[STATE] = state if state is not None else FakeState()
    app[RESETS] = ConnectionResets()
    app.on_cleanup.append(_cancel_resets)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    return app


@dataclass(slots=True)
class RunningFake:
    """A fake upstream listening on a socket. ``url`` is the base URL, ending in ``/v1``."""

    url: str
    state: FakeState
    runner: web.AppRunner

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_fake_upstream(
    host: str = "127.0.0.1", port: int = 0, state: FakeState | None = None
) -> RunningFake:
    """Start the fake on ``host:port`` (port 0: any free port) in the running loop."""
    app = create_fake_upstream(state)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningFake(url=f"http://{url_host}:{bound_port}/v1", state=app[STATE], runner=runner)
