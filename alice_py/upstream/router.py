"""The router: one upstream client and its key pool, with failover. Implements ``Upstream``.

Failover policy (like openai-python's retries, but across keys and without sleeping):

- A key that answers invalid-key or exhausted-quota is reported to the pool (which
  disables it when ``auto_remove`` is on) and the request is retried once on the next key.
- 429, 5xx and connection failures are retried once on another key too; the failed key
  cools down in the pool (for ``Retry-After`` when given) instead of making this request wait.
- Timeouts and other 4xx are not retried: a timeout already cost the user the full
  wait, and a bad request fails the same way on every key.
- A stream fails over only before its first chunk; after that, the client has started
  receiving the answer and errors propagate.

Every failed attempt, retried or not, is one line in the failure log (``failure_log``,
which folds repeats) with the key masked; a failure that is retried says with which key.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from alice_py.failure_log import FailureLog
from alice_py.request_ids import current
from alice_py.upstream.client import OpenAIClient, chunk_text, response_text
from alice_py.upstream.errors import (
    InvalidKeyError,
    NoAvailableKeysError,
    QuotaExceededError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
)
from alice_py.upstream.keypool import KeyPool
from alice_py.upstream.types import UpstreamRequest

T = TypeVar("T")
Chunks = AsyncGenerator[dict[str, Any], None]
Batches = AsyncGenerator[list[dict[str, Any]], None]

RETRIED = (
    InvalidKeyError,
    QuotaExceededError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamConnectionError,
)


class UpstreamRouter:
    """Requests to one OpenAI-compatible upstream through its key pool (``router.pool``)."""

    def __init__(self, client: OpenAIClient, pool: KeyPool, failures: FailureLog | None = None) -> None:
        self.client = client
        self.pool = pool
        self.failures = failures if failures is not None else FailureLog()

    def __repr__(self) -> str:
        return f"<UpstreamRouter {self.client.base_url} {self.pool!r}>"

    def _retry_key(self, key: str, error: UpstreamError) -> str | None:
        """The key to retry with after ``key`` failed with ``error``, or None: don't retry."""
        if not isinstance(error, RETRIED):
            return None
        try:
            return self.pool.acquire(exclude=(key,))
        except NoAvailableKeysError:
            return None

    def _acquire(self) -> str:
        try:
            key = self.pool.acquire()
        except NoAvailableKeysError as exc:
            self.failures.upstream(exc, None)
            raise
        self._using(key)
        return key

    @staticmethod
    def _using(key: str) -> None:
        """The request's key, for a failure logged later (the client leaving)."""
        info = current()
        if info is not None:
            info.key = key

    def _failed(self, key: str, error: UpstreamError) -> str | None:
        """Report ``key``'s failure to the pool and the log; the key to retry with, if any."""
        self.pool.report_failure(key, error)
        retry_key = self._retry_key(key, error)
        self.failures.upstream(error, key, retry_key)
        return retry_key

    async def _attempt(self, send: Callable[[str], Awaitable[T]]) -> tuple[str, T]:
        """``send(key)`` with a key from the pool, and once more with another key if it
        failed in a way another key may fix. Failures are reported to the pool and logged."""
        key = self._acquire()
        try:
            return key, await send(key)
        except UpstreamError as exc:
            retry_key = self._failed(key, exc)
            if retry_key is None:
                raise
        self._using(retry_key)
        try:
            return retry_key, await send(retry_key)
        except UpstreamError as exc:
            self.pool.report_failure(retry_key, exc)
            self.failures.upstream(exc, retry_key)
            raise

    async def call(self, request: UpstreamRequest) -> dict[str, Any]:
        """One non-streaming request; the upstream's JSON response."""
        key, response = await self._attempt(lambda key: self.client.call(key, request))
        self.pool.report_success(key)
        return response

    async def _open(self, key: str, request: UpstreamRequest) -> tuple[Batches, list[dict[str, Any]] | None]:
        """Start a stream and wait for its first chunks (None: it ended at once, with ``[DONE]``)."""
        batches = self.client.stream_batches(key, request)
        try:
            first = await anext(batches, None)
        except BaseException:
            await batches.aclose()
            raise
        return batches, first

    async def stream_batches(self, request: UpstreamRequest) -> Batches:
        """One streaming request; its SSE ``data:`` JSON objects until ``[DONE]``, in batches of
        those that arrived together. Closing this iterator (or cancelling its consumer) closes
        the upstream connection."""
        key, (batches, first) = await self._attempt(lambda key: self._open(key, request))
        try:
            if first is not None:
                yield first
                async for batch in batches:
                    yield batch
        except UpstreamError as exc:
            self.pool.report_failure(key, exc)
            self.failures.upstream(exc, key)
            raise
        finally:
            await batches.aclose()
        self.pool.report_success(key)

    async def stream(self, request: UpstreamRequest) -> Chunks:
        """One streaming request; each SSE ``data:`` JSON object until ``[DONE]``."""
        async with contextlib.aclosing(self.stream_batches(request)) as batches:
            async for batch in batches:
                for chunk in batch:
                    yield chunk

    async def text(self, request: UpstreamRequest) -> str:
        """One non-streaming request; the text of its first choice."""
        return response_text(request.endpoint, await self.call(request))

    async def piece_batches(self, request: UpstreamRequest) -> AsyncGenerator[list[str], None]:
        """One streaming request; the non-empty text deltas of its first choice, in batches of
        those that arrived together."""
        endpoint = request.endpoint
        async with contextlib.aclosing(self.stream_batches(request)) as batches:
            async for batch in batches:
                texts: list[str] = []
                for chunk in batch:
                    if text := chunk_text(endpoint, chunk):
                        texts.append(text)
                if texts:
                    yield texts

    async def pieces(self, request: UpstreamRequest) -> AsyncGenerator[str, None]:
        """One streaming request; the non-empty text deltas of its first choice."""
        async with contextlib.aclosing(self.piece_batches(request)) as batches:
            async for batch in batches:
                for text in batch:
                    yield text
