"""A pool of API keys for one upstream: round robin, cooldown, auto-disable, visible state.

Every method is synchronous and never awaits, so on one event loop each call is
atomic and the pool needs no lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from alice_py.upstream.errors import (
    InvalidKeyError,
    NoAvailableKeysError,
    QuotaExceededError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
)

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0
"""Seconds of cooldown after a first 429/5xx without ``Retry-After``; doubles per failure in a row."""
BACKOFF_MAX = 60.0
RETRY_AFTER_MAX = 3600.0
"""An upstream may ask for a day (daily limits); past an hour we would rather try the key again."""

KeyStatus = Literal["active", "cooling", "disabled"]


def mask_key(key: str) -> str:
    """``sk-proj-abc…wxyz`` → ``sk-…wxyz``: the prefix up to the first dash, ``…``, the last 4.

    Never more than half of a key shows, so short keys show fewer characters: the last
    ``min(4, len // 2)`` (an 8-character key ``…wxyz``, a 5-character one ``…yz``, a
    3-character one ``…z``), and the prefix only from 12 characters on. Only a
    1-character key (nothing can show without showing all of it) is the bare ``…``.
    """
    if len(key) >= 12:
        dash = key.find("-")
        prefix = key[: dash + 1] if 0 <= dash <= 4 else ""
        return f"{prefix}…{key[-4:]}"
    shown = min(4, len(key) // 2)
    return "…" + key[len(key) - shown :]


@dataclass(frozen=True, slots=True)
class KeyState:
    """What the admin page shows about one key. ``cooldown_until`` is in the pool's clock
    (monotonic by default); ``cooldown_remaining`` is the seconds left, 0 when not cooling."""

    masked: str
    state: KeyStatus
    cooldown_until: float | None
    cooldown_remaining: float
    disabled_reason: str | None
    requests: int
    failures: int
    last_error: str | None


class _Entry:
    __slots__ = ("cooldown_until", "disabled_reason", "failures", "key", "last_error", "requests", "streak")

    def __init__(self, key: str) -> None:
        self.key = key
        self.cooldown_until = 0.0
        self.disabled_reason: str | None = None
        self.requests = 0
        self.failures = 0
        self.streak = 0
        self.last_error: str | None = None


class KeyPool:
    """Round robin over the usable keys of one upstream.

    With ``auto_remove``, a key that answers invalid-key or exhausted-quota is
    disabled (kept in the list, with the reason, so the admin sees why). A key that
    answers 429 or 5xx cools down for ``Retry-After`` seconds, or a short capped
    exponential backoff; cooling keys are used only when no other key is usable.
    """

    def __init__(
        self,
        keys: Iterable[str],
        *,
        auto_remove: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auto_remove = auto_remove
        self._clock = clock
        self._entries: list[_Entry] = []
        self._by_key: dict[str, _Entry] = {}
        self._next = 0
        self.add(keys)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<KeyPool {len(self._entries)} keys, {self.usable_count()} usable>"

    def keys(self) -> list[str]:
        """The raw keys, in order, disabled ones included: for persistence only, never print them."""
        return [entry.key for entry in self._entries]

    def usable_count(self) -> int:
        """Keys ``acquire`` may return: all but the disabled ones (cooling keys count)."""
        return sum(1 for entry in self._entries if entry.disabled_reason is None)

    def acquire(self, *, exclude: Collection[str] = ()) -> str:
        """The next key in round robin order that is neither disabled, cooling nor excluded;
        failing that, the cooling key that is ready soonest. Raises NoAvailableKeysError."""
        entries = self._entries
        now = self._clock()
        count = len(entries)
        fallback: _Entry | None = None
        for step in range(count):
            index = (self._next + step) % count
            entry = entries[index]
            if entry.disabled_reason is not None or entry.key in exclude:
                continue
            if entry.cooldown_until <= now:
                self._next = index + 1
                entry.requests += 1
                return entry.key
            if fallback is None or entry.cooldown_until < fallback.cooldown_until:
                fallback = entry
        if fallback is None:
            raise NoAvailableKeysError()
        fallback.requests += 1
        return fallback.key

    def report_success(self, key: str) -> None:
        entry = self._by_key.get(key)
        if entry is not None:
            entry.streak = 0
            entry.cooldown_until = 0.0

    def report_failure(self, key: str, error: UpstreamError) -> None:
        """Count the failure and act on it; a key removed meanwhile is ignored.
        Errors that are not the key's fault (bad request, timeout, connection) change no state."""
        entry = self._by_key.get(key)
        if entry is None:
            return
        entry.failures += 1
        entry.last_error = error.detail
        if isinstance(error, InvalidKeyError | QuotaExceededError):
            if self._auto_remove:
                invalid = isinstance(error, InvalidKeyError)
                entry.disabled_reason = "invalid key" if invalid else "quota exceeded"
                log.warning("API key %s disabled: %s", mask_key(key), error.detail)
                return
            self._cool_down(entry, None)
        elif isinstance(error, UpstreamRateLimitError):
            self._cool_down(entry, error.retry_after)
        elif isinstance(error, UpstreamServerError):
            self._cool_down(entry, None)

    def _cool_down(self, entry: _Entry, retry_after: float | None) -> None:
        entry.streak += 1
        if retry_after is None:
            seconds = min(BACKOFF_BASE * 2 ** (entry.streak - 1), BACKOFF_MAX)
        else:
            seconds = min(max(retry_after, 0.0), RETRY_AFTER_MAX)
        entry.cooldown_until = self._clock() + seconds
        # DEBUG: the failure log already has one (folded) line for the failure that caused it.
        log.debug("API key %s cooling down for %.1f s", mask_key(entry.key), seconds)

    def add(self, keys: Iterable[str]) -> list[str]:
        """Add keys (stripped; blank and already present ones skipped); returns those added."""
        added: list[str] = []
        for raw in keys:
            key = raw.strip()
            if key and key not in self._by_key:
                entry = _Entry(key)
                self._entries.append(entry)
                self._by_key[key] = entry
                added.append(key)
        return added

    def remove(self, keys: Iterable[str]) -> list[str]:
        """Remove keys; returns those that were in the pool."""
        removed: list[str] = []
        for raw in keys:
            entry = self._by_key.pop(raw.strip(), None)
            if entry is not None:
                index = self._entries.index(entry)
                del self._entries[index]
                if index < self._next:
                    self._next -= 1
                removed.append(entry.key)
        return removed

    def snapshot(self) -> list[KeyState]:
        now = self._clock()
        return [self._state(entry, now) for entry in self._entries]

    @staticmethod
    def _state(entry: _Entry, now: float) -> KeyState:
        cooling = entry.cooldown_until > now
        status: KeyStatus = "disabled" if entry.disabled_reason else "cooling" if cooling else "active"
        return KeyState(
            masked=mask_key(entry.key),
            state=status,
            cooldown_until=entry.cooldown_until if cooling else None,
            cooldown_remaining=entry.cooldown_until - now if cooling else 0.0,
            disabled_reason=entry.disabled_reason,
            requests=entry.requests,
            failures=entry.failures,
            last_error=entry.last_error,
        )
