"""The router from the configuration: one ``Target`` (client and key pool) per upstream."""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
from aiohttp import web

from alice_py.config import DEMO_KEY, Config, upstream_entries
from alice_py.upstream.client import OpenAIClient
from alice_py.upstream.keypool import KeyPool
from alice_py.upstream.router import Target, UpstreamRouter

POOL_CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("pool_clock")
"""The key pools' clock (cooldowns, failure windows), when a test sets one; else monotonic time."""


def build_router(
    cfg: Config,
    session: aiohttp.ClientSession,
    demo_url: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> UpstreamRouter:
    """``demo_url``: with ``--demo``, the built-in model's address; it replaces every upstream."""
    up = cfg.upstream
    targets: list[Target] = []
    for entry in upstream_entries(cfg):
        keys = entry.keys
        base_url = entry.base_url
        if up.demo:
            keys, base_url = (DEMO_KEY,), demo_url or base_url
        pool = KeyPool(
            keys,
            auto_remove=up.auto_remove_keys,
            name=entry.name,
            fail_threshold=cfg.keys.fail_threshold,
            fail_window=cfg.keys.fail_window,
            # An [[upstreams]] entry with no key is a server that takes none (llama.cpp, Ollama).
            keyless=bool(cfg.upstreams) and not keys,
            clock=clock,
        )
        client = OpenAIClient(
            session,
            base_url,
            proxy=entry.proxy or None,
            connect_timeout=entry.connect_timeout,
            timeout=entry.timeout,
            require_finish_reason=up.require_finish_reason,
        )
        targets.append(
            Target(
                entry.name, client, pool, models=entry.models, priority=entry.priority, weight=entry.weight
            )
        )
        if up.demo:
            break  # the demo model answers everything, once
    routing = cfg.routing
    return UpstreamRouter(
        targets,
        max_attempts=routing.max_attempts,
        deadline=routing.deadline,
        wait_for_key=routing.wait_for_key,
    )
