"""Errors in OpenAI's shape, with the status the official SDKs map to their exception classes.

``{"error": {"message", "type", "param", "code"}}``: 400 → ``BadRequestError``, 401 →
``AuthenticationError``, 404 → ``NotFoundError``, 429 → ``RateLimitError``, 5xx →
``InternalServerError``. An upstream 4xx passes through as the upstream sent it: its
status and its whole error object (``param``, ``code`` of whatever JSON type, extra fields
such as llama.cpp's ``n_ctx``; texts scrubbed of keys). The upstream refusing the
service's own key is a 502, not a 401: the client's key was fine. An upstream 5xx or a
connection failure gets a short message naming the request id (the rest is in the log).
Our own failures get OpenAI's usual values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from alice_py.api.dialects import json_response
from alice_py.errors import (
    AliceError,
    AuthFailed,
    BadRequest,
    ConversationBusy,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    by_class,
)
from alice_py.upstream.errors import (
    InvalidKeyError,
    NoAvailableKeysError,
    QuotaExceededError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRequestError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from alice_py.web.errors import client_message, retry_after_seconds

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"
KEY_REFUSED = "upstream_key_refused"


class OpenAIBadRequest(BadRequest):
    """A malformed request, naming the parameter at fault as OpenAI does."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class OpenAINotFound(NotFound):
    """An unknown (or another client key's) id in a URL path."""


class ConversationInUse(ConversationBusy):
    """A response is already being made on this conversation (409: the SDK's ``ConflictError``)."""


class IdempotencyKeyInUse(ConversationBusy):
    """The first request with this ``Idempotency-Key`` is still being answered (409)."""


class IdempotencyKeyReused(AliceError):
    """The ``Idempotency-Key`` was already used with another request body (422)."""

    status = 422


class UnknownEndpoint(NotFound):
    """A path (or method) under ``/v1`` that this service does not serve."""

    def __init__(self, method: str, path: str, endpoints: list[str]) -> None:
        message = f"Invalid URL ({method} {path}): this service has no such endpoint."
        if path.startswith("/v1/v1/") or path == "/v1/v1":
            message += " The path has /v1 twice: the client's base URL should end in /v1 once."
        if endpoints:
            message += f" Its endpoints: {', '.join(endpoints)}."
        super().__init__(message)


Classified = tuple[int, str, str | None]
"""(status, type, code)"""


def _server_error(error: UpstreamServerError) -> Classified:
    status = error.upstream_status
    return status if status and status >= 500 else 502, error.type or SERVER_ERROR, error.code


def _request_error(error: UpstreamRequestError) -> Classified:
    status = error.upstream_status
    return status if status and 400 <= status < 500 else 400, error.type or INVALID_REQUEST, error.code


def _as_sent(error: AliceError) -> Classified:
    return error.status, INVALID_REQUEST, None


CLASSES: dict[type[AliceError], Callable[[Any], Classified]] = {
    InvalidKeyError: lambda _: (502, SERVER_ERROR, KEY_REFUSED),
    QuotaExceededError: lambda _: (502, SERVER_ERROR, KEY_REFUSED),
    UpstreamRateLimitError: lambda e: (429, e.type or "requests", e.code or "rate_limit_exceeded"),
    UpstreamServerError: _server_error,
    UpstreamRequestError: _request_error,
    UpstreamTimeoutError: lambda _: (504, SERVER_ERROR, "timeout"),
    NoAvailableKeysError: lambda _: (503, SERVER_ERROR, "no_available_keys"),
    UpstreamError: lambda e: (502, e.type or SERVER_ERROR, e.code),
    OpenAIBadRequest: lambda e: (400, INVALID_REQUEST, e.code),
    AuthFailed: lambda _: (401, INVALID_REQUEST, "invalid_api_key"),
    RateLimited: lambda _: (429, "requests", "rate_limit_exceeded"),
    ModelNotFound: lambda _: (404, INVALID_REQUEST, "model_not_found"),
    PayloadTooLarge: _as_sent,
    BadRequest: _as_sent,
    NotFound: _as_sent,
    ConversationInUse: lambda _: (409, INVALID_REQUEST, "conversation_busy"),
    IdempotencyKeyInUse: lambda _: (409, INVALID_REQUEST, "idempotency_key_in_use"),
    IdempotencyKeyReused: lambda _: (422, INVALID_REQUEST, "idempotency_key_reused"),
    ConversationBusy: _as_sent,
    AliceError: lambda e: (e.status, SERVER_ERROR, None),
}
"""(status, type, code) by error class; an error takes the entry of the nearest class along
its MRO, so a subclass is classified as its parent until it needs an entry of its own."""


def classify(error: AliceError) -> Classified:
    return by_class(CLASSES, error)(error)


def error_object(error: AliceError) -> dict[str, Any]:
    """The ``{"error": {...}}`` body for ``error`` (also sent as a chunk when a stream fails)."""
    _, type_, code = classify(error)
    message = client_message(error)
    upstream = error.error_object if isinstance(error, UpstreamError) else None
    if upstream is not None:
        passed = {"message": message, "type": type_, "param": None, "code": code, **upstream}
        if not isinstance(passed["message"], str) or not passed["message"]:
            passed["message"] = message
        return {"error": passed}
    param = error.param if isinstance(error, OpenAIBadRequest) else None
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def openai_error(request: web.Request, error: AliceError) -> web.Response:
    """The error formatter of ``/v1``."""
    status = classify(error)[0]
    response = json_response(error_object(error), status)
    if isinstance(error, UpstreamRateLimitError) and error.retry_after is not None:
        response.headers["Retry-After"] = retry_after_seconds(error.retry_after)
    return response
