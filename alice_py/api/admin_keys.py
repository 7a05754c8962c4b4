"""The admin key API: list, add and remove upstream API keys at run time.

- ``GET /admin/keys``: every key of every upstream, masked (``sk-…abcd``), with its upstream,
  state (active, cooling down until …, disabled and why), requests, failures and source.
- ``PATCH /admin/keys`` (and seed 001's ``PATCH /admin/tokens``): add keys. The body is a JSON
  array of strings (they go to the first upstream listed) or ``{"upstream": "<name>", "keys":
  [...]}``; answers which were added and which were already there.
- ``DELETE /admin/keys``: remove keys, same bodies (an array: whichever upstream holds them),
  each a raw key or the masked form ``GET`` shows (when it matches exactly one key).
- ``POST /admin/keys/test``: one ``GET /models`` per key now ("test now"), same bodies.

Keys added here are stored in the database with their upstream's name (``KeyRepository``)
and loaded into that upstream's pool at start-up (``stored_keys_ctx``); removing one removes
it from both. A stored key whose upstream is no longer configured is not loaded (it would go
to another provider): a warning says so. A key from the config or the key file comes back at
the next start: delete it there too.

Auth: ``Authorization: <[admin] password>`` (``Bearer`` accepted), compared in constant time.
Without a password the API is off (404). After ``FAILURE_LIMIT`` wrong passwords in a
minute from one address, that address gets 429 until the oldest failure is a minute old.
Keys never appear unmasked in a response or a log line.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from cachetools import TTLCache

from alice_py import appkeys
from alice_py.api.dialects import json_response
from alice_py.config import upstream_entries
from alice_py.db.keys import KeyRepository
from alice_py.errors import AliceError, AuthFailed, BadRequest, NotFound, RateLimited
from alice_py.upstream.keypool import NO_KEY_LABEL, KeyPool, KeyState, mask_key
from alice_py.upstream.router import Target
from alice_py.web.auth import secret_matches
from alice_py.web.body import read_body

log = logging.getLogger(__name__)

PATH = "/admin/keys"
SEED_PATH = "/admin/tokens"
FAILURE_LIMIT = 5
FAILURE_WINDOW = 60.0
MAX_TRACKED_ADDRESSES = 10_000
ADMIN_OFF = "The admin API is off: set [admin] password (or ALICE_ADMIN_PASSWORD) to turn it on"
WRONG_PASSWORD = "Wrong admin password: send it as the Authorization header"


class FailureLimiter:
    """Wrong passwords per client address in a sliding window; addresses idle for a window are forgotten."""

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: TTLCache[str, deque[float]] = TTLCache(MAX_TRACKED_ADDRESSES, window, timer=clock)

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def check(self, address: str) -> None:
        """Raise ``RateLimited`` while ``address`` has ``limit`` failures in the window."""
        now = self._clock()
        times = self._recent(address, now)
        if len(times) >= self.limit:
            raise RateLimited(times[0] + self.window - now, "Too many wrong admin passwords: try again later")

    def record(self, address: str) -> None:
        now = self._clock()
        times = self._recent(address, now)
        times.append(now)
        self._failures[address] = times  # (re)set: the address is kept a window from now


class AdminOff(NotFound):
    def __init__(self) -> None:
        super().__init__(ADMIN_OFF)


class AdminGuard:
    def __init__(self, password: str) -> None:
        self._password = password

    async def __call__(self, request: web.Request) -> None:
        if not self._password:
            raise AdminOff()
        failures = request.app[appkeys.ADMIN_FAILURES]
        address = request.app[appkeys.TRUSTED_PROXIES].client_address(request)
        failures.check(address)
        given = request.headers.get("Authorization", "")
        scheme, _, rest = given.partition(" ")
        bare = rest.strip() if scheme.lower() == "bearer" else given
        if not (secret_matches(given, self._password) | secret_matches(bare, self._password)):
            failures.record(address)
            log.warning("wrong admin password from %s", address)
            raise AuthFailed(WRONG_PASSWORD)


EXAMPLE = 'send a JSON array of API keys, e.g. ["sk-..."], or {"upstream": "<name>", "keys": [...]}'


async def read_key_list(request: web.Request) -> tuple[list[str], Target | None]:
    """The body's keys (stripped, duplicates once, order kept) and the upstream it names (None:
    it names none, a bare array)."""
    try:
        value = orjson.loads(await read_body(request))
    except orjson.JSONDecodeError:
        raise BadRequest(f"The body is not valid JSON: {EXAMPLE}") from None
    target: Target | None = None
    if isinstance(value, dict):
        unknown = set(value) - {"keys", "upstream"}
        if unknown:
            raise BadRequest(f"Unknown field {sorted(unknown)[0]!r}: {EXAMPLE}")
        if "upstream" in value:
            target = _named_target(request, value["upstream"])
        value = value.get("keys")
    if not isinstance(value, list):
        raise BadRequest(f"The keys must be a JSON array: {EXAMPLE}")
    found: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise BadRequest(f"Item {index} is not a key: {EXAMPLE}")
        key = item.strip()
        if any(char.isspace() for char in key):
            raise BadRequest(f"Item {index} is not a key: it holds whitespace")
        found.append(key)
    return list(dict.fromkeys(found)), target


def _named_target(request: web.Request, name: object) -> Target:
    targets = request.app[appkeys.ROUTER].targets
    target = next((t for t in targets if t.name == name), None) if isinstance(name, str) else None
    if target is None:
        names = ", ".join(repr(t.name) for t in targets)
        raise BadRequest(f"No upstream is named {str(name)!r}: the upstreams are {names}")
    return target


def _key_view(state: KeyState, stored: bool) -> dict[str, Any]:
    until = None
    if state.cooldown_until is not None:
        ends = datetime.now(UTC) + timedelta(seconds=state.cooldown_remaining)
        until = ends.isoformat(timespec="seconds")
    return {
        "key": state.masked,
        "state": state.state,
        "cooldown_until": until,
        "cooldown_seconds": round(state.cooldown_remaining, 1),
        "disabled_reason": state.disabled_reason,
        "requests": state.requests,
        "failures": state.failures,
        "last_error": state.last_error,
        "source": "admin" if stored else "config",
        "upstream": state.upstream,
        "last_error_request_id": state.last_error_request_id,
        "window_requests": state.window_calls,
        "window_failures": state.window_failures,
        "success_rate": None if state.success_rate is None else round(state.success_rate, 3),
        "tokens": state.tokens,
    }


async def list_keys(request: web.Request) -> web.Response:
    stored = set(await request.app[appkeys.STORED_KEYS].all())  # one key is stored for one upstream
    views: list[dict[str, Any]] = []
    usable = 0
    for target in request.app[appkeys.ROUTER].targets:
        pool = target.pool
        # keys() and snapshot() list the pool's entries in the same order; nothing awaits in between.
        views.extend(
            _key_view(state, key in stored) for key, state in zip(pool.keys(), pool.snapshot(), strict=True)
        )
        usable += pool.usable_count()
    return json_response({"keys": views, "count": len(views), "usable": usable})


async def add_keys(request: web.Request) -> web.Response:
    wanted, named = await read_key_list(request)
    targets = request.app[appkeys.ROUTER].targets
    target = named or targets[0]
    stored = request.app[appkeys.STORED_KEYS]
    owners = {key: name or targets[0].name for key, name in await stored.entries()}
    taken = [key for key in wanted if owners.get(key, target.name) != target.name]
    if taken:
        owner = owners[taken[0]]
        raise BadRequest(f"{mask_key(taken[0])} is stored for the upstream {owner!r}: remove it there first")
    pool = target.pool
    present = set(pool.keys())
    fresh = [key for key in wanted if key not in present]
    await stored.add(fresh, target.name)
    added = pool.add(fresh)
    masked = [mask_key(key) for key in added]
    if added:
        log.info("admin added %d API key(s) to %s: %s", len(added), target.name, ", ".join(masked))
    return json_response(
        {
            "added": masked,
            "already_present": [mask_key(key) for key in wanted if key in present],
            "upstream": target.name,
            "count": len(pool),
        }
    )


def resolve(pool: KeyPool, items: list[str]) -> tuple[list[str], list[str]]:
    """(keys of the pool the items name, items naming none). A masked item must name one key."""
    raw = pool.keys()
    present = set(raw)
    by_mask: dict[str, list[str]] = {}
    for key in raw:
        by_mask.setdefault(mask_key(key), []).append(key)
    found: list[str] = []
    missing: list[str] = []
    for item in items:
        if item in present:
            found.append(item)
            continue
        matches = by_mask.get(item, [])
        if len(matches) > 1:
            raise BadRequest(f"{item} matches {len(matches)} keys: send the whole key to remove one")
        if matches:
            found.append(matches[0])
        else:
            missing.append(item)
    return list(dict.fromkeys(found)), missing


def _resolve_all(targets: Sequence[Target], items: list[str]) -> tuple[list[tuple[Target, str]], list[str]]:
    """(upstream and key each item names, items naming none). A raw key is found in every
    upstream that has it; a masked item must name one key of all those upstreams."""
    found: list[tuple[Target, str]] = []
    missing: list[str] = []
    for item in items:
        hits = [(target, key) for target in targets for key in resolve(target.pool, [item])[0]]
        if len(hits) > 1 and "…" in item:
            several = "matches keys of several upstreams: send the whole key or name its upstream"
            raise BadRequest(f"{item} {several}")
        found.extend(hits)
        if not hits:
            missing.append(item)
    return found, missing


async def remove_keys(request: web.Request) -> web.Response:
    items, named = await read_key_list(request)
    targets = (named,) if named is not None else request.app[appkeys.ROUTER].targets
    found, missing = _resolve_all(targets, items)
    # Unknown raw items may still be stored (a key the pool never loaded): forget those too.
    await request.app[appkeys.STORED_KEYS].remove([key for _, key in found] + missing)
    removed = [key for target, key in found if target.pool.remove([key])]
    configured = {key for target in targets for key in _configured(request, target.name)}
    masked = [mask_key(key) for key in removed]
    if removed:
        log.info("admin removed %d API key(s): %s", len(removed), ", ".join(masked))
    return json_response(
        {
            "removed": masked,
            "not_found": [item if "…" in item else mask_key(item) for item in missing],
            "back_at_restart": [mask_key(key) for key in removed if key in configured],
            "count": sum(len(target.pool) for target in targets),
        }
    )


def _configured(request: web.Request, name: str) -> tuple[str, ...]:
    """The keys the configuration gives the upstream ``name`` (they come back at a restart)."""
    cfg = request.app[appkeys.CONFIG]
    return next((entry.keys for entry in upstream_entries(cfg) if entry.name == name), ())


async def test_keys(request: web.Request) -> web.Response:
    """``POST /admin/keys/test``: one ``GET /models`` each, now, whatever its state ("test
    now"); a key that was out and answers is back."""
    items, named = await read_key_list(request)
    targets = (named,) if named is not None else request.app[appkeys.ROUTER].targets
    found, missing = _resolve_all(targets, items)
    results = [await key_test_result(target, key) for target, key in found]
    return json_response({"results": results, "not_found": [i if "…" in i else mask_key(i) for i in missing]})


async def key_test_result(target: Target, key: str) -> dict[str, Any]:
    """What "test now" found for one key (masked), for the API and the admin page."""
    from alice_py.upstream.probe import test_key

    error = await test_key(target, key)
    return {
        "key": mask_key(key) if key else NO_KEY_LABEL,
        "upstream": target.name,
        "ok": error is None,
        "error": None if error is None else error.detail,
    }


def admin_error(request: web.Request, error: AliceError) -> web.Response:
    return json_response({"error": error.message}, error.status)


async def stored_keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """The key repository, and the keys added through this API loaded into their upstreams' pools."""
    repository = KeyRepository(app[appkeys.DB_ENGINE])
    app[appkeys.STORED_KEYS] = repository
    targets = app[appkeys.ROUTER].targets
    by_name = {target.name: target for target in targets}
    loaded, orphans = 0, 0
    for key, name in await repository.entries():
        target = targets[0] if name is None else by_name.get(name)
        if target is None:
            orphans += 1  # never to another upstream: the key belongs to another provider
            continue
        loaded += len(target.pool.add([key]))
    if loaded:
        log.info("loaded %d API key(s) added through the admin API", loaded)
    if orphans:
        log.warning(
            "%d API key(s) added through the admin API name an upstream that is not configured:"
            " not loaded (add the upstream back, or DELETE /admin/keys them)",
            orphans,
        )
    yield


def add_routes(app: web.Application) -> None:
    app[appkeys.ADMIN_FAILURES] = FailureLimiter()
    app.router.add_get(PATH, list_keys, allow_head=False)
    app.router.add_patch(PATH, add_keys)
    app.router.add_delete(PATH, remove_keys)
    app.router.add_post(PATH + "/test", test_keys)
    app.router.add_patch(SEED_PATH, add_keys)
