"""The request pipeline shared by every dialect: errors, CORS, auth.

``install(app)`` puts it in place (called once by ``create_app``). One middleware,
``ApiMiddleware``, runs three steps in this order (one layer, not three: every
request pays for each layer, see docs/performance.md)::

    errors  ─►  preflight  ─►  auth  ─►  handler (a model call counts when it is made: web.ratelimit)

- errors: each request gets its id (``request_ids``; ``X-Request-Id`` on every answer);
  a raised ``AliceError`` becomes the response of the dialect that owns the
  path (``web.errors``; a body that came too slowly also closes the connection),
  aiohttp's 413 a clear message; other aiohttp HTTP exceptions
  pass through, and anything unexpected gets a short 500 (traceback in the log,
  never in the body). Failures go to the failure log (``failure_log``), a client
  that went away included.
- preflight: ``OPTIONS`` on every existing route is answered before auth.
- auth: the route's guard (``web.auth``).
- ``CorsHeaders`` adds ``Access-Control-*`` to every response as it is prepared,
  which is the only moment that also works for streamed answers (SSE, NDJSON)
  and for the 404/405 answers aiohttp makes itself: the app's one ``on_response_prepare``
  handler.
- The middleware ends each answer's accounting: ``X-Request-Id``, ``X-Upstream`` and the
  metrics' count (``web.observe`` sets ``count``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

from alice_py import appkeys
from alice_py.errors import AliceError, BadRequest, PayloadTooLarge
from alice_py.failure_log import FailureLog, flushing
from alice_py.request_ids import HEADER, UPSTREAM_HEADER, RequestIds
from alice_py.web.auth import check_credentials
from alice_py.web.body import BodyTimedOut, answer_and_close
from alice_py.web.dialects import Dialect, DialectTable
from alice_py.web.errors import InternalError, plain_text_error, render_error
from alice_py.web.ratelimit import SlidingWindowLimiter
from alice_py.web.replay import memory_replay_guard
from alice_py.web.shared_state import shared_state_ctx

log = logging.getLogger(__name__)

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "token",
    "uuid",
    "conversation",
    "settings",
    "content-type",
    "authorization",
    "message",
    "idempotency-key",
)
EXPOSE_HEADERS = (
    f"Retry-After, Share-Id, Share-URL, {HEADER}, X-Context-Tokens, X-Context-Window, X-Context-Dropped"
)
PREFLIGHT_MAX_AGE = "600"
NULL_ORIGIN = "null"
ANY_ORIGIN = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", EXPOSE_HEADERS))
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


Count = Callable[[str, int, float], None]
"""Counts an answered request: its path, status and seconds to its headers (``web.observe``)."""


def _uncounted(path: str, status: int, seconds: float) -> None:
    pass


class ApiMiddleware:
    """The pipeline's one middleware (the module's docstring). It also ends each answer's
    accounting, which costs least here, where the request's info is at hand: ``X-Request-Id``
    and ``X-Upstream`` on the answer, and ``count`` (the metrics) with its status and time. A
    stream (``web.sse``) sends its headers before this returns: it sets them itself and notes
    when it started, and is timed to that moment."""

    __middleware_version__ = 1  # aiohttp's mark of a new-style middleware
    __slots__ = ("count", "ids")

    def __init__(self, ids: RequestIds) -> None:
        self.ids = ids
        self.count: Count = _uncounted

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        info = self.ids.begin(request.method, request.path)
        try:
            missing = isinstance(request.match_info.http_exception, web.HTTPNotFound)
            if request.method == "OPTIONS" and not missing:
                response: web.StreamResponse = preflight(request)
            else:
                await check_credentials(request)
                response = await handler(request)
        except BodyTimedOut as exc:
            response = render_error(request, exc)
            response.headers[HEADER] = info.id
            self.count(info.path, response.status, time.monotonic() - info.started)
            return await answer_and_close(request, response)
        except AliceError as exc:
            request.app[appkeys.FAILURE_LOG].service_error(exc)
            response = render_error(request, exc)
        except web.HTTPRequestEntityTooLarge:
            limit = request.app[appkeys.CONFIG].server.max_body
            response = render_error(
                request, PayloadTooLarge(f"Request body too large: at most {limit} bytes are accepted")
            )
        except web.HTTPException as exc:  # aiohttp's own (404, 405, redirects) pass through
            exc.headers[HEADER] = info.id
            self.count(info.path, exc.status, time.monotonic() - info.started)
            raise
        except ConnectionResetError:
            # The client went away while its body was being read: nobody will read this answer.
            request.app[appkeys.FAILURE_LOG].client_gone()
            response = render_error(request, BadRequest("The connection was lost while reading the request"))
        except asyncio.CancelledError:
            # handler_cancellation: the client went away (its transport is gone), or shutdown cancels.
            request.app[appkeys.FAILURE_LOG].client_gone(transport_closed=request.transport is None)
            raise
        except Exception:
            log.exception("unexpected error in %s (request id %s)", info.route, info.id)
            response = render_error(request, InternalError())
        if response.prepared:  # a stream: its headers are gone (web.sse set ours)
            ended = info.answered or time.monotonic()
        else:
            headers = response.headers
            headers[HEADER] = info.id
            if info.upstream is not None:
                headers[UPSTREAM_HEADER] = info.upstream
            ended = time.monotonic()
        self.count(info.path, response.status, ended - info.started)
        return response


PIPELINE: web.AppKey[ApiMiddleware] = web.AppKey("pipeline", ApiMiddleware)


def _allow_headers(request: web.Request) -> str:
    """Alice's headers, plus any well-formed one the browser asks for (SDKs send their own)."""
    wanted = [*ALLOW_HEADERS]
    for name in request.headers.get("Access-Control-Request-Headers", "").split(","):
        name = name.strip().lower()
        if _HEADER_NAME.fullmatch(name) and name not in wanted:
            wanted.append(name)
    return ", ".join(wanted)


