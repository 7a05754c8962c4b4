"""One log line per failure, with repeats folded, so that a dead upstream cannot flood the log.

Every failure a client meets is written here (logger ``alice_py.failures``): each failed
upstream attempt, retried or not (the router), a client that went away before its answer
was complete, and the service's own failures (the error middleware, the stream writers).
A line names the route, the request id, the upstream (its ``[[upstreams]]`` name) and key
(masked) that were used, the upstream's HTTP status and the time since the request arrived,
then the full text the client was not shown::

    the model API failed (HTTP 500) [POST /v1/chat/completions request=3f9a1c-1 upstream=openai
    key=sk-…1234 status=500 after=12ms]: Traceback (most recent call last):\\n  File "/srv/app.py" …

Repeats are folded. Failures that differ only in request id, duration and time (and in the
numbers of their text: "try again in 7.2s") are one kind: the first is written at once;
the next ones are counted, and the count is written once ``interval`` seconds have passed
since the kind's last line (checked at each failure and by a timer), and when the service
stops::

    repeated 29 more times in 14.2s (requests 3f9a1c-2 to 3f9a1c-1f): the model API failed …

A failure of another kind is written at once. A kind not seen for ``interval`` seconds is
forgotten, so its next failure is written in full again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from alice_py.errors import AliceError
from alice_py.request_ids import RequestInfo, current
from alice_py.tasks import running
from alice_py.upstream.errors import UpstreamError, UpstreamRequestError
from alice_py.upstream.keypool import NO_KEY_LABEL, mask_key

LOGGER = "alice_py.failures"
INTERVAL = 60.0
"""Seconds between two lines about the same kind of failure."""
MAX_KINDS = 64
"""Kinds of failure followed at once; the oldest is written out and forgotten beyond that."""
MAX_DETAIL = 8000
"""Characters of an upstream's text kept in a line (a traceback fits)."""

_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?")
# Control characters (a traceback's line breaks, or a forged log line) are escaped: one failure, one line.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 127)} | {10: "\\n", 13: "\\r", 9: "\\t"}

CLIENT_GONE = "the client went away before the answer was complete; nothing was saved"
CANCELLED = "the request was cancelled (the service is stopping); nothing was saved"


