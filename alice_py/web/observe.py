"""What the service lets one see of its work: ``GET /metrics`` and the per-request counts
behind it (counted as ``web.middlewares.ApiMiddleware`` ends each answer, which also sets the
``X-Upstream`` header: the name of the upstream that answered, never the key).

``install(app)`` is its one call site (``create_app``). ``/metrics`` answers without client
credentials, like ``/healthz`` (Prometheus scrapers send none), unless ``[metrics] token``
is set: then it wants ``Authorization: Bearer <token>``, compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator

from aiohttp import web

from alice_py import appkeys
from alice_py.metrics import CONTENT_TYPE, Metrics
from alice_py.metrics_workers import WorkerMetrics, worker_metrics_dir
from alice_py.web.middlewares import PIPELINE

PATH = "/metrics"
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


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
    # Counted where the pipeline ends each answer (its middleware has the request's info at
    # hand): cheaper than a hook of its own as each response is prepared.
    app[PIPELINE].count = metrics.request
    app.router.add_get(PATH, metrics_handler, allow_head=False)
    app.cleanup_ctx.append(_router_ctx)
