"""The admin page: ``GET /admin``, ``POST /admin/login``, ``POST /admin/logout``, ``GET /admin/status.json``,
``POST /admin/revoke-share``, ``POST /admin/test-key``.

- Off (404 with a page that says so) while ``[admin] password`` is empty.
- The session is an encrypted cookie (aiohttp-session's ``EncryptedCookieStorage``,
  Fernet): ``HttpOnly``, ``SameSite=Strict``, path ``/admin``, 12 hours, ``Secure`` when the
  page came over https (``web.proxies``). It names a session this process keeps
  (``AdminSessions``): logout ends it server-side, and so does a restart. Its secret is
  ``[admin] session_secret``; when that is empty, one is generated and kept in
  ``admin_session.key`` (mode 600) next to the SQLite database, so sessions survive
  restarts; with PostgreSQL or an in-memory database a new one is made at each start
  (admin sessions then end at a restart).
- Every form carries the session's CSRF token in a hidden field, checked on POST.
- The password is compared in constant time. Wrong ones count per client address in
  the admin key API's ``FailureLimiter`` (same password, same allowance): past its
  limit the login form answers 429 until the oldest failure ages out. Behind a reverse
  proxy listed in ``[server] trusted_proxies`` the address is the client's, from
  ``X-Forwarded-For``; behind an unlisted one every client shares the proxy's bucket.
- A form body that cannot be parsed is a 400 before any session or CSRF check.
- The dashboard lists the most recent shares, each with a revoke button (a CSRF-checked form
  to ``/admin/revoke-share``); ``GET /admin/shares`` lists them all.
- Each key of the pool (per upstream: ``admin_pool``) has a "test now" button, a CSRF-checked
  form to ``/admin/test-key``; the next page view says how the test went.
- The session only runs on these paths: nothing else pays for it.

The admin key API (``/admin/keys``, ``Authorization`` header) is another module.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import AbstractStorage, Session, get_session, new_session, session_middleware
from cachetools import TTLCache
from multidict import MultiDictProxy

from alice_py import __version__, appkeys
from alice_py.api.admin_keys import FailureLimiter
from alice_py.api.admin_pool import collect_status, test_now
from alice_py.db.engine import is_memory_sqlite, parse_url
from alice_py.errors import ConfigError, RateLimited
from alice_py.web.auth import secret_matches
from alice_py.web.body import read_form
from alice_py.web.pages import (
    admin_dashboard_page,
    admin_login_page,
    admin_off_page,
    html_response,
    root_of,
)

log = logging.getLogger(__name__)

PAGE, LOGIN, LOGOUT, STATUS = "/admin", "/admin/login", "/admin/logout", "/admin/status.json"
REVOKE_SHARE = "/admin/revoke-share"
TEST_KEY = "/admin/test-key"
PAGE_SHARES = 50
"""Shares listed on the dashboard, the most recent first (the admin API pages through all)."""
COOKIE_NAME = "alice_admin"
SESSION_MAX_AGE = 12 * 3600
SECRET_FILE = "admin_session.key"
MAX_SESSIONS = 1000

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]

SECRET_HELP = (
    "32 random bytes in url-safe base64; make one with: python -c "
    '"import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'
)


# --- the session secret ---------------------------------------------------------------------------


def decode_secret(text: str, source: str) -> bytes:
    """The 32 bytes of a url-safe base64 secret, or ``ConfigError`` naming ``source`` (never the value)."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{source} must be {SECRET_HELP}")
    return raw


def secret_file(database_url: str) -> Path | None:
    """Where a generated secret is kept: next to a SQLite database file; ``None`` for other databases."""
    url = parse_url(database_url)
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url) or url.query.get("uri") == "true":
        return None
    return Path(url.database or ".").parent / SECRET_FILE


def load_or_create_secret(path: Path) -> bytes:
    """The secret in ``path``, created (mode 600) if missing; a concurrent creator wins the race."""
    for _ in range(2):
        try:
            return decode_secret(path.read_text(encoding="ascii"), str(path))
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the admin session secret {path}: {exc}") from None
        key = secrets.token_bytes(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot create the admin session secret {path}: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.urlsafe_b64encode(key).decode("ascii") + "\n")
        log.info("admin sessions: generated a new secret in %s", path)
        return key
    raise ConfigError(f"cannot read the admin session secret {path}")


async def session_secret(cfg_secret: str, database_url: str) -> bytes:
    if cfg_secret:
        return decode_secret(cfg_secret, "[admin] session_secret")
    path = secret_file(database_url)
    if path is None:
        log.info("admin sessions end when the service restarts: set [admin] session_secret to keep them")
        return secrets.token_bytes(32)
    return await asyncio.to_thread(load_or_create_secret, path)


