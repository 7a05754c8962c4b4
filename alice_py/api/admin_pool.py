"""What the admin dashboard shows (``AdminStatus``, also as ``status.json``): the service's numbers
and the key pool, per upstream and per key, with each key's "test now" button.

Each key: state (``active``, ``cooling``, ``disabled``), reason, cooldown until (wall clock),
last error with the upstream's request id, requests, failures, success rate over ``[keys]
fail_window``, tokens. The page, its forms and ``status.json`` name a key by ``key_id`` (a hash,
as the shared key state in Redis does): they never hold a key, nor more of it than its mask.

"Test now" is one ``GET /models`` with the key, whatever its state (``probe.test_key``): a key
that was out and answers is back in service. Its outcome is told on the next page view.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from alice_py import __version__, appkeys
from alice_py.api.admin_keys import key_test_result
from alice_py.upstream.keypool import KeyState
from alice_py.upstream.router import Target, UpstreamRouter
from alice_py.upstream.shared_keys import key_id


@dataclass(frozen=True, slots=True)
class KeyRow:
    upstream: str
    id: str
    """``key_id(key)``: what the page's "test now" form sends back."""
    state: KeyState
    cooldown_until: datetime | None
    """When the cooldown ends, in UTC; None when not cooling."""

    def to_json(self) -> dict[str, Any]:
        """Keys masked, as everywhere."""
        state = self.state
        until = self.cooldown_until
        return {
            "id": self.id,
            "upstream": self.upstream,
            "key": state.masked,
            "state": state.state,
            "disabled_reason": state.disabled_reason,
            "cooldown_until": None if until is None else until.isoformat(timespec="seconds"),
            "cooldown_remaining": state.cooldown_remaining,
            "last_error": state.last_error,
            "last_error_request_id": state.last_error_request_id,
            "requests": state.requests,
            "failures": state.failures,
            "window_requests": state.window_calls,
            "window_failures": state.window_failures,
            "success_rate": None if state.success_rate is None else round(state.success_rate, 3),
            "tokens": state.tokens,
        }


def key_rows(router: UpstreamRouter) -> list[KeyRow]:
    """Every key of every upstream, in the router's order."""
    now = time.time()
    rows: list[KeyRow] = []
    for target in router.targets:
        pool = target.pool
        # keys() and snapshot() list the pool's entries in the same order; nothing awaits in between.
        for key, state in zip(pool.keys(), pool.snapshot(), strict=True):
            until = None
            if state.cooldown_until is not None:
                until = datetime.fromtimestamp(now + state.cooldown_remaining, UTC)
            rows.append(KeyRow(target.name, key_id(key), state, until))
    return rows


def find_key(router: UpstreamRouter, upstream: str, wanted: str) -> tuple[Target, str] | None:
    for target in router.targets:
        if target.name == upstream:
            keys = target.pool.keys()
            return next(((target, key) for key in keys if key_id(key) == wanted), None)
    return None


async def test_now(router: UpstreamRouter, upstream: str, wanted: str) -> str:
    """Test the key; what the page then says about it."""
    found = find_key(router, upstream, wanted)
    if found is None:
        return "That key is no longer in the pool."
    result = await key_test_result(*found)
    name = f"{result['key']} ({result['upstream']})"
    if result["ok"]:
        return f"{name} works: it is in service."
    return f"{name} failed the test: {result['error']}"


@dataclass(frozen=True, slots=True)
class AdminStatus:
    uptime: float
    conversations: int
    shares: int
    key_rows: list[KeyRow]
    upstreams: list[str]
    """The upstreams' names, in the router's order (one may have no key left)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "uptime": self.uptime,
            "conversations": self.conversations,
            "shares": self.shares,
            "upstreams": self.upstreams,
            "keys": [row.to_json() for row in self.key_rows],
        }


async def collect_status(app: web.Application) -> AdminStatus:
    return AdminStatus(
        uptime=time.time() - app[appkeys.STARTED_AT],
        conversations=await app[appkeys.STORE].count(),
        shares=await app[appkeys.SHARES].count(),
        key_rows=key_rows(app[appkeys.ROUTER]),
        upstreams=[target.name for target in app[appkeys.ROUTER].targets],
    )
