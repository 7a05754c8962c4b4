"""Background responses (``background: true``): tasks owned by the app, not by a request.

``BackgroundRuns`` keeps each task until it ends, so that ``cancel`` can stop it and the
shutdown can wait for it (``[server] drain_timeout``) and then cancel the rest: a response
cut short by a shutdown is marked failed, never left ``in_progress``. While they run, the
instance renews their rows' heartbeat (``db.response_runs``); a row whose heartbeat is
stale is another instance's that died, and its response is marked failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db import response_runs
from alice_py.responses.events import EventLog

log = logging.getLogger(__name__)

HEARTBEAT = 10.0
"""Seconds between two renewals of this instance's runs (and two looks for abandoned ones)."""
LEASE = 60.0
"""A run whose heartbeat is older than this belongs to an instance that died."""
ABANDONED = {
    "code": "server_error",
    "message": "The service instance making this background response stopped before it was finished.",
}


class RemoteCancels(Protocol):
    """Cancels between instances (``responses.redis_events.RedisCancels``)."""

    async def publish(self, response_id: str) -> None: ...

    async def listen(self, cancel: Callable[[str], object]) -> None: ...


class BackgroundRuns:
    def __init__(
        self,
        engine: AsyncEngine,
        events: EventLog,
        drain_timeout: float,
        clock: Callable[[], float] = time.time,
        remote: RemoteCancels | None = None,
    ) -> None:
        self.engine = engine
        self.events = events
        self.remote = remote
        self.instance = secrets.token_hex(8)
        self.closing = False
        """Set once the shutdown cancels what is left: a cancelled run then failed, not cancelled."""
        self._drain_timeout = drain_timeout
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def now(self) -> float:
        return self._clock()

    def start(self, response_id: str, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job, name=f"background response {response_id}")
        self._tasks[response_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(response_id, None))

    def running(self, response_id: str) -> bool:
        return response_id in self._tasks

    async def cancel(self, response_id: str) -> bool:
        """Stop the run (it records itself ``cancelled``) and wait until it has; ``False`` when
        it does not run here."""
        task = self._tasks.get(response_id)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task})
        return True

    async def cancel_elsewhere(self, response_id: str) -> bool:
        """Ask the other instances to cancel the run (``False`` with no shared store)."""
        if self.remote is None:
            return False
        await self.remote.publish(response_id)
        return True

    def _cancel_here(self, response_id: str) -> None:
        task = self._tasks.get(response_id)
        if task is not None:
            task.cancel()

    async def listen(self) -> None:
        """Cancel the runs other instances are asked to cancel (until cancelled)."""
        if self.remote is not None:
            await self.remote.listen(self._cancel_here)

    async def fail_abandoned(self, stale_before: float) -> None:
        failed = await response_runs.fail_abandoned(self.engine, stale_before, ABANDONED)
        for response_id in failed:
            log.warning("background response %s was abandoned by its instance: marked failed", response_id)

    async def heartbeat(self) -> None:
        """Renew this instance's runs and fail the abandoned ones, every ``HEARTBEAT`` seconds."""
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await response_runs.renew(self.engine, list(self._tasks), self.now())
                await self.fail_abandoned(self.now() - LEASE)
            except Exception:  # a database hiccup must not end the heartbeat; /readyz reports it
                log.exception("renewing the background responses' heartbeat failed")

    async def close(self) -> None:
        """Wait up to the drain timeout for the runs, then cancel the rest and wait for them."""
        tasks = set(self._tasks.values())
        if tasks:
            log.info("waiting up to %gs for %d background response(s)", self._drain_timeout, len(tasks))
            await asyncio.wait(tasks, timeout=self._drain_timeout)
        left = [task for task in self._tasks.values() if not task.done()]
        self.closing = True
        for task in left:
            task.cancel()
        if left:
            log.warning("cancelled %d background response(s) at shutdown: marked failed", len(left))
            await asyncio.wait(left)