class AdminSessions:
    """The cookie storages and the sessions logged in, kept here so that logout ends a session
    for good: a copy of its cookie (still decryptable for its 12 hours) no longer logs anyone in.

    The record is this process's memory: a restart ends every admin session (log in again).
    Two storages with one secret: the cookie is ``Secure`` when the page came over https."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.monotonic) -> None:
        # Imported here: it pulls in cryptography (~7 MiB) that a service without admin never needs.
        from aiohttp_session.cookie_storage import EncryptedCookieStorage

        params: dict[str, Any] = {
            "cookie_name": COOKIE_NAME,
            "path": PAGE,
            "max_age": SESSION_MAX_AGE,
            "httponly": True,
            "samesite": "Strict",
        }
        self._plain = EncryptedCookieStorage(secret, **params)
        self._secure = EncryptedCookieStorage(secret, secure=True, **params)
        # Full, the least recently used session ends first.
        self._live: TTLCache[str, bool] = TTLCache(MAX_SESSIONS, SESSION_MAX_AGE, timer=clock)

    def storage(self, https: bool) -> AbstractStorage:
        return self._secure if https else self._plain

    def start(self) -> str:
        """A new session's id, to keep in its cookie."""
        session_id = secrets.token_urlsafe(24)
        self._live[session_id] = True
        return session_id

    def alive(self, session_id: object) -> bool:
        return isinstance(session_id, str) and self._live.get(session_id, False)

    def end(self, session_id: object) -> None:
        if isinstance(session_id, str):
            self._live.pop(session_id, None)


async def admin_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """The sessions, only when the admin page is on (no password: no secret, no file)."""
    cfg = app[appkeys.CONFIG]
    if cfg.admin.password:
        secret = await session_secret(cfg.admin.session_secret, cfg.database.url)
        app[appkeys.ADMIN_SESSIONS] = AdminSessions(secret)
    yield


def with_session(handler: Handler) -> Handler:
    """``handler`` with the admin session (aiohttp-session's middleware, run for this route
    only: a middleware of the app would cost every API request a step)."""

    async def in_session(request: web.Request) -> web.StreamResponse:
        sessions = request.app.get(appkeys.ADMIN_SESSIONS)
        if sessions is None:
            return await handler(request)
        storage = sessions.storage(request.app[appkeys.TRUSTED_PROXIES].is_https(request))
        return await session_middleware(storage)(request, handler)

    return in_session


# --- handlers -------------------------------------------------------------------------------------


def _enabled(request: web.Request) -> bool:
    return bool(request.app[appkeys.CONFIG].admin.password)


def _off(request: web.Request) -> web.Response:
    return html_response(admin_off_page(root_of(request.path)), status=404, no_store=True)


def _password_tag(password: str) -> str:
    """Kept in the (encrypted) session: changing the password ends every session."""
    return hashlib.sha256(f"alice-py admin\n{password}".encode()).hexdigest()[:32]


def _csrf(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _logged_in(request: web.Request, session: Session) -> bool:
    tag = session.get("admin")
    expected = _password_tag(request.app[appkeys.CONFIG].admin.password)
    if not (isinstance(tag, str) and secret_matches(tag, expected)):
        return False
    return request.app[appkeys.ADMIN_SESSIONS].alive(session.get("sid"))


def _csrf_ok(form: Form, session: Session) -> bool:
    sent, expected = form.get("csrf"), session.get("csrf")
    return isinstance(sent, str) and isinstance(expected, str) and bool(expected) and secret_matches(
        sent, expected
    )


def _see_page(request: web.Request) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location=root_of(request.path) + PAGE.lstrip("/"))


def _login_form(request: web.Request, session: Session, error: str, status: int) -> web.Response:
    page = admin_login_page(root_of(request.path), _csrf(session), error)
    return html_response(page, status=status, no_store=True)


async def admin_page(request: web.Request) -> web.Response:
    if not _enabled(request):
        return _off(request)
    session = await get_session(request)
    if not _logged_in(request, session):
        return _login_form(request, session, "", 200)
    status = await collect_status(request.app)
    notice = session.pop("notice", "")
    page = admin_dashboard_page(
        root_of(request.path),
        _csrf(session),
        version=__version__,
        uptime=status.uptime,
        conversations=status.conversations,
        shares=status.shares,
        key_rows=status.key_rows,
        upstreams=status.upstreams,
        recent_shares=await request.app[appkeys.SHARES].recent(PAGE_SHARES),
        usage=request.app[appkeys.USAGE].snapshot(),
        notice=notice if isinstance(notice, str) else "",
    )
    return html_response(page, no_store=True)

