"""What the Responses and Conversations dialects keep: their repositories, the background
runs with their event log, and who the caller is (``owner``).

Opened in one ``cleanup_ctx`` after the database (and the writer lock); at cleanup the
background runs are drained first, while the database and the upstream are still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import AsyncGenerator

from aiohttp import web

from alice_py import appkeys
from alice_py.db.openai_conversations import OpenAIConversationRepository
from alice_py.db.responses import ResponseRepository
from alice_py.responses.background import LEASE, BackgroundRuns
from alice_py.responses.events import EventLog, MemoryEventLog
from alice_py.web.auth import CLIENT_KEY

RESPONSES: web.AppKey[ResponseRepository] = web.AppKey("responses")
CONVERSATIONS: web.AppKey[OpenAIConversationRepository] = web.AppKey("openai_conversations")
RUNS: web.AppKey[BackgroundRuns] = web.AppKey("background_runs")


def owner(request: web.Request) -> str:
    """Who the request is: a digest of its client key (the key itself is never stored).
    With ``[auth] mode = "none"`` there is no key, and every caller is the same owner."""
    key = request.get(CLIENT_KEY)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() if key else ""


def _event_log(app: web.Application) -> EventLog:
    """Shared by every instance with the Redis store (a stream resumes on any of them);
    this process's own with the memory store, whose instance is its database's only one."""
    if app[appkeys.CONFIG].conversations.store != "redis":
        return MemoryEventLog()
    from alice_py.responses.redis_events import RedisEventLog  # redis-py: the Redis store's only

    return RedisEventLog(app[appkeys.REDIS], app[appkeys.CONFIG].conversations.key_prefix)


async def responses_ctx(app: web.Application) -> AsyncGenerator[None, None]:
    cfg = app[appkeys.CONFIG]
    engine = app[appkeys.DB_ENGINE]
    app[RESPONSES] = ResponseRepository(engine, cfg.responses.retention_days)
    app[CONVERSATIONS] = OpenAIConversationRepository(engine)
    runs = BackgroundRuns(engine, _event_log(app), cfg.server.drain_timeout)
    # A memory-store instance is its database's only writer (db.writer_lock): every run
    # left in the database is a dead instance's. With a shared store, only stale ones are.
    sole_writer = cfg.conversations.store == "memory"
    await runs.fail_abandoned(math.inf if sole_writer else runs.now() - LEASE)
    app[RUNS] = runs
    heartbeat = asyncio.create_task(runs.heartbeat(), name="background responses' heartbeat")
    try:
        yield
    finally:
        await runs.close()
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
