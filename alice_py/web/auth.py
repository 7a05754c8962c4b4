"""Client authentication: Alice's three modes, and the check the middleware runs.

Alice's modes (``[auth] mode``):

- ``none``: everything passes.
- ``simple``: header ``token`` equals the secret.
- ``normal``: for browsers, where the secret must not travel. Header ``uuid``
  (1 to 50 characters, fresh per request) and ``token`` = lowercase hex
  ``sha256(secret + uuid)``. Each uuid is accepted once.

Replays (``normal``) are refused through a ``ReplayGuard`` (``web.replay``; the policy is
``[auth] replay``); a reused uuid gets a 401 that says so, and a warning (at most once a
minute) names the setting for frontends that cannot make random uuids.

The auth middleware checks each request with its dialect's guard (``web.dialects``),
except on the dialect's public routes and ``OPTIONS`` preflights.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from alice_py import appkeys
from alice_py.config import AuthConfig
from alice_py.errors import AuthFailed
from alice_py.web.replay import Clock, Throttled

log = logging.getLogger(__name__)

Guard = Callable[[web.Request], Awaitable[None]]
"""Checks a request's credentials; raises ``AuthFailed`` (or ``RateLimited``) to refuse it."""

CLIENT_KEY = web.RequestKey("client_key", str)
"""The secret a guard verified the request with: who the client is, for the per-client rate
limit (``web.ratelimit``). Set only when it was checked against a configured secret."""

MAX_UUID_LENGTH = 50
UUID_REUSED = "uuid already used: send a fresh random uuid with each request"


def _bytes(value: str) -> bytes:
    # Header values may hold lone surrogates (aiohttp's stand-ins for bytes that are not
    # UTF-8); "surrogatepass" encodes any of them instead of raising, and they just don't match.
    return value.encode("utf-8", "surrogatepass")


def normal_token(secret: str, nonce: str) -> str:
    """What a browser sends as ``token`` in normal mode: lowercase hex sha256(secret + uuid)."""
    return hashlib.sha256(_bytes(secret + nonce)).hexdigest()


def secret_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(_bytes(given), _bytes(expected))


class AliceAuth:
    """The guard of ``/chatgpt/*`` for the configured mode."""

    def __init__(self, cfg: AuthConfig, clock: Clock = time.monotonic) -> None:
        self.mode = cfg.mode
        self._secret = cfg.token
        self._replay = cfg.replay
        self._reuse_warning = Throttled(log, clock=clock)

    async def __call__(self, request: web.Request) -> None:
        if self.mode == "none":
            return
        token = request.headers.get("token", "")
        if self.mode == "simple":
            if not secret_matches(token, self._secret):
                raise AuthFailed()
            request[CLIENT_KEY] = token
            return
        nonce = request.headers.get("uuid", "")
        if not 0 < len(nonce) <= MAX_UUID_LENGTH or not secret_matches(
            token, normal_token(self._secret, nonce)
        ):
            raise AuthFailed()
        # Looked up per request: a shared (Redis) set may replace the in-memory one at startup.
        if not await request.app[appkeys.REPLAY_GUARD].first_use(nonce):
            self._warn_reuse()
            raise AuthFailed(UUID_REUSED)

    def _warn_reuse(self) -> None:
        # Mostly a frontend that follows the Alice README's example (a uuid from
        # new Date().getMilliseconds()), not an attacker: say what to change.
        self._reuse_warning.warning(
            'normal auth: a client reuses uuids (refused with 401); each request needs a fresh random '
            'uuid. [auth] replay = "%s"; "original" refuses a uuid only while it is among the last 50 '
            "seen, as the Go service did",
            self._replay,
        )


async def check_credentials(request: web.Request) -> None:
    """Raise ``AuthFailed`` unless the request passes its route's guard. (Run by the API
    middleware, ``web.middlewares``, after preflights and inside the error handling.)"""
    # Unknown paths and methods answer 404/405 as usual: nothing there to protect.
    if request.match_info.http_exception is None:
        guard = request.app[appkeys.DIALECTS].guard_for(request)
        if guard is not None:
            await guard(request)
