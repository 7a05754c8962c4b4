"""What every check of ``abuse.py`` uses: the options, the loopback guard, one HTTP helper.

Nothing here sends a request to anything but the loopback address the options name.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import socket
import ssl
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy

HELD, NOT_HELD, SKIPPED = "HELD", "NOT HELD", "SKIPPED"
REQUEST_TIMEOUT = 15.0
FLOOD_CONCURRENCY = 32
PROBE_ORIGIN = "https://abuse-probe.invalid"
MESSAGES = [{"role": "user", "content": "hi"}]

Verdict = tuple[str, str]
"""(HELD / NOT HELD / SKIPPED, what was seen)."""


class NotLoopback(ValueError):
    """The target is not a loopback address: the script refuses to send it anything."""


@dataclass(frozen=True, slots=True)
class Options:
    url: str = "http://127.0.0.1:7777"
    token: str = "alice"
    auth: str = "simple"
    client_key: str = ""
    client_key2: str = ""
    admin_password: str = ""
    limit: int = 500
    per_client: int = 0
    max_bytes: int = 1024 * 1024
    max_body: int = 1024 * 1024
    body_timeout: float = 30.0
    log: Path | None = None
    trusted_proxy: bool = False
    probe_model: str = "abuse-probe-unlisted-model"
    time_cap: float = 55.0
    only: frozenset[int] = field(default_factory=frozenset)

    @property
    def key(self) -> str:
        """The client key for ``/v1`` and the other peer dialects (default: the token)."""
        return self.client_key or self.token


def loopback_target(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``url``, or ``NotLoopback`` unless every address it names is loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotLoopback(f"{url!r} is not an http:// or https:// URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise NotLoopback(f"cannot resolve {parts.hostname!r}: {exc}") from None
    addresses = {info[4][0] for info in infos}
    outside = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if outside or not addresses:
        raise NotLoopback(
            f"{parts.hostname} is not a loopback address ({', '.join(outside)}): "
            "this script only attacks a service on this machine's loopback"
        )
    return parts.hostname, port


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def insecure_tls() -> ssl.SSLContext:
    """For an https:// loopback target: its certificate is the operator's business, not ours."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Probe:
    """The target, the credentials of each auth mode, and requests that never raise on a status."""

    def __init__(self, opts: Options, session: aiohttp.ClientSession) -> None:
        self.opts = opts
        self.session = session
        self.base = opts.url.rstrip("/")
        self.host, self.port = loopback_target(opts.url)
        self.tls = insecure_tls() if opts.url.startswith("https:") else None

    def alice(self, secret: str | None = None) -> dict[str, str]:
        """Credentials of the Alice API (``/chatgpt/*``) for the instance's auth mode."""
        secret = self.opts.token if secret is None else secret
        if self.opts.auth == "none":
            return {}
        if self.opts.auth == "normal":
            nonce = uuid.uuid4().hex
            return {"uuid": nonce, "token": hashlib.sha256((secret + nonce).encode()).hexdigest()}
        return {"token": secret}

    def bearer(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.opts.key}"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        **kwargs: Any,
    ) -> Reply:
        async with (session or self.session).request(
            method, self.base + path, headers=dict(headers or {}), ssl=self.tls or True, **kwargs
        ) as response:
            body = await response.read()
            return Reply(response.status, response.headers, body)

    def other_address(self) -> aiohttp.ClientSession | None:
        """A session whose requests come from 127.0.0.2: another client address on loopback."""
        if ipaddress.ip_address(socket.gethostbyname(self.host)).version != 4:
            return None
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        return new_session(connector)


def new_session(connector: aiohttp.BaseConnector | None = None) -> aiohttp.ClientSession:
    """No cookie jar (the checks handle the admin cookie themselves), a timeout per request."""
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
    )


async def flood(count: int, send: Callable[[], Awaitable[Reply]]) -> Counter[int]:
    """``count`` requests, at most ``FLOOD_CONCURRENCY`` at a time: how many got each status."""
    gate = asyncio.Semaphore(FLOOD_CONCURRENCY)
    statuses: Counter[int] = Counter()

    async def one() -> None:
        async with gate:
            statuses[(await send()).status] += 1

    await asyncio.gather(*(one() for _ in range(count)))
    return statuses


def describe(statuses: Counter[int]) -> str:
    return ", ".join(f"{count}× {status}" for status, count in sorted(statuses.items()))


def cors_grants_credentials(headers: CIMultiDictProxy[str], origin: str) -> bool:
    """Whether a browser on ``origin`` may read this answer with the user's credentials."""
    allowed = headers.get("Access-Control-Allow-Origin", "")
    credentials = headers.get("Access-Control-Allow-Credentials", "").lower() == "true"
    return credentials and allowed in (origin, "*")
