"""Typed application state (aiohttp's ``web.AppKey``): no string keys, no globals.

It imports nothing of ours at run time (the types only under ``TYPE_CHECKING``), so any
module may import it without joining an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alice_py.api.admin_keys import FailureLimiter
    from alice_py.api.admin_page import AdminSessions
    from alice_py.config import Config
    from alice_py.db.health import DatabaseHealth
    from alice_py.db.keys import KeyRepository
    from alice_py.db.shares import ShareRepository
    from alice_py.engine.service import ConversationService
    from alice_py.failure_log import FailureLog
    from alice_py.request_ids import RequestIds
    from alice_py.store.base import ConversationStore
    from alice_py.store.saver import ConversationSaver
    from alice_py.upstream.router import UpstreamRouter
    from alice_py.usage import UsageBook
    from alice_py.web.dialects import DialectTable
    from alice_py.web.proxies import TrustedProxies
    from alice_py.web.ratelimit import RateLimiter
    from alice_py.web.replay import ReplayGuard

CONFIG: web.AppKey[Config] = web.AppKey("config")
STARTED_AT = web.AppKey("started_at", float)
UPSTREAM_BASE_URL = web.AppKey("upstream_base_url", str)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
DB_ENGINE: web.AppKey[AsyncEngine] = web.AppKey("db_engine")
SHARES: web.AppKey[ShareRepository] = web.AppKey("shares")
ROUTER: web.AppKey[UpstreamRouter] = web.AppKey("router")
STORE: web.AppKey[ConversationStore] = web.AppKey("store")
SERVICE: web.AppKey[ConversationService] = web.AppKey("service")
DIALECTS: web.AppKey[DialectTable] = web.AppKey("dialects")
"""Each path prefix's auth guard, error format and CORS, declared in one table (``web.dialects``)."""
REPLAY_GUARD: web.AppKey[ReplayGuard] = web.AppKey("replay_guard")
"""The uuids normal auth has seen."""
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
"""The limits of model calls per minute (global and per client), for every dialect."""
STORED_KEYS: web.AppKey[KeyRepository] = web.AppKey("stored_keys")
"""Upstream keys added through the admin API (loaded into the key pool at start-up)."""
ADMIN_FAILURES: web.AppKey[FailureLimiter] = web.AppKey("admin_failures")
"""Wrong admin passwords by client address, to refuse guessing."""
SAVER: web.AppKey[ConversationSaver] = web.AppKey("saver")
"""Writes live conversations behind to the database and loads them back (``store.saver``)."""
DB_HEALTH: web.AppKey[DatabaseHealth] = web.AppKey("db_health")
"""The periodic database checks (write probe, SQLite file, writer lock) that ``/readyz`` reads."""
ADMIN_SESSIONS: web.AppKey[AdminSessions] = web.AppKey("admin_sessions")
"""The admin page's cookie storages and live sessions; absent while the admin page is off."""
REQUEST_IDS: web.AppKey[RequestIds] = web.AppKey("request_ids")
"""Makes each request's id (``X-Request-Id``, named in failure messages and log lines)."""
FAILURE_LOG: web.AppKey[FailureLog] = web.AppKey("failure_log")
"""One folded log line per failure (``alice_py.failure_log``)."""
TRUSTED_PROXIES: web.AppKey[TrustedProxies] = web.AppKey("trusted_proxies")
USAGE: web.AppKey[UsageBook] = web.AppKey("usage")
"""Tokens used per upstream key and per client (``alice_py.usage``)."""
"""``[server] trusted_proxies``: the client address and scheme behind them (``web.proxies``)."""
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
"""The process's one Redis connection pool (``app.redis_ctx``); present only with
``[conversations] store = "redis"``. Every shared-state part (live store, replay record,
rate limits, key pool state) uses this one."""
