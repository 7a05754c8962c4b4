"""``create_app(config)``: the whole service as one aiohttp application.

Every resource is opened and closed in ``cleanup_ctx``, in dependency order: the demo
upstream (``--demo``), the shared HTTP client session, the database, the upstream
router and its key pool, the conversation store (a cache of the database: ``store.durable``)
and the engine, the saved conversations (``store.lifecycle``: the writer lock, loaded at start,
written behind, the database checks, saved first thing at cleanup). Nothing happens at import time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from alice_py import appkeys
from alice_py.api import (
    admin_keys,
    admin_page,
    admin_shares,
    admin_usage,
    alice,
    conversations,
    health,
    node,
    openai,
    pages,
    relay,
    responses,
    sendmessage,
)
from alice_py.api.table import declared_dialects
from alice_py.config import Config
from alice_py.db.conversations import ConversationRepository
from alice_py.db.engine import create_engine, upgrade
from alice_py.db.shares import ShareRepository
from alice_py.engine.context import ContextPolicy
from alice_py.engine.service import ConversationService
from alice_py.engine.summarize import Summarizer
from alice_py.store.choice import live_store
from alice_py.store.durable import DurableStore
from alice_py.store.lifecycle import persistence_ctx
from alice_py.store.memory import MemoryStore
from alice_py.store.saver import ConversationSaver
from alice_py.upstream.build import POOL_CLOCK, build_router
from alice_py.upstream.probe import probe_ctx
from alice_py.upstream.shared_keys import shared_keys_ctx
from alice_py.upstream.windows import ReportedWindows
from alice_py.usage import usage_ctx
from alice_py.web import middlewares, observe
from alice_py.web.proxies import TrustedProxies

log = logging.getLogger(__name__)

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


async def demo_upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    """With ``--demo``, the built-in fake OpenAI server on a loopback port answers instead."""
    cfg = app[appkeys.CONFIG]
    if not cfg.upstream.demo:
        app[appkeys.UPSTREAM_BASE_URL] = cfg.upstream.base_url
        yield
        return
    # Imported here: only --demo runs the fake upstream; a real service never loads it.
    from alice_py.fake.upstream import start_fake_upstream

    fake = await start_fake_upstream()
    app[appkeys.UPSTREAM_BASE_URL] = fake.url
    log.info("answers come from the built-in demo model at %s (no API key, no network)", fake.url)
    try:
        yield
    finally:
        await fake.close()


async def http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """One pooled client session for every upstream request (keep-alive, DNS cache)."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[appkeys.HTTP_SESSION] = session
        yield


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[appkeys.CONFIG]
    engine = create_engine(cfg.database.url)
    # Migrate through the app's own engine: for an in-memory SQLite URL a second engine
    # would be a different database.
    try:
        await upgrade(engine)
        app[appkeys.DB_ENGINE] = engine
        app[appkeys.SHARES] = ShareRepository(engine)
        yield
    finally:
        await engine.dispose()


async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg, session = app[appkeys.CONFIG], app[appkeys.HTTP_SESSION]
    router = build_router(cfg, session, app[appkeys.UPSTREAM_BASE_URL], app.get(POOL_CLOCK, time.monotonic))
    router.failures = app[appkeys.FAILURE_LOG]
    app[appkeys.ROUTER] = router
    try:
        yield
    finally:
        await router.close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """With ``[conversations] store = "redis"``: the process's one pool, as ``appkeys.REDIS``.

    Not connected here: a Redis that is down at start-up is reported by ``/readyz`` and by
    the routes that need it (503), and the service recovers when it comes back. Imported
    only then: redis-py loads ``cryptography``, which the memory store has no use for.
    """
    cfg = app[appkeys.CONFIG]
    if cfg.conversations.store != "redis":
        yield
        return
    from alice_py.redis_client import open_redis

    client = open_redis(cfg.conversations.redis_url)
    app[appkeys.REDIS] = client
    try:
        yield
    finally:
        await client.aclose()


async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[appkeys.CONFIG]
    live = live_store(app)
    repo = ConversationRepository(app[appkeys.DB_ENGINE])
    saver = ConversationSaver(live, repo, max_live=cfg.conversations.max_live)
    store = DurableStore(live, saver)  # the live store is a cache of the database
    app[appkeys.SAVER] = saver
    app[appkeys.STORE] = store
    app[appkeys.SERVICE] = ConversationService(
        store,
        app[appkeys.ROUTER],
        cfg.models,
        id_taken=app[appkeys.SHARES].id_taken,
        max_bytes=cfg.conversations.max_bytes,
        renew_every=None if isinstance(live, MemoryStore) else cfg.conversations.lock_lease / 3,
        context=ContextPolicy(
            cfg.context,
            reported=ReportedWindows(app[appkeys.ROUTER]),
            on_usage=app[appkeys.USAGE].record_current,
            summarizer=Summarizer(app[appkeys.FAILURE_LOG]),
        ),
    )
    try:
        yield
    finally:
        await store.close()


def create_app(cfg: Config) -> web.Application:
    app = web.Application(client_max_size=cfg.server.max_body)
    app[appkeys.CONFIG] = cfg
    app[appkeys.STARTED_AT] = time.time()
    app[appkeys.TRUSTED_PROXIES] = TrustedProxies(cfg.server.trusted_proxies)
    contexts: list[CleanupCtx] = [
        demo_upstream_ctx,
        http_session_ctx,
        database_ctx,
        upstream_ctx,
        redis_ctx,
        usage_ctx,
        engine_ctx,
        persistence_ctx,
    ]
    app.cleanup_ctx.extend(contexts)
    app.cleanup_ctx.append(admin_keys.stored_keys_ctx)
    app.cleanup_ctx.append(probe_ctx)
    app.cleanup_ctx.append(shared_keys_ctx)
    middlewares.install(app, declared_dialects(cfg))
    observe.install(app)
    health.add_routes(app)
    alice.add_routes(app)
    openai.add_routes(app)
    responses.add_routes(app)
    conversations.add_routes(app)
    node.add_routes(app)
    relay.add_routes(app)
    sendmessage.add_routes(app)
    admin_keys.add_routes(app)
    admin_shares.add_routes(app)
    admin_usage.add_routes(app)
    pages.add_routes(app)
    admin_page.add_routes(app)
    return app
