"""Tokens used, summed per upstream key and per client, kept across restarts.

Each answer kept in a conversation (``engine.context.TurnContext.record``) adds its prompt and
completion tokens to the upstream key that answered (the router notes it on the request,
``request_ids.RequestInfo.key``) and to the client that asked (``RequestInfo.client``: the
digest of its key, or its address, as the per-client rate limit counts clients). Totals live
in memory for the admin API and page; what was added since the last write goes to the
database (``usage_totals``, added to in place) every ``[conversations] write_behind`` seconds
and at shutdown, so a restart keeps them (a ``kill -9`` loses at most that window). A write
the database refuses is kept and tried again with the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from alice_py import appkeys
from alice_py.db.usage import UsageRepository, UsageTotal
from alice_py.request_ids import current
from alice_py.upstream.keypool import mask_key

log = logging.getLogger(__name__)

UPSTREAM = "upstream"
CLIENT = "client"

_Key = tuple[str, str]


def _add(book: dict[_Key, UsageTotal], delta: UsageTotal) -> None:
    key = (delta.scope, delta.name)
    was = book.get(key)
    if was is None:
        book[key] = delta
        return
    book[key] = UsageTotal(
        delta.scope,
        delta.name,
        delta.label,
        was.prompt_tokens + delta.prompt_tokens,
        was.completion_tokens + delta.completion_tokens,
        was.answers + delta.answers,
    )


class UsageBook:
    def __init__(self, repository: UsageRepository | None = None) -> None:
        self._repository = repository
        self._totals: dict[_Key, UsageTotal] = {}
        self._pending: dict[_Key, UsageTotal] = {}

    def record(self, upstream_key: str | None, client: str | None, prompt: int, completion: int) -> None:
        if upstream_key:
            digest = hashlib.sha256(upstream_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            self._add(UsageTotal(UPSTREAM, digest, mask_key(upstream_key), prompt, completion, 1))
        if client:
            self._add(
                UsageTotal(
                    CLIENT,
                    client,
                    client if client.startswith("addr:") else client[:16] + "…",
                    prompt,
                    completion,
                    1,
                )
            )

    def record_current(self, prompt: int, completion: int) -> None:
        """For the request being handled: its upstream key and its client."""
        info = current()
        if info is not None:
            self.record(info.key, info.client, prompt, completion)

    def _add(self, delta: UsageTotal) -> None:
        _add(self._totals, delta)
        _add(self._pending, delta)

    async def load(self) -> None:
        if self._repository is not None:
            self._totals = {(t.scope, t.name): t for t in await self._repository.all()}

    async def flush(self) -> None:
        """Write what was added since the last write; kept for the next one if it fails."""
        if self._repository is None or not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            await self._repository.add(pending.values())
        except Exception as exc:
            for delta in pending.values():
                _add(self._pending, delta)
            log.error("usage totals not saved (%s): kept for the next write", exc)

    def snapshot(self) -> dict[str, Any]:
        """``{"upstream_keys": [...], "clients": [...]}``, most tokens first."""

        def rows(scope: str) -> list[dict[str, Any]]:
            chosen = [t for t in self._totals.values() if t.scope == scope]
            chosen.sort(key=lambda t: t.prompt_tokens + t.completion_tokens, reverse=True)
            return [
                {
                    "name": t.label,
                    "prompt_tokens": t.prompt_tokens,
                    "completion_tokens": t.completion_tokens,
                    "total_tokens": t.prompt_tokens + t.completion_tokens,
                    "answers": t.answers,
                }
                for t in chosen
            ]

        return {"upstream_keys": rows(UPSTREAM), "clients": rows(CLIENT)}


async def usage_ctx(app: web.Application) -> AsyncIterator[None]:
    """The usage book: loaded at start, written every write-behind interval and at the end."""
    book = UsageBook(UsageRepository(app[appkeys.DB_ENGINE]))
    await book.load()
    app[appkeys.USAGE] = book
    interval = app[appkeys.CONFIG].conversations.write_behind

    async def write_behind() -> None:
        while True:
            await asyncio.sleep(interval)
            await book.flush()

    task = asyncio.get_running_loop().create_task(write_behind())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await book.flush()
