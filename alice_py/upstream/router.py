"""The router: several upstreams, each a client and its key pool, with failover. Implements ``Upstream``.

Two doors: ``call(request)`` (the upstream's JSON answer) and ``stream(request)`` (its chunks, in
the batches they arrived in). Text and pieces are the caller's reading of these
(``upstream.text``).

A request goes to the upstreams that serve its model (``models``: names or patterns), lowest
``priority`` first; upstreams of equal priority share the requests by ``weight`` (smooth
weighted round robin). A request with an ``affinity`` (a conversation) keeps the key that
served it last while that key is usable.

After a failed attempt ``retry.should_retry`` says what comes next (another key, another
upstream, or nothing), within ``[routing] max_attempts`` and ``deadline``. When no key of any
upstream serving the model is ready, but one is cooling, the request waits for the first to come
back, up to ``[routing] wait_for_key`` seconds, else 429 with ``Retry-After``
(``KeysCoolingError``). A stream fails over only before its first chunk; a stream that breaks
after it ends in error and counts one failure for its key.

Every failed attempt, retried or not, is one line in the failure log (``failure_log``,
which folds repeats) with the key masked; a failure that is retried says with which key.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from alice_py.errors import ModelNotFound
from alice_py.failure_log import FailureLog
from alice_py.request_ids import current
from alice_py.upstream.client import OpenAIClient
from alice_py.upstream.errors import KeysCoolingError, NoAvailableKeysError, UpstreamError
from alice_py.upstream.keypool import KeyPool
from alice_py.upstream.retry import Next, outcome, should_retry
from alice_py.upstream.types import UpstreamRequest

T = TypeVar("T")
Batches = AsyncGenerator[list[dict[str, Any]], None]

STICKY_MAX = 100_000
"""Conversations whose key the router remembers (least recently used forgotten first)."""
ORDER_CACHE_MAX = 1024


class RouterMetrics(Protocol):
    """What the router reports to ``/metrics`` (``alice_py.metrics``)."""

    def upstream_call(self, upstream: str, key: str, outcome: str) -> None: ...

    def first_byte(self, seconds: float) -> None: ...

    def stream_opened(self) -> None: ...

    def stream_closed(self) -> None: ...


class Target:
    """One upstream: its name, client, key pool, and which requests it takes."""

    __slots__ = ("client", "current", "models", "name", "pool", "priority", "weight")

    def __init__(
        self,
        name: str,
        client: OpenAIClient,
        pool: KeyPool,
        *,
        models: Sequence[str] = ("*",),
        priority: int = 0,
        weight: int = 1,
    ) -> None:
        self.name = name
        self.client = client
        self.pool = pool
        self.models = tuple(models)
        self.priority = priority
        self.weight = weight
        self.current = 0
        """Smooth weighted round robin's running weight within its priority group."""

    def __repr__(self) -> str:
        return f"<Target {self.name} {self.client.base_url} {self.pool!r}>"

    def serves(self, model: str) -> bool:
        return any(pattern == "*" or fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


class UpstreamRouter:
    """Requests to the upstreams (``router.targets``) through their key pools."""

    def __init__(
        self,
        targets: Sequence[Target],
        failures: FailureLog | None = None,
        *,
        max_attempts: int = 3,
        deadline: float = 60.0,
        wait_for_key: float = 5.0,
        metrics: RouterMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not targets:
            raise ValueError("a router needs at least one upstream")
        self.targets = tuple(targets)
        self.failures = failures if failures is not None else FailureLog()
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.wait_for_key = wait_for_key
        self.metrics = metrics
        self._clock = clock
        self._groups: dict[str, list[list[Target]]] = {}
        self._sticky: OrderedDict[str, tuple[Target, str]] = OrderedDict()

    def __repr__(self) -> str:
        return f"<UpstreamRouter {', '.join(t.name for t in self.targets)}>"

    async def close(self) -> None:
        for target in self.targets:
            await target.client.close()

    # ---- choosing -------------------------------------------------------------------------------

    def _order(self, model: str) -> list[Target]:
        """The upstreams serving ``model``, in the order to try them for this request."""
        groups = self._groups.get(model)
        if groups is None:
            serving = [t for t in self.targets if t.serves(model)]
            if not serving:
                raise ModelNotFound(model)
            by_priority: dict[int, list[Target]] = {}
            for target in sorted(serving, key=lambda t: t.priority):
                by_priority.setdefault(target.priority, []).append(target)
            groups = list(by_priority.values())
            if len(self._groups) >= ORDER_CACHE_MAX:
                self._groups.clear()
            self._groups[model] = groups
        if len(groups) == 1 and len(groups[0]) == 1:
            return groups[0]
        order: list[Target] = []
        for group in groups:
            order.extend(_weighted(group) if len(group) > 1 else group)
        return order

    def _pick(
        self,
        targets: list[Target],
        tried: dict[Target, set[str]],
        avoid: set[Target],
        affinity: str | None,
    ) -> tuple[Target, str] | None:
        """The upstream and key for the next attempt, or None: no key is ready."""
        if affinity is not None:
            stuck = self._sticky.get(affinity)
            if stuck is not None:
                target, key = stuck
                usable = target in targets and target not in avoid and target.pool.ready(key)
                if usable and key not in tried.get(target, ()):
                    return target, target.pool.acquire(prefer=key)
        if not tried and len(targets) == 1:  # the usual case: one upstream, a first try
            target = targets[0]
            try:
                return target, target.pool.acquire()
            except NoAvailableKeysError:
                return None
        for avoided in (False, True):
            for target in targets:
                if (target in avoid) is not avoided:
                    continue
                try:
                    return target, target.pool.acquire(exclude=tried.get(target, ()))
                except NoAvailableKeysError:
                    pass
        return None

    def _wait(self, targets: list[Target], tried: dict[Target, set[str]]) -> float | None:
        """Seconds until the first cooling key not tried yet is ready; None if there is none."""
        waits = [
            ready - target.pool.now()
            for target in targets
            if (ready := target.pool.ready_at(exclude=tried.get(target, ()))) is not None
        ]
        return max(min(waits), 0.0) if waits else None

    def _remember(self, affinity: str, target: Target, key: str) -> None:
        sticky = self._sticky
        if sticky.get(affinity) != (target, key):
            sticky[affinity] = (target, key)
            if len(sticky) > STICKY_MAX:
                sticky.popitem(last=False)
        else:
            sticky.move_to_end(affinity)

    # ---- attempts -------------------------------------------------------------------------------

    def _served(self, target: Target, key: str, tokens: int) -> None:
        """A call that succeeded: counted for the key, in ``/metrics`` and in the request's usage
        (its access log line)."""
        target.pool.report_success(key, tokens)
        if self.metrics is not None:
            self.metrics.upstream_call(target.name, key, "ok")
        info = current()
        if info is not None:
            info.tokens = tokens

    def _count(self, target: Target, key: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.upstream_call(target.name, key, result)

    async def _attempt(
        self, request: UpstreamRequest, send: Callable[[Target, str], Awaitable[T]]
    ) -> tuple[Target, str, T]:
        """``send(target, key)`` on the chosen upstream and key, and again elsewhere as the
        retry rules allow. Failures are reported to the key pool and logged."""
        model = request.body.get("model")
        targets = self._order(model if isinstance(model, str) else "")
        tried: dict[Target, set[str]] = {}
        avoid: set[Target] = set()
        ends = self._clock() + self.deadline
        attempts = 0
        last: UpstreamError | None = None
        pick = self._pick(targets, tried, avoid, request.affinity)
        while True:
            if pick is None:
                pick = await self._wait_for_key(targets, tried, ends, last)
            target, key = pick
            attempts += 1
            info = current()  # the request's upstream and key, for its log lines and X-Upstream
            if info is not None:
                info.key = key
                info.upstream = target.name
            try:
                result = await send(target, key)
            except UpstreamError as exc:
                target.pool.report_failure(key, exc)
                self._count(target, key, outcome(exc))
                last = exc
                step = should_retry(exc)
                if step is Next.STOP or attempts >= self.max_attempts or self._clock() >= ends:
                    self.failures.upstream(exc, key, upstream=target.name)
                    raise
                tried.setdefault(target, set()).add(key)
                if step is Next.OTHER_UPSTREAM:
                    avoid.add(target)
                pick = self._pick(targets, tried, avoid, None)
                retry_target, retry_key = pick if pick is not None else (None, None)
                self.failures.upstream(
                    exc,
                    key,
                    retry_key,
                    upstream=target.name,
                    retry_upstream=retry_target.name if retry_target is not None else None,
                )
                continue
            if request.affinity is not None:
                self._remember(request.affinity, target, key)
            return target, key, result

    async def _wait_for_key(
        self,
        targets: list[Target],
        tried: dict[Target, set[str]],
        ends: float,
        last: UpstreamError | None,
    ) -> tuple[Target, str]:
        """A key once one is ready again; raises when none will be soon enough."""
        wait = self._wait(targets, tried)
        if wait is None:
            if last is not None:
                raise last  # logged when it happened
            error: UpstreamError = NoAvailableKeysError()
            self.failures.upstream(error, None)
            raise error
        if wait <= self.wait_for_key and self._clock() + wait <= ends:
            await asyncio.sleep(wait)
            pick = self._pick(targets, tried, set(), None)
            if pick is not None:
                return pick
            wait = self._wait(targets, tried) or 1.0  # taken meanwhile, or cooling again
        error = KeysCoolingError(wait)
        self.failures.upstream(error, None)
        raise error

    # ---- the entry points -----------------------------------------------------------------------

    async def call(self, request: UpstreamRequest) -> dict[str, Any]:
        """One non-streaming request; the upstream's JSON response."""
        started = time.monotonic()
        target, key, response = await self._attempt(request, lambda t, key: t.client.call(key, request))
        if self.metrics is not None:
            self.metrics.first_byte(time.monotonic() - started)
        self._served(target, key, _tokens(response))
        return response

    async def _open(
        self, target: Target, key: str, request: UpstreamRequest
    ) -> tuple[Batches, list[dict[str, Any]] | None]:
        """Start a stream and wait for its first chunks (None: it ended at once, with ``[DONE]``)."""
        batches = target.client.stream_batches(key, request)
        try:
            first = await anext(batches, None)
        except BaseException:
            await batches.aclose()
            raise
        return batches, first

    async def stream(self, request: UpstreamRequest) -> Batches:
        """One streaming request; its SSE ``data:`` JSON objects until ``[DONE]``, in batches of
        those that arrived together (one network read: a writer sends a batch in one write).
        Closing this iterator (or cancelling its consumer) closes the upstream connection."""
        started = time.monotonic()
        target, key, (batches, first) = await self._attempt(
            request, lambda t, key: self._open(t, key, request)
        )
        metrics = self.metrics
        if metrics is not None:
            metrics.first_byte(time.monotonic() - started)
            metrics.stream_opened()
        last: dict[str, Any] | None = None
        try:
            if first is not None:
                last = first[-1] if first else None
                yield first
                async for batch in batches:
                    last = batch[-1]
                    yield batch
        except UpstreamError as exc:
            target.pool.report_failure(key, exc, broke_off=True)
            self._count(target, key, "broken_stream")
            self.failures.upstream(exc, key, upstream=target.name)
            raise
        finally:
            if metrics is not None:
                metrics.stream_closed()
            await batches.aclose()
        self._served(target, key, _tokens(last) if last is not None else 0)


def _weighted(group: list[Target]) -> list[Target]:
    """Smooth weighted round robin (nginx's): the chosen upstream first, the others after it
    by weight, as failover candidates."""
    total = 0
    best = group[0]
    for target in group:
        target.current += target.weight
        total += target.weight
        if target.current > best.current:
            best = target
    best.current -= total
    return [best, *sorted((t for t in group if t is not best), key=lambda t: -t.weight)]


def _tokens(response: dict[str, Any]) -> int:
    usage = response.get("usage")
    if type(usage) is dict:
        total = usage.get("total_tokens")
        if type(total) is int:
            return total
    return 0
