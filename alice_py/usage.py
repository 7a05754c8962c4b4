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
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from alice_py import appkeys
from alice_py.db.usage import UsageRepository, UsageTotal
from alice_py.request_ids import current
from alice_py.tasks import running
from alice_py.upstream.keypool import mask_key

log = logging.getLogger(__name__)

UPSTREAM = "upstream"
CLIENT = "client"

_Key = tuple[str, str]
_Sums = list[Any]
"""``[label, prompt tokens, completion tokens, answers]``: lists, added to in place (the hot path)."""


def _add(book: dict[_Key, _Sums], key: _Key, label: str, prompt: int, completion: int, answers: int) -> None:
    sums = book.get(key)
    if sums is None:
        book[key] = [label, prompt, completion, answers]
    else:
        sums[0] = label
        sums[1] += prompt
        sums[2] += completion
        sums[3] += answers


class UsageBook:
    def __init__(self, repository: UsageRepository | None = None) -> None:
        self._repository = repository
        self._totals: dict[_Key, _Sums] = {}
        self._pending: dict[_Key, _Sums] = {}
        self._keys: dict[str, tuple[_Key, str]] = {}
        """Each upstream key's row and label, worked out once (a digest and a mask per answer
        would cost more than the rest of the accounting)."""

    def _upstream(self, key: str) -> tuple[_Key, str]:
        found = self._keys.get(key)
        if found is None:
            digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            if len(self._keys) > 10_000:  # keys come and go through the admin API
                self._keys.clear()
            found = self._keys[key] = ((UPSTREAM, digest), mask_key(key))
        return found

    def record(self, upstream_key: str | None, client: str | None, prompt: int, completion: int) -> None:
        if upstream_key:
            row, label = self._upstream(upstream_key)
            self._add(row, label, prompt, completion)
        if client:
            label = client if client.startswith("addr:") else client[:16] + "…"
            self._add((CLIENT, client), label, prompt, completion)

    def record_current(self, prompt: int, completion: int) -> None:
        """For the request being handled: its upstream key and its client."""
        info = current()
        if info is not None:
            self.record(info.key, info.client, prompt, completion)

    def _add(self, key: _Key, label: str, prompt: int, completion: int) -> None:
        _add(self._totals, key, label, prompt, completion, 1)
        _add(self._pending, key, label, prompt, completion, 1)

    async def load(self) -> None:
        if self._repository is not None:
            self._totals = {
                (t.scope, t.name): [t.label, t.prompt_tokens, t.completion_tokens, t.answers]
                for t in await self._repository.all()
            }

    async def flush(self) -> None:
        """Write what was added since the last write; kept for the next one if it fails."""
        if self._repository is None or not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            await self._repository.add(
                UsageTotal(scope, name, *sums) for (scope, name), sums in pending.items()
            )
        except Exception as exc:
            for key, (label, prompt, completion, answers) in pending.items():
                _add(self._pending, key, label, prompt, completion, answers)
            log.error("usage totals not saved (%s): kept for the next write", exc)

    def snapshot(self) -> dict[str, Any]:
        """``{"upstream_keys": [...], "clients": [...]}``, most tokens first."""

        def rows(scope: str) -> list[dict[str, Any]]:
            chosen = [sums for (kind, _), sums in self._totals.items() if kind == scope]
            chosen.sort(key=lambda sums: sums[1] + sums[2], reverse=True)
            return [
                {
                    "name": label,
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                    "answers": answers,
                }
                for label, prompt, completion, answers in chosen
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

    try:
        async with running(write_behind(), "usage write-behind"):
            yield
    finally:
        await book.flush()
