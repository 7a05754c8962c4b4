"""The saver's life in the app: writer lock, load, write-behind and health checks, save at the end.

Registered after the engine, so its cleanup runs first: the store is still open, and
aiohttp (or ``server.run``) has already let the answers in progress end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from alice_py import appkeys
from alice_py.db.health import DatabaseHealth, watch
from alice_py.db.writer_lock import WriterLock, writer_lock
from alice_py.store.memory import MemoryStore
from alice_py.store.saver import write_behind
from alice_py.tasks import stop_task


async def persistence_ctx(app: web.Application) -> AsyncIterator[None]:
    """Take the writer lock (memory store), load, then save and check while running."""
    cfg = app[appkeys.CONFIG]
    engine = app[appkeys.DB_ENGINE]
    saver = app[appkeys.SAVER]
    # With a shared store (Redis) every instance writes the database; with the memory
    # store this one must be the only writer (``db.writer_lock``).
    own = isinstance(saver.store, MemoryStore)
    lock: WriterLock | None = writer_lock(engine) if own else None
    if lock is not None:
        await lock.acquire()  # DatabaseInUse: one line, exit status 2
        saver.writable = lambda: lock.held
    health = DatabaseHealth(engine, lock=lock)
    tasks: list[asyncio.Task[None]] = []
    try:
        await health.check()
        app[appkeys.DB_HEALTH] = health
        await saver.load()
        tasks.append(asyncio.create_task(watch(health, cfg.database.check_interval), name="db-health"))
        interval = cfg.conversations.write_behind
        tasks.append(asyncio.create_task(write_behind(saver, interval), name="write-behind"))
        yield
    finally:
        for task in tasks:
            await stop_task(task)
        await saver.save_all(everything=own)  # a shared store: only what changed
        health.close()
        if lock is not None:
            await lock.release()
