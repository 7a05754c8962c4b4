"""The key probe: disabled keys (and keys cooling after server errors) tried again in the
background, one cheap authenticated call each (``GET {base_url}/models``) every
``[keys] probe_interval`` seconds; a key that answers is back in service (``KeyPool.enable``).

A key cooling after a 429 is left to its ``Retry-After``: ``/models`` answering says nothing
about the rate limit. Probes are not model calls for clients: they are not counted in
``alice_upstream_calls_total``, nor in the key's requests. ``test_key`` is the admin's
"test now", the same call on one key whatever its state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from alice_py import appkeys
from alice_py.tasks import running
from alice_py.upstream.errors import UpstreamError
from alice_py.upstream.router import Target, UpstreamRouter

log = logging.getLogger(__name__)


async def test_key(target: Target, key: str) -> UpstreamError | None:
    """One ``GET /models`` with ``key``: None if it answered, else its error. A key that was out
    and answers is brought back."""
    try:
        await target.client.list_models(key)
    except UpstreamError as exc:
        return exc
    target.pool.enable(key)
    return None


async def probe_once(router: UpstreamRouter) -> int:
    """Try every key that is out of service; how many came back."""
    back = 0
    for target in router.targets:
        for key in target.pool.out_of_service():
            if await test_key(target, key) is None:
                back += 1
    return back


async def probe_forever(router: UpstreamRouter, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await probe_once(router)
        except Exception:  # a probe must never stop probing
            log.exception("the key probe failed")


async def probe_ctx(app: web.Application) -> AsyncIterator[None]:
    interval = app[appkeys.CONFIG].keys.probe_interval
    if interval <= 0:
        yield
        return
    async with running(probe_forever(app[appkeys.ROUTER], interval), "key probes"):
        yield