def preflight(request: web.Request) -> web.Response:
    """``OPTIONS`` on an existing path: 204 with what browsers may send (no auth needed)."""
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": _allow_headers(request),
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        },
    )


class CorsHeaders:
    """``on_response_prepare`` hook: the CORS headers for the configured origins.

    ``*`` lets any page read the answers, never with credentials: a page a user merely
    visits must not spend their cookies or HTTP auth on our routes. A listed origin is
    echoed back with credentials allowed, others get no ``Access-Control-Allow-Origin``
    (or ``*`` when it is configured too), and ``Vary: Origin`` keeps caches honest.
    ``null`` (sandboxed frames, ``file:`` pages, redirects) is never echoed, even when
    listed: any page can make its requests ``null``. A path in ``credentialed`` (``/chat``,
    whose clients fetch with credentials: its dialect says so) gets the listed origins' echo
    even when ``*`` is configured too. (One hook for all: each hook is a
    step on every response.)
    """

    def __init__(self, origins: Sequence[str], credentialed: frozenset[str] = frozenset()) -> None:
        self.any_origin = "*" in origins
        self.origins = frozenset(
            origin.rstrip("/") for origin in origins if origin not in ("*", NULL_ORIGIN)
        )
        self._credentialed = credentialed

    async def __call__(self, request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        if "Access-Control-Allow-Origin" in headers:
            return  # a dialect decided on its own
        if self.any_origin and not (self.origins and request.path in self._credentialed):
            headers.extend(ANY_ORIGIN)  # the common case, on every response: nothing to look up
            return
        vary = headers.get("Vary", "")
        if "origin" not in vary.lower():
            headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
        origin = request.headers.get("Origin", "")
        if origin in self.origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
            headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        elif self.any_origin:
            headers.extend(ANY_ORIGIN)


async def failure_log_ctx(app: web.Application) -> AsyncIterator[None]:
    async with flushing(app[appkeys.FAILURE_LOG]):
        yield


def install(app: web.Application, dialects: Iterable[Dialect]) -> None:
    """The shared state (the dialect table, replay set, rate limiter, request ids, failure
    log) and the pipeline."""
    cfg = app[appkeys.CONFIG]
    app[appkeys.REQUEST_IDS] = RequestIds()
    app[appkeys.FAILURE_LOG] = FailureLog()
    app.cleanup_ctx.append(failure_log_ctx)
    table = DialectTable(dialects, plain_text_error)
    app[appkeys.DIALECTS] = table
    app[appkeys.REPLAY_GUARD] = memory_replay_guard(cfg)
    app[appkeys.RATE_LIMITER] = SlidingWindowLimiter(cfg.limits.per_minute, cfg.limits.per_client)
    app.cleanup_ctx.append(shared_state_ctx)  # on Redis: the shared ones, once it is open
    app.middlewares.append(app.setdefault(PIPELINE, ApiMiddleware(app[appkeys.REQUEST_IDS])))
    app.on_response_prepare.append(CorsHeaders(cfg.server.cors_origins, table.credentialed_paths()))
