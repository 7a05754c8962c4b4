"""Upstream failures, told apart so that the key pool and the dialects can act on them.

Like openai-python's ``_exceptions``: one function (``client.error_from_response``)
maps an HTTP answer to one of these classes. The upstream's own message is kept
(it is what a user needs to read); keys are never part of it.
"""

from __future__ import annotations

from alice_py.errors import AliceError


class UpstreamError(AliceError):
    """The model API failed. ``upstream_status`` is the status it answered, if any;
    ``code`` and ``type`` come from its OpenAI error object when it sent one."""

    status = 502

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        code: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        self.code = code
        self.type = type


class InvalidKeyError(UpstreamError):
    """401: the key is wrong or revoked. The key pool disables it."""


class QuotaExceededError(UpstreamError):
    """``insufficient_quota``: the key's account has no credit. The key pool disables it."""


class UpstreamRateLimitError(UpstreamError):
    """429 without ``insufficient_quota``. The key pool cools the key down."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        upstream_status: int | None = 429,
        code: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message, upstream_status=upstream_status, code=code, type=type)
        self.retry_after = retry_after


class UpstreamServerError(UpstreamError):
    """5xx from the model API."""


class UpstreamRequestError(UpstreamError):
    """Any other 4xx (bad parameters, unknown model): not the key's fault, not retried."""


class UpstreamTimeoutError(UpstreamError):
    status = 504


class UpstreamConnectionError(UpstreamError):
    """Could not connect, or the connection (or a stream) broke off."""


class IncompleteStreamError(UpstreamConnectionError):
    """A stream that ended (even with ``[DONE]``) although its first choice never had a
    ``finish_reason``: the model was interrupted (llama-cpp-python's ``interrupt_requests``),
    so the answer is cut short. ``[upstream] require_finish_reason = false`` accepts such
    streams from a server that never sends one."""


class NoAvailableKeysError(UpstreamError):
    status = 503

    def __init__(self, message: str = "No available API keys") -> None:
        super().__init__(message)
