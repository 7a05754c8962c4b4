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


def _upstream(error: UpstreamError) -> Classified:
    status = error.upstream_status
    if isinstance(error, InvalidKeyError | QuotaExceededError):
        return 502, SERVER_ERROR, KEY_REFUSED
    if isinstance(error, UpstreamRateLimitError):
        return 429, error.type or "requests", error.code or "rate_limit_exceeded"
    if isinstance(error, UpstreamServerError):
        return status if status and status >= 500 else 502, error.type or SERVER_ERROR, error.code
    if isinstance(error, UpstreamRequestError):
        return status if status and 400 <= status < 500 else 400, error.type or INVALID_REQUEST, error.code
    if isinstance(error, UpstreamTimeoutError):
        return 504, SERVER_ERROR, "timeout"
    if isinstance(error, NoAvailableKeysError):
        return 503, SERVER_ERROR, "no_available_keys"
    return 502, error.type or SERVER_ERROR, error.code


def classify(error: AliceError) -> Classified:
    if isinstance(error, UpstreamError):
        return _upstream(error)
    if isinstance(error, OpenAIBadRequest):
        return 400, INVALID_REQUEST, error.code
    if isinstance(error, AuthFailed):
        return 401, INVALID_REQUEST, "invalid_api_key"
    if isinstance(error, RateLimited):
        return 429, "requests", "rate_limit_exceeded"
    if isinstance(error, ModelNotFound):
        return 404, INVALID_REQUEST, "model_not_found"
    if isinstance(error, PayloadTooLarge | BadRequest | NotFound | ConversationBusy):
        return error.status, INVALID_REQUEST, None
    return error.status, SERVER_ERROR, None


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
