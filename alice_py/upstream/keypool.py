"""A pool of API keys for one upstream: round robin, sticky choices, health, visible state.

What an error does to a key lives here, in ``report_failure`` (what the router does next
lives in ``retry.py``):

- invalid key / deactivated account → disabled ("invalid key"); no quota → disabled
  ("quota exceeded"), when ``auto_remove`` is on (else a cooldown);
- 429 → a cooldown from ``Retry-After`` (or a short backoff);
- 5xx, timeout, connection failure → a short backoff, and disabled ("failing: …") once
  ``fail_threshold`` such failures fall within ``fail_window`` seconds;
- a stream that broke after its first byte → one such failure, no cooldown of its own;
- a 4xx caused by the request itself → nothing: it is not the key's fault.

A disabled or cooling key comes back by itself when ``enable`` is called (the probe,
``probe.py``) or its cooldown ends. Every method is synchronous and never awaits, so on
one event loop each call is atomic and the pool needs no lock.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from alice_py.upstream.errors import (
    InvalidKeyError,
    NoAvailableKeysError,
    QuotaExceededError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRequestError,
    UpstreamServerError,
    UpstreamTimeoutError,
)

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0
"""Seconds of cooldown after a first 429/5xx without ``Retry-After``; doubles per failure in a row."""
BACKOFF_MAX = 60.0
RETRY_AFTER_MAX = 3600.0
"""An upstream may ask for a day (daily limits); past an hour we would rather try the key again."""

NO_KEY_LABEL = "(no key)"
"""How a keyless upstream's one entry (a local server that takes no key) is shown."""

KeyStatus = Literal["active", "cooling", "disabled"]


