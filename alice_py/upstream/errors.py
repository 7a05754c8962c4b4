"""Upstream failures, told apart so that the key pool and the dialects can act on them.

Like openai-python's ``_exceptions``: one function (``client.error_from_response``)
maps an HTTP answer to one of these classes.

Each error has two texts. ``message`` is what the client is told; ``detail`` is what the
log keeps (the upstream's own text, keys masked). They differ where the upstream's text is
not the client's business: a 5xx body (llama-cpp-python sends Python tracebacks with file
paths), a connection error (it names the internal host and port), the upstream refusing
the service's own key. There the client gets a short message and the request id
(``details_in_log``), and the log line with that id has the rest. A 4xx about the request
itself (bad parameters, context too long) reaches the client as the upstream wrote it,
with its whole error object on ``/v1`` (``error_object``).
"""

from __future__ import annotations

from typing import Any

from alice_py.errors import AliceError

UNREACHABLE = "the model API is unreachable"
BROKE_OFF = "the connection to the model API broke off"
REPORTED_ERROR = "the model API reported an error"
KEY_INVALID = "the model API refused the service's API key (invalid or revoked)"
KEY_QUOTA = "the model API refused the service's API key (its quota is used up)"


def server_failed(status: int) -> str:
    return f"the model API failed (HTTP {status})"


class UpstreamError(AliceError):
    """The model API failed. ``upstream_status`` is the status it answered, if any;
    ``code`` (as text) and ``type`` come from its OpenAI error object when it sent one,
    ``error_object`` is that object itself (keys masked) when it may reach the client."""

    status = 502
    details_in_log = True

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        upstream_status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        error_object: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = detail or message
        self.upstream_status = upstream_status
        self.code = code
        self.type = type
        self.error_object = error_object
        self.upstream_request_id: str | None = None
        """The upstream's own request id (its ``x-request-id`` header), for the admin's last error."""


class InvalidKeyError(UpstreamError):
    """401: the key is wrong or revoked. The key pool disables it. Not the client's key:
    the client gets a 502 that says so."""


class QuotaExceededError(UpstreamError):
    """``insufficient_quota``: the key's account has no credit. The key pool disables it."""


class UpstreamRateLimitError(UpstreamError):
    """429 without ``insufficient_quota``. The key pool cools the key down."""

    details_in_log = False

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        detail: str | None = None,
        upstream_status: int | None = 429,
        code: str | None = None,
        type: str | None = None,
        error_object: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message,
            detail=detail,
            upstream_status=upstream_status,
            code=code,
            type=type,
            error_object=error_object,
        )
        self.retry_after = retry_after


class UpstreamServerError(UpstreamError):
    """5xx from the model API."""


class UpstreamRequestError(UpstreamError):
    """Any other 4xx (bad parameters, unknown model): not the key's fault, not retried."""

    details_in_log = False


class UpstreamTimeoutError(UpstreamError):
    status = 504


class UpstreamConnectionError(UpstreamError):
    """Could not connect, or the connection (or a stream) broke off."""


class IncompleteStreamError(UpstreamConnectionError):
    """A stream that ended (even with ``[DONE]``) although its first choice never had a
    ``finish_reason``: the model was interrupted (llama-cpp-python's ``interrupt_requests``),
    so the answer is cut short. ``[upstream] require_finish_reason = false`` accepts such
    streams from a server that never sends one."""


class KeysCoolingError(UpstreamRateLimitError):
    """Every key of every upstream serving the model is cooling, and the first one comes back
    later than ``[routing] wait_for_key``: 429 with ``Retry-After`` (when it does)."""

    status = 429
    compat_status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "Every API key is rate limited for now; retry later",
            retry_after=retry_after,
            upstream_status=None,
        )


class NoAvailableKeysError(UpstreamError):
    status = 503
    details_in_log = False  # the exact text is the Alice contract's

    def __init__(self, message: str = "No available API keys") -> None:
        super().__init__(message)