async def _dashboard_form(
    request: web.Request, *, login_to: str | None = None
) -> tuple[Form, Session] | web.Response:
    """A form posted from the dashboard with its session, or the answer that refuses it: the
    page is off, or the CSRF token is wrong, or (``login_to``: what the form does) nobody is
    logged in. A broken body is a 400 before the session is read."""
    if not _enabled(request):
        return _off(request)
    form = await read_form(request)
    session = await get_session(request)
    if not _csrf_ok(form, session):
        return _login_form(request, session, "The form expired. Please try again.", 403)
    if login_to is not None and not _logged_in(request, session):
        return _login_form(request, session, f"Log in to {login_to}.", 401)
    return form, session


async def login(request: web.Request) -> web.Response:
    if not _enabled(request):
        return _off(request)
    form = await read_form(request)  # a broken body is a 400 before the session is looked at
    session = await get_session(request)
    address = request.app[appkeys.TRUSTED_PROXIES].client_address(request)
    failures = request.app[appkeys.ADMIN_FAILURES]
    try:
        failures.check(address)
    except RateLimited as exc:
        wait = max(math.ceil(exc.retry_after), 1)
        response = _login_form(request, session, f"Too many wrong passwords. Try again in {wait} s.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    if not _csrf_ok(form, session):
        return _login_form(request, session, "The form expired. Please try again.", 403)
    password = form.get("password")
    expected = request.app[appkeys.CONFIG].admin.password
    if not isinstance(password, str) or not secret_matches(password, expected):
        failures.record(address)
        log.warning("wrong admin password from %s (admin page)", address)
        return _login_form(request, session, "Wrong password.", 401)
    session = await new_session(request)
    session["admin"] = _password_tag(expected)
    session["sid"] = request.app[appkeys.ADMIN_SESSIONS].start()
    session["csrf"] = secrets.token_urlsafe(32)
    raise _see_page(request)


async def logout(request: web.Request) -> web.Response:
    checked = await _dashboard_form(request)
    if isinstance(checked, web.Response):
        return checked
    _, session = checked
    request.app[appkeys.ADMIN_SESSIONS].end(session.get("sid"))
    session.invalidate()
    raise _see_page(request)


async def revoke_share(request: web.Request) -> web.Response:
    """The dashboard's revoke button: the share's link answers 404 from now on."""
    checked = await _dashboard_form(request, login_to="revoke shares")
    if isinstance(checked, web.Response):
        return checked
    form, _ = checked
    share_id = form.get("id")
    if isinstance(share_id, str) and share_id and await request.app[appkeys.SHARES].delete(share_id):
        log.info("admin revoked share %s (admin page)", share_id)
    raise _see_page(request)


async def test_key_now(request: web.Request) -> web.Response:
    """A key's "test now" button: one ``GET /models`` with it now; the page then says how it went."""
    checked = await _dashboard_form(request, login_to="test keys")
    if isinstance(checked, web.Response):
        return checked
    form, session = checked
    upstream, key = form.get("upstream"), form.get("key")
    if isinstance(upstream, str) and isinstance(key, str):
        session["notice"] = await test_now(request.app[appkeys.ROUTER], upstream, key)
    raise _see_page(request)


async def status_json(request: web.Request) -> web.Response:
    if not _enabled(request):
        return web.json_response({"error": "admin is off"}, status=404)
    if not _logged_in(request, await get_session(request)):
        return web.json_response({"error": "log in at /admin first"}, status=401)
    response = web.json_response((await collect_status(request.app)).to_json())
    response.headers["Cache-Control"] = "no-store"
    return response


def add_routes(app: web.Application) -> None:
    """The routes (public to the API auth: the session is their auth) and the session.

    Wrong passwords count in the admin key API's ``FailureLimiter``: both guard the same
    password, so guesses through either use up the same allowance."""
    if appkeys.ADMIN_FAILURES not in app:
        app[appkeys.ADMIN_FAILURES] = FailureLimiter()
    app.cleanup_ctx.append(admin_session_ctx)
    # Under no dialect's prefix: no guard; the page checks its own session.
    app.router.add_get(PAGE, with_session(admin_page), allow_head=False)
    app.router.add_post(LOGIN, with_session(login))
    app.router.add_post(LOGOUT, with_session(logout))
    app.router.add_get(STATUS, with_session(status_json), allow_head=False)
    app.router.add_post(REVOKE_SHARE, with_session(revoke_share))
    app.router.add_post(TEST_KEY, with_session(test_key_now))
