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

from alice_py.errors import by_class
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


RULES: dict[type[UpstreamError], tuple[Next, str]] = {
    # error class: what the router does next, the ``outcome`` label of the metrics
    InvalidKeyError: (Next.OTHER_KEY, "invalid_key"),
    QuotaExceededError: (Next.OTHER_KEY, "quota"),
    UpstreamRateLimitError: (Next.OTHER_KEY, "rate_limited"),
    UpstreamServerError: (Next.OTHER_UPSTREAM, "server_error"),
    UpstreamTimeoutError: (Next.OTHER_UPSTREAM, "timeout"),
    UpstreamConnectionError: (Next.OTHER_UPSTREAM, "connection"),
    UpstreamError: (Next.STOP, "bad_request"),
}
"""Looked up along the error's MRO (``errors.by_class``), as the dialects map their errors."""


def should_retry(error: UpstreamError) -> Next:
    return by_class(RULES, error)[0]


def outcome(error: UpstreamError) -> str:
    """The ``outcome`` label of ``alice_upstream_calls_total`` for a failed call."""
    return by_class(RULES, error)[1]
