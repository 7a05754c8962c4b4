"""What the service lets one see of its work: ``GET /metrics``, the per-request counts behind
it, and the ``X-Upstream`` header (the name of the upstream that answered, never the key).

``install(app)`` is its one call site (``create_app``). ``/metrics`` answers without client
credentials, like ``/healthz`` (Prometheus scrapers send none), unless ``[metrics] token``
is set: then it wants ``Authorization: Bearer <token>``, compared in constant time.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator

from aiohttp import web

from alice_py import appkeys
from alice_py.metrics import CONTENT_TYPE, Metrics
from alice_py.metrics_workers import WorkerMetrics, worker_metrics_dir
from alice_py.request_ids import current
from alice_py.web.middlewares import RESPONSE_HOOKS

PATH = "/metrics"
UPSTREAM_HEADER = "X-Upstream"
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


class _OnPrepare:
    """Run as each response is prepared (one of ``web.middlewares.ResponseHooks``):
    ``X-Upstream``, and the request counted (dialect, status, time since it began). A hook, not
    a middleware: a middleware layer costs more per request than the counting itself. A stream
    is timed to its start (its headers)."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __call__(self, request: web.Request, response: web.StreamResponse) -> None:
        info = current()
        if info is None:
            self._metrics.request(request.path, response.status, 0.0)
            return
        if info.upstream is not None:
            response.headers[UPSTREAM_HEADER] = info.upstream
        self._metrics.request(request.path, response.status, time.monotonic() - info.started)


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


def _metrics_for(app: web.Application) -> Metrics:
    """A ``--workers`` process counts in its supervisor's directory, so a scrape of any worker
    is the service's; a single process keeps plain numbers (nothing written per request)."""
    directory = worker_metrics_dir()
    if app[appkeys.CONFIG].server.workers > 1 and directory is not None:
        return WorkerMetrics(directory)
    return Metrics()


def install(app: web.Application) -> None:
    metrics = app[METRICS] = _metrics_for(app)
    app[RESPONSE_HOOKS].append(_OnPrepare(metrics))
    app.router.add_get(PATH, metrics_handler, allow_head=False)
    app.cleanup_ctx.append(_router_ctx)
