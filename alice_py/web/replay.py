"""Normal auth's replay record: which uuids were seen, behind one small interface.

The protocol has no timestamp, so refusing every replay forever would need unbounded
memory. ``[auth] replay`` picks the policy:

- ``strict`` (the default): a uuid is refused for a retention window (the conversation
  TTL) after its first use, in a set of bounded size. When the set is full the oldest
  uuids are forgotten early (a replay of one of those would pass) and a warning says so,
  at most once a minute: refusing *new* uuids instead would lock every user of normal
  mode out until room frees up, which one holder of the secret could do at will.
- ``original``: a uuid is refused only while it is among the last 50 seen, as the Go
  service did. For frontends that follow the Alice README's own example and make the
  uuid with ``new Date().getMilliseconds()`` (1,000 possible values): under ``strict``
  most of their requests would soon be refused.

Only authenticated requests take room, so a client without the secret cannot fill it.
``ReplayGuard`` is a protocol so a shared store (a Redis ``SET uuid 1 NX EX window``)
can take the in-memory set's place across instances.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from alice_py.config import Config

log = logging.getLogger(__name__)

Clock = Callable[[], float]

REPLAY_CAPACITY = 500_000
"""uuids remembered at most under ``strict``: about 300 bytes each, so 150 MB at worst,
reached only by about 280 authenticated requests a second sustained over a 30-minute window."""
ORIGINAL_WINDOW = 50
"""How many of the latest uuids the Go original refused again."""
WARN_INTERVAL = 60.0
"""Seconds between two warnings of one kind: a busy client must not flood the log."""


class ReplayGuard(Protocol):
    async def first_use(self, nonce: str) -> bool:
        """Record ``nonce``; ``True`` the first time, ``False`` for a replay."""
        ...


class Throttled:
    """A warning written at most once per ``interval`` seconds; the next line counts the ones
    folded into it meanwhile."""

    def __init__(
        self, logger: logging.Logger, interval: float = WARN_INTERVAL, clock: Clock = time.monotonic
    ) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._last = -math.inf
        self._folded = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._last < self._interval:
            self._folded += 1
            return
        if self._folded:
            message += f" ({self._folded} more since the last such line)"
        self._log.warning(message, *args)
        self._last, self._folded = now, 0


class MemoryReplayGuard:
    """Seen nonces for ``retention`` seconds (``math.inf``: until pushed out), at most
    ``capacity`` of them (one process); when full, the oldest one makes room.

    Every nonce lives exactly ``retention`` seconds, so insertion order is expiry
    order: a deque of ``(expiry, nonce)`` plus a set, expired from the left.
    """

    def __init__(
        self,
        retention: float,
        capacity: int = REPLAY_CAPACITY,
        clock: Clock = time.monotonic,
        on_full: Callable[[], None] | None = None,
    ) -> None:
        if retention <= 0 or capacity <= 0:
            raise ValueError("retention and capacity must be positive")
        self.retention = retention
        self.capacity = capacity
        self._clock = clock
        self._on_full = on_full
        self._order: deque[tuple[float, str]] = deque()
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._order and self._order[0][0] <= now:
            self._seen.discard(self._order.popleft()[1])

    async def first_use(self, nonce: str) -> bool:
        now = self._clock()
        self._expire(now)
        if nonce in self._seen:
            return False
        if len(self._seen) >= self.capacity:
            self._seen.discard(self._order.popleft()[1])
            if self._on_full is not None:
                self._on_full()
        self._seen.add(nonce)
        self._order.append((now + self.retention, nonce))
        return True


def memory_replay_guard(
    cfg: Config, capacity: int = REPLAY_CAPACITY, clock: Clock = time.monotonic
) -> MemoryReplayGuard:
    """The in-memory guard for ``[auth] replay``."""
    if cfg.auth.replay == "original":
        return MemoryReplayGuard(math.inf, ORIGINAL_WINDOW, clock)
    warn = Throttled(log, clock=clock)

    def full() -> None:
        warn.warning(
            "normal auth: the replay set is full (%d uuids seen within %gs): forgetting the oldest "
            "ones early, so a replay of one of those would be accepted",
            capacity,
            cfg.conversations.ttl,
        )

    return MemoryReplayGuard(cfg.conversations.ttl, capacity, clock, on_full=full)