def one_line(text: str) -> str:
    if len(text) > MAX_DETAIL:
        text = f"{text[:MAX_DETAIL]}… ({len(text) - MAX_DETAIL} more characters)"
    return text.translate(_ESCAPES)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 10 else f"{seconds:.1f}s"


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure as its line names it. ``summary`` is what the client was told (without
    the request id), ``detail`` what it was not; ``key`` is already masked."""

    summary: str
    detail: str = ""
    route: str = "-"
    request_id: str = "-"
    key: str = "-"
    upstream_status: int | None = None
    duration: float | None = None
    level: int = logging.WARNING
    retry_key: str | None = None
    upstream: str = "-"
    """The name of the upstream the key belongs to."""
    retry_upstream: str | None = None

    def kind(self) -> tuple[object, ...]:
        """What makes two failures the same kind (request id, duration and numbers aside)."""
        detail = _NUMBERS.sub("#", self.detail)
        retried = self.retry_key is not None
        where = (self.route, self.upstream, self.key, self.upstream_status)
        return (self.summary, detail, *where, self.level, retried)

    def where(self) -> str:
        status = self.upstream_status if self.upstream_status is not None else "-"
        return f"{self.route} upstream={self.upstream} key={self.key} status={status}"

    def line(self) -> str:
        after = _duration(self.duration) if self.duration is not None else "-"
        where = self.where().replace(" upstream=", f" request={self.request_id} upstream=", 1)
        text = f"{one_line(self.summary)} [{where} after={after}]"
        if self.retry_key is not None:
            on = f" on {self.retry_upstream}" if self.retry_upstream not in (None, self.upstream) else ""
            text += f"; retrying{on} with key {self.retry_key}"
        if self.detail and self.detail != self.summary:
            text += f": {one_line(self.detail)}"
        return text


class _Fold:
    """The repeats of one kind since its last line."""

    __slots__ = ("failure", "first_id", "last_id", "last_seen", "pending", "since", "written_at")

    def __init__(self, failure: Failure, now: float) -> None:
        self.failure = failure
        self.written_at = self.last_seen = self.since = now
        self.pending = 0
        self.first_id = self.last_id = failure.request_id

    def repeat(self, failure: Failure, now: float) -> None:
        if not self.pending:
            self.first_id, self.since = failure.request_id, now
        self.pending += 1
        self.last_id, self.last_seen = failure.request_id, now


class FailureLog:
    """Writes failures to ``logger``, folding repeats (see the module's doc). Synchronous
    and never awaiting, so on one event loop it needs no lock."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = MAX_KINDS,
    ) -> None:
        self.logger = logger or logging.getLogger(LOGGER)
        self.interval = interval
        self._clock = clock
        self._max_kinds = max_kinds
        self._folds: OrderedDict[tuple[object, ...], _Fold] = OrderedDict()

    def record(self, failure: Failure) -> None:
        now = self._clock()
        self.flush(now)
        kind = failure.kind()
        fold = self._folds.get(kind)
        if fold is None:
            if len(self._folds) >= self._max_kinds:
                self._write_count(self._folds.popitem(last=False)[1], now)
            self._folds[kind] = _Fold(failure, now)
            self.logger.log(failure.level, "%s", failure.line())
            return
        self._folds.move_to_end(kind)
        fold.repeat(failure, now)
        if now - fold.written_at >= self.interval:
            self._write_count(fold, now)

    def flush(self, now: float | None = None, *, everything: bool = False) -> None:
        """Write the counts that are due (all of them with ``everything``); forget kinds
        not seen for ``interval`` seconds."""
        now = self._clock() if now is None else now
        for kind, fold in list(self._folds.items()):
            if fold.pending and (everything or now - fold.written_at >= self.interval):
                self._write_count(fold, now)
            if not fold.pending and now - fold.last_seen >= self.interval:
                del self._folds[kind]

    def _write_count(self, fold: _Fold, now: float) -> None:
        if not fold.pending:
            return
        failure = fold.failure
        if fold.pending == 1:
            times = f"once more (request {fold.first_id})"
        else:
            span = _duration(fold.last_seen - fold.since)
            times = f"{fold.pending} more times in {span} (requests {fold.first_id} to {fold.last_id})"
        summary = one_line(failure.summary)
        self.logger.log(failure.level, "repeated %s: %s [%s]", times, summary, failure.where())
        fold.pending = 0
        fold.written_at = now

    # ---- the failures the service meets ----------------------------------------------------

    def upstream(
        self,
        error: UpstreamError,
        key: str | None,
        retry_key: str | None = None,
        *,
        upstream: str = "-",
        retry_upstream: str | None = None,
    ) -> None:
        """A failed upstream attempt with ``key`` of ``upstream`` (None: no key to try), retried
        with ``retry_key`` of ``retry_upstream``."""
        route, request_id, duration = _request_fields(current())
        level = logging.INFO if isinstance(error, UpstreamRequestError) else logging.WARNING
        self.record(
            Failure(
                summary=error.message,
                detail=error.detail,
                route=route,
                request_id=request_id,
                key=_masked(key),
                upstream_status=error.upstream_status,
                duration=duration,
                level=level,
                retry_key=_masked(retry_key) if retry_key is not None else None,
                upstream=upstream,
                retry_upstream=retry_upstream,
            )
        )

    def service_error(self, error: AliceError) -> None:
        """A failure of the service's own that a client was told about (``AliceError`` 5xx).
        Upstream errors are not written again (the router wrote each attempt), nor 4xx
        answers to bad requests."""
        if isinstance(error, UpstreamError) or error.status < 500:
            return
        route, request_id, duration = _request_fields(current())
        self.record(Failure(error.message, route=route, request_id=request_id, duration=duration))

    def client_gone(self, transport_closed: bool = True) -> None:
        """The client left (or the request was cancelled at shutdown) before its answer
        was complete; written once per request."""
        info = current()
        if info is not None:
            if info.client_gone:
                return
            info.client_gone = True
        route, request_id, duration = _request_fields(info)
        self.record(
            Failure(
                summary=CLIENT_GONE if transport_closed else CANCELLED,
                route=route,
                request_id=request_id,
                key=_masked(info.key) if info is not None else "-",
                duration=duration,
                level=logging.INFO,
                upstream=info.upstream or "-" if info is not None else "-",
            )
        )


def _masked(key: str | None) -> str:
    """A key as every line shows it: masked, ``(no key)`` for a keyless upstream, ``-`` for none."""
    if key is None:
        return "-"
    return mask_key(key) if key else NO_KEY_LABEL


def _request_fields(info: RequestInfo | None) -> tuple[str, str, float | None]:
    """(route, request id, seconds since it arrived) of the request being handled."""
    if info is None:
        return "-", "-", None
    return info.route, info.id, info.elapsed()


@contextlib.asynccontextmanager
async def flushing(failures: FailureLog) -> AsyncIterator[None]:
    """While the app runs (a cleanup context), counts are written when due even if no
    failure follows; at cleanup every count left is written."""

    async def tick() -> None:
        while True:
            await asyncio.sleep(failures.interval / 2)
            failures.flush()

    try:
        async with running(tick(), "failure log"):
            yield
    finally:
        failures.flush(everything=True)
