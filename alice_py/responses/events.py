"""The event log of background responses: what lets a stream be resumed (``starting_after``).

A background response writes each of its stream events (already encoded as SSE, with its
``sequence_number``, which is its place in the log) to the log, then marks the log finished.
A reader replays the events after a sequence number and follows the live ones until the
end; any number of readers, joining at any time, also after the client that started the
response went away.

``EventLog`` is the interface; ``MemoryEventLog`` keeps the logs in this process (the memory
store's instance is the only one serving its database). A shared one (Redis Streams, for
``[conversations] store = "redis"``) implements the same four calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Protocol

KEEP_FINISHED = 3600.0
"""Seconds a finished response's events stay resumable (its object stays retrievable)."""


class EventLog(Protocol):
    async def append(self, response_id: str, events: list[bytes]) -> None:
        """Add ``events`` (numbered from 0 in the order they are appended) to the log."""
        ...

    async def finish(self, response_id: str) -> None:
        """No more events: readers that caught up end."""
        ...

    async def exists(self, response_id: str) -> bool:
        """Whether the log is kept (from the first ``append`` until some time after ``finish``)."""
        ...

    def follow(self, response_id: str, after: int) -> AsyncGenerator[list[bytes], None]:
        """The events numbered above ``after`` in batches, the live ones as they come, until
        the log is finished. Nothing for an unknown log."""
        ...


@dataclass(slots=True)
class _Log:
    events: list[bytes] = field(default_factory=list)
    finished_at: float | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


class MemoryEventLog:
    """This process's logs; finished ones are dropped ``keep`` seconds after they finished."""

    def __init__(self, keep: float = KEEP_FINISHED, clock: Callable[[], float] = time.monotonic) -> None:
        self._logs: dict[str, _Log] = {}
        self._keep = keep
        self._clock = clock

    async def append(self, response_id: str, events: list[bytes]) -> None:
        log = self._logs.get(response_id)
        if log is None:
            log = self._logs[response_id] = _Log()
            self._prune()
        log.events.extend(events)
        async with log.changed:
            log.changed.notify_all()

    async def finish(self, response_id: str) -> None:
        log = self._logs.setdefault(response_id, _Log())
        log.finished_at = self._clock()
        async with log.changed:
            log.changed.notify_all()

    async def exists(self, response_id: str) -> bool:
        self._prune()
        return response_id in self._logs

    async def follow(self, response_id: str, after: int) -> AsyncGenerator[list[bytes], None]:
        log = self._logs.get(response_id)
        if log is None:
            return
        position = max(after + 1, 0)
        while True:
            if position < len(log.events):
                batch = log.events[position:]
                position += len(batch)
                yield batch
                continue
            if log.finished_at is not None:
                return
            async with log.changed:
                while position >= len(log.events) and log.finished_at is None:
                    await log.changed.wait()

    def _prune(self) -> None:
        limit = self._clock() - self._keep
        gone = [
            key for key, log in self._logs.items() if log.finished_at is not None and log.finished_at < limit
        ]
        for key in gone:
            del self._logs[key]