def mask_key(key: str) -> str:
    """``sk-proj-abc…wxyz`` → ``sk-…wxyz``: the prefix up to the first dash, ``…``, the last 4.

    Never more than half of a key shows, so short keys show fewer characters: the last
    ``min(4, len // 2)`` (an 8-character key ``…wxyz``, a 5-character one ``…yz``, a
    3-character one ``…z``), and the prefix only from 12 characters on. Only a
    1-character key (nothing can show without showing all of it) is the bare ``…``.
    """
    if not key:
        return "…"
    if len(key) >= 12:
        dash = key.find("-")
        prefix = key[: dash + 1] if 0 <= dash <= 4 else ""
        return f"{prefix}…{key[-4:]}"
    shown = min(4, len(key) // 2)
    return "…" + key[len(key) - shown :]


@dataclass(frozen=True, slots=True)
class KeyState:
    """What the admin page shows about one key. ``cooldown_until`` is in the pool's clock
    (monotonic by default); ``cooldown_remaining`` is the seconds left, 0 when not cooling.
    ``window_*`` count the calls of the last ``fail_window`` seconds."""

    masked: str
    state: KeyStatus
    cooldown_until: float | None
    cooldown_remaining: float
    disabled_reason: str | None
    requests: int
    failures: int
    last_error: str | None
    upstream: str = "default"
    window_calls: int = 0
    window_failures: int = 0
    tokens: int = 0
    last_error_request_id: str | None = None

    @property
    def success_rate(self) -> float | None:
        """Successful calls / calls over the window; None when there were none."""
        if not self.window_calls:
            return None
        return (self.window_calls - self.window_failures) / self.window_calls


class _Entry:
    __slots__ = (
        "calls",
        "cooldown_until",
        "disabled_reason",
        "failures",
        "key",
        "last_error",
        "last_error_request_id",
        "rate_limited",
        "requests",
        "streak",
        "tokens",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.cooldown_until = 0.0
        self.disabled_reason: str | None = None
        self.requests = 0
        self.failures = 0
        self.streak = 0
        self.tokens = 0
        self.rate_limited = False
        """The cooldown follows a 429's ``Retry-After``: the probe leaves it alone."""
        self.last_error: str | None = None
        self.last_error_request_id: str | None = None
        self.calls: deque[tuple[float, bool]] = deque()
        """(time, failed) of the calls of the last ``fail_window`` seconds."""


COUNTED = (UpstreamServerError, UpstreamTimeoutError, UpstreamConnectionError)
"""Failures that may be passing (an overloaded or restarting server): counted towards
``fail_threshold`` before the key is disabled."""


def _failure_class(error: UpstreamError) -> str:
    if isinstance(error, UpstreamTimeoutError):
        return "timeouts"
    if isinstance(error, UpstreamConnectionError):
        return "connection failures"
    return "server errors"


class KeyPool:
    """Round robin over the usable keys of one upstream (see the module's docstring).

    Cooling keys are not handed out: ``acquire`` raises NoAvailableKeysError, and
    ``ready_at`` says when the first one comes back (the router may wait for it).
    ``keyless``: the upstream takes no key (a local server); the pool holds one entry, the
    empty key, sent without ``Authorization``.
    """

    def __init__(
        self,
        keys: Iterable[str],
        *,
        auto_remove: bool,
        clock: Callable[[], float] = time.monotonic,
        name: str = "default",
        fail_threshold: int = 3,
        fail_window: float = 60.0,
        keyless: bool = False,
    ) -> None:
        self.name = name
        self._auto_remove = auto_remove
        self._clock = clock
        self._fail_threshold = fail_threshold
        self._fail_window = fail_window
        self._entries: list[_Entry] = []
        self._by_key: dict[str, _Entry] = {}
        self._next = 0
        self.on_change: Callable[[str], None] | None = None
        """Called with a key whose state (cooldown, disabled) changed: the shared state hook."""
        if keyless:
            entry = _Entry("")
            self._entries.append(entry)
            self._by_key[""] = entry
        self.add(keys)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<KeyPool {self.name} {len(self._entries)} keys, {self.usable_count()} usable>"

    def keys(self) -> list[str]:
        """The raw keys, in order, disabled ones included: for persistence only, never print them."""
        return [entry.key for entry in self._entries]

    def usable_count(self) -> int:
        """Keys that are not disabled (cooling keys count: they come back by themselves)."""
        return sum(1 for entry in self._entries if entry.disabled_reason is None)

    def ready(self, key: str) -> bool:
        """Whether ``key`` is in the pool, neither disabled nor cooling."""
        entry = self._by_key.get(key)
        return entry is not None and entry.disabled_reason is None and entry.cooldown_until <= self._clock()

    def acquire(self, *, exclude: Collection[str] = (), prefer: str | None = None) -> str:
        """``prefer`` if it is ready and not excluded, else the next ready key in round robin
        order that is not excluded. Raises NoAvailableKeysError when there is none."""
        now = self._clock()
        if prefer is not None and prefer not in exclude:
            entry = self._by_key.get(prefer)
            if entry is not None and entry.disabled_reason is None and entry.cooldown_until <= now:
                entry.requests += 1
                return entry.key
        entries = self._entries
        count = len(entries)
        for step in range(count):
            index = (self._next + step) % count
            entry = entries[index]
            if entry.disabled_reason is not None or entry.cooldown_until > now or entry.key in exclude:
                continue
            self._next = index + 1
            entry.requests += 1
            return entry.key
        raise NoAvailableKeysError()

    def ready_at(self, *, exclude: Collection[str] = ()) -> float | None:
        """When the first cooling key (not disabled, not excluded) is ready again, in the pool's
        clock; None if there is none (every such key is disabled or excluded)."""
        times = [
            entry.cooldown_until
            for entry in self._entries
            if entry.disabled_reason is None and entry.key not in exclude
        ]
        return min(times) if times else None

    def now(self) -> float:
        return self._clock()

    def report_success(self, key: str, tokens: int = 0) -> None:
        entry = self._by_key.get(key)
        if entry is not None:
            entry.streak = 0
            entry.tokens += tokens
            if entry.cooldown_until:
                entry.cooldown_until = 0.0
                self._changed(entry)
            self._record_call(entry, False)

    def report_failure(self, key: str, error: UpstreamError, *, broke_off: bool = False) -> None:
        """Count the failure and act on it (the module's docstring); a key removed meanwhile is
        ignored. ``broke_off``: a stream failed after its first byte (counted, no cooldown)."""
        entry = self._by_key.get(key)
        if entry is None or isinstance(error, UpstreamRequestError):
            return
        entry.failures += 1
        entry.last_error = error.detail
        entry.last_error_request_id = error.upstream_request_id
        if isinstance(error, InvalidKeyError | QuotaExceededError):
            self._record_call(entry, True)
            if self._auto_remove:
                invalid = isinstance(error, InvalidKeyError)
                self.disable(key, "invalid key" if invalid else "quota exceeded", error.detail)
                return
            self._cool_down(entry, None)
        elif isinstance(error, UpstreamRateLimitError):
            self._record_call(entry, True)
            self._cool_down(entry, error.retry_after)
        elif isinstance(error, COUNTED) or broke_off:
            failed = self._record_call(entry, True)
            if failed >= self._fail_threshold and self._auto_remove:
                window = f"{self._fail_window:g} s"
                reason = f"failing: {failed} {_failure_class(error)} within {window}"
                self.disable(key, reason, error.detail)
            elif not broke_off:
                self._cool_down(entry, None)

    def _record_call(self, entry: _Entry, failed: bool) -> int:
        """Keep the call in the key's window; the failures now in it."""
        now = self._clock()
        calls = entry.calls
        calls.append((now, failed))
        horizon = now - self._fail_window
        while calls and calls[0][0] < horizon:
            calls.popleft()
        if not failed:
            return 0
        return sum(1 for _, bad in calls if bad)

    def disable(self, key: str, reason: str, detail: str | None = None) -> None:
        entry = self._by_key.get(key)
        if entry is None or entry.disabled_reason is not None:
            return
        entry.disabled_reason = reason
        log.warning("API key %s of %s disabled (%s): %s", mask_key(key), self.name, reason, detail or "-")
        self._changed(entry)

    def enable(self, key: str) -> bool:
        """Bring a disabled or cooling key back (it worked again); whether it was out."""
        entry = self._by_key.get(key)
        if entry is None or (entry.disabled_reason is None and entry.cooldown_until <= self._clock()):
            return False
        was = entry.disabled_reason or "cooling"
        entry.disabled_reason = None
        entry.cooldown_until = 0.0
        entry.streak = 0
        entry.calls.clear()
        log.warning("API key %s of %s works again (was: %s)", mask_key(key), self.name, was)
        self._changed(entry)
        return True

    def out_of_service(self) -> list[str]:
        """What the probe tries: the disabled keys, and those cooling after a failure that was
        not a rate limit (a 429's ``Retry-After`` is the upstream's word on when to come back)."""
        now = self._clock()
        return [
            e.key
            for e in self._entries
            if e.disabled_reason is not None or (e.cooldown_until > now and not e.rate_limited)
        ]

    def _cool_down(self, entry: _Entry, retry_after: float | None) -> None:
        entry.streak += 1
        entry.rate_limited = retry_after is not None
        if retry_after is None:
            seconds = min(BACKOFF_BASE * 2 ** (entry.streak - 1), BACKOFF_MAX)
        else:
            seconds = min(max(retry_after, 0.0), RETRY_AFTER_MAX)
        entry.cooldown_until = self._clock() + seconds
        # DEBUG: the failure log already has one (folded) line for the failure that caused it.
        log.debug("API key %s cooling down for %.1f s", mask_key(entry.key), seconds)
        self._changed(entry)

    def _changed(self, entry: _Entry) -> None:
        if self.on_change is not None:
            self.on_change(entry.key)

    def shared_state(self, key: str) -> tuple[float, str | None] | None:
        """(cooldown_until, disabled_reason) of ``key``, for the shared state; None if absent."""
        entry = self._by_key.get(key)
        return None if entry is None else (entry.cooldown_until, entry.disabled_reason)

    def apply_shared_state(self, key: str, cooldown_until: float, disabled_reason: str | None) -> None:
        """Take another instance's view of ``key`` (no ``on_change``: it came from there)."""
        entry = self._by_key.get(key)
        if entry is not None:
            entry.cooldown_until = cooldown_until
            entry.disabled_reason = disabled_reason

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
            key = raw.strip()
            entry = self._by_key.pop(key, None) if key else None
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

    def _state(self, entry: _Entry, now: float) -> KeyState:
        cooling = entry.cooldown_until > now
        status: KeyStatus = "disabled" if entry.disabled_reason else "cooling" if cooling else "active"
        horizon = now - self._fail_window
        window = [bad for at, bad in entry.calls if at >= horizon]
        return KeyState(
            masked=mask_key(entry.key) if entry.key else NO_KEY_LABEL,
            state=status,
            cooldown_until=entry.cooldown_until if cooling else None,
            cooldown_remaining=entry.cooldown_until - now if cooling else 0.0,
            disabled_reason=entry.disabled_reason,
            requests=entry.requests,
            failures=entry.failures,
            last_error=entry.last_error,
            upstream=self.name,
            window_calls=len(window),
            window_failures=sum(window),
            tokens=entry.tokens,
            last_error_request_id=entry.last_error_request_id,
        )
