"""Background work that lives as long as the app: started in a cleanup context, stopped at its end.

``async with running(coro, name):`` starts the task, and at the end cancels it and waits
until it has ended, so nothing of it runs once the resource it uses is closed. Every
periodic job of the app (write-behind, probes, the failure log's flush, the shared key
state's poll, usage totals) goes through it, instead of each repeating the pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (without swallowing our own cancellation)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


@contextlib.asynccontextmanager
async def running(job: Coroutine[Any, Any, None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    """``job`` as a task for the block's duration; cancelled and awaited when the block ends."""
    task = asyncio.create_task(job, name=name)
    try:
        yield task
    finally:
        await stop_task(task)
