"""What the router does after a failed attempt: the retry and failover rules, in one place
(as openai-python keeps its ``_should_retry``). What the failure does to the key is the key
pool's business (``KeyPool.report_failure``).

- The key was refused (invalid, no quota) or rate limited: another key may work, on the same
  upstream first (``OTHER_KEY``).
- The upstream failed (5xx, timeout, a connection refused or broken before the first byte):
  the next upstream serving the model, else another key of the same one (``OTHER_UPSTREAM``).
- The request itself was refused (a 4xx about its parameters, context length), or the upstream
  answered something that is not an OpenAI answer: every key would fail the same way (``STOP``).

Whatever the rule, a request makes at most ``[routing] max_attempts`` attempts (every try on
any key or upstream counts) and starts none after ``[routing] deadline``; a stream never fails
over once its first byte went to the client.
"""

from __future__ import annotations

import enum

from alice_py.upstream.errors import (
    InvalidKeyError,
    QuotaExceededError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamTimeoutError,
)


class Next(enum.Enum):
    STOP = "stop"
    OTHER_KEY = "other key"
    OTHER_UPSTREAM = "other upstream"


def should_retry(error: UpstreamError) -> Next:
    if isinstance(error, InvalidKeyError | QuotaExceededError | UpstreamRateLimitError):
        return Next.OTHER_KEY
    if isinstance(error, UpstreamServerError | UpstreamTimeoutError | UpstreamConnectionError):
        return Next.OTHER_UPSTREAM
    return Next.STOP


def outcome(error: UpstreamError) -> str:
    """The ``outcome`` label of ``alice_upstream_calls_total`` for a failed call."""
    if isinstance(error, InvalidKeyError):
        return "invalid_key"
    if isinstance(error, QuotaExceededError):
        return "quota"
    if isinstance(error, UpstreamRateLimitError):
        return "rate_limited"
    if isinstance(error, UpstreamServerError):
        return "server_error"
    if isinstance(error, UpstreamTimeoutError):
        return "timeout"
    if isinstance(error, UpstreamConnectionError):
        return "connection"
    return "bad_request"
