"""What the service lets one see of its work: ``GET /metrics``, the per-request counts behind
it, and the ``X-Upstream`` header (the name of the upstream that answered, never the key).

``install(app)`` is its one call site (``create_app``). ``/metrics`` answers without client
credentials, like ``/healthz`` (Prometheus scrapers send none), unless ``[metrics] token``
is set: then it wants ``Authorization: Bearer <token>``, compared in constant time.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from alice_py import appkeys
from alice_py.metrics import CONTENT_TYPE, Metrics
from alice_py.request_ids import current

PATH = "/metrics"
UPSTREAM_HEADER = "X-Upstream"
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _CountRequests:
    """The outermost middleware: each request's dialect, status and duration."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self._metrics.request(request.path, exc.status, time.monotonic() - started)
            raise
        self._metrics.request(request.path, response.status, time.monotonic() - started)
        return response


async def _upstream_header(request: web.Request, response: web.StreamResponse) -> None:
    info = current()
    if info is not None and info.upstream is not None:
        response.headers[UPSTREAM_HEADER] = info.upstream


async def metrics_handler(request: web.Request) -> web.Response:
    app = request.app
    token = app[appkeys.CONFIG].metrics.token
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return web.Response(
                status=401,
                text="metrics need Authorization: Bearer <[metrics] token>\n",
                headers={"WWW-Authenticate": "Bearer"},
            )
    targets = app[appkeys.ROUTER].targets
    keys = [state for target in targets for state in target.pool.snapshot()]
    body = app[METRICS].render(await app[appkeys.STORE].count(), keys, [t.name for t in targets])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _router_ctx(app: web.Application) -> AsyncIterator[None]:
    """Hands the metrics to the router once it exists (it is made in a cleanup context)."""
    app[appkeys.ROUTER].metrics = app[METRICS]
    yield


def install(app: web.Application) -> None:
    metrics = app[METRICS] = Metrics()
    app.middlewares.insert(0, _CountRequests(metrics).middleware)
    app.on_response_prepare.append(_upstream_header)
    app.router.add_get(PATH, metrics_handler, allow_head=False)
    app.cleanup_ctx.append(_router_ctx)
