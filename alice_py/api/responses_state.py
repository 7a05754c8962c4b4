"""What the Responses and Conversations dialects keep: their repositories, the background
runs with their event log, and who the caller is (``owner``).

Opened in one ``cleanup_ctx`` after the database (and the writer lock); at cleanup the
background runs are drained first, while the database and the upstream are still open.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import AsyncGenerator

from aiohttp import web

from alice_py import appkeys
from alice_py.db.openai_conversations import OpenAIConversationRepository
from alice_py.db.response_keys import ResponseKeyRepository
from alice_py.db.responses import ResponseRepository
from alice_py.responses.background import LEASE, BackgroundRuns
from alice_py.responses.events import MemoryEventLog
from alice_py.web.auth import CLIENT_KEY

log = logging.getLogger(__name__)

STOP_GRACE = 2.0
"""Seconds the heartbeat and the cancels' listener get to stop at cleanup."""
RESPONSES: web.AppKey[ResponseRepository] = web.AppKey("responses")
CONVERSATIONS: web.AppKey[OpenAIConversationRepository] = web.AppKey("openai_conversations")
RESPONSE_KEYS: web.AppKey[ResponseKeyRepository] = web.AppKey("response_keys")
RUNS: web.AppKey[BackgroundRuns] = web.AppKey("background_runs")


def owner(request: web.Request) -> str:
    """Who the request is: a digest of its client key (the key itself is never stored).
    With ``[auth] mode = "none"`` there is no key, and every caller is the same owner."""
    key = request.get(CLIENT_KEY)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() if key else ""


def _runs(app: web.Application) -> BackgroundRuns:
    """With the Redis store, the event log and the cancels are shared by every instance (a
    stream resumes, a cancel reaches the run, on any of them); with the memory store they are
    this process's own, whose instance is its database's only one."""
    cfg = app[appkeys.CONFIG]
    engine = app[appkeys.DB_ENGINE]
    if cfg.conversations.store != "redis":
        return BackgroundRuns(engine, MemoryEventLog(), cfg.server.drain_timeout)
    from alice_py.responses.redis_events import RedisCancels, RedisEventLog  # redis-py: the Redis store's

    prefix = cfg.conversations.key_prefix
    events = RedisEventLog(app[appkeys.REDIS], prefix)
    return BackgroundRuns(
        engine, events, cfg.server.drain_timeout, remote=RedisCancels(app[appkeys.REDIS], prefix)
    )


async def responses_ctx(app: web.Application) -> AsyncGenerator[None, None]:
    cfg = app[appkeys.CONFIG]
    engine = app[appkeys.DB_ENGINE]
    app[RESPONSES] = ResponseRepository(engine, cfg.responses.retention_days)
    app[CONVERSATIONS] = OpenAIConversationRepository(engine)
    app[RESPONSE_KEYS] = ResponseKeyRepository(engine)
    runs = _runs(app)
    # A memory-store instance is its database's only writer (db.writer_lock): every run
    # left in the database is a dead instance's. With a shared store, only stale ones are.
    sole_writer = cfg.conversations.store == "memory"
    await runs.fail_abandoned(math.inf if sole_writer else runs.now() - LEASE)
    app[RUNS] = runs
    tasks = [
        asyncio.create_task(runs.heartbeat(), name="background responses' heartbeat"),
        asyncio.create_task(runs.listen(), name="background responses' cancels"),
    ]
    try:
        yield
    finally:
        await runs.close()
        for task in tasks:
            task.cancel()
        # Bounded: a Redis client closing a dead connection must not hold the shutdown.
        _, stuck = await asyncio.wait(tasks, timeout=STOP_GRACE)
        if stuck:
            log.warning("%d background responses' task(s) did not stop within %gs", len(stuck), STOP_GRACE)
